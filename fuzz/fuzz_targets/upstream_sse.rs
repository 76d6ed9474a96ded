//! Fuzzes the upstream SSE path (line framing, SSE parsing, each adapter's decoder) the way
//! `tests/props/upstream.rs` drives it: the first byte picks the API, the longest line
//! accepted and how the rest is cut into reads; the decoded stream must end, without a
//! panic, in exactly one terminal item (`Done` or an error).
#![no_main]

use bytes::Bytes;
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;
use tokenrelay::providers::{ProviderEvent, UpstreamApi, replay};

/// Cuts `body` into reads of 1 to `longest` bytes, sizes from a xorshift seeded by `seed`.
fn reads(body: &[u8], seed: u8, longest: usize) -> Vec<Result<Bytes, std::convert::Infallible>> {
    let mut state = u32::from(seed) | 0x9e37_0000;
    let mut chunks = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % longest + 1).min(rest.len());
        chunks.push(Ok(Bytes::copy_from_slice(&rest[..n])));
        rest = &rest[n..];
    }
    chunks
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let api = UpstreamApi::ALL[usize::from(control & 3)];
    // Bit 2: a small line limit, so the too-long path gets exercised too.
    let max_line = if control & 4 != 0 { 64 } else { 1 << 20 };
    // Bits 3..8: reads from 1 byte (0) up to 32 bytes long.
    let longest = usize::from(control >> 3) + 1;
    let chunks = reads(body, control, longest);
    let items: Vec<_> =
        futures::executor::block_on(replay(api, futures::stream::iter(chunks), max_line).collect());
    let terminal =
        |item: &Result<ProviderEvent, _>| matches!(item, Ok(ProviderEvent::Done { .. }) | Err(_));
    assert_eq!(items.iter().filter(|i| terminal(i)).count(), 1, "{items:?}");
    assert!(items.last().is_some_and(terminal), "{items:?}");
});
