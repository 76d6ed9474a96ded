//! Watch resume work: start a streamed chat on a running tokenrelay, hang up after a few
//! events, reconnect with `Last-Event-ID`, and check the text has no gap and no duplicate.
//!
//! ```sh
//! cargo run --release &                      # the server, mock provider, no key
//! cargo run --example resume_client          # or: -- http://host:port mock/200t-20ms 25
//! ```

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let model = args.next().unwrap_or_else(|| "mock/60t-30ms".into());
    let drop_after: usize = args.next().map_or(Ok(10), |n| n.parse())?;
    let client = reqwest::Client::new();

    let response = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Count for me"}]}))
        .send()
        .await?
        .error_for_status()?;
    let stream_id = response
        .headers()
        .get("x-stream-id")
        .and_then(|v| v.to_str().ok())
        .ok_or("no x-stream-id header")?
        .to_owned();
    println!("stream {stream_id}");

    let mut text = String::new();
    let mut last_id = String::new();
    let mut events = response.bytes_stream().eventsource();
    for _ in 0..drop_after {
        let Some(event) = events.next().await else {
            break;
        };
        let event = event?;
        last_id = event.id.clone();
        text.push_str(&content(&event.data));
    }
    drop(events);
    println!("hung up after {drop_after} events at id {last_id}: {text:?}");

    let resumed = client
        .get(format!("{base}/v1/streams/{stream_id}/events"))
        .header("last-event-id", &last_id)
        .send()
        .await?
        .error_for_status()?;
    let mut events = resumed.bytes_stream().eventsource();
    let mut first = true;
    while let Some(event) = events.next().await {
        let event = event?;
        if first {
            println!("resumed at id {}", event.id);
            first = false;
        }
        if event.data == "[DONE]" {
            println!("[DONE]");
            break;
        }
        text.push_str(&content(&event.data));
    }
    println!("full text: {text:?}");
    Ok(())
}

/// The content of one OpenAI chunk (empty for role, finish and usage chunks).
fn content(data: &str) -> String {
    serde_json::from_str::<Value>(data)
        .ok()
        .and_then(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}
