//! Integration tests: the real server on port 0, spoken to over HTTP/SSE, with fake
//! upstreams on port 0. One binary, one module per capability.

// A panic in test code is a failed assertion, which is what unwrap means here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod access;
mod access_keys;
mod agents;
mod bench_smoke;
mod cluster;
mod errors;
mod feeds;
mod formats;
mod key_limits;
mod lifecycle;
mod limits;
mod messages;
mod meta;
mod metrics;
mod operations;
mod playground;
mod prompts;
mod resume;
mod routing;
mod store_contract;
mod transcriptions;
mod upstream;
