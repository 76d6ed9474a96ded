//! Recorded-format OpenAI transcripts replayed by a fake upstream through the whole proxy:
//! whole, in 1-byte writes and at random split points.

use std::time::Duration;

use axum::body::Bytes;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Deserialize;
use serde_json::Value;

use crate::support::{FakeUpstream, Reply, SseReader, chat, spawn_app_with, test_config};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openai");
const NAMES: [&str; 12] = [
    "text_basic",
    "usage_final",
    "tool_call_fragments",
    "parallel_tools",
    "comments_and_pings",
    "crlf_utf8",
    "midstream_error",
    "abrupt_close",
    "empty_deltas",
    "multi_line_data",
    "reasoning_content",
    "refusal",
];

#[derive(Deserialize)]
struct Expected {
    outcome: String,
    finish_reason: Option<String>,
    text: String,
    reasoning: String,
    refusal: String,
    tool_calls: Vec<Value>,
    error_code: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum Plan {
    Whole,
    OneByte,
    Random(u64),
}

fn split(bytes: &[u8], plan: Plan) -> Vec<Bytes> {
    match plan {
        Plan::Whole => vec![Bytes::copy_from_slice(bytes)],
        Plan::OneByte => bytes.chunks(1).map(Bytes::copy_from_slice).collect(),
        Plan::Random(seed) => {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut out = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = rng.random_range(1..=rest.len().min(40));
                out.push(Bytes::copy_from_slice(&rest[..n]));
                rest = &rest[n..];
            }
            out
        }
    }
}

/// What an OpenAI SDK would assemble from the proxy's stream.
#[derive(Default, Debug)]
struct Assembled {
    text: String,
    reasoning: String,
    refusal: String,
    tool_calls: Vec<(String, String, String)>,
    finish_reason: Option<String>,
    done: bool,
    error_code: Option<String>,
    frames_after_end: usize,
}

fn assemble(events: &[crate::support::SseEvent]) -> Assembled {
    let mut a = Assembled::default();
    for event in events {
        assert!(!event.id.is_empty(), "every frame carries an id");
        if a.done || a.error_code.is_some() {
            a.frames_after_end += 1;
        }
        if event.data == "[DONE]" {
            a.done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(&event.data).expect("every data frame is JSON");
        if let Some(error) = chunk.get("error") {
            a.error_code = error["code"].as_str().map(str::to_owned);
            continue;
        }
        assert_eq!(chunk["object"], "chat.completion.chunk");
        for choice in chunk["choices"].as_array().unwrap() {
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str() {
                a.text.push_str(t);
            }
            if let Some(t) = delta["reasoning_content"].as_str() {
                a.reasoning.push_str(t);
            }
            if let Some(t) = delta["refusal"].as_str() {
                a.refusal.push_str(t);
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"].as_u64().unwrap() as usize;
                if a.tool_calls.len() <= index {
                    a.tool_calls.resize(index + 1, Default::default());
                }
                let slot = &mut a.tool_calls[index];
                if let Some(id) = call["id"].as_str() {
                    slot.0 = id.to_owned();
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    slot.1 = name.to_owned();
                }
                slot.2
                    .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                a.finish_reason = Some(reason.to_owned());
            }
        }
    }
    a
}

async fn replay(name: &str, plan: Plan) {
    let bytes = std::fs::read(format!("{FIXTURES}/{name}.sse")).unwrap();
    let expected: Expected =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{name}.expected.json")).unwrap())
            .unwrap();
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks: split(&bytes, plan),
        gap: Duration::ZERO,
        hang: false,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let ctx = format!("{name} {plan:?}");

    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    let stream_id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let events = SseReader::new(response).collect().await;
    let got = assemble(&events);
    assert_eq!(got.text, expected.text, "{ctx}");
    assert_eq!(got.reasoning, expected.reasoning, "{ctx}");
    assert_eq!(got.refusal, expected.refusal, "{ctx}");
    let want_calls: Vec<_> = expected
        .tool_calls
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_owned();
            (s("id"), s("name"), s("arguments"))
        })
        .collect();
    assert_eq!(got.tool_calls, want_calls, "{ctx}");
    assert_eq!(
        got.frames_after_end, 0,
        "{ctx}: nothing after [DONE] or an error"
    );
    if expected.outcome == "completed" {
        assert!(got.done, "{ctx}: [DONE] after a completion");
        assert_eq!(got.finish_reason, expected.finish_reason, "{ctx}");
        assert_eq!(got.error_code, None, "{ctx}");
    } else {
        assert!(!got.done, "{ctx}: no [DONE] after a failure");
        assert_eq!(got.error_code, expected.error_code, "{ctx}");
    }

    // The native log says the same, and ends with exactly one terminal event.
    let native = SseReader::new(app.events(&stream_id, None, "?format=native").await)
        .collect()
        .await;
    let terminal: Vec<_> = native
        .iter()
        .filter(|e| e.event.starts_with("stream.") && e.event != "stream.started")
        .collect();
    assert_eq!(terminal.len(), 1, "{ctx}");
    assert_eq!(
        native.last().unwrap().event,
        format!("stream.{}", expected.outcome),
        "{ctx}"
    );

    // The upstream was asked to stream with usage, for the upstream model, with our key.
    let (auth, request) = upstream.requests().pop().unwrap();
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-secret-key"));
    assert_eq!(request["model"], "gpt-4o");
    assert_eq!(request["stream"], true);
    assert_eq!(request["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn every_fixture_relays_whole_one_byte_and_random_splits() {
    for name in NAMES {
        for plan in [
            Plan::Whole,
            Plan::OneByte,
            Plan::Random(11),
            Plan::Random(12),
        ] {
            replay(name, plan).await;
        }
    }
}

#[tokio::test]
async fn upstream_errors_before_the_first_event_keep_their_status() {
    for (status, code) in [
        (401, "upstream_unauthorized"),
        (429, "upstream_rate_limited"),
        (500, "upstream_unavailable"),
    ] {
        let body = std::fs::read_to_string(format!("{FIXTURES}/error_{status}.json")).unwrap();
        let upstream = FakeUpstream::start(Reply::Status {
            status,
            body,
            retry_after: Some(7),
        })
        .await;
        let app = spawn_app_with(test_config(), Some(&upstream)).await;
        for stream in [true, false] {
            let response = app
                .post("/v1/chat/completions", &chat("openai/gpt-4o", stream))
                .await;
            assert_eq!(response.status().as_u16(), status);
            assert!(response.headers().contains_key("x-stream-id"));
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["error"]["code"], code, "{status}");
            assert!(body["error"]["message"].is_string());
            assert!(
                !text.contains("sk-"),
                "no key fragment reaches the client: {text}"
            );
            if status == 429 {
                assert_eq!(retry_after.as_deref(), Some("7"));
            }
        }
    }
}

#[tokio::test]
async fn an_upstream_that_never_sends_an_event_times_out_with_504() {
    let upstream = FakeUpstream::start(Reply::Silent).await;
    let mut config = test_config();
    config.upstream.first_event_timeout_secs = 0.3;
    let app = spawn_app_with(config, Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    assert_eq!(response.status(), 504);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_first_event_timeout");
    assert!(
        upstream.wait_cut(1, Duration::from_secs(5)).await,
        "the upstream request was dropped"
    );
}

#[tokio::test]
async fn an_upstream_that_stalls_mid_stream_fails_with_idle_timeout() {
    let chunks = vec![
        crate::support::fake_upstream::openai_chunk("Hello"),
        crate::support::fake_upstream::openai_chunk(" there"),
    ];
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks,
        gap: Duration::ZERO,
        hang: true,
    })
    .await;
    let mut config = test_config();
    config.upstream.idle_timeout_secs = 0.3;
    let app = spawn_app_with(config, Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    let got = assemble(&SseReader::new(response).collect().await);
    assert_eq!(got.text, "Hello there");
    assert_eq!(got.error_code.as_deref(), Some("upstream_idle_timeout"));
    assert!(!got.done);
    assert!(
        upstream.wait_cut(1, Duration::from_secs(5)).await,
        "the stalled upstream was hung up on"
    );
}

#[tokio::test]
async fn a_role_chunk_counts_as_the_first_event_and_keeps_the_stream_alive() {
    // A reasoning model: the role chunk at once, the content much later.
    let role = axum::body::Bytes::from_static(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    );
    let chunks = vec![
        role.clone(),
        role,
        crate::support::fake_upstream::openai_chunk("Answer"),
        axum::body::Bytes::from_static(b"data: [DONE]\n\n"),
    ];
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks,
        gap: Duration::from_millis(400),
        hang: false,
    })
    .await;
    let mut config = test_config();
    config.upstream.first_event_timeout_secs = 0.3;
    config.upstream.idle_timeout_secs = 0.6;
    let app = spawn_app_with(config, Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    assert_eq!(response.status(), 200);
    let got = assemble(&SseReader::new(response).collect().await);
    assert_eq!(got.text, "Answer");
    assert!(got.done);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let app = spawn_app_with(test_config(), None).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_unreachable");
}
