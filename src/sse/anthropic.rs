//! The `anthropic` format: Messages API stream events (`message_start`, content blocks,
//! `message_delta`, `message_stop`; failures as `event: error`). Blocks are opened and closed
//! as the native events change kind, so the renderer keeps state; a resumed reader rebuilds
//! it from the events before its position.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::frame::FrameWriter;
use crate::event::{EventBody, StreamId, Usage};
use crate::store::StreamMeta;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool(u32),
}

pub struct AnthropicRenderer {
    message_id: String,
    model: String,
    /// The index the next content block gets.
    next_block: u32,
    open: Option<(Open, u32)>,
    /// Block index and call id of each native tool call.
    tools: HashMap<u32, (u32, Option<String>)>,
    usage: Option<Usage>,
}

/// The native finish reason back in Anthropic's vocabulary.
fn stop_reason(finish: Option<&str>) -> &str {
    match finish {
        None | Some("stop") => "end_turn",
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        Some(other) => other,
    }
}

impl AnthropicRenderer {
    pub fn new(id: &StreamId, meta: &StreamMeta) -> Self {
        Self {
            message_id: format!("msg_{id}"),
            model: meta.model.clone(),
            next_block: 0,
            open: None,
            tools: HashMap::new(),
            usage: None,
        }
    }

    fn send(id: &str, out: &mut FrameWriter, data: Value) {
        let name = data["type"].as_str().unwrap_or("unknown").to_owned();
        out.frame(Some(id), Some(&name), &data.to_string());
    }

    fn close(&mut self, id: &str, out: &mut FrameWriter) {
        if let Some((_, index)) = self.open.take() {
            Self::send(
                id,
                out,
                json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// The block for `kind`, opened (after closing another) if it is not the open one.
    fn block(&mut self, id: &str, kind: Open, start: Value, out: &mut FrameWriter) -> u32 {
        if let Some((open, index)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(id, out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((kind, index));
        Self::send(
            id,
            out,
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        index
    }

    fn delta(id: &str, out: &mut FrameWriter, index: u32, delta: Value) {
        Self::send(
            id,
            out,
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    pub fn event(&mut self, id: &str, body: &EventBody, out: &mut FrameWriter) {
        match body {
            EventBody::Started(_) => {
                let message = json!({
                    "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                });
                Self::send(
                    id,
                    out,
                    json!({"type": "message_start", "message": message}),
                );
            }
            // An Anthropic message has one answer: further choices (n > 1) are not shown.
            EventBody::MessageDelta(d) | EventBody::RefusalDelta(d) if d.index != 0 => {}
            EventBody::MessageDelta(d) | EventBody::RefusalDelta(d) => {
                let index = self.block(id, Open::Text, json!({"type": "text", "text": ""}), out);
                Self::delta(
                    id,
                    out,
                    index,
                    json!({"type": "text_delta", "text": d.text}),
                );
            }
            EventBody::TranscriptDelta(d) => {
                let index = self.block(id, Open::Text, json!({"type": "text", "text": ""}), out);
                Self::delta(
                    id,
                    out,
                    index,
                    json!({"type": "text_delta", "text": d.text}),
                );
            }
            EventBody::ReasoningDelta(r) => {
                let start = json!({"type": "thinking", "thinking": "", "signature": ""});
                let index = self.block(id, Open::Thinking, start, out);
                if !r.text.is_empty() {
                    Self::delta(
                        id,
                        out,
                        index,
                        json!({"type": "thinking_delta", "thinking": r.text}),
                    );
                }
                if let Some(signature) = &r.signature {
                    Self::delta(
                        id,
                        out,
                        index,
                        json!({"type": "signature_delta", "signature": signature}),
                    );
                }
            }
            EventBody::ToolCallDelta(call) => {
                // A delta continues its call unless it names a different call id (some upstreams
                // repeat the id on every fragment).
                let known = self
                    .tools
                    .get(&call.index)
                    .filter(|(_, known)| call.id.is_none() || call.id == *known);
                let index = match known {
                    Some(&(index, _)) => index,
                    None => {
                        let start = json!({
                            "type": "tool_use",
                            "id": call.id.clone().unwrap_or_else(|| format!("toolu_{}", call.index)),
                            "name": call.name.clone().unwrap_or_default(),
                            "input": {},
                        });
                        self.close(id, out);
                        let index = self.block(id, Open::Tool(call.index), start, out);
                        self.tools.insert(call.index, (index, call.id.clone()));
                        index
                    }
                };
                if !call.arguments.is_empty() {
                    Self::delta(
                        id,
                        out,
                        index,
                        json!({"type": "input_json_delta", "partial_json": call.arguments}),
                    );
                }
            }
            EventBody::Custom(c) if c.name == "anthropic.redacted_thinking" => {
                self.close(id, out);
                let data = c.value.get("data").cloned().unwrap_or(Value::Null);
                let index = self.block(
                    id,
                    Open::Thinking,
                    json!({"type": "redacted_thinking", "data": data}),
                    out,
                );
                self.open = Some((Open::Text, index));
                self.close(id, out);
            }
            EventBody::Usage(u) => self.usage = Some(*u),
            EventBody::Completed(c) => {
                self.close(id, out);
                let usage = c.usage.or(self.usage).unwrap_or_default();
                Self::send(
                    id,
                    out,
                    json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason(c.finish_reason.as_deref()), "stop_sequence": null},
                        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
                    }),
                );
                Self::send(id, out, json!({"type": "message_stop"}));
            }
            EventBody::Failed(f) => {
                let kind = if f.error.code.contains("overloaded")
                    || f.error.message.contains("overloaded_error")
                {
                    "overloaded_error"
                } else {
                    "api_error"
                };
                Self::send(
                    id,
                    out,
                    json!({"type": "error", "error": {"type": kind, "message": f.error.message}}),
                );
            }
            EventBody::Cancelled(c) => {
                let message = format!("the stream was cancelled ({})", c.reason);
                Self::send(
                    id,
                    out,
                    json!({"type": "error", "error": {"type": "api_error", "message": message}}),
                );
            }
            // Agent lifecycle has no Anthropic form (its text still renders, above).
            EventBody::TranscriptDone(_)
            | EventBody::StepStarted(_)
            | EventBody::StepFinished(_)
            | EventBody::StateSnapshot(_)
            | EventBody::StateDelta(_)
            | EventBody::Custom(_)
            | EventBody::RunStarted(_)
            | EventBody::MessageStarted(_)
            | EventBody::MessageFinished(_)
            | EventBody::ToolCallStarted(_)
            | EventBody::ToolCallArgs(_)
            | EventBody::ToolCallFinished(_)
            | EventBody::ToolCallResult(_) => {}
        }
    }
}
