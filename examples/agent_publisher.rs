//! A simulated research agent publishing its progress to a running tokenrelay: steps, a
//! reasoning note, tool calls with streamed arguments and results, state deltas, and the
//! answer streamed word by word, all as AG-UI events (plus one native event, to show both
//! forms mix). Watch it from other terminals with the commands it prints.
//!
//! ```sh
//! cargo run --release &                       # the server (memory store, no key)
//! cargo run --example agent_publisher         # or: -- http://host:port 200
//! ```
//!
//! The optional second argument is the pause between events in milliseconds (default 150).

use std::time::Duration;

use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

struct Agent {
    client: reqwest::Client,
    publish_url: String,
    write_token: String,
    pace: Duration,
}

impl Agent {
    /// Publishes one event or a batch; a refusal stops the agent with tokenrelay's error.
    async fn publish(&self, events: Value) -> Result<Value, Error> {
        tokio::time::sleep(self.pace).await;
        let response = self
            .client
            .post(&self.publish_url)
            .bearer_auth(&self.write_token)
            .json(&events)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("publish refused ({status}): {body}").into());
        }
        Ok(body)
    }

    async fn step(&self, name: &str, started: bool) -> Result<(), Error> {
        let kind = if started {
            "STEP_STARTED"
        } else {
            "STEP_FINISHED"
        };
        self.publish(json!({"type": kind, "stepName": name}))
            .await?;
        Ok(())
    }

    async fn progress(&self, percent: u32, phase: &str) -> Result<(), Error> {
        let patch = json!([
            {"op": "replace", "path": "/progress", "value": percent},
            {"op": "replace", "path": "/phase", "value": phase},
        ]);
        self.publish(json!({"type": "STATE_DELTA", "delta": patch}))
            .await?;
        Ok(())
    }

    /// A tool call: its arguments streamed in fragments, then its result.
    async fn tool(&self, id: &str, name: &str, args: &Value, result: &str) -> Result<(), Error> {
        self.publish(json!({"type": "TOOL_CALL_START", "toolCallId": id, "toolCallName": name}))
            .await?;
        let args = args.to_string();
        let (head, tail) = args.split_at(args.len() / 2);
        for fragment in [head, tail] {
            self.publish(json!({"type": "TOOL_CALL_ARGS", "toolCallId": id, "delta": fragment}))
                .await?;
        }
        self.publish(json!([
            {"type": "TOOL_CALL_END", "toolCallId": id},
            {"type": "TOOL_CALL_RESULT", "messageId": format!("{id}-result"), "toolCallId": id, "content": result, "role": "tool"},
        ]))
        .await?;
        Ok(())
    }

    /// A text message streamed word by word.
    async fn say(&self, id: &str, text: &str) -> Result<(), Error> {
        self.publish(json!({"type": "TEXT_MESSAGE_START", "messageId": id, "role": "assistant"}))
            .await?;
        for word in text.split_inclusive(' ') {
            self.publish(json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": id, "delta": word}))
                .await?;
        }
        self.publish(json!({"type": "TEXT_MESSAGE_END", "messageId": id}))
            .await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let pace_ms: u64 = args.next().map_or(Ok(150), |n| n.parse())?;
    let client = reqwest::Client::new();

    let initial = json!({"question": "Which Rust crates parse SSE?", "progress": 0, "phase": "starting", "sources": []});
    let response = client
        .post(format!("{base}/v1/streams"))
        .json(&json!({"kind": "agent", "name": "research-agent", "state": initial}))
        .send()
        .await?;
    let created: Value = response.error_for_status()?.json().await?;
    let text = |key: &str| created[key].as_str().unwrap_or_default().to_owned();
    let (id, read_token) = (text("id"), text("read_token"));
    println!("agent stream {id}\n");
    println!(
        "watch it (AG-UI):  curl -N '{base}/v1/streams/{id}/events?format=agui&token={read_token}'"
    );
    println!(
        "watch it (native): curl -N '{base}/v1/streams/{id}/events?presence=true&token={read_token}'"
    );
    println!("its status:        curl -s '{base}/v1/streams/{id}?token={read_token}'");
    println!("in a browser:      {base}/?view=agent&stream={id}&token={read_token}\n");

    let agent = Agent {
        client: client.clone(),
        publish_url: format!("{base}/v1/streams/{id}/events"),
        write_token: text("write_token"),
        pace: Duration::from_millis(pace_ms),
    };
    let run = json!({"type": "RUN_STARTED", "threadId": "research-1", "runId": id});
    agent.publish(run).await?;

    agent.step("plan", true).await?;
    agent
        .publish(json!([
            {"type": "REASONING_MESSAGE_START", "messageId": "plan-notes", "role": "reasoning"},
            {"type": "REASONING_MESSAGE_CONTENT", "messageId": "plan-notes", "delta": "Search crates.io, read the two most used, compare."},
            {"type": "REASONING_MESSAGE_END", "messageId": "plan-notes"},
        ]))
        .await?;
    agent.progress(10, "planned").await?;
    agent.step("plan", false).await?;

    agent.step("search", true).await?;
    let found = r#"["eventsource-stream","sse-stream"]"#;
    agent
        .tool(
            "call-search",
            "web_search",
            &json!({"query": "rust sse parser crate"}),
            found,
        )
        .await?;
    let add = |name: &str| json!({"op": "add", "path": "/sources/-", "value": name});
    let sources = json!([add("eventsource-stream"), add("sse-stream")]);
    agent
        .publish(json!({"type": "STATE_DELTA", "delta": sources}))
        .await?;
    agent.progress(40, "searched").await?;
    agent.step("search", false).await?;

    agent.step("read", true).await?;
    for (n, source) in ["eventsource-stream", "sse-stream"].iter().enumerate() {
        let result = format!("{source}: parses text/event-stream into events");
        let call = format!("call-fetch-{n}");
        agent
            .tool(&call, "fetch_docs", &json!({"crate": source}), &result)
            .await?;
        agent.progress(50 + 15 * n as u32, "reading").await?;
    }
    agent.step("read", false).await?;

    agent.step("write", true).await?;
    agent
        .say(
            "answer",
            "Two crates parse SSE well: eventsource-stream wraps any byte stream, and \
             sse-stream does the same with a smaller API. Both handle split UTF-8 and CRLF.",
        )
        .await?;
    agent.step("write", false).await?;
    // Native events mix with AG-UI ones: this is tokenrelay's own `usage` event.
    let usage = json!({"input_tokens": 812, "output_tokens": 164, "total_tokens": 976});
    agent
        .publish(json!({"type": "usage", "data": usage}))
        .await?;
    agent.progress(100, "done").await?;
    let finished = agent
        .publish(json!({"type": "RUN_FINISHED", "threadId": "research-1", "runId": id, "result": {"sources": 2}}))
        .await?;
    println!("finished at {}", finished["last_event_id"]);

    let status: Value = client
        .get(format!("{base}/v1/streams/{id}?token={read_token}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let aggregate = &status["aggregate"];
    println!("status: {}", status["status"]);
    println!("state:  {}", aggregate["state"]);
    println!("steps:  {}", aggregate["steps"]);
    println!(
        "tools:  {}",
        aggregate["tool_calls"].as_array().map_or(0, Vec::len)
    );
    println!("answer: {}", aggregate["messages"][0]["content"]);
    Ok(())
}
