//! The timed mock upstream: an OpenAI-compatible `/v1/chat/completions` whose model name says
//! how many tokens to send and how far apart (`<N>t-<D>ms`, `-gated` to wait for the bench's
//! go). Every token's text is `<n>:<send time, unix ns> `, so a reader anywhere computes the
//! latency of each token, and which ones it missed or saw twice.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Json, State};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::BenchError;

/// How long a gated stream waits for the go before it starts anyway.
const GATE_LIMIT: Duration = Duration::from_secs(120);

/// Nanoseconds since the Unix epoch: the clock the tokens carry.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// What the mock sends for one request, spelled in the model name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MockModel {
    pub tokens: u64,
    pub gap: Duration,
    /// Waits for [`MockUpstream::open_gate`] before the first token.
    pub gated: bool,
}

impl MockModel {
    pub fn new(tokens: u64, gap_ms: u64) -> Self {
        Self {
            tokens,
            gap: Duration::from_millis(gap_ms),
            gated: false,
        }
    }

    pub fn gated(self) -> Self {
        Self {
            gated: true,
            ..self
        }
    }

    /// `<N>t-<D>ms[-gated]`.
    pub fn name(&self) -> String {
        let gate = if self.gated { "-gated" } else { "" };
        format!("{}t-{}ms{gate}", self.tokens, self.gap.as_millis())
    }

    /// Reads a name made by [`MockModel::name`], with or without a `provider/` prefix.
    pub fn parse(model: &str) -> Option<Self> {
        let model = model.rsplit('/').next().unwrap_or(model);
        let (model, gated) = match model.strip_suffix("-gated") {
            Some(rest) => (rest, true),
            None => (model, false),
        };
        let (tokens, gap) = model.strip_suffix("ms")?.split_once("t-")?;
        Some(Self {
            tokens: tokens.parse().ok()?,
            gap: Duration::from_millis(gap.parse().ok()?),
            gated,
        })
    }
}

/// The running mock, on a port-0 listener of this process; stops when dropped.
pub struct MockUpstream {
    pub addr: SocketAddr,
    gate: watch::Sender<bool>,
    stop: CancellationToken,
}

impl MockUpstream {
    pub async fn start() -> Result<Self, BenchError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (gate, _) = watch::channel(false);
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(gate.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            // Like a real upstream's streaming server: each token leaves at once (with Nagle's
            // algorithm a token waits for the reader's delayed ACK of the one before).
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serving =
                axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned());
            if let Err(e) = serving.await {
                tracing::warn!(error = %e, "mock upstream ended");
            }
        });
        Ok(Self { addr, gate, stop })
    }

    /// The base URL a direct reader posts to (`{origin}/v1/chat/completions`).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds gated streams before their first token.
    pub fn close_gate(&self) {
        self.gate.send_replace(false);
    }

    /// Lets gated streams go.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn answer(State(gate): State<watch::Sender<bool>>, Json(request): Json<Value>) -> Response {
    let model = request["model"]
        .as_str()
        .and_then(MockModel::parse)
        .unwrap_or(MockModel::new(10, 10));
    let mut gate = gate.subscribe();
    let body = async_stream::stream! {
        if model.gated {
            // A closed channel or the limit means: go anyway, the readers will see it late.
            let _ = tokio::time::timeout(GATE_LIMIT, gate.wait_for(|open| *open)).await;
        }
        for n in 1..=model.tokens {
            if n > 1 && !model.gap.is_zero() {
                tokio::time::sleep(model.gap).await;
            }
            let chunk = json!({"choices": [{"index": 0, "delta": {"content": format!("{n}:{} ", now_ns())}}]});
            yield Ok::<_, Infallible>(Bytes::from(format!("data: {chunk}\n\n")));
        }
        let usage = json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": model.tokens, "total_tokens": model.tokens + 1}});
        yield Ok(Bytes::from(format!("data: {usage}\n\ndata: [DONE]\n\n")));
    };
    let mut response = Response::new(Body::from_stream(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_round_trip() {
        let model = MockModel::new(2000, 0).gated();
        assert_eq!(model.name(), "2000t-0ms-gated");
        assert_eq!(
            MockModel::parse(&format!("openai/{}", model.name())),
            Some(model)
        );
        assert_eq!(MockModel::parse("100t-20ms"), Some(MockModel::new(100, 20)));
        assert_eq!(MockModel::parse("gpt-4o"), None);
    }
}
