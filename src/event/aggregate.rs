//! The aggregate: everything a late joiner needs, folded from the events so far.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ErrorInfo, EventBody, Usage};

/// Text, tool calls, usage and outcome accumulated over a stream's events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Assistant text per choice, ordered by index.
    pub choices: Vec<ChoiceText>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refusal: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    /// The last reasoning signature (Anthropic signs thinking so it can be sent back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_signature: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The transcript; a live feed keeps only its last [`TRANSCRIPT_KEPT`] bytes here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transcript: String,
    /// Live feeds: how many audio segments have been transcribed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub segments: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// Agent streams: the state (`state.snapshot` replaces it, `state.delta` patches it).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub state: Value,
    /// Agent streams: steps in the order they started, with their status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepState>,
    /// Agent streams: the messages so far, by the publisher's message ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<AgentMessage>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    pub name: String,
    /// `running` or `finished`.
    pub status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentMessage {
    pub id: String,
    pub role: String,
    pub content: String,
    pub finished: bool,
}

/// The most of a transcript an aggregate holds: a live feed runs for hours, and its status
/// shows the recent part.
pub const TRANSCRIPT_KEPT: usize = 16 * 1024;

/// The `custom` event that closes one transcribed audio segment of a live feed.
pub const SEGMENT_MARKER: &str = "transcription.segment";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Drops the front of `text` so that at most `max` bytes remain, at a character boundary.
pub fn keep_tail(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = text.len() - max;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
}

/// Why a state operation does not apply.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StateError(pub String);

fn text_field(map: &Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChoiceText {
    pub index: u32,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub index: u32,
    pub id: String,
    pub name: String,
    pub arguments: String,
    /// Agent streams: what the tool returned (`tool_call.result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,
}

impl Aggregate {
    /// Applies a state event to `state`; an error leaves `state` as it was.
    pub fn apply_state(state: &mut Value, body: &EventBody) -> Result<(), StateError> {
        match body {
            EventBody::StateSnapshot(s) => *state = s.state.clone(),
            EventBody::StateDelta(d) => {
                let patch: json_patch::Patch = serde_json::from_value(d.patch.clone())
                    .map_err(|e| StateError(format!("not a JSON Patch: {e}")))?;
                let mut next = state.clone();
                json_patch::patch(&mut next, &patch).map_err(|e| StateError(e.to_string()))?;
                *state = next;
            }
            _ => {}
        }
        Ok(())
    }

    pub fn apply(&mut self, body: &EventBody) {
        match body {
            EventBody::MessageDelta(d) => match d.extra.get("messageId").and_then(Value::as_str) {
                Some(id) => self.message_mut(id).content.push_str(&d.text),
                None => self.choice_mut(d.index).text.push_str(&d.text),
            },
            EventBody::MessageStarted(m) => {
                let id = text_field(m, "messageId");
                let role = m
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("assistant")
                    .to_owned();
                self.message_mut(&id).role = role;
            }
            EventBody::MessageFinished(m) => {
                self.message_mut(&text_field(m, "messageId")).finished = true
            }
            EventBody::ToolCallStarted(t) => {
                let index = self.tool_calls.len() as u32;
                self.tool_calls.push(ToolCall {
                    index,
                    id: text_field(t, "toolCallId"),
                    name: text_field(t, "toolCallName"),
                    ..ToolCall::default()
                });
            }
            EventBody::ToolCallArgs(t) => {
                let id = text_field(t, "toolCallId");
                if let Some(call) = self.tool_calls.iter_mut().find(|c| c.id == id) {
                    call.arguments.push_str(&text_field(t, "delta"));
                }
            }
            EventBody::ToolCallFinished(t) => {
                let id = text_field(t, "toolCallId");
                if let Some(call) = self.tool_calls.iter_mut().find(|c| c.id == id) {
                    call.finished = true;
                }
            }
            EventBody::ToolCallResult(t) => {
                let id = text_field(t, "toolCallId");
                if let Some(call) = self.tool_calls.iter_mut().find(|c| c.id == id) {
                    call.result = Some(text_field(t, "content"));
                }
            }
            EventBody::StepStarted(s) => self.steps.push(StepState {
                name: s.name.clone(),
                status: "running".into(),
            }),
            EventBody::StepFinished(s) => {
                let running = self
                    .steps
                    .iter_mut()
                    .rev()
                    .find(|st| st.name == s.name && st.status == "running");
                match running {
                    Some(step) => step.status = "finished".into(),
                    None => self.steps.push(StepState {
                        name: s.name.clone(),
                        status: "finished".into(),
                    }),
                }
            }
            EventBody::StateSnapshot(_) | EventBody::StateDelta(_) => {
                // Publishers' patches are checked before they are appended; a log written
                // some other way that does not apply leaves the state as it was.
                let _ = Self::apply_state(&mut self.state, body);
            }
            EventBody::RefusalDelta(d) => self.refusal.push_str(&d.text),
            EventBody::ReasoningDelta(d) => {
                self.reasoning.push_str(&d.text);
                if d.signature.is_some() {
                    self.reasoning_signature.clone_from(&d.signature);
                }
            }
            EventBody::ToolCallDelta(d) => {
                let call = self.tool_call_mut(d.index);
                if let Some(id) = &d.id {
                    call.id.clone_from(id);
                }
                if let Some(name) = &d.name {
                    call.name.clone_from(name);
                }
                call.arguments.push_str(&d.arguments);
            }
            EventBody::TranscriptDelta(d) => {
                self.transcript.push_str(&d.text);
                keep_tail(&mut self.transcript, TRANSCRIPT_KEPT);
            }
            EventBody::TranscriptDone(d) => {
                self.transcript.clone_from(&d.text);
                keep_tail(&mut self.transcript, TRANSCRIPT_KEPT);
            }
            EventBody::Custom(c) if c.name == SEGMENT_MARKER => self.segments += 1,
            EventBody::Usage(u) => self.usage = Some(*u),
            EventBody::Completed(c) => {
                self.finish_reason.clone_from(&c.finish_reason);
                if c.usage.is_some() {
                    self.usage = c.usage;
                }
            }
            EventBody::Failed(f) => {
                self.error = Some(f.error.clone());
                if f.usage.is_some() {
                    self.usage = f.usage;
                }
            }
            EventBody::Cancelled(c) => self.cancel_reason = Some(c.reason.clone()),
            EventBody::Started(_) | EventBody::RunStarted(_) | EventBody::Custom(_) => {}
        }
    }

    /// The text of choice 0, the only one unless the request asked for several.
    pub fn text(&self) -> &str {
        self.choices
            .iter()
            .find(|c| c.index == 0)
            .map_or("", |c| c.text.as_str())
    }

    fn message_mut(&mut self, id: &str) -> &mut AgentMessage {
        let pos = match self.messages.iter().position(|m| m.id == id) {
            Some(pos) => pos,
            None => {
                self.messages.push(AgentMessage {
                    id: id.to_owned(),
                    role: "assistant".into(),
                    ..AgentMessage::default()
                });
                self.messages.len() - 1
            }
        };
        &mut self.messages[pos]
    }

    fn choice_mut(&mut self, index: u32) -> &mut ChoiceText {
        let pos = match self.choices.binary_search_by_key(&index, |c| c.index) {
            Ok(pos) => pos,
            Err(pos) => {
                self.choices.insert(
                    pos,
                    ChoiceText {
                        index,
                        text: String::new(),
                    },
                );
                pos
            }
        };
        &mut self.choices[pos]
    }

    fn tool_call_mut(&mut self, index: u32) -> &mut ToolCall {
        let pos = match self.tool_calls.binary_search_by_key(&index, |c| c.index) {
            Ok(pos) => pos,
            Err(pos) => {
                self.tool_calls.insert(
                    pos,
                    ToolCall {
                        index,
                        ..ToolCall::default()
                    },
                );
                pos
            }
        };
        &mut self.tool_calls[pos]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MessageDelta, ToolCallDelta};

    #[test]
    fn folds_text_per_choice_and_tool_call_fragments() {
        let mut agg = Aggregate::default();
        let events = [
            EventBody::MessageDelta(MessageDelta {
                text: "He".into(),
                index: 0,
                ..Default::default()
            }),
            EventBody::MessageDelta(MessageDelta {
                text: "B".into(),
                index: 1,
                ..Default::default()
            }),
            EventBody::MessageDelta(MessageDelta {
                text: "llo".into(),
                index: 0,
                ..Default::default()
            }),
            EventBody::ToolCallDelta(ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some("get_weather".into()),
                arguments: String::new(),
            }),
            EventBody::ToolCallDelta(ToolCallDelta {
                index: 0,
                id: None,
                name: None,
                arguments: "{\"city\":1}".into(),
            }),
        ];
        for e in &events {
            agg.apply(e);
        }
        assert_eq!(agg.text(), "Hello");
        assert_eq!(agg.choices[1].text, "B");
        assert_eq!(agg.tool_calls[0].name, "get_weather");
        assert_eq!(agg.tool_calls[0].arguments, "{\"city\":1}");
    }
}
