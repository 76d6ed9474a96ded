//! Test support shared by the adapters: replays a fixture folder through `decode_sse` with
//! several byte splits and compares the native events with `<name>.expected.json`.

use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Deserialize;
use serde_json::Value;

use super::ProviderEvent;
use super::upstream::{Decoder, decode_sse};

#[derive(Deserialize)]
struct Expected {
    events: Vec<Value>,
    outcome: Value,
}

fn splits(bytes: &[u8]) -> Vec<(String, Vec<Bytes>)> {
    let mut plans = vec![
        ("whole".to_owned(), vec![Bytes::copy_from_slice(bytes)]),
        (
            "1-byte".to_owned(),
            bytes.chunks(1).map(Bytes::copy_from_slice).collect(),
        ),
    ];
    for seed in [1u64, 2, 3] {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut chunks = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len().min(48));
            chunks.push(Bytes::copy_from_slice(&rest[..n]));
            rest = &rest[n..];
        }
        plans.push((format!("random {seed}"), chunks));
    }
    plans
}

/// The names of the `*.sse` fixtures in `root`, without the extension, sorted.
pub fn fixture_names(root: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
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
    names
}

/// Replays every `<dir>/*.sse` and checks it against its expected events and outcome.
pub async fn check_fixtures<D: Decoder>(dir: &str, decoder: impl Fn() -> D) {
    let root = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
    let names = fixture_names(&root);
    assert!(names.len() >= 4, "{dir}: fixtures missing");
    for name in names {
        let bytes = std::fs::read(format!("{root}/{name}.sse")).unwrap();
        let expected: Expected =
            serde_json::from_slice(&std::fs::read(format!("{root}/{name}.expected.json")).unwrap())
                .unwrap();
        for (plan, chunks) in splits(&bytes) {
            let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
            let mut stream = decode_sse(body, 1 << 24, decoder());
            let mut events = Vec::new();
            let mut outcome = None;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(ProviderEvent::Event(body)) => {
                        events.push(serde_json::to_value(&body).unwrap())
                    }
                    Ok(ProviderEvent::Heartbeat) => {}
                    Ok(ProviderEvent::Done { finish_reason }) => {
                        outcome =
                            Some(serde_json::json!({"done": {"finish_reason": finish_reason}}));
                    }
                    Err(e) => {
                        outcome = Some(
                            serde_json::json!({"error": {"code": e.code(), "message": e.message}}),
                        )
                    }
                }
            }
            let ctx = format!("{dir}/{name} ({plan})");
            assert_eq!(events, expected.events, "{ctx}");
            let outcome = outcome.unwrap_or_else(|| panic!("{ctx}: no outcome"));
            match (
                &expected.outcome.get("done"),
                &expected.outcome.get("error"),
            ) {
                (Some(done), _) => assert_eq!(outcome["done"], **done, "{ctx}"),
                (_, Some(error)) => {
                    assert_eq!(outcome["error"]["code"], error["code"], "{ctx}");
                    if let Some(part) = error.get("message_contains").and_then(Value::as_str) {
                        let message = outcome["error"]["message"].as_str().unwrap_or("");
                        assert!(message.contains(part), "{ctx}: {message}");
                    }
                }
                _ => panic!("{ctx}: bad expected outcome"),
            }
        }
    }
}
