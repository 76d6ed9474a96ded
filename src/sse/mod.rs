//! Server-Sent Events out: frame encoding, resume planning, renderers per client format, and
//! the subscription body that ties them to a cursor over the log.

mod agui;
mod anthropic;
mod frame;
mod openai;
mod render;
mod resume;
mod subscription;
mod transcript;

pub use frame::{FrameWriter, KEEPALIVE};
pub use render::Renderer;
pub use resume::{Reset, ResetReason, ResumePlan, plan};
pub use subscription::Subscription;
