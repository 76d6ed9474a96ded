//! Test harness: the real server on port 0, an SSE client, and a scriptable fake upstream.

pub mod fake_upstream;
pub mod process;
pub mod prometheus;
pub mod redis;
pub mod sse;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokenrelay::app::{AppState, serve};
use tokenrelay::config::{Config, Secrets};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use fake_upstream::{FakeUpstream, Reply};
pub use sse::{SseEvent, SseReader};

/// A running tokenrelay.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// Defaults suited to tests: short timeouts, the real grace and keepalive unless a test sets them.
pub fn test_config() -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_drain_secs: 1,
        ..Config::default()
    };
    config.upstream.first_event_timeout_secs = 5.0;
    config.upstream.idle_timeout_secs = 5.0;
    // Retries stay on, but quick; a long retry-after moves on instead of waiting.
    config.routing.backoff_ms = 10;
    config.routing.max_backoff_ms = 50;
    config.routing.max_retry_after_secs = 2;
    config
}

/// Starts tokenrelay on port 0 with `config`; OpenAI-compatible calls go to `upstream`.
pub async fn spawn_app_with(mut config: Config, upstream: Option<&FakeUpstream>) -> TestApp {
    // Every upstream API points at the fake (or, without one, at a port where nothing
    // listens, so a test that reaches for the real network fails fast).
    let base = upstream.map_or_else(|| "http://127.0.0.1:9".to_owned(), FakeUpstream::origin);
    config.upstream.openai_base_url = format!("{base}/v1");
    config.upstream.anthropic_base_url = format!("{base}/v1");
    config.upstream.gemini_base_url = format!("{base}/v1beta");
    let secrets = Secrets {
        openai_api_key: Some("sk-test-secret-key".into()),
        anthropic_api_key: Some("sk-ant-test-secret".into()),
        gemini_api_key: Some("gm-test-secret".into()),
    };
    let state = AppState::new(config, secrets).expect("valid test config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::builder().build().unwrap(),
        state,
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config(), None).await
}

pub fn chat(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say something"}],
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a background stream; returns its id and the creation answer.
    pub async fn create_stream(&self, model: &str) -> (String, Value) {
        let response = self
            .post(
                "/v1/streams",
                &json!({"kind": "chat", "request": chat(model, false)}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (body["id"].as_str().unwrap().to_owned(), body)
    }

    /// `GET /v1/streams/{id}/events` with an optional `Last-Event-ID` and extra query.
    pub async fn events(
        &self,
        id: &str,
        last_event_id: Option<&str>,
        query: &str,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .get(self.url(&format!("/v1/streams/{id}/events{query}")));
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        request.send().await.unwrap()
    }

    pub async fn status(&self, id: &str) -> Value {
        let response = self
            .client
            .get(self.url(&format!("/v1/streams/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "status of {id}");
        response.json().await.unwrap()
    }

    /// Polls the status until it leaves `running` (or the deadline passes).
    pub async fn wait_finished(&self, id: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let status = self.status(id).await;
            if status["status"] != "running" || tokio::time::Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Shuts the server down and waits for every task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
