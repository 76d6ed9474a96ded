//! Renderers: the same native log as each client format. A renderer belongs to one
//! subscriber and sees the events from its resume position on, so a resumed connection
//! continues the format instead of starting it again.

use super::agui::AguiRenderer;
use super::anthropic::AnthropicRenderer;
use super::frame::FrameWriter;
use super::openai::OpenAiRenderer;
use super::resume::Reset;
use crate::event::{Epoch, Event, Format, StreamId};
use crate::store::StreamMeta;

pub enum Renderer {
    Native,
    OpenAi(OpenAiRenderer),
    Anthropic(AnthropicRenderer),
    Agui(AguiRenderer),
}

impl Renderer {
    pub fn new(format: Format, id: &StreamId, meta: &StreamMeta) -> Self {
        match format {
            Format::Native => Self::Native,
            Format::OpenAi => Self::OpenAi(OpenAiRenderer::new(id, meta)),
            Format::Anthropic => Self::Anthropic(AnthropicRenderer::new(id, meta)),
            Format::Agui => Self::Agui(AguiRenderer::new(id)),
        }
    }

    /// Whether a reader resuming mid-stream must first replay the earlier events through
    /// this renderer (without output): formats whose frames depend on what came before.
    pub fn needs_history(&self) -> bool {
        match self {
            Self::Native | Self::OpenAi(_) => false,
            Self::Anthropic(_) | Self::Agui(_) => true,
        }
    }

    /// Whether this format has a way to say `reset` in-band (otherwise the answer is 410).
    pub fn carries_reset(&self) -> bool {
        match self {
            Self::Native | Self::Agui(_) => true,
            Self::OpenAi(_) | Self::Anthropic(_) => false,
        }
    }

    pub fn reset(&self, id: &str, reset: &Reset, out: &mut FrameWriter) {
        match self {
            Self::Native => {
                let data = serde_json::to_string(reset).unwrap_or_default();
                out.frame(Some(id), Some("reset"), &data);
            }
            Self::Agui(r) => r.reset(id, reset, out),
            Self::OpenAi(_) | Self::Anthropic(_) => {}
        }
    }

    /// Writes the frames for one event (possibly none), each carrying the event's id.
    pub fn event(&mut self, epoch: &Epoch, event: &Event, out: &mut FrameWriter) {
        let id = format!("{epoch}.{}", event.seq);
        match self {
            Self::Native => out.frame(Some(&id), Some(event.body.type_name()), &event.data),
            Self::OpenAi(r) => r.event(&id, &event.body, out),
            Self::Anthropic(r) => r.event(&id, &event.body, out),
            Self::Agui(r) => r.event(&id, &event.body, out),
        }
    }
}
