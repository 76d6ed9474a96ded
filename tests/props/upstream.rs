//! Upstream SSE path (`split_lines`, eventsource framing, each adapter's decoder): arbitrary
//! bytes read in arbitrary pieces never panic or hang, end in exactly one terminal item and
//! decode as they do in one read; every recorded fixture gives its expected outcome however
//! it is split.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};
use tokenrelay::providers::{ProviderEvent, UpstreamApi, replay};

/// Longest a decode of a few KiB may take before it counts as a hang (debug build, busy CI).
const HANG: Duration = Duration::from_secs(10);
/// More items than any input here can honestly produce: past it, the stream never ends.
const MAX_ITEMS: usize = 100_000;

/// One decoded item, comparable across runs: an event, a heartbeat, `done` or an error code.
fn item(result: Result<ProviderEvent, tokenrelay::providers::ProviderError>) -> Value {
    match result {
        Ok(ProviderEvent::Event(body)) => serde_json::to_value(&body).unwrap(),
        Ok(ProviderEvent::Heartbeat) => json!("heartbeat"),
        Ok(ProviderEvent::Done { finish_reason }) => json!({"done": finish_reason}),
        Err(e) => json!({"error": e.code()}),
    }
}

fn is_terminal(item: &Value) -> bool {
    item.get("done").is_some() || item.get("error").is_some()
}

/// Decodes `chunks` as `api` on a separate thread; a panic or a hang fails the case.
pub fn decode(api: UpstreamApi, chunks: Vec<Bytes>, max_line: usize) -> Result<Vec<Value>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
        let items = futures::executor::block_on(
            replay(api, body, max_line)
                .map(item)
                .take(MAX_ITEMS + 1)
                .collect::<Vec<_>>(),
        );
        let _ = tx.send(items);
    });
    match rx.recv_timeout(HANG) {
        Ok(items) if items.len() > MAX_ITEMS => Err(format!("{api:?}: the stream never ends")),
        Ok(items) => Ok(items),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!("{api:?}: hung")),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(format!("{api:?}: panicked")),
    }
}

/// `bytes` cut at `cuts` (repeats give empty reads, which a body may also yield).
pub fn split(bytes: &[u8], cuts: &[Index]) -> Vec<Bytes> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in at.into_iter().chain([bytes.len()]) {
        chunks.push(Bytes::copy_from_slice(&bytes[start..cut]));
        start = cut;
    }
    chunks
}

pub struct Fixture {
    pub api: UpstreamApi,
    pub name: String,
    pub bytes: Vec<u8>,
    pub expected: Value,
}

/// Every `tests/fixtures/<api>/*.sse` with its `.expected.json`, read once.
pub fn fixtures() -> &'static [Fixture] {
    static ALL: OnceLock<Vec<Fixture>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = Vec::new();
        for api in UpstreamApi::ALL {
            let dir = format!(
                "{}/tests/fixtures/{}",
                env!("CARGO_MANIFEST_DIR"),
                api.fixture_dir()
            );
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| {
                    e.ok()?
                        .file_name()
                        .into_string()
                        .ok()?
                        .strip_suffix(".sse")
                        .map(str::to_owned)
                })
                .collect();
            names.sort();
            for name in names {
                let bytes = std::fs::read(format!("{dir}/{name}.sse")).unwrap();
                let expected = std::fs::read(format!("{dir}/{name}.expected.json")).unwrap();
                let expected = serde_json::from_slice(&expected).unwrap();
                all.push(Fixture {
                    api,
                    name,
                    bytes,
                    expected,
                });
            }
        }
        assert!(all.len() >= 20, "fixtures missing");
        all
    })
}

/// Checks decoded items against a fixture's `.expected.json` (two shapes exist: the events
/// and outcome for most adapters, the folded aggregate for OpenAI chat).
fn check_expected(fixture: &Fixture, items: &[Value]) -> Result<(), TestCaseError> {
    let expected = &fixture.expected;
    let last = items.last().cloned().unwrap_or_default();
    if let Some(events) = expected.get("events") {
        let got: Vec<&Value> = items
            .iter()
            .filter(|i| i.is_object() && !is_terminal(i))
            .collect();
        let want: Vec<&Value> = events.as_array().unwrap().iter().collect();
        prop_assert_eq!(got, want, "{}", fixture.name);
        match (
            expected["outcome"].get("done"),
            expected["outcome"].get("error"),
        ) {
            (Some(done), _) => prop_assert_eq!(&last["done"], &done["finish_reason"]),
            (_, Some(error)) => prop_assert_eq!(&last["error"], &error["code"]),
            _ => prop_assert!(false, "{}: unknown expected outcome", fixture.name),
        }
    } else if expected["outcome"] == "completed" {
        prop_assert_eq!(
            &last["done"],
            &expected["finish_reason"],
            "{}",
            fixture.name
        );
    } else {
        prop_assert_eq!(&last["error"], &expected["error_code"], "{}", fixture.name);
    }
    Ok(())
}

/// Pieces of upstream bodies: SSE syntax, each API's JSON, bad UTF-8, numbers past `u32`.
const PIECES: &[&str] = &[
    "data: ",
    "data:",
    "event: ",
    "event: error\n",
    "id: 1\n",
    "retry: 5\n",
    ":",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "[DONE]",
    "{",
    "}",
    "\"",
    "null",
    "4294967296",
    "18446744073709551616",
    "-1",
    "1e999",
    r#"{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}"#,
    r#"{"choices":[{"index":4294967296,"delta":{"tool_calls":[{"index":4294967295,"id":"c","function":{"name":"f","arguments":"{"}}]}}]}"#,
    r#"{"choices":[],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1}}"#,
    r#"{"type":"message_start","message":{"usage":{"input_tokens":1}}}"#,
    r#"{"type":"content_block_start","index":4294967295,"content_block":{"type":"tool_use","id":"t","name":"f"}}"#,
    r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
    r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":18446744073709551615}}"#,
    r#"{"type":"message_stop"}"#,
    r#"{"candidates":[{"content":{"parts":[{"text":"x"},{"functionCall":{"name":"f","partialArgs":[{"jsonPath":"$.a.b","stringValue":"v"}],"willContinue":true}}]}}]}"#,
    r#"{"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":18446744073709551615,"candidatesTokenCount":5}}"#,
    r#"{"type":"transcript.text.delta","delta":"x"}"#,
    r#"{"type":"transcript.text.done","text":"x","usage":{"input_tokens":1}}"#,
    r#"{"error":{"message":"m","code":"c"}}"#,
];

/// Bytes shaped like an upstream body, or not at all.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::collection::vec(prop::sample::select(PIECES), 0..40)
        .prop_map(|p| p.concat().into_bytes());
    let mutated = (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 1..8),
    )
        .prop_map(|(which, edits)| {
            let all = fixtures();
            let mut bytes = all[which.index(all.len())].bytes.clone();
            for (at, byte, op) in edits {
                let at = at.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = byte,
                    _ => {}
                }
            }
            bytes
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        3 => pieces,
        3 => mutated,
    ]
}

fn api() -> impl Strategy<Value = UpstreamApi> {
    prop::sample::select(&UpstreamApi::ALL[..])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_in_any_pieces_end_in_one_terminal_item_whatever_the_split(
        api in api(),
        bytes in body(),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
        max_line in prop_oneof![Just(1usize << 20), 8usize..256],
    ) {
        let items = decode(api, split(&bytes, &cuts), max_line).map_err(TestCaseError::fail)?;
        let terminals = items.iter().filter(|i| is_terminal(i)).count();
        prop_assert_eq!(terminals, 1, "{:?}", items);
        prop_assert!(is_terminal(items.last().unwrap()));
        // How the body was cut into reads is invisible, garbage included.
        let whole = decode(api, vec![Bytes::from(bytes)], max_line).map_err(TestCaseError::fail)?;
        prop_assert_eq!(items, whole);
    }

    #[test]
    fn fixtures_decode_the_same_however_they_are_split(
        which in any::<Index>(),
        cuts in prop::collection::vec(any::<Index>(), 1..64),
    ) {
        let fixture = &fixtures()[which.index(fixtures().len())];
        let whole = decode(fixture.api, vec![Bytes::copy_from_slice(&fixture.bytes)], 1 << 24)
            .map_err(TestCaseError::fail)?;
        check_expected(fixture, &whole)?;
        let split = decode(fixture.api, split(&fixture.bytes, &cuts), 1 << 24)
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(split, whole, "{}", fixture.name);
    }
}
