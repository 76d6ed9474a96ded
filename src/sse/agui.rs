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
    /// Ids are numbered per kind so they are the same for every reader of the stream.
    messages: u32,
    text: Option<String>,
    reasoning: Option<String>,
    /// Open tool calls by native index.
    tools: BTreeMap<u32, String>,
    usage: Option<Usage>,
    ended: bool,
}

impl AguiRenderer {
    pub fn new(id: &StreamId) -> Self {
        Self {
            stream: id.to_string(),
            messages: 0,
            text: None,
            reasoning: None,
            tools: BTreeMap::new(),
            usage: None,
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
        if let Some(message) = self.text.take() {
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

    fn close_tools(&mut self, id: &str, out: &mut FrameWriter) {
        for (_, call) in std::mem::take(&mut self.tools) {
            Self::send(
                id,
                out,
                json!({"type": "TOOL_CALL_END", "toolCallId": call}),
            );
        }
    }

    fn close_all(&mut self, id: &str, out: &mut FrameWriter) {
        self.close_reasoning(id, out);
        self.close_tools(id, out);
        self.close_text(id, out);
    }

    fn text(&mut self, id: &str, delta: &str, out: &mut FrameWriter) {
        if delta.is_empty() {
            return;
        }
        self.close_reasoning(id, out);
        self.close_tools(id, out);
        let message = match &self.text {
            Some(message) => message.clone(),
            None => {
                let message = self.next_id("m");
                Self::send(
                    id,
                    out,
                    json!({"type": "TEXT_MESSAGE_START", "messageId": message, "role": "assistant"}),
                );
                self.text = Some(message.clone());
                message
            }
        };
        Self::send(
            id,
            out,
            json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": message, "delta": delta}),
        );
    }

    pub fn reset(&self, id: &str, reset: &Reset, out: &mut FrameWriter) {
        Self::send(
            id,
            out,
            json!({"type": "CUSTOM", "name": "reset", "value": reset}),
        );
    }

    pub fn event(&mut self, id: &str, body: &EventBody, out: &mut FrameWriter) {
        if self.ended {
            return;
        }
        let run = json!({"threadId": self.stream, "runId": self.stream});
        match body {
            EventBody::Started(_) => {
                Self::send(
                    id,
                    out,
                    json!({"type": "RUN_STARTED", "threadId": run["threadId"], "runId": run["runId"]}),
                );
            }
            EventBody::MessageDelta(d) | EventBody::RefusalDelta(d) => self.text(id, &d.text, out),
            EventBody::TranscriptDelta(d) => self.text(id, &d.text, out),
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
                let tool = match self.tools.get(&call.index) {
                    Some(tool) if call.id.is_none() => tool.clone(),
                    _ => {
                        let tool = call.id.clone().unwrap_or_else(|| self.next_id("t"));
                        let mut start = json!({"type": "TOOL_CALL_START", "toolCallId": tool, "toolCallName": call.name.clone().unwrap_or_default()});
                        if let Some(parent) = &self.text {
                            start["parentMessageId"] = json!(parent);
                        }
                        Self::send(id, out, start);
                        self.tools.insert(call.index, tool.clone());
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
