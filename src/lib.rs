//! tokenrelay: relays AI token streams over Server-Sent Events with resume ids.
//!
//! Map of the crate, from the domain outwards:
//! - [`event`]: stream and resume ids, the native event model, the aggregate of a stream.
//! - [`store`]: the [`store::EventLog`] seam (one numbered log per stream), memory and Redis.
//! - [`providers`]: the [`providers::Provider`] seam: `mock`, `openai`, `anthropic`, `gemini`,
//!   and model routing with fallbacks.
//! - [`relay`]: producer tasks (one per generation) and the per-instance registry.
//! - [`agent`]: agent streams: publish checks (native and AG-UI), state.
//! - [`feed`]: live transcription feeds: audio segments in order, once, on any instance.
//! - [`sse`]: SSE framing, resume plans, and the renderers of every client format.
//! - [`http`]: the routes and the error boundary; [`app`] assembles it all and serves.
//! - [`auth`]: client API keys, the caller of a request, per-key limits.
//! - [`telemetry`]: Prometheus metrics (`/metrics`) and the request middleware that feeds them.
//! - [`prompts`], [`config`], [`cli`]: templates, settings, the command line.
//! - [`bench`]: the load generator of `tokenrelay bench`, with its timed mock upstream.
//!
//! The producer writes, clients read: a producer task per stream (or an agent's publish
//! calls) appends to the log; subscribers are cursors over it and never slow the writer.

pub mod agent;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod event;
pub mod feed;
pub mod http;
pub mod prompts;
pub mod providers;
pub mod relay;
pub mod sse;
pub mod store;
pub mod telemetry;
