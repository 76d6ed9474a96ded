//! Property tests: the SSE encoder and renderers against an independent SSE parser, the resume
//! id parsers, the upstream SSE path under arbitrary bytes and splits, and chat request bodies
//! through the router. Cases are bounded so plain `cargo test` stays fast; set
//! `PROPTEST_CASES` to run more.

// A panic in test code is a failed assertion, which is what unwrap means here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod strategies;
mod whatwg;

mod frames;
mod ids;
mod renderers;
mod requests;
mod upstream;
