//! The parts of the AG-UI rendering for what agents publish: their own message, tool call
//! and reasoning ids (opened before use, never reopened), and AG-UI events kept whole.

use serde_json::{Map, Value, json};

use super::ids::Use;
use super::{AguiRenderer, text_of, typed};
use crate::event::Reasoning;
use crate::sse::frame::FrameWriter;

/// AG-UI types that have a native event: never replayed from a `custom` event, whatever a
/// publisher put in one, so the lifecycle stays the renderer's to keep.
pub(super) fn is_mapped(kind: &str) -> bool {
    matches!(
        kind,
        "RUN_STARTED"
            | "RUN_FINISHED"
            | "RUN_ERROR"
            | "STEP_STARTED"
            | "STEP_FINISHED"
            | "TEXT_MESSAGE_START"
            | "TEXT_MESSAGE_CONTENT"
            | "TEXT_MESSAGE_END"
            | "TOOL_CALL_START"
            | "TOOL_CALL_ARGS"
            | "TOOL_CALL_END"
            | "TOOL_CALL_RESULT"
            | "STATE_SNAPSHOT"
            | "STATE_DELTA"
            | "CUSTOM"
            | "REASONING_MESSAGE_CONTENT"
    )
}

impl AguiRenderer {
    /// A publisher's message content: opened first if the publisher did not.
    pub(super) fn agent_text(
        &mut self,
        id: &str,
        message: String,
        delta: &str,
        extra: &Map<String, Value>,
        out: &mut FrameWriter,
    ) {
        match self.messages_by_id.using(&message) {
            Use::Closed => return,
            Use::NeedsStart => Self::send(
                id,
                out,
                &json!({"type": "TEXT_MESSAGE_START", "messageId": message, "role": "assistant"}),
            ),
            Use::Open => {}
        }
        let mut fields = extra.clone();
        fields.insert("delta".into(), json!(delta));
        Self::send(id, out, &typed("TEXT_MESSAGE_CONTENT", &fields));
    }

    pub(super) fn agent_reasoning(
        &mut self,
        id: &str,
        message: String,
        r: &Reasoning,
        out: &mut FrameWriter,
    ) {
        // A publisher's reasoning message.
        match self.reasoning_messages.using(&message) {
            Use::Closed => return,
            Use::NeedsStart => Self::send(
                id,
                out,
                &json!({"type": "REASONING_MESSAGE_START", "messageId": message, "role": "reasoning"}),
            ),
            Use::Open => {}
        }
        let mut fields = r.extra.clone();
        fields.insert("delta".into(), json!(r.text));
        Self::send(id, out, &typed("REASONING_MESSAGE_CONTENT", &fields));
    }

    /// An AG-UI event with no native counterpart (`custom` named `agui.<TYPE>`), as it was
    /// sent; reasoning blocks and messages are tracked like text messages.
    pub(super) fn kept_whole(
        &mut self,
        id: &str,
        kind: &str,
        fields: &Map<String, Value>,
        out: &mut FrameWriter,
    ) {
        let message = text_of(fields, "messageId").unwrap_or_default();
        let send = match kind {
            "REASONING_START" => self.reasoning_blocks.start(&message),
            "REASONING_END" => self.reasoning_blocks.end(&message),
            "REASONING_MESSAGE_START" => self.reasoning_messages.start(&message),
            "REASONING_MESSAGE_END" => self.reasoning_messages.end(&message),
            _ => true,
        };
        if send {
            Self::send(id, out, &typed(kind, fields));
        }
    }
}
