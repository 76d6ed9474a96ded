//! The `openai` provider: any OpenAI-compatible Chat Completions API (OpenAI, vLLM, Ollama,
//! Groq, OpenRouter, ...). Private wire types, [`normalize`] from one upstream chunk to native
//! events, and a thin stream wrapper around reqwest + eventsource-stream.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::upstream::{Decoder, UpstreamConfig, decode_sse, null_as_default, send};
use super::{
    ChatRequest, Provider, ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream,
    StreamOptions, TranscriptionRequest, WholeAnswer,
};
use crate::event::{EventBody, MessageDelta, Reasoning, ToolCallDelta, Usage};

pub struct OpenAiProvider {
    client: reqwest::Client,
    config: UpstreamConfig,
}

impl OpenAiProvider {
    pub fn new(config: UpstreamConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: config.client()?,
            config,
        })
    }

    fn body(model: &str, request: &ChatRequest) -> ChatRequest {
        let mut body = request.clone();
        body.model = model.to_owned();
        body.stream = Some(true);
        // Usage is always requested, whatever the client asked: it is reported in the log.
        let options = body
            .stream_options
            .get_or_insert_with(StreamOptions::default);
        options.include_usage = Some(true);
        body
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn accepts(&self, model: &str) -> bool {
        !model.is_empty()
    }

    fn listed_models(&self) -> Vec<String> {
        Vec::new()
    }

    async fn chat(
        &self,
        model: &str,
        request: &ChatRequest,
    ) -> Result<ProviderStream, ProviderError> {
        let url = self.config.url("chat/completions");
        let mut call = self
            .client
            .post(url)
            .header("accept", "text/event-stream")
            .json(&Self::body(model, request));
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key);
        }
        let response = send(call).await?;
        Ok(decode_sse(
            response.bytes_stream(),
            self.config.max_line_bytes,
            OpenAiDecoder::default(),
        ))
    }

    fn transcribes(&self) -> bool {
        true
    }

    async fn transcribe(
        &self,
        model: &str,
        request: &TranscriptionRequest,
    ) -> Result<ProviderStream, ProviderError> {
        self.transcribe_stream(model, request).await
    }

    async fn transcribe_whole(
        &self,
        model: &str,
        request: &TranscriptionRequest,
    ) -> Result<WholeAnswer, ProviderError> {
        self.transcribe_answer(model, request).await
    }
}

/// What [`normalize`] remembers between chunks.
#[derive(Debug, Default)]
pub(crate) struct ChunkState {
    finish_reason: Option<String>,
}

/// Chat Completions chunks; the stream must end with `[DONE]`.
#[derive(Default)]
pub(crate) struct OpenAiDecoder {
    state: ChunkState,
}

impl Decoder for OpenAiDecoder {
    fn event(&mut self, name: &str, data: &str) -> Result<Vec<ProviderEvent>, ProviderError> {
        // Some servers name error frames instead of shaping them `{"error": ...}`.
        if name == "error" {
            let detail: String = data.chars().take(500).collect();
            return Err(ProviderError::new(
                ProviderErrorKind::Stream,
                format!("upstream error event: {detail}"),
            ));
        }
        normalize(data, &mut self.state)
    }

    fn end(&mut self) -> Result<ProviderEvent, ProviderError> {
        Err(ProviderError::new(
            ProviderErrorKind::Truncated,
            "upstream closed the connection before [DONE]",
        ))
    }
}

/// Converts one upstream SSE `data` payload into native events. Pure.
pub(crate) fn normalize(
    data: &str,
    state: &mut ChunkState,
) -> Result<Vec<ProviderEvent>, ProviderError> {
    if data.trim() == "[DONE]" {
        return Ok(vec![ProviderEvent::Done {
            finish_reason: state.finish_reason.take(),
        }]);
    }
    let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
        ProviderError::new(
            ProviderErrorKind::InvalidResponse,
            format!("upstream chunk is not valid JSON: {e}"),
        )
    })?;
    if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
        let message = match error {
            Value::String(message) => Some(message),
            other => serde_json::from_value::<WireError>(other)
                .ok()
                .and_then(|e| e.message),
        };
        let message = message.unwrap_or_else(|| "upstream reported an error".to_owned());
        return Err(ProviderError::new(ProviderErrorKind::Stream, message));
    }
    let mut out = Vec::new();
    for choice in chunk.choices {
        let index = choice.index;
        if let Some(delta) = choice.delta {
            let reasoning = delta.reasoning_content.or(delta.reasoning);
            push_text(&mut out, reasoning, |text| {
                EventBody::ReasoningDelta(Reasoning {
                    text,
                    signature: None,
                    ..Default::default()
                })
            });
            push_text(&mut out, delta.content, |text| {
                EventBody::MessageDelta(MessageDelta {
                    text,
                    index,
                    ..Default::default()
                })
            });
            push_text(&mut out, delta.refusal, |text| {
                EventBody::RefusalDelta(MessageDelta {
                    text,
                    index,
                    ..Default::default()
                })
            });
            for call in delta.tool_calls.unwrap_or_default() {
                let function = call.function.unwrap_or_default();
                let arguments = function.arguments.unwrap_or_default();
                if call.id.is_none() && function.name.is_none() && arguments.is_empty() {
                    continue;
                }
                out.push(ProviderEvent::Event(EventBody::ToolCallDelta(
                    ToolCallDelta {
                        index: call.index,
                        id: call.id,
                        name: function.name,
                        arguments,
                    },
                )));
            }
        }
        if let Some(reason) = choice.finish_reason {
            // With several choices, choice 0's reason is the stream's.
            if index == 0 || state.finish_reason.is_none() {
                state.finish_reason = Some(reason);
            }
        }
    }
    if let Some(usage) = chunk.usage {
        out.push(ProviderEvent::Event(EventBody::Usage(Usage {
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
        })));
    }
    Ok(out)
}

/// Empty deltas are dropped: several clients reject empty content events.
fn push_text(
    out: &mut Vec<ProviderEvent>,
    text: Option<String>,
    body: impl FnOnce(String) -> EventBody,
) {
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        out.push(ProviderEvent::Event(body(text)));
    }
}

// Wire types: only the fields tokenrelay reads; everything else is ignored.

/// Compatible upstreams disagree on some field types (a `reasoning` object, array content):
/// a value that is not a string is skipped rather than failing the whole chunk.
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default, deserialize_with = "null_as_default")]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default, deserialize_with = "null_as_default")]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default, deserialize_with = "lenient_string")]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default, deserialize_with = "lenient_string")]
    content: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    refusal: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    reasoning_content: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default, deserialize_with = "null_as_default")]
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Deserialize, Default)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

#[derive(Deserialize, Default)]
struct WireError {
    #[serde(default)]
    message: Option<String>,
}

mod transcription;

pub(super) use transcription::TranscriptionDecoder;

#[cfg(test)]
mod tests;
