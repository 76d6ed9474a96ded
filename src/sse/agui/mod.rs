//! The `agui` format: AG-UI events as data-only JSON frames with `type`. The lifecycle rules
//! of AG-UI clients hold: RUN_STARTED first, messages and tool calls opened before use and
//! closed before RUN_FINISHED, nothing after RUN_FINISHED / RUN_ERROR. Events an AG-UI
//! publisher sent come back with their names, ids and fields; chat streams get ids made
//! from the stream id. A resumed reader rebuilds what is open from the events before it.

mod agent;
use agent::is_mapped;
mod chat;
mod ids;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::frame::FrameWriter;
use super::resume::Reset;
use crate::event::{EventBody, StreamId, StreamKind, Usage};
use ids::{Ids, Use};

pub struct AguiRenderer {
    stream: String,
    /// Agent streams start their run with the publisher's RUN_STARTED (if it sends one).
    agent: bool,
    thread_id: Value,
    run_id: Value,
    run_started: bool,
    /// Ids are numbered in log order, so they are the same for every reader of the stream.
    messages: u32,
    /// The open text message of each choice (chat streams).
    text: BTreeMap<u32, String>,
    reasoning: Option<String>,
    /// Tool calls by native index: the AG-UI id, and the upstream id it came with. They stay
    /// open until the run ends, so a late fragment always has somewhere to go.
    tools: BTreeMap<u32, (String, Option<String>)>,
    /// Messages, tool calls and reasoning (blocks and their messages) a publisher opened.
    messages_by_id: Ids,
    tools_by_id: Ids,
    reasoning_blocks: Ids,
    reasoning_messages: Ids,
    /// Steps started and not finished, in start order.
    open_steps: Vec<String>,
    usage: Option<Usage>,
    /// A `reset` to send right after RUN_STARTED (AG-UI clients want RUN_STARTED first).
    reset: Option<(String, Value)>,
    /// A presence count heard before RUN_STARTED, sent right after it.
    presence: Option<Value>,
    /// Agent streams: the state given at creation, held until the run starts so that the
    /// publisher's own RUN_STARTED (with its ids) can come first.
    held: Vec<Value>,
    ended: bool,
}

/// `{"type": kind, ...fields}`.
fn typed(kind: &str, fields: &Map<String, Value>) -> Value {
    let mut event = Map::with_capacity(fields.len() + 1);
    event.insert("type".into(), json!(kind));
    event.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(event)
}

fn text_of(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl AguiRenderer {
    pub fn new(id: &StreamId, kind: StreamKind) -> Self {
        Self {
            stream: id.to_string(),
            agent: kind == StreamKind::Agent,
            thread_id: json!(id.to_string()),
            run_id: json!(id.to_string()),
            run_started: false,
            messages: 0,
            text: BTreeMap::new(),
            reasoning: None,
            tools: BTreeMap::new(),
            messages_by_id: Ids::default(),
            tools_by_id: Ids::default(),
            reasoning_blocks: Ids::default(),
            reasoning_messages: Ids::default(),
            open_steps: Vec::new(),
            usage: None,
            reset: None,
            presence: None,
            held: Vec::new(),
            ended: false,
        }
    }

    fn send(id: &str, out: &mut FrameWriter, data: &Value) {
        out.frame(Some(id), None, &data.to_string());
    }

    fn next_id(&mut self, kind: &str) -> String {
        self.messages += 1;
        format!("{}-{kind}{}", self.stream, self.messages)
    }

    /// RUN_STARTED (with `fields`, or the stream's ids), once, before anything else.
    fn start_run(&mut self, id: &str, fields: Option<&Map<String, Value>>, out: &mut FrameWriter) {
        if self.run_started {
            return;
        }
        self.run_started = true;
        let event = match fields {
            Some(fields) => {
                self.thread_id = fields
                    .get("threadId")
                    .cloned()
                    .unwrap_or(self.thread_id.take());
                self.run_id = fields.get("runId").cloned().unwrap_or(self.run_id.take());
                typed("RUN_STARTED", fields)
            }
            None => {
                json!({"type": "RUN_STARTED", "threadId": self.thread_id, "runId": self.run_id})
            }
        };
        Self::send(id, out, &event);
        if let Some((reset_id, value)) = self.reset.take() {
            Self::send(
                &reset_id,
                out,
                &json!({"type": "CUSTOM", "name": "reset", "value": value}),
            );
        }
        // Sent under the id of the event that started the run: a reader resuming after it
        // has them, one resuming before it gets them again with it.
        for event in std::mem::take(&mut self.held) {
            Self::send(id, out, &event);
        }
        if let Some(value) = self.presence.take() {
            self.presence(value, out);
        }
    }

    /// A `CUSTOM` event named `presence`, without an id (it is not in the log); held until
    /// RUN_STARTED, dropped after the run ended.
    pub fn presence(&mut self, value: Value, out: &mut FrameWriter) {
        if self.ended {
            return;
        }
        if !self.run_started {
            self.presence = Some(value);
            return;
        }
        let event = json!({"type": "CUSTOM", "name": "presence", "value": value});
        out.frame(None, None, &event.to_string());
    }

    fn close_all(&mut self, id: &str, out: &mut FrameWriter) {
        self.close_reasoning(id, out);
        let chat_tools = std::mem::take(&mut self.tools).into_values().map(|t| t.0);
        for call in chat_tools.chain(self.tools_by_id.end_all()) {
            Self::send(
                id,
                out,
                &json!({"type": "TOOL_CALL_END", "toolCallId": call}),
            );
        }
        let chat_messages = std::mem::take(&mut self.text).into_values();
        for message in chat_messages.chain(self.messages_by_id.end_all()) {
            Self::send(
                id,
                out,
                &json!({"type": "TEXT_MESSAGE_END", "messageId": message}),
            );
        }
        for message in self.reasoning_messages.end_all() {
            let end = json!({"type": "REASONING_MESSAGE_END", "messageId": message});
            Self::send(id, out, &end);
        }
        for block in self.reasoning_blocks.end_all() {
            Self::send(
                id,
                out,
                &json!({"type": "REASONING_END", "messageId": block}),
            );
        }
        for step in std::mem::take(&mut self.open_steps).into_iter().rev() {
            Self::send(id, out, &json!({"type": "STEP_FINISHED", "stepName": step}));
        }
    }

    /// Sent as a `CUSTOM` event named `reset` right after RUN_STARTED (or, mid-stream when a
    /// sliding window moved on, before the next event).
    pub fn reset(&mut self, id: &str, reset: &Reset) {
        self.reset = Some((id.to_owned(), json!(reset)));
    }

    pub fn event(&mut self, id: &str, body: &EventBody, out: &mut FrameWriter) {
        if self.ended {
            return;
        }
        match body {
            // An agent's run starts with its publisher's RUN_STARTED, or its first event.
            EventBody::Started(_) if self.agent => return,
            EventBody::StateSnapshot(s) if self.agent && !self.run_started => {
                let mut fields = s.extra.clone();
                fields.insert("snapshot".into(), s.state.clone());
                return self.held.push(typed("STATE_SNAPSHOT", &fields));
            }
            EventBody::Started(_) => return self.start_run(id, None, out),
            EventBody::RunStarted(fields) => return self.start_run(id, Some(fields), out),
            _ => self.start_run(id, None, out),
        }
        if let Some((reset_id, value)) = self.reset.take() {
            Self::send(
                &reset_id,
                out,
                &json!({"type": "CUSTOM", "name": "reset", "value": value}),
            );
        }
        match body {
            EventBody::Started(_) | EventBody::RunStarted(_) => {}
            EventBody::MessageDelta(d) | EventBody::RefusalDelta(d) => {
                match text_of(&d.extra, "messageId") {
                    Some(message) if !d.text.is_empty() => {
                        self.agent_text(id, message, &d.text, &d.extra, out)
                    }
                    Some(_) => {}
                    None => self.chat_text(id, d.index, &d.text, out),
                }
            }
            EventBody::TranscriptDelta(d) => self.chat_text(id, 0, &d.text, out),
            EventBody::MessageStarted(m) => {
                if text_of(m, "messageId").is_some_and(|m| self.messages_by_id.start(&m)) {
                    Self::send(id, out, &typed("TEXT_MESSAGE_START", m));
                }
            }
            EventBody::MessageFinished(m) => {
                if text_of(m, "messageId").is_some_and(|m| self.messages_by_id.end(&m)) {
                    Self::send(id, out, &typed("TEXT_MESSAGE_END", m));
                }
            }
            EventBody::ReasoningDelta(r) => match text_of(&r.extra, "messageId") {
                Some(message) => self.agent_reasoning(id, message, r, out),
                None => self.chat_reasoning(id, r, out),
            },
            EventBody::ToolCallDelta(call) => self.chat_tool_call(id, call, out),
            EventBody::ToolCallStarted(t) => {
                if text_of(t, "toolCallId").is_some_and(|c| self.tools_by_id.start(&c)) {
                    Self::send(id, out, &typed("TOOL_CALL_START", t));
                }
            }
            EventBody::ToolCallArgs(t) => {
                let Some(call) = text_of(t, "toolCallId") else {
                    return;
                };
                match self.tools_by_id.using(&call) {
                    Use::Closed => return,
                    Use::NeedsStart => Self::send(
                        id,
                        out,
                        &json!({"type": "TOOL_CALL_START", "toolCallId": call, "toolCallName": ""}),
                    ),
                    Use::Open => {}
                }
                Self::send(id, out, &typed("TOOL_CALL_ARGS", t));
            }
            EventBody::ToolCallFinished(t) => {
                if text_of(t, "toolCallId").is_some_and(|c| self.tools_by_id.end(&c)) {
                    Self::send(id, out, &typed("TOOL_CALL_END", t));
                }
            }
            EventBody::ToolCallResult(t) => Self::send(id, out, &typed("TOOL_CALL_RESULT", t)),
            // AG-UI clients refuse a step started twice or finished before it started.
            EventBody::StepStarted(s) => {
                if !self.open_steps.contains(&s.name) {
                    self.open_steps.push(s.name.clone());
                    let mut fields = s.extra.clone();
                    fields.insert("stepName".into(), json!(s.name));
                    Self::send(id, out, &typed("STEP_STARTED", &fields));
                }
            }
            EventBody::StepFinished(s) => {
                match self.open_steps.iter().position(|open| *open == s.name) {
                    Some(at) => {
                        self.open_steps.remove(at);
                    }
                    None => Self::send(
                        id,
                        out,
                        &json!({"type": "STEP_STARTED", "stepName": s.name}),
                    ),
                }
                let mut fields = s.extra.clone();
                fields.insert("stepName".into(), json!(s.name));
                Self::send(id, out, &typed("STEP_FINISHED", &fields));
            }
            EventBody::StateSnapshot(s) => {
                let mut fields = s.extra.clone();
                fields.insert("snapshot".into(), s.state.clone());
                Self::send(id, out, &typed("STATE_SNAPSHOT", &fields));
            }
            EventBody::StateDelta(d) => {
                let mut fields = d.extra.clone();
                fields.insert("delta".into(), d.patch.clone());
                Self::send(id, out, &typed("STATE_DELTA", &fields));
            }
            EventBody::Custom(c) => {
                let kept = c.name.strip_prefix("agui.").zip(c.value.as_object());
                match kept.filter(|(kind, _)| !is_mapped(kind)) {
                    Some((kind, fields)) => self.kept_whole(id, kind, fields, out),
                    None => {
                        let mut fields = c.extra.clone();
                        fields.insert("name".into(), json!(c.name));
                        fields.insert("value".into(), c.value.clone());
                        Self::send(id, out, &typed("CUSTOM", &fields));
                    }
                }
            }
            EventBody::Usage(u) => self.usage = Some(*u),
            EventBody::TranscriptDone(_) => {}
            EventBody::Completed(c) => {
                self.close_all(id, out);
                let sent = c.extra.get("agui").and_then(Value::as_object);
                let sent = sent.filter(|s| s.contains_key("threadId") && s.contains_key("runId"));
                let finished = if let Some(sent) = sent {
                    // A publisher's RUN_FINISHED, as it sent it.
                    typed("RUN_FINISHED", sent)
                } else {
                    let mut finished = json!({"type": "RUN_FINISHED", "threadId": self.thread_id, "runId": self.run_id});
                    finished["result"] = json!({"finishReason": c.finish_reason});
                    if let Some(u) = c.usage.or(self.usage) {
                        finished["usage"] = json!([{"inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.total_tokens}]);
                    }
                    finished
                };
                Self::send(id, out, &finished);
                self.ended = true;
            }
            EventBody::Failed(f) => {
                let sent = f.extra.get("agui").and_then(Value::as_object);
                let error = match sent.filter(|s| s.contains_key("message")) {
                    Some(sent) => typed("RUN_ERROR", sent),
                    None => {
                        json!({"type": "RUN_ERROR", "message": f.error.message, "code": f.error.code})
                    }
                };
                Self::send(id, out, &error);
                self.ended = true;
            }
            EventBody::Cancelled(c) => {
                let message = format!("the stream was cancelled ({})", c.reason);
                Self::send(
                    id,
                    out,
                    &json!({"type": "RUN_ERROR", "message": message, "code": "stream_cancelled"}),
                );
                self.ended = true;
            }
        }
    }
}
