//! OpenAI's streamed transcription format, for transcription streams read as `openai`:
//! `event: transcript.text.delta` frames, then one `transcript.text.done` with the whole text
//! and usage; a failure is one `event: error` frame. Every payload is a JSON object with
//! `type`, as openai-python's `transcription_text_*_event` types expect.

use serde_json::{Map, Value, json};

use super::frame::FrameWriter;
use crate::event::{EventBody, TRANSCRIPT_KEPT, Text, Usage, keep_tail};

#[derive(Default)]
pub struct TranscriptRenderer {
    /// The text of the deltas this reader got (its last [`TRANSCRIPT_KEPT`] bytes): the
    /// `done` text only if the log ends without a `transcript.done` of its own.
    text: String,
    usage: Option<Usage>,
    done: bool,
}

fn typed(kind: &str, fields: &Map<String, Value>) -> String {
    let mut event = Map::with_capacity(fields.len() + 1);
    event.insert("type".into(), json!(kind));
    event.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(event).to_string()
}

impl TranscriptRenderer {
    fn done(&mut self, id: &str, text: &str, extra: &Map<String, Value>, out: &mut FrameWriter) {
        self.done = true;
        let mut fields = extra.clone();
        fields.insert("text".into(), json!(text));
        if let (false, Some(u)) = (fields.contains_key("usage"), self.usage) {
            fields.insert(
                "usage".into(),
                json!({"type": "tokens", "input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "total_tokens": u.total_tokens}),
            );
        }
        let kind = "transcript.text.done";
        out.frame(Some(id), Some(kind), &typed(kind, &fields));
    }

    fn error(id: &str, code: &str, message: &str, out: &mut FrameWriter) {
        let data = json!({"type": "error", "error": {"type": "server_error", "code": code, "message": message}});
        out.frame(Some(id), Some("error"), &data.to_string());
    }

    pub fn event(&mut self, id: &str, body: &EventBody, out: &mut FrameWriter) {
        if self.done && !matches!(body, EventBody::Failed(_) | EventBody::Cancelled(_)) {
            return;
        }
        match body {
            EventBody::TranscriptDelta(Text { text, extra }) if !text.is_empty() => {
                self.text.push_str(text);
                keep_tail(&mut self.text, TRANSCRIPT_KEPT);
                let mut fields = extra.clone();
                fields.insert("delta".into(), json!(text));
                let kind = "transcript.text.delta";
                out.frame(Some(id), Some(kind), &typed(kind, &fields));
            }
            EventBody::TranscriptDone(Text { text, extra }) => self.done(id, text, extra, out),
            EventBody::Custom(c) if c.name == "openai.transcript.text.segment" => {
                if let Some(fields) = c.value.as_object() {
                    let kind = "transcript.text.segment";
                    out.frame(Some(id), Some(kind), &typed(kind, fields));
                }
            }
            EventBody::Usage(u) => self.usage = Some(*u),
            EventBody::Completed(c) => {
                if c.usage.is_some() {
                    self.usage = c.usage;
                }
                let text = std::mem::take(&mut self.text);
                self.done(id, &text, &Map::new(), out);
            }
            EventBody::Failed(f) => Self::error(id, &f.error.code, &f.error.message, out),
            EventBody::Cancelled(c) => {
                let message = format!("the stream was cancelled ({})", c.reason);
                Self::error(id, "stream_cancelled", &message, out);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Completed;

    fn render(bodies: Vec<EventBody>) -> Vec<(String, Value)> {
        let mut r = TranscriptRenderer::default();
        let mut out = FrameWriter::new(None);
        for (i, body) in bodies.iter().enumerate() {
            r.event(&format!("e.{}", i + 1), body, &mut out);
        }
        let text = String::from_utf8(out.take().to_vec()).unwrap();
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let event = f
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .unwrap_or("");
                let data = f
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or("null");
                (event.to_owned(), serde_json::from_str(data).unwrap())
            })
            .collect()
    }

    fn delta(text: &str) -> EventBody {
        EventBody::TranscriptDelta(Text {
            text: text.into(),
            ..Text::default()
        })
    }

    #[test]
    fn deltas_then_one_done_with_the_whole_text_and_usage() {
        let usage = Usage {
            input_tokens: 5,
            output_tokens: 2,
            total_tokens: 7,
        };
        let frames = render(vec![
            delta("Hi "),
            delta(""),
            delta("there"),
            EventBody::Usage(usage),
            EventBody::TranscriptDone(Text {
                text: "Hi there".into(),
                ..Text::default()
            }),
            EventBody::Completed(Completed::default()),
        ]);
        let kinds: Vec<&str> = frames.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "transcript.text.delta",
                "transcript.text.delta",
                "transcript.text.done"
            ]
        );
        for (event, data) in &frames {
            assert_eq!(data["type"], *event, "every payload names its type");
        }
        assert_eq!(frames[2].1["text"], "Hi there");
        assert_eq!(frames[2].1["usage"]["total_tokens"], 7);
    }

    #[test]
    fn a_finished_feed_without_its_own_done_gets_one_from_its_deltas() {
        let frames = render(vec![
            delta("a "),
            delta("b"),
            EventBody::Completed(Completed::default()),
        ]);
        assert_eq!(frames.last().unwrap().1["text"], "a b");
        let failed = render(vec![
            delta("a"),
            EventBody::failed("upstream_error", "boom", true),
        ]);
        assert_eq!(failed[1].0, "error");
        assert_eq!(failed[1].1["error"]["code"], "upstream_error");
    }
}
