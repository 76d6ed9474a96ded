//! A test-side SSE client: parses the response body like a browser would, keeping raw bytes
//! for assertions on framing.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::stream::BoxStream;

#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: String,
}

pub struct SseReader {
    events: BoxStream<'static, Result<eventsource_stream::Event, String>>,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "SSE answer status");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let events = response
            .bytes_stream()
            .eventsource()
            .map(|e| e.map_err(|e| e.to_string()))
            .boxed();
        Self { events }
    }

    /// The next event, or None when the server ended the response.
    pub async fn next(&mut self) -> Option<SseEvent> {
        let event = tokio::time::timeout(Duration::from_secs(20), self.events.next())
            .await
            .expect("no SSE event within 20 s")?;
        let event = event.expect("SSE transport error");
        Some(SseEvent {
            id: event.id,
            event: event.event,
            data: event.data,
        })
    }

    /// Everything until the server ends the response.
    pub async fn collect(mut self) -> Vec<SseEvent> {
        let mut all = Vec::new();
        while let Some(event) = self.next().await {
            all.push(event);
        }
        all
    }
}

/// Checks a native log read from seq 1: ids are dense (`<epoch>.1`, `.2`, ...) and the
/// mock's tokens arrive in order, none missing or repeated. Returns how many tokens there were.
pub fn assert_dense_tokens(events: &[SseEvent]) -> usize {
    for (i, event) in events.iter().enumerate() {
        assert!(
            event.id.ends_with(&format!(".{}", i + 1)),
            "{} at {i}",
            event.id
        );
    }
    let tokens: Vec<String> = events
        .iter()
        .filter(|e| e.event == "message.delta")
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            data["text"].as_str().unwrap().to_owned()
        })
        .collect();
    let want: Vec<String> = (1..=tokens.len()).map(|i| format!("tok{i} ")).collect();
    assert_eq!(tokens, want);
    tokens.len()
}
