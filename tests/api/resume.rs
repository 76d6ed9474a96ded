//! SPEC §5, rule by rule, plus randomized disconnects and many concurrent subscribers.

use std::collections::HashSet;
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde_json::Value;
use tokenrelay::event::{EventBody, Format, StreamId, StreamKind};
use tokenrelay::store::{NewStream, Retention, StreamMeta};

use crate::support::{SseEvent, SseReader, TestApp, chat, spawn_app};

fn is_terminal(e: &SseEvent) -> bool {
    matches!(
        e.event.as_str(),
        "stream.completed" | "stream.failed" | "stream.cancelled"
    )
}

/// The whole log of a finished stream, read in one go.
async fn full_log(app: &TestApp, id: &str) -> Vec<SseEvent> {
    let status = app.wait_finished(id, Duration::from_secs(30)).await;
    assert_ne!(status["status"], "running");
    SseReader::new(app.events(id, None, "").await)
        .collect()
        .await
}

#[tokio::test]
async fn rule_1_unknown_streams_are_404() {
    let app = spawn_app().await;
    for id in [
        StreamId::random().to_string(),
        "st_nope".to_owned(),
        "x".repeat(300),
    ] {
        let response = app.events(&id, None, "").await;
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "stream_not_found");
    }
}

#[tokio::test]
async fn rule_2_a_position_inside_the_log_replays_what_follows_then_goes_live() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/30t-20ms").await;
    let mut first = SseReader::new(app.events(&id, None, "").await);
    let mut head = Vec::new();
    for _ in 0..5 {
        head.push(first.next().await.unwrap());
    }
    drop(first);
    let last = head.last().unwrap().id.clone();
    let rest = SseReader::new(app.events(&id, Some(&last), "").await)
        .collect()
        .await;
    // The query parameter works the same for clients that cannot set headers.
    let by_query = SseReader::new(
        app.events(&id, None, &format!("?last_event_id={last}"))
            .await,
    )
    .collect()
    .await;
    assert_eq!(rest, by_query);
    // An empty position is no position: the whole log, no reset, in every format.
    let empty = SseReader::new(app.events(&id, Some(""), "?format=openai").await)
        .collect()
        .await;
    assert!(empty.first().unwrap().id.ends_with(".1"));
    let joined: Vec<_> = head.into_iter().chain(rest).collect();
    assert_eq!(joined, full_log(&app, &id).await);
    assert!(is_terminal(joined.last().unwrap()));
}

#[tokio::test]
async fn rule_3_unusable_positions_get_reset_then_the_whole_retained_log() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/5t-0ms").await;
    let log = full_log(&app, &id).await;
    let epoch = log[0].id.split('.').next().unwrap().to_owned();
    let cases = [
        ("not-an-id", "malformed_id"),
        ("zzzzzzzzzz.2", "epoch_mismatch"),
        (&*format!("{epoch}.999"), "after_head"),
    ];
    for (position, reason) in cases {
        let mut events = SseReader::new(app.events(&id, Some(position), "").await)
            .collect()
            .await;
        let reset = events.remove(0);
        assert_eq!(reset.event, "reset", "{position}");
        let data: Value = serde_json::from_str(&reset.data).unwrap();
        assert_eq!(data["reason"], reason);
        assert_eq!(data["first"], format!("{epoch}.1"));
        assert_eq!(data["last"], log.last().unwrap().id);
        assert_eq!(data["status"], "completed");
        assert_eq!(events, log, "{position}: the whole log follows the reset");

        // Strict clients and formats without a reset event get 410 instead.
        for query in ["?strict=true", "?format=openai"] {
            let response = app.events(&id, Some(position), query).await;
            assert_eq!(response.status(), 410, "{position} {query}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "resume_unavailable");
            assert_eq!(body["error"]["reset"]["reason"], reason);
        }
    }
}

#[tokio::test]
async fn rule_3_a_position_before_a_sliding_window_gets_reset() {
    let app = spawn_app().await;
    let id = StreamId::random();
    let meta = StreamMeta {
        kind: StreamKind::Transcription,
        model: "mock/default".into(),
        provider: "mock".into(),
        owner: "anonymous".into(),
        created_at: 0,
        format: Format::Native,
        include_usage: false,
        read_token_hash: String::new(),
        write_token_hash: String::new(),
        request_hash: String::new(),
        feed: None,
        choices: 1,
    };
    let window = Retention::Window {
        max_events: 10,
        max_age: Duration::from_secs(600),
    };
    app.state
        .log()
        .create(NewStream {
            id: id.clone(),
            meta,
            retention: window,
            idempotency_key: None,
            leased: false,
        })
        .await
        .unwrap();
    for i in 0..30 {
        let delta = EventBody::TranscriptDelta(tokenrelay::event::Text {
            text: format!("w{i} "),
            ..Default::default()
        });
        app.state.log().append(&id, vec![delta]).await.unwrap();
    }
    let id = id.to_string();
    // No position means "from the start", which is gone: never a silent partial replay.
    let mut reader = SseReader::new(app.events(&id, None, "").await);
    let first = reader.next().await.unwrap();
    assert_eq!(first.event, "reset");
    assert!(first.data.contains("before_window"));
    let epoch = first.id.split('.').next().unwrap().to_owned();
    assert_eq!(reader.next().await.unwrap().id, format!("{epoch}.21"));
    let mut reader = SseReader::new(app.events(&id, Some(&format!("{epoch}.5")), "").await);
    let reset = reader.next().await.unwrap();
    assert_eq!(reset.event, "reset");
    assert!(reset.data.contains("before_window"));
    assert_eq!(
        reset.id,
        format!("{epoch}.20"),
        "resuming from the reset starts the window"
    );
    assert_eq!(reader.next().await.unwrap().id, format!("{epoch}.21"));
    let mut reader = SseReader::new(app.events(&id, Some(&format!("{epoch}.20")), "").await);
    assert_eq!(reader.next().await.unwrap().id, format!("{epoch}.21"));
}

#[tokio::test]
async fn rule_4_holding_the_terminal_event_is_204_and_one_behind_gets_it() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/3t-0ms").await;
    let log = full_log(&app, &id).await;
    let terminal = log.last().unwrap();
    let response = app.events(&id, Some(&terminal.id), "").await;
    assert_eq!(response.status(), 204);
    let behind = &log[log.len() - 2].id;
    let rest = SseReader::new(app.events(&id, Some(behind), "").await)
        .collect()
        .await;
    assert_eq!(rest, vec![terminal.clone()]);
}

/// Reads with random disconnects until the terminal event; returns what was seen and how
/// many connections it took.
async fn read_with_drops(app: &TestApp, id: &str, rng: &mut SmallRng) -> (Vec<SseEvent>, usize) {
    let mut seen: Vec<SseEvent> = Vec::new();
    let mut connections = 0;
    loop {
        let last = seen.last().map(|e| e.id.clone());
        let response = app.events(id, last.as_deref(), "").await;
        connections += 1;
        if response.status() == 204 {
            return (seen, connections);
        }
        let mut reader = SseReader::new(response);
        let take = rng.random_range(0..12);
        for _ in 0..take {
            match reader.next().await {
                Some(event) => {
                    let end = is_terminal(&event);
                    seen.push(event);
                    if end {
                        return (seen, connections);
                    }
                }
                None => break,
            }
        }
    }
}

#[tokio::test]
async fn rule_5_random_disconnects_during_replay_and_live_lose_and_repeat_nothing() {
    let app = spawn_app().await;
    let mut rng = SmallRng::seed_from_u64(2026);
    let mut total = 0;
    // A live stream (the reader keeps up, so most drops are live) and an instant one (every
    // reconnect is a replay of a finished log).
    for model in ["mock/1500t-1ms", "mock/1500t-0ms"] {
        let (id, _) = app.create_stream(model).await;
        let (seen, connections) = read_with_drops(&app, &id, &mut rng).await;
        total += connections;
        let ids: HashSet<_> = seen.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids.len(), seen.len(), "{model}: an id was delivered twice");
        assert_eq!(seen, full_log(&app, &id).await, "{model}: gap or reorder");
    }
    assert!(total >= 200, "only {total} reconnections");
}

#[tokio::test]
async fn a_hundred_concurrent_subscribers_get_the_identical_sequence() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/300t-2ms").await;
    let readers: Vec<_> = (0..100)
        .map(|_| {
            let url = app.url(&format!("/v1/streams/{id}/events"));
            let client = app.client.clone();
            tokio::spawn(async move {
                let response = client.get(url).send().await.unwrap();
                SseReader::new(response).collect().await
            })
        })
        .collect();
    let log = full_log(&app, &id).await;
    assert_eq!(log.len(), 300 + 3);
    for reader in readers {
        assert_eq!(reader.await.unwrap(), log);
    }
}

#[tokio::test]
async fn an_openai_client_resumes_in_its_own_format_without_repeating_anything() {
    let app = spawn_app().await;
    let response = app
        .post("/v1/chat/completions", &chat("mock/40t-5ms", true))
        .await;
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut reader = SseReader::new(response);
    let mut frames = Vec::new();
    for _ in 0..10 {
        frames.push(reader.next().await.unwrap());
    }
    drop(reader);
    let last = frames.last().unwrap().id.clone();
    frames.extend(
        SseReader::new(app.events(&id, Some(&last), "").await)
            .collect()
            .await,
    );
    let mut text = String::new();
    let mut roles = 0;
    for frame in &frames[..frames.len() - 1] {
        let chunk: Value = serde_json::from_str(&frame.data).unwrap();
        let delta = &chunk["choices"][0]["delta"];
        roles += usize::from(delta.get("role").is_some());
        text.push_str(delta["content"].as_str().unwrap_or(""));
    }
    let want: String = (1..=40).map(|i| format!("tok{i} ")).collect();
    assert_eq!(text, want);
    assert_eq!(roles, 1, "the role chunk is not sent again on resume");
    assert_eq!(frames.last().unwrap().data, "[DONE]");
}
