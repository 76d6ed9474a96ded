//! The reading side: SSE readers that time every token of the mock (`<n>:<send ns>`) and a
//! tally that says which tokens a reader missed or saw twice. Used against the mock directly
//! (OpenAI chunks) and against tokenrelay (OpenAI chunks or native events).

use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};

use super::BenchError;
use super::upstream::now_ns;

/// One token as a reader saw it: its number and its latency in µs.
pub type Timed = (u64, f64);

/// An HTTP client for `connections` concurrent streams to one host.
pub fn http_client(connections: usize) -> Result<reqwest::Client, BenchError> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .build()?)
}

/// Which tokens of `1..=expected` are missing, and how many arrivals were extra (a repeat or
/// a number outside the range).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub missing: u64,
    pub duplicated: u64,
}

impl Tally {
    pub fn of(seen: impl IntoIterator<Item = u64>, expected: u64) -> Self {
        let mut counts = vec![0u64; usize::try_from(expected).unwrap_or(0) + 1];
        let mut tally = Self::default();
        for n in seen {
            match usize::try_from(n).ok().and_then(|i| counts.get_mut(i)) {
                Some(count) if n > 0 => *count += 1,
                _ => tally.duplicated += 1,
            }
        }
        for &count in counts.iter().skip(1) {
            match count {
                0 => tally.missing += 1,
                c => tally.duplicated += c - 1,
            }
        }
        tally
    }

    pub fn add(&mut self, other: Self) {
        self.missing += other.missing;
        self.duplicated += other.duplicated;
    }

    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.duplicated == 0
    }
}

/// `<n>:<send ns>` → (n, latency in µs from then to now).
pub fn timed_token(text: &str) -> Option<Timed> {
    let (n, sent) = text.trim().split_once(':')?;
    let sent: u128 = sent.parse().ok()?;
    Some((n.parse().ok()?, micros_since(sent)))
}

/// µs from a unix-ns instant to now.
pub fn micros_since(sent_ns: u128) -> f64 {
    now_ns().saturating_sub(sent_ns) as f64 / 1000.0
}

/// A chat completion request for `model`, streamed.
pub fn chat_request(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "go"}]})
}

/// Streams one chat completion from `origin` (the mock or tokenrelay, both OpenAI chunks)
/// and times every token.
pub async fn read_chat(
    client: &reqwest::Client,
    origin: &str,
    model: &str,
) -> Result<Vec<Timed>, BenchError> {
    let response = client
        .post(format!("{origin}/v1/chat/completions"))
        .json(&chat_request(model, true))
        .send()
        .await?;
    let mut events = sse(response)?;
    let mut tokens = Vec::new();
    while let Some(event) = events.next().await {
        let event = event?;
        if event.data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(&event.data)
            .map_err(|e| BenchError::Answer(format!("chunk is not JSON: {e}")))?;
        if chunk.get("error").is_some() {
            return Err(BenchError::Answer(format!("stream failed: {chunk}")));
        }
        if let Some(token) = chunk["choices"][0]["delta"]["content"]
            .as_str()
            .and_then(timed_token)
        {
            tokens.push(token);
        }
    }
    Ok(tokens)
}

/// An SSE response as a stream of events.
pub type Events = BoxStream<'static, Result<Event, BenchError>>;

/// Checks a 200 SSE answer and parses its body into events.
pub fn sse(response: reqwest::Response) -> Result<Events, BenchError> {
    let status = response.status();
    if !status.is_success() {
        return Err(BenchError::Answer(format!("status {status}")));
    }
    Ok(response
        .bytes_stream()
        .eventsource()
        .map(|event| event.map_err(|e| BenchError::Answer(format!("SSE: {e}"))))
        .boxed())
}

/// `GET /v1/streams/{id}/events` (native format, from the start), once the headers are in.
pub async fn subscribe(
    client: &reqwest::Client,
    origin: &str,
    id: &str,
) -> Result<Events, BenchError> {
    let response = client
        .get(format!("{origin}/v1/streams/{id}/events"))
        .send()
        .await?;
    sse(response)
}

/// The sequence number of a native event id (`<epoch>.<seq>`).
pub fn seq_of(event: &Event) -> Option<u64> {
    event.id.rsplit('.').next()?.parse().ok()
}

/// The timed token of a native `message.delta` event.
pub fn native_token(event: &Event) -> Option<Timed> {
    if event.event != "message.delta" {
        return None;
    }
    let data: Value = serde_json::from_str(&event.data).ok()?;
    timed_token(data["text"].as_str()?)
}

/// True for the last event of a stream.
pub fn is_terminal(event: &Event) -> bool {
    matches!(
        event.event.as_str(),
        "stream.completed" | "stream.failed" | "stream.cancelled"
    )
}

/// Creates a background stream (`{"kind":"chat"}` with `model`, or `{"kind":"agent"}` for
/// None); returns its id and write token.
pub async fn create_stream(
    client: &reqwest::Client,
    origin: &str,
    model: Option<&str>,
) -> Result<(String, String), BenchError> {
    let body = match model {
        Some(model) => json!({"kind": "chat", "request": chat_request(model, false)}),
        None => json!({"kind": "agent"}),
    };
    let response = client
        .post(format!("{origin}/v1/streams"))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let created: Value = response.json().await?;
    let field = |name: &str| created[name].as_str().map(str::to_owned);
    match (status.as_u16(), field("id"), field("write_token")) {
        (201, Some(id), write) => Ok((id, write.unwrap_or_default())),
        _ => Err(BenchError::Answer(format!(
            "creating a stream: {status} {created}"
        ))),
    }
}

/// Publishes events into an agent stream.
pub async fn publish(
    client: &reqwest::Client,
    origin: &str,
    id: &str,
    token: &str,
    body: &Value,
) -> Result<(), BenchError> {
    let response = client
        .post(format!("{origin}/v1/streams/{id}/events"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(BenchError::Answer(format!(
            "publish: {status} {}",
            response.text().await.unwrap_or_default()
        )))
    }
}

/// Polls a stream's status until it is no longer `running`.
pub async fn wait_finished(
    client: &reqwest::Client,
    origin: &str,
    id: &str,
) -> Result<String, BenchError> {
    loop {
        let status: Value = client
            .get(format!("{origin}/v1/streams/{id}"))
            .send()
            .await?
            .json()
            .await?;
        match status["status"].as_str() {
            Some("running") => tokio::time::sleep(Duration::from_millis(20)).await,
            Some(done) => return Ok(done.to_owned()),
            None => return Err(BenchError::Answer(format!("stream status: {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_missing_and_repeated_tokens() {
        assert!(Tally::of([1, 2, 3], 3).is_clean());
        assert_eq!(
            Tally::of([1, 3, 3, 9], 3),
            Tally {
                missing: 1,
                duplicated: 2
            }
        );
        assert_eq!(
            Tally::of([], 2),
            Tally {
                missing: 2,
                duplicated: 0
            }
        );
    }

    #[test]
    fn reads_a_timed_token() {
        let (n, latency) = timed_token(&format!("7:{} ", now_ns())).unwrap();
        assert_eq!(n, 7);
        assert!(latency >= 0.0);
        assert!(timed_token("hello").is_none());
    }
}
