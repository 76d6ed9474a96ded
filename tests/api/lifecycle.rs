//! Disconnect is not cancel; the grace window; cancel; shutdown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_upstream::openai_chunk;
use crate::support::{
    FakeUpstream, Reply, SseReader, chat, spawn_app, spawn_app_with, test_config,
};

fn counted_answer(tokens: usize) -> Vec<axum::body::Bytes> {
    let mut chunks: Vec<_> = (1..=tokens)
        .map(|i| openai_chunk(&format!("tok{i} ")))
        .collect();
    chunks.push(axum::body::Bytes::from_static(b"data: [DONE]\n\n"));
    chunks
}

fn content(frames: &[crate::support::SseEvent]) -> String {
    frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(&f.data).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn a_client_that_drops_and_resumes_gets_the_whole_answer_from_one_upstream_call() {
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks: counted_answer(30),
        gap: Duration::from_millis(20),
        hang: false,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut reader = SseReader::new(response);
    let mut frames = vec![
        reader.next().await.unwrap(),
        reader.next().await.unwrap(),
        reader.next().await.unwrap(),
    ];
    drop(reader);
    // Nobody is attached while the generation goes on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.status(&id).await["subscribers"], 0);
    let last = frames.last().unwrap().id.clone();
    frames.extend(
        SseReader::new(app.events(&id, Some(&last), "").await)
            .collect()
            .await,
    );
    let want: String = (1..=30).map(|i| format!("tok{i} ")).collect();
    assert_eq!(content(&frames), want);
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    assert_eq!(app.status(&id).await["status"], "completed");
    assert_eq!(upstream.requests().len(), 1, "one upstream call, paid once");
    assert_eq!(upstream.cut_count(), 0, "the upstream call was never cut");
}

#[tokio::test]
async fn with_nobody_attached_for_the_grace_window_the_upstream_is_cancelled() {
    let upstream = FakeUpstream::start(Reply::Endless {
        gap: Duration::from_millis(20),
    })
    .await;
    let mut config = test_config();
    config.detach_grace_secs = 1;
    let app = spawn_app_with(config, Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut reader = SseReader::new(response);
    reader.next().await.unwrap();
    drop(reader);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(upstream.cut_count(), 0, "still inside the grace window");
    assert_eq!(app.status(&id).await["status"], "running");
    assert!(
        upstream.wait_cut(1, Duration::from_secs(5)).await,
        "upstream connection closed"
    );
    let status = app.wait_finished(&id, Duration::from_secs(5)).await;
    assert_eq!(status["status"], "cancelled");
    assert_eq!(status["aggregate"]["cancel_reason"], "abandoned");
}

#[tokio::test]
async fn a_subscriber_returning_within_the_grace_window_keeps_the_generation_alive() {
    let upstream = FakeUpstream::start(Reply::Endless {
        gap: Duration::from_millis(20),
    })
    .await;
    let mut config = test_config();
    config.detach_grace_secs = 1;
    let app = spawn_app_with(config, Some(&upstream)).await;
    let response = app
        .post("/v1/chat/completions", &chat("openai/gpt-4o", true))
        .await;
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(response);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut back = SseReader::new(app.events(&id, None, "").await);
    back.next().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        upstream.cut_count(),
        0,
        "an attached subscriber keeps it running"
    );
    assert_eq!(app.status(&id).await["status"], "running");
    drop(back);
}

#[tokio::test]
async fn cancel_closes_the_upstream_at_once_and_is_idempotent() {
    let upstream = FakeUpstream::start(Reply::Endless {
        gap: Duration::from_millis(20),
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let (id, _) = app.create_stream("openai/gpt-4o").await;
    let mut reader = SseReader::new(app.events(&id, None, "").await);
    reader.next().await.unwrap();
    let started = std::time::Instant::now();
    let response = app
        .post(&format!("/v1/streams/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    assert!(
        upstream.wait_cut(1, Duration::from_secs(1)).await,
        "upstream closed at once"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut rest = Vec::new();
    while let Some(event) = reader.next().await {
        rest.push(event);
    }
    assert_eq!(rest.last().unwrap().event, "stream.cancelled");
    assert!(rest.last().unwrap().data.contains("\"user\""));

    let again = app
        .post(&format!("/v1/streams/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "cancelled");
    let log = SseReader::new(app.events(&id, None, "").await)
        .collect()
        .await;
    assert_eq!(
        log.iter().filter(|e| e.event == "stream.cancelled").count(),
        1
    );
    assert_eq!(upstream.cut_count(), 1);
}

#[tokio::test]
async fn cancelling_a_finished_stream_changes_nothing() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/3t-0ms").await;
    assert_eq!(
        app.wait_finished(&id, Duration::from_secs(5)).await["status"],
        "completed"
    );
    let response = app
        .post(&format!("/v1/streams/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "completed"
    );
}

#[tokio::test]
async fn with_the_memory_store_subscribers_stay_through_the_drain_for_their_terminal_event() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/1000t-50ms").await;
    let mut reader = SseReader::new(app.events(&id, None, "").await);
    let mut last = reader.next().await.unwrap();
    let state = app.state.clone();
    let stopping = tokio::spawn(app.stop());
    // No other instance has this stream: the client is kept until it ends, here interrupted
    // at the end of the drain (tests/api/operations.rs checks a shared store closes at once).
    while let Some(event) = reader.next().await {
        last = event;
    }
    assert_eq!(last.event, "stream.failed");
    stopping.await.unwrap();
    let info = state.log().info(&id.parse().unwrap()).await.unwrap();
    assert_eq!(info.head.status, tokenrelay::event::StreamStatus::Failed);
    assert_eq!(info.aggregate.error.unwrap().code, "interrupted");
}

#[tokio::test]
async fn a_client_that_stops_reading_cannot_hold_shutdown_hostage() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let body = chat("mock/1000000t-0ms", true).to_string();
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    // Never read: the server's writes stall once the socket buffers are full.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
    assert!(
        stopped.is_ok(),
        "shutdown finished despite the stalled client"
    );
    drop(socket);
}
