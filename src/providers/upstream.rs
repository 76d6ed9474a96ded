//! What every HTTP+SSE adapter shares: sending the request (connect errors and error statuses
//! become client-safe errors) and decoding the SSE body with the adapter's [`Decoder`].

use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::{
    LineError, ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream, split_lines,
};

/// Where an HTTP upstream is and how to reach it (the same for every API).
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// Up to and including the API version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Longest upstream SSE line accepted (one JSON chunk).
    pub max_line_bytes: usize,
}

impl UpstreamConfig {
    /// `<base_url>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url.trim_end_matches('/'))
    }

    /// The HTTP client every adapter uses.
    pub fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .build()
    }
}

/// Appends `items` to the last turn when the role repeats (Anthropic and Gemini both want
/// roles to alternate); `field` is the list's name (`content`, `parts`).
pub fn append_turn(
    turns: &mut Vec<serde_json::Value>,
    role: &str,
    field: &str,
    items: Vec<serde_json::Value>,
) {
    if items.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut().filter(|t| t["role"] == role) {
        if let Some(existing) = last[field].as_array_mut() {
            existing.extend(items);
            return;
        }
    }
    turns.push(serde_json::json!({"role": role, field: items}));
}

/// An adapter's pure conversion, one upstream SSE event at a time.
pub trait Decoder: Send + 'static {
    /// Native events for one event (`name` is its SSE `event:` field, "message" by default).
    /// An empty result means the upstream is alive but had nothing to append.
    fn event(&mut self, name: &str, data: &str) -> Result<Vec<ProviderEvent>, ProviderError>;

    /// The body ended: `Done` if the upstream's protocol allows ending here, else an error.
    fn end(&mut self) -> Result<ProviderEvent, ProviderError>;
}

/// Sends `call`; connection failures and non-2xx answers become [`ProviderError`]s, with
/// the credentials the request carried cut out of their messages (an upstream may echo them).
pub async fn send(call: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
    let (client, request) = call.build_split();
    let request = request.map_err(|e| {
        ProviderError::new(
            ProviderErrorKind::Connect,
            format!("cannot build the upstream request: {}", causes(&e)),
        )
    })?;
    let secrets = credentials(&request);
    let response = client.execute(request).await.map_err(|e| {
        ProviderError::new(
            ProviderErrorKind::Connect,
            format!("upstream unreachable: {}", causes(&e)),
        )
        .redacted(&secrets)
    })?;
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(status_error(response).await.redacted(&secrets))
    }
}

/// The credential values a request carries in its headers.
fn credentials(request: &reqwest::Request) -> Vec<String> {
    ["authorization", "x-api-key", "x-goog-api-key"]
        .iter()
        .filter_map(|name| request.headers().get(*name)?.to_str().ok())
        .map(|value| {
            value
                .strip_prefix("Bearer ")
                .unwrap_or(value)
                .trim()
                .to_owned()
        })
        .filter(|value| value.len() >= 8)
        .collect()
}

fn causes(e: &reqwest::Error) -> String {
    let mut cause = std::error::Error::source(e);
    let mut parts = Vec::new();
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    if parts.is_empty() {
        "connection failed".to_owned()
    } else {
        parts.join(": ")
    }
}

/// `{"error": {"message": ...}}`: the shape OpenAI, Anthropic and Gemini error bodies share.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

/// Turns an upstream error response into a client-safe error.
async fn status_error(response: reqwest::Response) -> ProviderError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.error.message)
        .unwrap_or_else(|| body.chars().take(300).collect());
    let message = match status {
        // Upstream auth messages can echo part of the proxy's key: never pass them on.
        401 | 403 => format!("the upstream rejected tokenrelay's credentials (HTTP {status})"),
        _ => format!(
            "upstream returned HTTP {status}: {}",
            detail.chars().take(500).collect::<String>()
        ),
    };
    ProviderError {
        kind: ProviderErrorKind::Status(status),
        message,
        retry_after,
    }
}

/// The thin wrapper every adapter shares: body bytes in, provider events out, ending with
/// `Done` or an error. Events that append nothing come out as heartbeats.
pub fn decode_sse<S, E, D>(body: S, max_line: usize, mut decoder: D) -> ProviderStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
    D: Decoder,
{
    let lines = Box::pin(split_lines(Box::pin(body), max_line));
    let mut events = lines.eventsource();
    async_stream::stream! {
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    yield Err(frame_error(e));
                    return;
                }
            };
            match decoder.event(&event.event, &event.data) {
                Ok(items) if items.is_empty() => yield Ok(ProviderEvent::Heartbeat),
                Ok(items) => {
                    for item in items {
                        let done = matches!(item, ProviderEvent::Done { .. });
                        yield Ok(item);
                        if done {
                            return;
                        }
                    }
                }
                Err(e) => {
                    yield Err(e);
                    return;
                }
            }
        }
        yield decoder.end();
    }
    .boxed()
}

fn frame_error<E: std::fmt::Display>(e: EventStreamError<LineError<E>>) -> ProviderError {
    match e {
        EventStreamError::Transport(LineError::Transport(e)) => ProviderError::new(
            ProviderErrorKind::Truncated,
            format!("upstream connection failed mid-stream: {e}"),
        ),
        EventStreamError::Transport(e) => {
            ProviderError::new(ProviderErrorKind::InvalidResponse, e.to_string())
        }
        EventStreamError::Utf8(_) | EventStreamError::Parser(_) => ProviderError::new(
            ProviderErrorKind::InvalidResponse,
            "upstream sent malformed server-sent events",
        ),
    }
}

/// `null` where a list or number is expected means "none"/0, as most SDKs read it.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
