//! The `openai` format: `chat.completion.chunk` frames, `data: [DONE]` only after a real
//! completion, failures as one `{"error": ...}` frame. Stateless: every event renders alone.

use serde_json::json;

use super::frame::FrameWriter;
use crate::event::{EventBody, StreamId};
use crate::store::StreamMeta;

/// `chat.completion.chunk` frames, `data: [DONE]` only after a real completion.
pub struct OpenAiRenderer {
    /// `{"id":...,"object":...,"created":...,"model":...,"choices":` — the same on every chunk.
    prefix: String,
    include_usage: bool,
    choices: u32,
}

impl OpenAiRenderer {
    pub fn new(id: &StreamId, meta: &StreamMeta) -> Self {
        let head = json!({
            "id": format!("chatcmpl-{id}"),
            "object": "chat.completion.chunk",
            "created": meta.created_at,
            "model": meta.model,
        })
        .to_string();
        // `head` is `{...}`: reopen it to append the per-chunk fields.
        let prefix = format!("{},\"choices\":", head.trim_end_matches('}'));
        Self {
            prefix,
            include_usage: meta.include_usage,
            choices: meta.choices.max(1),
        }
    }

    fn chunk(
        &self,
        id: &str,
        index: u32,
        delta: serde_json::Value,
        finish: Option<&str>,
        out: &mut FrameWriter,
    ) {
        let choice =
            json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        out.frame(Some(id), None, &format!("{}{choice}}}", self.prefix));
    }

    pub fn event(&mut self, id: &str, body: &EventBody, out: &mut FrameWriter) {
        match body {
            EventBody::Started(_) => {
                self.chunk(
                    id,
                    0,
                    json!({"role": "assistant", "content": ""}),
                    None,
                    out,
                );
            }
            EventBody::MessageDelta(d) => {
                self.chunk(id, d.index, json!({"content": d.text}), None, out)
            }
            EventBody::RefusalDelta(d) => {
                self.chunk(id, d.index, json!({"refusal": d.text}), None, out)
            }
            EventBody::ReasoningDelta(d) => {
                self.chunk(id, 0, json!({"reasoning_content": d.text}), None, out);
            }
            EventBody::ToolCallDelta(d) => {
                let mut call = json!({"index": d.index, "function": {"arguments": d.arguments}});
                if let Some(call_id) = &d.id {
                    call["id"] = json!(call_id);
                    call["type"] = json!("function");
                }
                if let Some(name) = &d.name {
                    call["function"]["name"] = json!(name);
                }
                self.chunk(id, 0, json!({"tool_calls": [call]}), None, out);
            }
            EventBody::Completed(c) => {
                let finish = c.finish_reason.as_deref().unwrap_or("stop");
                // SDK accumulators expect a finish for every choice.
                for choice in 0..self.choices {
                    self.chunk(id, choice, json!({}), Some(finish), out);
                }
                if let (true, Some(u)) = (self.include_usage, c.usage) {
                    let usage = json!({
                        "prompt_tokens": u.input_tokens,
                        "completion_tokens": u.output_tokens,
                        "total_tokens": u.total_tokens,
                    });
                    out.frame(
                        Some(id),
                        None,
                        &format!("{}[],\"usage\":{usage}}}", self.prefix),
                    );
                }
                out.frame(Some(id), None, "[DONE]");
            }
            EventBody::Failed(f) => {
                let error = json!({"error": {
                    "message": f.error.message,
                    "type": "server_error",
                    "code": f.error.code,
                    "param": null,
                }});
                out.frame(Some(id), None, &error.to_string());
            }
            EventBody::Cancelled(c) => {
                let error = json!({"error": {
                    "message": format!("the stream was cancelled ({})", c.reason),
                    "type": "server_error",
                    "code": "stream_cancelled",
                    "param": null,
                }});
                out.frame(Some(id), None, &error.to_string());
            }
            // Usage reaches OpenAI clients with the terminal event; the rest has no OpenAI form.
            EventBody::Usage(_)
            | EventBody::TranscriptDelta(_)
            | EventBody::TranscriptDone(_)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Completed, Epoch, Event, Format, MessageDelta, StreamKind, Usage};
    use crate::sse::render::Renderer;

    fn meta(include_usage: bool) -> StreamMeta {
        StreamMeta {
            kind: StreamKind::Chat,
            model: "mock/default".into(),
            provider: "mock".into(),
            owner: "anonymous".into(),
            created_at: 1_700_000_000,
            format: Format::OpenAi,
            include_usage,
            read_token_hash: String::new(),
            write_token_hash: String::new(),
            request_hash: String::new(),
            feed: None,
            choices: 1,
        }
    }

    fn render(include_usage: bool, bodies: Vec<EventBody>) -> Vec<serde_json::Value> {
        let id = StreamId::random();
        let epoch = Epoch::random();
        let mut r = Renderer::new(Format::OpenAi, &id, &meta(include_usage));
        let mut out = FrameWriter::new(None);
        for (i, body) in bodies.into_iter().enumerate() {
            r.event(&epoch, &Event::new(i as u64 + 1, 0, body), &mut out);
        }
        let text = String::from_utf8(out.take().to_vec()).unwrap();
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let data = f.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                serde_json::from_str(data).unwrap_or(json!(data))
            })
            .collect()
    }

    #[test]
    fn chunks_look_like_openai_and_done_follows_only_a_completion() {
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 2,
            total_tokens: 5,
        };
        let frames = render(
            true,
            vec![
                EventBody::MessageDelta(MessageDelta {
                    text: "Hi".into(),
                    index: 0,
                    ..Default::default()
                }),
                EventBody::Usage(usage),
                EventBody::Completed(Completed {
                    finish_reason: Some("stop".into()),
                    usage: Some(usage),
                    ..Default::default()
                }),
            ],
        );
        assert_eq!(frames[0]["object"], "chat.completion.chunk");
        assert_eq!(frames[0]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(frames[1]["choices"][0]["finish_reason"], "stop");
        assert_eq!(frames[2]["choices"], json!([]));
        assert_eq!(frames[2]["usage"]["total_tokens"], 5);
        assert_eq!(frames[3], json!("[DONE]"));
        assert_eq!(frames.len(), 4);
    }

    #[test]
    fn failures_are_error_frames_without_done() {
        let frames = render(
            false,
            vec![EventBody::failed("upstream_truncated", "cut", true)],
        );
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0]["error"]["code"], "upstream_truncated");
    }
}
