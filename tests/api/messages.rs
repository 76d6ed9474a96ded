//! `POST /v1/messages`: Anthropic's API in front of any upstream.

use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::support::{FakeUpstream, Reply, SseReader, spawn_app, spawn_app_with, test_config};

fn fixture(dir: &str, name: &str) -> Bytes {
    Bytes::from(
        std::fs::read(format!(
            "{}/tests/fixtures/{dir}/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
}

fn request(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 256, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn streams_anthropic_events_with_resume_ids() {
    let app = spawn_app().await;
    let response = app
        .post("/v1/messages", &request("mock/5t-0ms", true))
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-stream-id"));
    let events = SseReader::new(response).collect().await;
    assert_eq!(events[0].event, "message_start");
    assert_eq!(events.last().unwrap().event, "message_stop");
    assert!(events.iter().all(|e| !e.id.is_empty()));
    let text: String = events
        .iter()
        .filter(|e| e.event == "content_block_delta")
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).unwrap()["delta"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "tok1 tok2 tok3 tok4 tok5 ");
}

#[tokio::test]
async fn answers_one_message_without_stream() {
    let app = spawn_app().await;
    let response = app
        .post("/v1/messages", &request("mock/3t-0ms", false))
        .await;
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(
        message["content"][0],
        json!({"type": "text", "text": "tok1 tok2 tok3 "})
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn an_anthropic_upstream_gets_the_request_exactly_as_sent() {
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks: vec![fixture("anthropic", "tool_use.sse")],
        gap: Duration::ZERO,
        hang: false,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let sent = json!({
        "model": "anthropic/claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in SF?"}]}],
    });
    let response = app.post("/v1/messages", &sent).await;
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["stop_reason"], "tool_use");
    let tool = message["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert_eq!(tool["input"], json!({"location": "San Francisco, CA"}));
    let (auth, received) = upstream.requests().pop().unwrap();
    assert_eq!(auth.as_deref(), Some("sk-ant-test-secret"));
    assert_eq!(upstream.paths(), ["/v1/messages"]);
    let mut expected = sent.clone();
    expected["model"] = json!("claude-sonnet-4-5");
    expected["stream"] = json!(true);
    assert_eq!(received, expected, "nothing lost in translation");
}

#[tokio::test]
async fn another_upstream_gets_it_translated() {
    let mut chunks: Vec<Bytes> = vec![crate::support::fake_upstream::openai_chunk("Hello")];
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks,
        gap: Duration::ZERO,
        hang: false,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let mut body = request("openai/gpt-4o", false);
    body["system"] = json!("Be brief.");
    body["stop_sequences"] = json!(["END"]);
    let response = app.post("/v1/messages", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["content"][0]["text"],
        "Hello"
    );
    let (_, received) = upstream.requests().pop().unwrap();
    assert_eq!(
        received["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(received["messages"][1]["content"], "Hi");
    assert_eq!(received["max_tokens"], 256);
    assert_eq!(received["stop"], json!(["END"]));
}

async fn anthropic_error(response: reqwest::Response, status: u16, kind: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn errors_come_in_anthropics_shape() {
    let app = spawn_app().await;
    anthropic_error(
        app.post_raw("/v1/messages", "{nope").await,
        400,
        "invalid_request_error",
    )
    .await;
    let no_max = json!({"model": "mock/default", "messages": [{"role": "user", "content": "Hi"}]});
    anthropic_error(
        app.post("/v1/messages", &no_max).await,
        400,
        "invalid_request_error",
    )
    .await;
    anthropic_error(
        app.post("/v1/messages", &request("nope/x", true)).await,
        404,
        "not_found_error",
    )
    .await;
    let upstream = FakeUpstream::start(Reply::Status {
        status: 529,
        body: String::from_utf8(fixture("anthropic", "error_529.json").to_vec()).unwrap(),
        retry_after: None,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    anthropic_error(
        app.post("/v1/messages", &request("anthropic/claude", true))
            .await,
        529,
        "overloaded_error",
    )
    .await;
}
