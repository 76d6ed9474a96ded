//! Store caps, the memory budget, retention and keepalives, on paused tokio time: the router
//! is called in-process so no socket waits on the real clock.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use serde_json::{Value, json};
use tokenrelay::app::AppState;
use tokenrelay::config::Config;
use tokenrelay::providers::{
    ChatRequest, MockProvider, Provider, ProviderError, ProviderStream, Providers,
};
use tokenrelay::store::{EventLog, MemoryStore};
use tower::ServiceExt;

use crate::support::chat;

fn state(config: Config) -> (AppState, MemoryStore) {
    let store = MemoryStore::new(config.limits.store_limits());
    let providers = Providers::new()
        .with(Arc::new(MockProvider::default()))
        .with(Arc::new(Stalled))
        .with(Arc::new(Panicking));
    (
        AppState::from_parts(config, Arc::new(store.clone()), providers),
        store,
    )
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = tokenrelay::http::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry_after,
    )
}

async fn create(state: &AppState, model: &str) -> (StatusCode, Value) {
    let (status, body, _) = call(
        state,
        "POST",
        "/v1/streams",
        Some(json!({"kind": "chat", "request": chat(model, false)})),
    )
    .await;
    (status, body)
}

#[tokio::test(start_paused = true)]
async fn a_stream_over_its_event_cap_ends_stream_too_large() {
    let mut config = Config::default();
    config.limits.max_stream_events = 50;
    let (state, _) = state(config);
    let (_, body) = create(&state, "mock/100t-10ms").await;
    let id = body["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, status, _) = call(&state, "GET", &format!("/v1/streams/{id}"), None).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["aggregate"]["error"]["code"], "stream_too_large");
    assert_eq!(
        status["event_count"], 50,
        "the cap includes the terminal event"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, later, _) = call(&state, "GET", &format!("/v1/streams/{id}"), None).await;
    assert_eq!(later["event_count"], 50, "the producer stopped");
}

#[tokio::test(start_paused = true)]
async fn a_stream_over_its_byte_cap_ends_stream_too_large() {
    let mut config = Config::default();
    config.limits.max_stream_bytes = 4096;
    let (state, _) = state(config);
    let (_, body) = create(&state, "mock/1000t-1ms").await;
    let id = body["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, status, _) = call(&state, "GET", &format!("/v1/streams/{id}"), None).await;
    assert_eq!(status["aggregate"]["error"]["code"], "stream_too_large");
    // About 30 bytes of JSON per delta: the cap counts event JSON, not memory overhead.
    let count = status["event_count"].as_u64().unwrap();
    assert!((100..=160).contains(&count), "{count}");
}

#[tokio::test(start_paused = true)]
async fn a_full_store_answers_503_until_a_finished_stream_can_be_evicted() {
    let mut config = Config::default();
    config.limits.memory_budget_bytes = 5000;
    let (state, store) = state(config);
    let (_, running) = create(&state, "mock/1000t-1000ms").await;
    let running = running["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(store.bytes_used() >= 5000);
    let (status, body, retry_after) = call(
        &state,
        "POST",
        "/v1/chat/completions",
        Some(chat("mock/default", true)),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "store_full");
    assert!(retry_after.is_some());
    assert_eq!(create(&state, "mock/1t-0ms").await.0, 503);

    // Once the big stream is finished it is evicted first, and new streams fit again.
    call(
        &state,
        "POST",
        &format!("/v1/streams/{running}/cancel"),
        None,
    )
    .await;
    assert_eq!(create(&state, "mock/1t-0ms").await.0, 201);
    let (events, _, _) = call(
        &state,
        "GET",
        &format!("/v1/streams/{running}/events"),
        None,
    )
    .await;
    assert_eq!(events, 404, "the evicted log is gone");
    let (_, status, _) = call(&state, "GET", &format!("/v1/streams/{running}"), None).await;
    assert_eq!(status["status"], "cancelled", "its status is kept");
    assert_eq!(status["events_available"], false);
}

#[tokio::test(start_paused = true)]
async fn finished_streams_expire_log_first_then_status() {
    let mut config = Config::default();
    config.limits.log_retention_secs = 60;
    config.limits.status_retention_secs = 600;
    let (state, store) = state(config);
    let (_, body) = create(&state, "mock/3t-0ms").await;
    let id = body["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = format!("/v1/streams/{id}/events");
    let status = format!("/v1/streams/{id}");
    assert_eq!(call(&state, "GET", &events, None).await.0, 200);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(call(&state, "GET", &events, None).await.0, 404);
    let (code, body, _) = call(&state, "GET", &status, None).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["aggregate"]["choices"][0]["text"], "tok1 tok2 tok3 ");
    tokio::time::sleep(Duration::from_secs(540)).await;
    let (code, body, _) = call(&state, "GET", &status, None).await;
    assert_eq!(code, 404);
    assert_eq!(body["error"]["code"], "stream_not_found");
    assert!(store.bytes_used() > 0);
    store.sweep().await;
    assert_eq!(store.bytes_used(), 0, "the sweep frees what expired");
}

/// An upstream that accepts the request and then never sends anything.
struct Stalled;

#[async_trait]
impl Provider for Stalled {
    fn name(&self) -> &'static str {
        "stalled"
    }
    fn accepts(&self, _: &str) -> bool {
        true
    }
    fn listed_models(&self) -> Vec<String> {
        Vec::new()
    }
    async fn chat(&self, _: &str, _: &ChatRequest) -> Result<ProviderStream, ProviderError> {
        Ok(futures::stream::pending().boxed())
    }
}

#[tokio::test(start_paused = true)]
async fn idle_subscriptions_get_a_bare_comment_line_every_keepalive_interval() {
    let mut config = Config::default();
    config.upstream.first_event_timeout_secs = 3600.0;
    let (state, _) = state(config);
    let (_, body) = create(&state, "stalled/x").await;
    let id = body["id"].as_str().unwrap();
    let request = Request::get(format!("/v1/streams/{id}/events"))
        .body(Body::empty())
        .unwrap();
    let response = tokenrelay::http::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(
        response.headers()["cache-control"],
        "no-cache, no-transform"
    );
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut body = response.into_body().into_data_stream();
    let early = tokio::time::timeout(Duration::from_millis(14_900), body.next()).await;
    assert!(early.is_err(), "nothing before the interval");
    let ping = tokio::time::timeout(Duration::from_secs(1), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        &ping[..],
        b":\n",
        "a comment line with no blank line after it"
    );
    let ping = tokio::time::timeout(Duration::from_secs(16), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&ping[..], b":\n");
    assert_eq!(state.relay.registry.subscribers(&id.parse().unwrap()), 1);
    drop(body);
    assert_eq!(
        state.relay.registry.subscribers(&id.parse().unwrap()),
        0,
        "dropping the body detaches"
    );
}

/// An upstream adapter with a bug.
struct Panicking;

#[async_trait]
impl Provider for Panicking {
    fn name(&self) -> &'static str {
        "panicking"
    }
    fn accepts(&self, _: &str) -> bool {
        true
    }
    fn listed_models(&self) -> Vec<String> {
        Vec::new()
    }
    async fn chat(&self, _: &str, _: &ChatRequest) -> Result<ProviderStream, ProviderError> {
        panic!("adapter bug");
    }
}

#[tokio::test(start_paused = true)]
async fn a_crashing_producer_still_ends_its_stream() {
    let (state, _) = state(Config::default());
    let (_, body) = create(&state, "panicking/x").await;
    let id = body["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, status, _) = call(&state, "GET", &format!("/v1/streams/{id}"), None).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["aggregate"]["error"]["code"], "internal_error");
}
