//! tokenrelay: relays AI token streams over Server-Sent Events with resume ids.
//!
//! Map of the crate, from the domain outwards:
//! - [`event`]: stream and resume ids, the native event model, the aggregate of a stream.
//! - [`store`]: the [`store::EventLog`] seam (one numbered log per stream) and its memory store.
//! - [`providers`]: the [`providers::Provider`] seam: `mock` and `openai`.
//!
//! The producer writes, clients read: a producer task per stream appends what the upstream
//! sends; subscribers are cursors over the log and never slow the producer down.

pub mod app;
pub mod cli;
pub mod config;
pub mod event;
pub mod http;
pub mod prompts;
pub mod providers;
pub mod relay;
pub mod sse;
pub mod store;
