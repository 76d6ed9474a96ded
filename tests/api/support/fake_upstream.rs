//! A scriptable OpenAI-compatible upstream on port 0: replays byte chunks, answers errors,
//! stalls, and records requests and connections the proxy closed early.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 SSE: these chunks, `gap` apart, then the end of the body (or, with `hang`, an
    /// open connection that sends nothing more).
    Stream {
        chunks: Vec<Bytes>,
        gap: Duration,
        hang: bool,
    },
    /// An HTTP error before any event.
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// 200 and headers, then nothing at all.
    Silent,
    /// A content chunk `tok{n} ` every `gap`, forever (until the proxy hangs up).
    Endless { gap: Duration },
    /// 200 with one JSON body (a model that cannot stream).
    Json(String),
}

#[derive(Clone)]
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    /// Replies for the next requests, in order; the last one answers every request after.
    replies: Mutex<Vec<Reply>>,
    requests: Mutex<Vec<(Option<String>, Value)>>,
    paths: Mutex<Vec<String>>,
    /// Response bodies dropped before they were fully sent: the proxy closed the connection.
    cut: watch::Sender<usize>,
}

/// Counts a body as cut unless it reached its natural end.
struct CutGuard {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for CutGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.cut.send_modify(|n| *n += 1);
        }
    }
}

pub fn openai_chunk(text: &str) -> Bytes {
    let chunk = serde_json::json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "fake",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}],
    });
    Bytes::from(format!("data: {chunk}\n\n"))
}

impl FakeUpstream {
    pub async fn start(reply: Reply) -> Self {
        Self::start_sequence(vec![reply]).await
    }

    /// Answers the first request with `replies[0]`, the second with `replies[1]`, ..., and
    /// every later one with the last.
    pub async fn start_sequence(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty());
        let shared = Arc::new(Shared {
            replies: Mutex::new(replies),
            requests: Mutex::new(Vec::new()),
            paths: Mutex::new(Vec::new()),
            cut: watch::Sender::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .route("/v1/messages", post(answer))
            .route("/v1/audio/transcriptions", post(answer))
            .route("/v1beta/models/{*rest}", post(answer))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, shared }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://host:port`, for APIs with other path prefixes.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what later requests get.
    pub fn set_reply(&self, reply: Reply) {
        *self.shared.replies.lock().unwrap() = vec![reply];
    }

    /// Path and query of each request received.
    pub fn paths(&self) -> Vec<String> {
        self.shared.paths.lock().unwrap().clone()
    }

    /// Bodies of the requests received, with their `authorization` header.
    pub fn requests(&self) -> Vec<(Option<String>, Value)> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn cut_count(&self) -> usize {
        *self.shared.cut.borrow()
    }

    /// Waits until `n` responses were cut by the proxy; false if that did not happen in time.
    pub async fn wait_cut(&self, n: usize, within: Duration) -> bool {
        let mut rx = self.shared.cut.subscribe();
        tokio::time::timeout(within, rx.wait_for(|c| *c >= n))
            .await
            .is_ok()
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    // Each API puts its key in its own header.
    let auth = ["authorization", "x-api-key", "x-goog-api-key"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared.paths.lock().unwrap().push(uri.to_string());
    // Multipart (audio) bodies are kept as text, for checks on their fields.
    let json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    shared.requests.lock().unwrap().push((auth, json));
    let reply = {
        let mut replies = shared.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.remove(0)
        } else {
            replies[0].clone()
        }
    };
    let mut guard = CutGuard {
        shared: Arc::clone(&shared),
        finished: false,
    };
    let body = match reply {
        Reply::Status {
            status,
            body,
            retry_after,
        } => {
            guard.finished = true;
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            if let Some(secs) = retry_after {
                response.headers_mut().insert("retry-after", secs.into());
            }
            return response;
        }
        Reply::Stream { chunks, gap, hang } => Body::from_stream(async_stream::stream! {
            let mut guard = guard;
            for (i, chunk) in chunks.into_iter().enumerate() {
                if i > 0 && !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                yield Ok::<_, std::convert::Infallible>(chunk);
            }
            if hang {
                std::future::pending::<()>().await;
            }
            guard.finished = true;
        }),
        Reply::Json(body) => {
            guard.finished = true;
            let mut response = Response::new(Body::from(body));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            return response;
        }
        Reply::Silent => Body::from_stream(async_stream::stream! {
            let _guard = guard;
            std::future::pending::<()>().await;
            yield Ok::<_, std::convert::Infallible>(Bytes::new());
        }),
        Reply::Endless { gap } => Body::from_stream(async_stream::stream! {
            let _guard = guard;
            for n in 1.. {
                yield Ok::<_, std::convert::Infallible>(openai_chunk(&format!("tok{n} ")));
                tokio::time::sleep(gap).await;
            }
        }),
    };
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    response
}
