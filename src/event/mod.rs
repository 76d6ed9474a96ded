//! The stream domain: ids, the native event model and the aggregate folded from a log.

mod aggregate;
mod id;
mod model;
pub mod token;

pub use aggregate::{Aggregate, ChoiceText, SEGMENT_MARKER, TRANSCRIPT_KEPT, ToolCall, keep_tail};
pub use id::{BadEventId, BadStreamId, Epoch, EventId, StreamId};
pub use model::{
    Cancelled, Completed, Custom, ErrorInfo, Event, EventBody, Failed, MessageDelta, Reasoning,
    Started, StateDelta, StateSnapshot, Step, StreamStatus, TYPE_NAMES, Text, ToolCallDelta, Usage,
};

use serde::{Deserialize, Serialize};

/// What a stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Chat,
    Transcription,
    Agent,
}

/// Wall-clock unix milliseconds, for event times and status timestamps.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The client-facing formats a log can be rendered in (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Native,
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
    Agui,
}

impl Format {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "native" => Some(Self::Native),
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "agui" => Some(Self::Agui),
            _ => None,
        }
    }
}
