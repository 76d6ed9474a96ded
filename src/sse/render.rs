//! Renderers: the same native log as each client format. A renderer belongs to one
//! subscriber and sees the events from its resume position on, so a resumed connection
//! continues the format instead of starting it again.

use super::agui::AguiRenderer;
use super::anthropic::AnthropicRenderer;
use super::frame::FrameWriter;
use super::openai::OpenAiRenderer;
use super::resume::Reset;
use super::transcript::TranscriptRenderer;
use crate::event::{Epoch, Event, Format, StreamId, StreamKind};
use crate::store::StreamMeta;

pub enum Renderer {
    Native,
    OpenAi(OpenAiRenderer),
    Anthropic(AnthropicRenderer),
    Agui(Box<AguiRenderer>),
    /// OpenAI's transcription events: `openai` for transcription streams.
    Transcript(TranscriptRenderer),
}

impl Renderer {
    pub fn new(format: Format, id: &StreamId, meta: &StreamMeta) -> Self {
        match format {
            Format::Native => Self::Native,
            Format::OpenAi if meta.kind == StreamKind::Transcription => {
                Self::Transcript(TranscriptRenderer::default())
            }
            Format::OpenAi => Self::OpenAi(OpenAiRenderer::new(id, meta)),
            Format::Anthropic => Self::Anthropic(AnthropicRenderer::new(id, meta)),
            Format::Agui => Self::Agui(Box::new(AguiRenderer::new(id, meta.kind))),
        }
    }

    /// Whether a reader resuming mid-stream must first replay the earlier events through
    /// this renderer (without output): formats whose frames depend on what came before.
    pub fn needs_history(&self) -> bool {
        match self {
            Self::Anthropic(_) | Self::Agui(_) => true,
            // The `done` it sends comes from the log (uploads and finished feeds).
            Self::Native | Self::OpenAi(_) | Self::Transcript(_) => false,
        }
    }

    /// Whether this format has a way to say `reset` in-band (otherwise the answer is 410).
    pub fn carries_reset(&self) -> bool {
        match self {
            Self::Native | Self::Agui(_) => true,
            Self::OpenAi(_) | Self::Anthropic(_) | Self::Transcript(_) => false,
        }
    }

    pub fn reset(&mut self, id: &str, reset: &Reset, out: &mut FrameWriter) {
        match self {
            Self::Native => {
                let data = serde_json::to_string(reset).unwrap_or_default();
                out.frame(Some(id), Some("reset"), &data);
            }
            // AG-UI wants RUN_STARTED first: the reset follows it.
            Self::Agui(r) => r.reset(id, reset),
            Self::OpenAi(_) | Self::Anthropic(_) | Self::Transcript(_) => {}
        }
    }

    /// A `presence` event: `{subscribers}`, without an id (it is not in the log). Formats
    /// other than native and AG-UI have no place for it.
    pub fn presence(&mut self, subscribers: usize, out: &mut FrameWriter) {
        let value = serde_json::json!({ "subscribers": subscribers });
        match self {
            Self::Native => out.frame(None, Some("presence"), &value.to_string()),
            Self::Agui(r) => r.presence(value, out),
            Self::OpenAi(_) | Self::Anthropic(_) | Self::Transcript(_) => {}
        }
    }

    /// Writes the frames for one event (possibly none), each carrying the event's id.
    pub fn event(&mut self, epoch: &Epoch, event: &Event, out: &mut FrameWriter) {
        let seq = event.seq;
        let id = || format!("{epoch}.{seq}");
        match self {
            // The fan-out path: the stored JSON goes out as it is, the id written in place.
            Self::Native => {
                let id = EventIdRef { epoch, seq };
                out.frame_with(id, Some(event.body.type_name()), &event.data);
            }
            Self::OpenAi(r) => r.event(&id(), &event.body, out),
            Self::Anthropic(r) => r.event(&id(), &event.body, out),
            Self::Agui(r) => r.event(&id(), &event.body, out),
            Self::Transcript(r) => r.event(&id(), &event.body, out),
        }
    }
}

/// `<epoch>.<seq>` without building a string.
struct EventIdRef<'a> {
    epoch: &'a Epoch,
    seq: u64,
}

impl std::fmt::Display for EventIdRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::event::{Completed, EventBody, MessageDelta, StreamKind, ToolCallDelta};

    fn meta(choices: u32) -> StreamMeta {
        StreamMeta {
            choices,
            ..StreamMeta::test(StreamKind::Chat)
        }
    }

    /// The `data` of every frame rendered from `bodies` (a stream.started comes first).
    fn frames(format: Format, choices: u32, bodies: Vec<EventBody>) -> Vec<Value> {
        let (id, epoch) = (StreamId::random(), Epoch::random());
        let mut r = Renderer::new(format, &id, &meta(choices));
        let mut out = FrameWriter::new(None);
        let started = EventBody::Started(crate::event::Started {
            stream_id: id.to_string(),
            kind: StreamKind::Chat,
            model: "m".into(),
            provider: "p".into(),
            created_at: 0,
        });
        for (i, body) in std::iter::once(started).chain(bodies).enumerate() {
            r.event(&epoch, &Event::new(i as u64 + 1, 0, body), &mut out);
        }
        let text = String::from_utf8(out.take().to_vec()).unwrap();
        text.split("\n\n")
            .filter_map(|f| f.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.into())))
            .collect()
    }

    fn call(id: Option<&str>, arguments: &str) -> EventBody {
        EventBody::ToolCallDelta(ToolCallDelta {
            index: 0,
            id: id.map(str::to_owned),
            name: id.map(|_| "f".to_owned()),
            arguments: arguments.into(),
        })
    }

    fn text(index: u32, text: &str) -> EventBody {
        EventBody::MessageDelta(MessageDelta {
            text: text.into(),
            index,
            ..Default::default()
        })
    }

    fn done() -> EventBody {
        EventBody::Completed(Completed {
            finish_reason: Some("stop".into()),
            usage: None,
            ..Default::default()
        })
    }

    #[test]
    fn a_call_id_repeated_on_every_fragment_is_still_one_call() {
        let bodies = vec![call(Some("c1"), "{\"a\""), call(Some("c1"), ":1}"), done()];
        let agui = frames(Format::Agui, 1, bodies.clone());
        let starts = agui
            .iter()
            .filter(|f| f["type"] == "TOOL_CALL_START")
            .count();
        assert_eq!(starts, 1);
        let anthropic = frames(Format::Anthropic, 1, bodies);
        let blocks = anthropic
            .iter()
            .filter(|f| f["type"] == "content_block_start")
            .count();
        assert_eq!(blocks, 1);
    }

    #[test]
    fn text_between_fragments_does_not_split_an_agui_call() {
        let bodies = vec![
            call(Some("c1"), "{\"a\""),
            text(0, "hm"),
            call(None, ":1}"),
            done(),
        ];
        let agui = frames(Format::Agui, 1, bodies);
        let args: String = agui
            .iter()
            .filter(|f| f["type"] == "TOOL_CALL_ARGS")
            .map(|f| f["delta"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(args, "{\"a\":1}");
        assert!(
            agui.iter()
                .all(|f| f["toolCallId"].is_null() || f["toolCallId"] == "c1")
        );
    }

    #[test]
    fn several_choices_stay_apart_in_each_format() {
        let bodies = vec![text(0, "A"), text(1, "B"), text(0, "A2"), done()];
        let openai = frames(Format::OpenAi, 2, bodies.clone());
        let finishes: Vec<_> = openai
            .iter()
            .filter(|f| f["choices"][0]["finish_reason"] == "stop")
            .map(|f| f["choices"][0]["index"].as_u64().unwrap())
            .collect();
        assert_eq!(finishes, [0, 1], "a finish for every choice");
        let anthropic = frames(Format::Anthropic, 2, bodies.clone());
        let shown: String = anthropic
            .iter()
            .filter_map(|f| f["delta"]["text"].as_str())
            .collect();
        assert_eq!(shown, "AA2", "Anthropic shows the first choice");
        let agui = frames(Format::Agui, 2, bodies);
        let messages: std::collections::BTreeSet<_> = agui
            .iter()
            .filter(|f| f["type"] == "TEXT_MESSAGE_CONTENT")
            .map(|f| f["messageId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(messages.len(), 2, "one AG-UI message per choice");
    }
}
