//! The `agui` format: AG-UI events as data-only JSON frames with `type`. The lifecycle rules
//! of AG-UI clients hold: RUN_STARTED first, messages and tool calls opened before use and
//! closed before RUN_FINISHED, nothing after RUN_FINISHED / RUN_ERROR. A resumed reader
//! rebuilds which messages are open from the events before its position.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::frame::FrameWriter;
use super::resume::Reset;
use crate::event::{EventBody, StreamId, Usage};

pub struct AguiRenderer {
    stream: String,
    /// Ids are numbered in log order, so they are the same for every reader of the stream.
    messages: u32,
    /// The open text message of each choice.
    text: BTreeMap<u32, String>,
    reasoning: Option<String>,
    /// Tool calls by native index: the AG-UI id, and the upstream id it came with. They stay
    /// open until the run ends, so a late fragment always has somewhere to go.
    tools: BTreeMap<u32, (String, Option<String>)>,
    usage: Option<Usage>,
    /// A `reset` to send right after RUN_STARTED (AG-UI clients want RUN_STARTED first).
    reset: Option<(String, Value)>,
    ended: bool,
}

impl AguiRenderer {
    pub fn new(id: &StreamId) -> Self {
        Self {
            stream: id.to_string(),
            messages: 0,
            text: BTreeMap::new(),
            reasoning: None,
            tools: BTreeMap::new(),
            usage: None,
            reset: None,
            ended: false,
        }
    }

    fn send(id: &str, out: &mut FrameWriter, data: Value) {
        out.frame(Some(id), None, &data.to_string());
    }

    fn next_id(&mut self, kind: &str) -> String {
        self.messages += 1;
        format!("{}-{kind}{}", self.stream, self.messages)
    }

    fn close_text(&mut self, id: &str, out: &mut FrameWriter) {
        for (_, message) in std::mem::take(&mut self.text) {
            Self::send(
                id,
                out,
                json!({"type": "TEXT_MESSAGE_END", "messageId": message}),
            );
        }
    }

    fn close_reasoning(&mut self, id: &str, out: &mut FrameWriter) {
        if let Some(message) = self.reasoning.take() {
            Self::send(
                id,
                out,
                json!({"type": "REASONING_MESSAGE_END", "messageId": message}),
            );
            Self::send(
                id,
                out,
                json!({"type": "REASONING_END", "messageId": message}),
            );
        }
    }

    fn close_all(&mut self, id: &str, out: &mut FrameWriter) {
        self.close_reasoning(id, out);
        for (_, (call, _)) in std::mem::take(&mut self.tools) {
            Self::send(
                id,
                out,
                json!({"type": "TOOL_CALL_END", "toolCallId": call}),
            );
        }
        self.close_text(id, out);
    }

    fn text(&mut self, id: &str, choice: u32, delta: &str, out: &mut FrameWriter) {
        if delta.is_empty() {
            return;
        }
        self.close_reasoning(id, out);
        let message = match self.text.get(&choice) {
            Some(message) => message.clone(),
            None => {
                let message = self.next_id("m");
                Self::send(
                    id,
                    out,
                    json!({"type": "TEXT_MESSAGE_START", "messageId": message, "role": "assistant"}),
                );
                self.text.insert(choice, message.clone());
                message
            }
        };
        Self::send(
            id,
            out,
            json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": message, "delta": delta}),
        );
    }

    /// Sent as a `CUSTOM` event named `reset`, after RUN_STARTED if the replay has one.
    pub fn reset(&mut self, id: &str, reset: &Reset) {
        self.reset = Some((id.to_owned(), json!(reset)));
    }

    fn flush_reset(&mut self, out: &mut FrameWriter) {
        if let Some((id, value)) = self.reset.take() {
            Self::send(
                &id,
                out,
                json!({"type": "CUSTOM", "name": "reset", "value": value}),
            );
        }
    }

    pub fn event(&mut self, id: &str, body: &EventBody, out: &mut FrameWriter) {
        if self.ended {
            return;
        }
        if !matches!(body, EventBody::Started(_)) {
            self.flush_reset(out);
        }
        let run = json!({"threadId": self.stream, "runId": self.stream});
        match body {
            EventBody::Started(_) => {
                Self::send(
                    id,
                    out,
                    json!({"type": "RUN_STARTED", "threadId": run["threadId"], "runId": run["runId"]}),
                );
                self.flush_reset(out);
            }
            EventBody::MessageDelta(d) | EventBody::RefusalDelta(d) => {
                self.text(id, d.index, &d.text, out)
            }
            EventBody::TranscriptDelta(d) => self.text(id, 0, &d.text, out),
            EventBody::ReasoningDelta(r) => {
                self.close_text(id, out);
                let message = match &self.reasoning {
                    Some(message) => message.clone(),
                    None => {
                        let message = self.next_id("r");
                        Self::send(
                            id,
                            out,
                            json!({"type": "REASONING_START", "messageId": message}),
                        );
                        Self::send(
                            id,
                            out,
                            json!({"type": "REASONING_MESSAGE_START", "messageId": message, "role": "reasoning"}),
                        );
                        self.reasoning = Some(message.clone());
                        message
                    }
                };
                if !r.text.is_empty() {
                    Self::send(
                        id,
                        out,
                        json!({"type": "REASONING_MESSAGE_CONTENT", "messageId": message, "delta": r.text}),
                    );
                }
                if let Some(signature) = &r.signature {
                    Self::send(
                        id,
                        out,
                        json!({"type": "REASONING_ENCRYPTED_VALUE", "subtype": "message", "entityId": message, "encryptedValue": signature}),
                    );
                }
            }
            EventBody::ToolCallDelta(call) => {
                self.close_reasoning(id, out);
                // A delta continues its call unless it names a different call id.
                let known = self
                    .tools
                    .get(&call.index)
                    .filter(|(_, upstream)| call.id.is_none() || call.id == *upstream);
                let tool = match known {
                    Some((tool, _)) => tool.clone(),
                    None => {
                        if let Some((old, _)) = self.tools.remove(&call.index) {
                            Self::send(
                                id,
                                out,
                                json!({"type": "TOOL_CALL_END", "toolCallId": old}),
                            );
                        }
                        let tool = call.id.clone().unwrap_or_else(|| self.next_id("t"));
                        let mut start = json!({"type": "TOOL_CALL_START", "toolCallId": tool, "toolCallName": call.name.clone().unwrap_or_default()});
                        if let Some(parent) = self.text.get(&0) {
                            start["parentMessageId"] = json!(parent);
                        }
                        Self::send(id, out, start);
                        self.tools
                            .insert(call.index, (tool.clone(), call.id.clone()));
                        tool
                    }
                };
                if !call.arguments.is_empty() {
                    Self::send(
                        id,
                        out,
                        json!({"type": "TOOL_CALL_ARGS", "toolCallId": tool, "delta": call.arguments}),
                    );
                }
            }
            EventBody::StepStarted(s) => {
                Self::send(id, out, json!({"type": "STEP_STARTED", "stepName": s.name}))
            }
            EventBody::StepFinished(s) => Self::send(
                id,
                out,
                json!({"type": "STEP_FINISHED", "stepName": s.name}),
            ),
            EventBody::StateSnapshot(s) => Self::send(
                id,
                out,
                json!({"type": "STATE_SNAPSHOT", "snapshot": s.state}),
            ),
            EventBody::StateDelta(d) => {
                Self::send(id, out, json!({"type": "STATE_DELTA", "delta": d.patch}))
            }
            EventBody::Custom(c) => Self::send(
                id,
                out,
                json!({"type": "CUSTOM", "name": c.name, "value": c.value}),
            ),
            EventBody::Usage(u) => self.usage = Some(*u),
            EventBody::TranscriptDone(_) => {}
            EventBody::Completed(c) => {
                self.close_all(id, out);
                let mut finished = json!({"type": "RUN_FINISHED", "threadId": run["threadId"], "runId": run["runId"]});
                finished["result"] = json!({"finishReason": c.finish_reason});
                if let Some(u) = c.usage.or(self.usage) {
                    finished["usage"] = json!([{"inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.total_tokens}]);
                }
                Self::send(id, out, finished);
                self.ended = true;
            }
            EventBody::Failed(f) => {
                Self::send(
                    id,
                    out,
                    json!({"type": "RUN_ERROR", "message": f.error.message, "code": f.error.code}),
                );
                self.ended = true;
            }
            EventBody::Cancelled(c) => {
                let message = format!("the stream was cancelled ({})", c.reason);
                Self::send(
                    id,
                    out,
                    json!({"type": "RUN_ERROR", "message": message, "code": "stream_cancelled"}),
                );
                self.ended = true;
            }
        }
    }
}
