//! The provider seam: one upstream API per implementation, each turning a chat request into a
//! stream of native events. Adapters keep their wire types private and convert one upstream
//! event at a time with a pure function, unit-tested on fixtures.

mod anthropic;
mod error;
#[cfg(test)]
mod fixtures;
mod gemini;
mod lines;
mod mock;
mod openai;
mod registry;
mod replay;
mod transcription;
mod upstream;

pub use anthropic::AnthropicProvider;
pub use error::{ProviderError, ProviderErrorKind};
pub use gemini::GeminiProvider;
pub use lines::{LineError, split_lines};
pub use mock::{MockModel, MockProvider};
pub use openai::OpenAiProvider;
pub use registry::{AliasError, ModelAlias, ModelNotFound, Providers, Resolved, Route};
pub use replay::{UpstreamApi, replay};
pub use transcription::{AudioError, AudioFormat, TranscriptionRequest, WholeAnswer, wav_duration};
pub use upstream::UpstreamConfig;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::EventBody;

/// A chat request as clients send it (OpenAI shape). Fields tokenrelay does not interpret are
/// kept in `extra` and passed to OpenAI-compatible upstreams unchanged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The client's own Messages API body when it spoke Anthropic (`/v1/messages`): an
    /// Anthropic upstream gets it as sent, nothing lost in translation.
    #[serde(skip)]
    pub anthropic: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<MessageContent>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A message's content: plain text or an array of typed parts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<Value>),
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessageContent {
    /// The text of the content, parts joined by newlines (non-text parts left out).
    pub fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

impl ChatRequest {
    pub fn wants_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn wants_usage_chunk(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// What a provider stream yields.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderEvent {
    /// A native event to append (deltas, usage).
    Event(EventBody),
    /// The upstream finished normally; nothing follows.
    Done { finish_reason: Option<String> },
    /// The upstream sent something with nothing to append (a role chunk, an empty delta): it
    /// is alive, which counts for the first-event and idle timeouts.
    Heartbeat,
}

pub type ProviderStream = BoxStream<'static, Result<ProviderEvent, ProviderError>>;

/// What an upstream call is for.
#[derive(Clone, Debug)]
pub enum Job {
    Chat(ChatRequest),
    Transcription(TranscriptionRequest),
}

/// One upstream API.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The prefix clients address it by (`openai/...`, `mock/...`).
    fn name(&self) -> &'static str;

    /// Whether `model` (without the prefix) names something this provider can serve.
    fn accepts(&self, model: &str) -> bool;

    /// Concrete model names to list in `/v1/models`.
    fn listed_models(&self) -> Vec<String>;

    /// Starts the upstream call. Resolves once the upstream accepted the request (its stream
    /// follows) or refused it. Dropping the returned stream cancels the upstream request.
    async fn chat(
        &self,
        model: &str,
        request: &ChatRequest,
    ) -> Result<ProviderStream, ProviderError>;

    /// Whether this provider transcribes audio (`/v1/audio/transcriptions`, live feeds).
    fn transcribes(&self) -> bool {
        false
    }

    /// Whether it takes audio in this container (checked before anything is started).
    fn accepts_audio(&self, _format: AudioFormat) -> bool {
        true
    }

    /// Streams the transcript of `request.audio`: `transcript.delta` events, then one
    /// `transcript.done` with the whole text, usage, and the end. An upstream model that
    /// cannot stream gives just the `transcript.done`.
    async fn transcribe(
        &self,
        _model: &str,
        _request: &TranscriptionRequest,
    ) -> Result<ProviderStream, ProviderError> {
        Err(not_transcribing(self.name()))
    }

    /// The upstream's whole answer to a non-streaming request, relayed as it is (its JSON,
    /// text, SRT...).
    async fn transcribe_whole(
        &self,
        _model: &str,
        _request: &TranscriptionRequest,
    ) -> Result<WholeAnswer, ProviderError> {
        Err(not_transcribing(self.name()))
    }
}

fn not_transcribing(provider: &str) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Status(400),
        format!("provider `{provider}` does not transcribe audio"),
    )
}
