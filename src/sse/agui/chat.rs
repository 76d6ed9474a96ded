//! The parts of the AG-UI rendering that only chat streams use: ids made from the stream id
//! for text, reasoning and tool calls that the upstream did not name.

use serde_json::json;

use super::AguiRenderer;
use crate::event::{Reasoning, ToolCallDelta};
use crate::sse::frame::FrameWriter;

impl AguiRenderer {
    /// Ends the open reasoning message (chat streams), if any.
    pub(super) fn close_reasoning(&mut self, id: &str, out: &mut FrameWriter) {
        if let Some(message) = self.reasoning.take() {
            for kind in ["REASONING_MESSAGE_END", "REASONING_END"] {
                Self::send(id, out, &json!({"type": kind, "messageId": message}));
            }
        }
    }

    pub(super) fn chat_text(&mut self, id: &str, choice: u32, delta: &str, out: &mut FrameWriter) {
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
                    &json!({"type": "TEXT_MESSAGE_START", "messageId": message, "role": "assistant"}),
                );
                self.text.insert(choice, message.clone());
                message
            }
        };
        Self::send(
            id,
            out,
            &json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": message, "delta": delta}),
        );
    }

    /// Upstream reasoning: one reasoning message at a time, opened on its first delta.
    pub(super) fn chat_reasoning(&mut self, id: &str, r: &Reasoning, out: &mut FrameWriter) {
        for (_, message) in std::mem::take(&mut self.text) {
            Self::send(
                id,
                out,
                &json!({"type": "TEXT_MESSAGE_END", "messageId": message}),
            );
        }
        let message = match &self.reasoning {
            Some(message) => message.clone(),
            None => {
                let message = self.next_id("r");
                Self::send(
                    id,
                    out,
                    &json!({"type": "REASONING_START", "messageId": message}),
                );
                Self::send(
                    id,
                    out,
                    &json!({"type": "REASONING_MESSAGE_START", "messageId": message, "role": "reasoning"}),
                );
                self.reasoning = Some(message.clone());
                message
            }
        };
        if !r.text.is_empty() {
            Self::send(
                id,
                out,
                &json!({"type": "REASONING_MESSAGE_CONTENT", "messageId": message, "delta": r.text}),
            );
        }
        if let Some(signature) = &r.signature {
            Self::send(
                id,
                out,
                &json!({"type": "REASONING_ENCRYPTED_VALUE", "subtype": "message", "entityId": message, "encryptedValue": signature}),
            );
        }
    }

    pub(super) fn chat_tool_call(&mut self, id: &str, call: &ToolCallDelta, out: &mut FrameWriter) {
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
                        &json!({"type": "TOOL_CALL_END", "toolCallId": old}),
                    );
                }
                let tool = call.id.clone().unwrap_or_else(|| self.next_id("t"));
                let mut start = json!({"type": "TOOL_CALL_START", "toolCallId": tool, "toolCallName": call.name.clone().unwrap_or_default()});
                if let Some(parent) = self.text.get(&0) {
                    start["parentMessageId"] = json!(parent);
                }
                Self::send(id, out, &start);
                self.tools
                    .insert(call.index, (tool.clone(), call.id.clone()));
                tool
            }
        };
        if !call.arguments.is_empty() {
            Self::send(
                id,
                out,
                &json!({"type": "TOOL_CALL_ARGS", "toolCallId": tool, "delta": call.arguments}),
            );
        }
    }
}
