//! The adapter on every recorded-format fixture, whole, in 1-byte reads and at random splits.

use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Deserialize;

use super::{ChunkState, OpenAiDecoder, normalize};
use crate::event::{Aggregate, EventBody};
use crate::providers::fixtures::fixture_names;
use crate::providers::upstream::decode_sse;
use crate::providers::{ProviderErrorKind, ProviderEvent};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openai");

#[derive(Deserialize, Debug)]
struct Expected {
    outcome: String,
    finish_reason: Option<String>,
    text: String,
    reasoning: String,
    refusal: String,
    tool_calls: Vec<ExpectedCall>,
    usage: Option<crate::event::Usage>,
    error_code: Option<String>,
    error_message_contains: Option<String>,
}

#[derive(Deserialize, Debug)]
struct ExpectedCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

fn split(bytes: &[u8], plan: &Plan) -> Vec<Bytes> {
    match plan {
        Plan::Whole => vec![Bytes::copy_from_slice(bytes)],
        Plan::OneByte => bytes.chunks(1).map(Bytes::copy_from_slice).collect(),
        Plan::Random(seed) => {
            let mut rng = SmallRng::seed_from_u64(*seed);
            let mut out = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = rng.random_range(1..=rest.len().min(64));
                out.push(Bytes::copy_from_slice(&rest[..n]));
                rest = &rest[n..];
            }
            out
        }
    }
}

#[derive(Debug)]
enum Plan {
    Whole,
    OneByte,
    Random(u64),
}

struct Outcome {
    aggregate: Aggregate,
    empty_deltas: usize,
    done: Option<Option<String>>,
    error: Option<crate::providers::ProviderError>,
}

async fn replay(chunks: Vec<Bytes>) -> Outcome {
    let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
    let mut stream = decode_sse(body, 1 << 24, OpenAiDecoder::default());
    let mut outcome = Outcome {
        aggregate: Aggregate::default(),
        empty_deltas: 0,
        done: None,
        error: None,
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(ProviderEvent::Event(body)) => {
                if let EventBody::MessageDelta(d) = &body {
                    outcome.empty_deltas += usize::from(d.text.is_empty());
                }
                outcome.aggregate.apply(&body);
            }
            Ok(ProviderEvent::Done { finish_reason }) => outcome.done = Some(finish_reason),
            Ok(ProviderEvent::Heartbeat) => {}
            Err(e) => outcome.error = Some(e),
        }
    }
    outcome
}

#[tokio::test]
async fn every_fixture_gives_its_expected_events_under_every_split() {
    let names = fixture_names(FIXTURES);
    assert!(names.len() >= 12, "fixtures missing: {names:?}");
    for name in names {
        let bytes = std::fs::read(format!("{FIXTURES}/{name}.sse")).unwrap();
        let expected: Expected = serde_json::from_slice(
            &std::fs::read(format!("{FIXTURES}/{name}.expected.json")).unwrap(),
        )
        .unwrap();
        for plan in [
            Plan::Whole,
            Plan::OneByte,
            Plan::Random(1),
            Plan::Random(2),
            Plan::Random(3),
        ] {
            let got = replay(split(&bytes, &plan)).await;
            let ctx = format!("{name} {plan:?}");
            let agg = &got.aggregate;
            assert_eq!(agg.text(), expected.text, "{ctx}");
            assert_eq!(agg.reasoning, expected.reasoning, "{ctx}");
            assert_eq!(agg.refusal, expected.refusal, "{ctx}");
            assert_eq!(agg.usage, expected.usage, "{ctx}");
            assert_eq!(got.empty_deltas, 0, "{ctx}");
            let calls: Vec<_> = agg
                .tool_calls
                .iter()
                .map(|c| {
                    (
                        c.index,
                        c.id.as_str(),
                        c.name.as_str(),
                        c.arguments.as_str(),
                    )
                })
                .collect();
            let want: Vec<_> = expected
                .tool_calls
                .iter()
                .map(|c| {
                    (
                        c.index,
                        c.id.as_str(),
                        c.name.as_str(),
                        c.arguments.as_str(),
                    )
                })
                .collect();
            assert_eq!(calls, want, "{ctx}");
            match expected.outcome.as_str() {
                "completed" => {
                    assert!(got.error.is_none(), "{ctx}: {:?}", got.error);
                    assert_eq!(got.done, Some(expected.finish_reason.clone()), "{ctx}");
                }
                _ => {
                    assert!(got.done.is_none(), "{ctx}");
                    let error = got.error.expect(&ctx);
                    assert_eq!(Some(error.code()), expected.error_code.as_deref(), "{ctx}");
                    if let Some(part) = &expected.error_message_contains {
                        assert!(
                            error.message.contains(part.as_str()),
                            "{ctx}: {}",
                            error.message
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_megabyte_token_in_64_reads_is_one_delta() {
    let token = "x".repeat(1 << 20);
    let chunk = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{token}\"}}}}]}}\n\ndata: [DONE]\n\n"
    );
    let chunks: Vec<_> = chunk
        .as_bytes()
        .chunks(chunk.len() / 64 + 1)
        .map(Bytes::copy_from_slice)
        .collect();
    let got = replay(chunks).await;
    assert_eq!(got.aggregate.text().len(), 1 << 20);
    assert!(got.error.is_none());
}

#[test]
fn error_frames_and_bad_json_are_errors_with_their_own_codes() {
    let mut state = ChunkState::default();
    let e = normalize(
        r#"{"error":{"message":"boom","type":"server_error"}}"#,
        &mut state,
    )
    .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ProviderErrorKind::Stream, "boom")
    );
    let e = normalize("{not json", &mut state).unwrap_err();
    assert_eq!(e.code(), "upstream_invalid_response");
}

#[test]
fn tolerates_unusual_field_types_and_empty_choices() {
    let mut state = ChunkState::default();
    let events = normalize(
        r#"{"choices":[{"index":0,"delta":{"content":"hi","reasoning":{"effort":"low"}},"finish_reason":null}],"usage":null}"#,
        &mut state,
    )
    .unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        normalize(r#"{"choices":[],"prompt_filter_results":[]}"#, &mut state)
            .unwrap()
            .is_empty()
    );
    assert!(
        normalize(r#"{"choices":null,"usage":null}"#, &mut state)
            .unwrap()
            .is_empty()
    );
    let nulls = r#"{"choices":[{"index":null,"delta":{"content":"x","tool_calls":null}}]}"#;
    assert_eq!(normalize(nulls, &mut state).unwrap().len(), 1);
}

#[tokio::test]
async fn random_bytes_never_panic_or_hang() {
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..300 {
        let len = rng.random_range(0..400);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                *b"data: {}[]\"\r\n:x\xff\xe4DONE"
                    .get(rng.random_range(0..21))
                    .unwrap_or(&b'a')
            })
            .collect();
        let plan = Plan::Random(rng.random());
        let got = replay(split(&bytes, &plan)).await;
        assert!(got.done.is_some() || got.error.is_some());
    }
}

#[tokio::test]
async fn bare_cr_line_endings_complete_the_stream() {
    let text = std::fs::read_to_string(format!("{FIXTURES}/text_basic.sse")).unwrap();
    let cr = text.replace('\n', "\r");
    for plan in [Plan::Whole, Plan::OneByte, Plan::Random(5)] {
        let got = replay(split(cr.as_bytes(), &plan)).await;
        assert!(got.error.is_none(), "{plan:?}: {:?}", got.error);
        assert_eq!(got.done, Some(Some("stop".to_owned())), "{plan:?}");
        assert_eq!(got.aggregate.text(), "Hello, world! How can I help?");
    }
}

#[tokio::test]
async fn a_named_error_event_fails_the_stream() {
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\nevent: error\ndata: {\"message\":\"overloaded\"}\n\n";
    let got = replay(vec![Bytes::from(body)]).await;
    assert_eq!(got.aggregate.text(), "Hi");
    let error = got.error.unwrap();
    assert_eq!(error.code(), "upstream_error");
    assert!(error.message.contains("overloaded"));
}
