//! The aggregate: everything a late joiner needs, folded from the events so far.

use serde::{Deserialize, Serialize};

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
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transcript: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
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
}

impl Aggregate {
    pub fn apply(&mut self, body: &EventBody) {
        match body {
            EventBody::MessageDelta(d) => self.choice_mut(d.index).text.push_str(&d.text),
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
            EventBody::TranscriptDelta(d) => self.transcript.push_str(&d.text),
            EventBody::TranscriptDone(d) => self.transcript.clone_from(&d.text),
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
            EventBody::Started(_)
            | EventBody::StepStarted(_)
            | EventBody::StepFinished(_)
            | EventBody::StateSnapshot(_)
            | EventBody::StateDelta(_)
            | EventBody::Custom(_) => {}
        }
    }

    /// The text of choice 0, the only one unless the request asked for several.
    pub fn text(&self) -> &str {
        self.choices
            .iter()
            .find(|c| c.index == 0)
            .map_or("", |c| c.text.as_str())
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
            }),
            EventBody::MessageDelta(MessageDelta {
                text: "B".into(),
                index: 1,
            }),
            EventBody::MessageDelta(MessageDelta {
                text: "llo".into(),
                index: 0,
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
