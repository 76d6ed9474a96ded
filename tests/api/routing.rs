//! Routing: retries before the first event, fallbacks, and no silent switch after it.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::Value;
use tokenrelay::config::Config;
use tokenrelay::providers::ModelAlias;

use crate::support::fake_upstream::openai_chunk;
use crate::support::{FakeUpstream, Reply, SseReader, chat, spawn_app_with, test_config};

fn answer(tokens: usize) -> Reply {
    let mut chunks: Vec<_> = (1..=tokens)
        .map(|i| openai_chunk(&format!("tok{i} ")))
        .collect();
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Reply::Stream {
        chunks,
        gap: Duration::ZERO,
        hang: false,
    }
}

fn error(status: u16, retry_after: Option<u64>) -> Reply {
    Reply::Status {
        status,
        body: r#"{"error":{"message":"busy","type":"server_error","code":null}}"#.into(),
        retry_after,
    }
}

fn config_with(models: Vec<ModelAlias>) -> Config {
    let mut config = test_config();
    config.models = models;
    config
}

fn smart() -> ModelAlias {
    ModelAlias {
        name: "smart".into(),
        provider: "openai".into(),
        model: "primary-model".into(),
        fallbacks: vec!["mock/3t-0ms".into()],
    }
}

async fn read_native(app: &crate::support::TestApp, id: &str) -> Vec<crate::support::SseEvent> {
    app.wait_finished(id, Duration::from_secs(10)).await;
    SseReader::new(app.events(id, None, "?format=native").await)
        .collect()
        .await
}

#[tokio::test]
async fn a_failing_upstream_is_retried_then_serves_the_answer() {
    let upstream =
        FakeUpstream::start_sequence(vec![error(500, None), error(502, None), answer(4)]).await;
    let app = spawn_app_with(config_with(vec![]), Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let frames = SseReader::new(response).collect().await;
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    assert_eq!(
        upstream.requests().len(),
        3,
        "two failures, then the answer"
    );
    assert!(upstream.paths().iter().all(|p| p == "/v1/chat/completions"));
    let log = read_native(&app, &id).await;
    assert!(log.iter().all(|e| e.event != "stream.failed"));
}

#[tokio::test]
async fn a_429_is_retried_after_the_time_the_upstream_asked_for() {
    let upstream = FakeUpstream::start_sequence(vec![error(429, Some(1)), answer(2)]).await;
    let app = spawn_app_with(config_with(vec![]), Some(&upstream)).await;
    let started = Instant::now();
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", false))
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry-after honoured"
    );
    assert_eq!(upstream.requests().len(), 2);
}

#[tokio::test]
async fn retries_give_up_with_the_upstreams_status_when_there_is_no_fallback() {
    let upstream = FakeUpstream::start(error(503, None)).await;
    let app = spawn_app_with(config_with(vec![]), Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(upstream.requests().len(), 3, "1 + max_retries (2) attempts");
    // A client error is not worth retrying.
    let upstream = FakeUpstream::start(error(400, None)).await;
    let app = spawn_app_with(config_with(vec![]), Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn when_the_primary_is_down_the_fallback_serves() {
    let upstream = FakeUpstream::start(error(503, None)).await;
    let app = spawn_app_with(config_with(vec![smart()]), Some(&upstream)).await;
    let response = app.post("/v1/chat/completions", &chat("smart", true)).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    SseReader::new(response).collect().await;
    assert_eq!(
        upstream.requests().len(),
        3,
        "the primary was retried first"
    );
    assert_eq!(upstream.requests()[0].1["model"], "primary-model");
    let log = read_native(&app, &id).await;
    let started: Value = serde_json::from_str(&log[0].data).unwrap();
    assert_eq!(started["provider"], "mock", "served by the fallback");
    assert_eq!(started["model"], "smart", "the client's model name stays");
    assert_eq!(log.last().unwrap().event, "stream.completed");
    let models: Value = app
        .client
        .get(app.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "smart")
    );
}

#[tokio::test]
async fn a_failure_after_the_first_token_ends_the_stream_without_a_switch() {
    let chunks = vec![
        openai_chunk("tok1 "),
        openai_chunk("tok2 "),
        Bytes::from_static(
            b"data: {\"error\":{\"message\":\"exploded\",\"type\":\"server_error\"}}\n\n",
        ),
    ];
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks,
        gap: Duration::ZERO,
        hang: false,
    })
    .await;
    let app = spawn_app_with(config_with(vec![smart()]), Some(&upstream)).await;
    let response = app.post("/v1/chat/completions", &chat("smart", true)).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    SseReader::new(response).collect().await;
    let log = read_native(&app, &id).await;
    let failed = log.last().unwrap();
    assert_eq!(failed.event, "stream.failed");
    assert!(failed.data.contains("upstream_error"), "{}", failed.data);
    let deltas: Vec<_> = log.iter().filter(|e| e.event == "message.delta").collect();
    assert_eq!(deltas.len(), 2, "no tokens from the fallback");
    assert_eq!(
        upstream.requests().len(),
        1,
        "no retry after the first event"
    );
}

#[tokio::test]
async fn an_error_right_after_message_start_is_still_retried() {
    // Anthropic sends message_start (and pings) before anything else: that is not yet an
    // answer, so an overload right after it goes through the retries like any other.
    let overloaded = Bytes::from_static(
        b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let good = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/anthropic/text_with_ping.sse"
    ))
    .unwrap();
    let upstream = FakeUpstream::start_sequence(vec![
        Reply::Stream {
            chunks: vec![overloaded],
            gap: Duration::ZERO,
            hang: false,
        },
        Reply::Stream {
            chunks: vec![Bytes::from(good)],
            gap: Duration::ZERO,
            hang: false,
        },
    ])
    .await;
    let app = spawn_app_with(config_with(vec![]), Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("anthropic/claude", false))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        !body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(upstream.requests().len(), 2);
}
