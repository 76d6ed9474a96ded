//! The native event model (SPEC §4): what the log stores and every renderer reads.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::StreamKind;

/// One immutable entry of a stream's log.
#[derive(Clone, Debug)]
pub struct Event {
    /// Dense per-stream sequence number, starting at 1.
    pub seq: u64,
    /// Unix milliseconds when the event was appended.
    pub time_ms: u64,
    pub body: EventBody,
    /// The native `data:` JSON, serialized once at append so fan-out never re-encodes it.
    pub data: Box<str>,
    /// When this process appended the event, for the added-latency metric. `None` for an
    /// event read back from a shared store: another clock's instant would be a guess.
    pub received: Option<Instant>,
}

/// The local receive instant is bookkeeping, not part of what an event is.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
            && self.time_ms == other.time_ms
            && self.body == other.body
            && self.data == other.data
    }
}

impl Event {
    /// An event appended here and now.
    pub fn new(seq: u64, time_ms: u64, body: EventBody) -> Self {
        let data = body.data_json().into_boxed_str();
        Self {
            seq,
            time_ms,
            body,
            data,
            received: Some(Instant::now()),
        }
    }

    /// An event read back from a store that kept its encoded `data`.
    pub fn from_stored(seq: u64, time_ms: u64, body: EventBody, data: Box<str>) -> Self {
        Self {
            seq,
            time_ms,
            body,
            data,
            received: None,
        }
    }

    /// Approximate bytes held in memory, used for the per-stream cap and the global budget.
    pub fn size(&self) -> usize {
        // Fixed part: seq, time, enum tag, boxes and the Arc around the event.
        const OVERHEAD: usize = 96;
        OVERHEAD + 2 * self.data.len()
    }
}

/// The payload of an event, tagged with its native type name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventBody {
    #[serde(rename = "stream.started")]
    Started(Started),
    #[serde(rename = "message.delta")]
    MessageDelta(MessageDelta),
    /// The model declined; OpenAI streams this apart from the text (`delta.refusal`).
    #[serde(rename = "refusal.delta")]
    RefusalDelta(MessageDelta),
    #[serde(rename = "reasoning.delta")]
    ReasoningDelta(Reasoning),
    #[serde(rename = "tool_call.delta")]
    ToolCallDelta(ToolCallDelta),
    #[serde(rename = "transcript.delta")]
    TranscriptDelta(Text),
    #[serde(rename = "transcript.done")]
    TranscriptDone(Text),
    #[serde(rename = "step.started")]
    StepStarted(Step),
    #[serde(rename = "step.finished")]
    StepFinished(Step),
    #[serde(rename = "state.snapshot")]
    StateSnapshot(StateSnapshot),
    #[serde(rename = "state.delta")]
    StateDelta(StateDelta),
    #[serde(rename = "custom")]
    Custom(Custom),
    #[serde(rename = "usage")]
    Usage(Usage),
    /// Agent lifecycle as an AG-UI publisher sends it (AG-UI field names, kept whole).
    #[serde(rename = "run.started")]
    RunStarted(Map<String, Value>),
    #[serde(rename = "message.started")]
    MessageStarted(Map<String, Value>),
    #[serde(rename = "message.finished")]
    MessageFinished(Map<String, Value>),
    #[serde(rename = "tool_call.started")]
    ToolCallStarted(Map<String, Value>),
    #[serde(rename = "tool_call.args")]
    ToolCallArgs(Map<String, Value>),
    #[serde(rename = "tool_call.finished")]
    ToolCallFinished(Map<String, Value>),
    #[serde(rename = "tool_call.result")]
    ToolCallResult(Map<String, Value>),
    #[serde(rename = "stream.completed")]
    Completed(Completed),
    #[serde(rename = "stream.failed")]
    Failed(Failed),
    #[serde(rename = "stream.cancelled")]
    Cancelled(Cancelled),
}

/// Every native event type name, `stream.started` first (only tokenrelay writes that one).
pub const TYPE_NAMES: [&str; 23] = [
    "stream.started",
    "message.delta",
    "refusal.delta",
    "reasoning.delta",
    "tool_call.delta",
    "transcript.delta",
    "transcript.done",
    "step.started",
    "step.finished",
    "state.snapshot",
    "state.delta",
    "custom",
    "usage",
    "run.started",
    "message.started",
    "message.finished",
    "tool_call.started",
    "tool_call.args",
    "tool_call.finished",
    "tool_call.result",
    "stream.completed",
    "stream.failed",
    "stream.cancelled",
];

impl EventBody {
    /// The SSE `event:` name of this event in the native format.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Started(_) => "stream.started",
            Self::MessageDelta(_) => "message.delta",
            Self::RefusalDelta(_) => "refusal.delta",
            Self::ReasoningDelta(_) => "reasoning.delta",
            Self::ToolCallDelta(_) => "tool_call.delta",
            Self::TranscriptDelta(_) => "transcript.delta",
            Self::TranscriptDone(_) => "transcript.done",
            Self::StepStarted(_) => "step.started",
            Self::StepFinished(_) => "step.finished",
            Self::StateSnapshot(_) => "state.snapshot",
            Self::StateDelta(_) => "state.delta",
            Self::Custom(_) => "custom",
            Self::Usage(_) => "usage",
            Self::RunStarted(_) => "run.started",
            Self::MessageStarted(_) => "message.started",
            Self::MessageFinished(_) => "message.finished",
            Self::ToolCallStarted(_) => "tool_call.started",
            Self::ToolCallArgs(_) => "tool_call.args",
            Self::ToolCallFinished(_) => "tool_call.finished",
            Self::ToolCallResult(_) => "tool_call.result",
            Self::Completed(_) => "stream.completed",
            Self::Failed(_) => "stream.failed",
            Self::Cancelled(_) => "stream.cancelled",
        }
    }

    /// The `data` object alone, as one-line JSON.
    pub fn data_json(&self) -> String {
        let value = match self {
            Self::Started(d) => serde_json::to_string(d),
            Self::MessageDelta(d) | Self::RefusalDelta(d) => serde_json::to_string(d),
            Self::ReasoningDelta(d) => serde_json::to_string(d),
            Self::TranscriptDelta(d) | Self::TranscriptDone(d) => serde_json::to_string(d),
            Self::ToolCallDelta(d) => serde_json::to_string(d),
            Self::StepStarted(d) | Self::StepFinished(d) => serde_json::to_string(d),
            Self::StateSnapshot(d) => serde_json::to_string(d),
            Self::StateDelta(d) => serde_json::to_string(d),
            Self::Custom(d) => serde_json::to_string(d),
            Self::Usage(d) => serde_json::to_string(d),
            Self::RunStarted(d)
            | Self::MessageStarted(d)
            | Self::MessageFinished(d)
            | Self::ToolCallStarted(d)
            | Self::ToolCallArgs(d)
            | Self::ToolCallFinished(d)
            | Self::ToolCallResult(d) => serde_json::to_string(d),
            Self::Completed(d) => serde_json::to_string(d),
            Self::Failed(d) => serde_json::to_string(d),
            Self::Cancelled(d) => serde_json::to_string(d),
        };
        // These types hold only strings, numbers and JSON values: serializing cannot fail.
        value.unwrap_or_else(|_| "{}".to_owned())
    }

    /// Rebuilds a body from its type name and `data` JSON, as a store keeps them.
    pub fn from_parts(type_name: &str, data: &str) -> Result<Self, serde_json::Error> {
        let name = serde_json::to_string(type_name)?;
        serde_json::from_str(&format!("{{\"type\":{name},\"data\":{data}}}"))
    }

    /// The status a stream ends in when this event is appended, if it is a terminal event.
    pub fn terminal_status(&self) -> Option<StreamStatus> {
        match self {
            Self::Completed(_) => Some(StreamStatus::Completed),
            Self::Failed(_) => Some(StreamStatus::Failed),
            Self::Cancelled(_) => Some(StreamStatus::Cancelled),
            _ => None,
        }
    }

    pub fn failed(code: impl Into<String>, message: impl Into<String>, retryable: bool) -> Self {
        Self::Failed(Failed {
            error: ErrorInfo {
                code: code.into(),
                message: message.into(),
                retryable,
            },
            ..Failed::default()
        })
    }

    pub fn cancelled(reason: impl Into<String>) -> Self {
        Self::Cancelled(Cancelled {
            reason: reason.into(),
        })
    }
}

/// Where a stream is in its life; anything but `Running` is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl StreamStatus {
    pub fn is_finished(self) -> bool {
        self != Self::Running
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Started {
    pub stream_id: String,
    pub kind: StreamKind,
    pub model: String,
    pub provider: String,
    /// Unix seconds.
    pub created_at: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageDelta {
    pub text: String,
    /// The choice this text belongs to (0 unless the request asked for `n > 1`).
    #[serde(default)]
    pub index: u32,
    /// Fields tokenrelay does not interpret (e.g. from an AG-UI publisher), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub text: String,
    /// Fields tokenrelay does not interpret (an upstream's `logprobs`, `segment_id`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Model reasoning ("thinking"). Anthropic signs each thinking block; the signature travels
/// in its own delta (empty `text`) so an Anthropic client can send the block back verbatim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Fields tokenrelay does not interpret (e.g. from an AG-UI publisher), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A fragment of the arguments JSON; fragments split it anywhere.
    #[serde(default)]
    pub arguments: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// Fields tokenrelay does not interpret (e.g. from an AG-UI publisher), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateSnapshot {
    pub state: Value,
    /// Fields tokenrelay does not interpret (e.g. from an AG-UI publisher), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateDelta {
    pub patch: Value,
    /// Fields tokenrelay does not interpret (e.g. from an AG-UI publisher), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    pub name: String,
    pub value: Value,
    /// Fields tokenrelay does not interpret (e.g. from an AG-UI publisher), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token counts; upstream names (`prompt_tokens`, ...) are translated at the adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Completed {
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Fields tokenrelay does not interpret (e.g. from an AG-UI publisher), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub error: ErrorInfo,
    /// What the upstream had counted when the stream broke, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Fields tokenrelay does not interpret (e.g. from an AG-UI publisher), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A client-safe description of what went wrong, with a stable machine-readable code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cancelled {
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_data_is_the_inner_object_on_one_line() {
        let body = EventBody::MessageDelta(MessageDelta {
            text: "a\nb\r\u{2028}".into(),
            index: 0,
            ..Default::default()
        });
        assert_eq!(body.type_name(), "message.delta");
        let data = body.data_json();
        assert!(!data.contains('\n') && !data.contains('\r'));
        let back: MessageDelta = serde_json::from_str(&data).unwrap();
        assert_eq!(back.text, "a\nb\r\u{2028}");
    }

    #[test]
    fn bodies_round_trip_through_their_tagged_form() {
        let bodies = [
            EventBody::failed("upstream_error", "boom", true),
            EventBody::cancelled("abandoned"),
            EventBody::ToolCallDelta(ToolCallDelta {
                index: 1,
                id: Some("call_1".into()),
                name: None,
                arguments: "{\"a".into(),
            }),
        ];
        for body in bodies {
            let back = EventBody::from_parts(body.type_name(), &body.data_json()).unwrap();
            assert_eq!(back, body);
            let json = serde_json::to_value(&body).unwrap();
            assert_eq!(json["type"], body.type_name());
            assert_eq!(serde_json::from_value::<EventBody>(json).unwrap(), body);
        }
    }

    #[test]
    fn only_the_three_terminal_types_finish_a_stream() {
        assert_eq!(
            EventBody::cancelled("user").terminal_status(),
            Some(StreamStatus::Cancelled)
        );
        let delta = EventBody::ReasoningDelta(Reasoning {
            text: "x".into(),
            signature: None,
            ..Default::default()
        });
        assert_eq!(delta.terminal_status(), None);
    }
}
