//! Agent streams: publishing (native and AG-UI), atomic batches, server-side state, late
//! joiners, concurrent publishers, presence, idle timeout, and who may read or write.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::support::{SseEvent, SseReader, TestApp, spawn_app, spawn_app_with, test_config};

const EVERY_TYPE: &str = include_str!("../fixtures/agui/every_type.json");

/// A new agent stream: its id, read token and write token.
async fn create_agent(app: &TestApp, body: Value) -> (String, String, String) {
    let response = app.post("/v1/streams", &body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["kind"], "agent");
    let field = |name: &str| created[name].as_str().unwrap().to_owned();
    (field("id"), field("read_token"), field("write_token"))
}

async fn publish(app: &TestApp, id: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/streams/{id}/events")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Publishes and expects success; returns the ids it got.
async fn publish_ok(app: &TestApp, id: &str, token: &str, body: &Value) -> Vec<String> {
    let response = publish(app, id, token, body).await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    serde_json::from_value(answer["ids"].clone()).unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

async fn read_all(app: &TestApp, id: &str, query: &str) -> Vec<SseEvent> {
    SseReader::new(app.events(id, None, query).await)
        .collect()
        .await
}

#[tokio::test]
async fn agui_events_come_back_with_their_names_ids_and_fields() {
    let app = spawn_app().await;
    let (id, _, write) = create_agent(&app, json!({"kind": "agent"})).await;
    let sent: Vec<Value> = serde_json::from_str(EVERY_TYPE).unwrap();
    // In two publishes, so the run spans calls as a real agent's does.
    let ids_a = publish_ok(&app, &id, &write, &Value::Array(sent[..20].to_vec())).await;
    let ids_b = publish_ok(&app, &id, &write, &Value::Array(sent[20..].to_vec())).await;
    assert_eq!(ids_a.len() + ids_b.len(), sent.len());
    assert!(ids_a[0].ends_with(".2"), "stream.started is event 1");

    let agui = read_all(&app, &id, "?format=agui").await;
    let read: Vec<Value> = agui
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(read, sent);
    // Every AG-UI frame carries the resume id of the native event it renders.
    let frame_ids: Vec<&str> = agui.iter().map(|e| e.id.as_str()).collect();
    let published: Vec<&str> = ids_a.iter().chain(&ids_b).map(String::as_str).collect();
    assert_eq!(frame_ids, published);

    let native = read_all(&app, &id, "").await;
    assert_eq!(native.first().unwrap().event, "stream.started");
    assert_eq!(native.last().unwrap().event, "stream.completed");
    let status = app.status(&id).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["usage"]["total_tokens"], 15);
}

#[tokio::test]
async fn a_batch_with_one_bad_event_appends_nothing_and_names_it() {
    let app = spawn_app().await;
    let (id, _, write) = create_agent(&app, json!({"kind": "agent"})).await;
    let batch = json!([
        {"type": "STEP_STARTED", "stepName": "search"},
        {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
        {"type": "TEXT_MESSAGE_CONTENT", "delta": "no message id"},
        {"type": "STEP_FINISHED", "stepName": "search"},
    ]);
    let (status, error) = error_of(publish(&app, &id, &write, &batch).await).await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "invalid_event");
    assert_eq!(error["param"], "[2].messageId");
    assert!(
        error["message"].as_str().unwrap().contains("event 2"),
        "{error}"
    );
    let after = app.status(&id).await;
    assert_eq!(after["event_count"], 1, "only stream.started");
    assert!(after["aggregate"].get("steps").is_none(), "{after}");
}

/// A random JSON Patch that applies to `state` (`{"items": [..], "counts": {..}}`).
fn random_patch(rng: &mut SmallRng, state: &Value) -> Value {
    let items = state["items"].as_array().map_or(0, Vec::len);
    let key = format!("k{}", rng.random_range(0..5));
    match rng.random_range(0..5) {
        0 => json!([{"op": "add", "path": "/items/-", "value": rng.random_range(0..1000)}]),
        1 if items > 0 => {
            json!([{"op": "remove", "path": format!("/items/{}", rng.random_range(0..items))}])
        }
        2 => {
            json!([{"op": "add", "path": format!("/counts/{key}"), "value": rng.random_range(0..9)}])
        }
        3 if items > 0 => json!([
            {"op": "test", "path": "/items/0", "value": state["items"][0]},
            {"op": "replace", "path": "/items/0", "value": "first"},
        ]),
        _ => {
            json!([{"op": "replace", "path": "/note", "value": format!("n{}", rng.random::<u32>())}])
        }
    }
}

#[tokio::test]
async fn state_is_the_snapshot_with_every_delta_applied_and_bad_patches_change_nothing() {
    let app = spawn_app().await;
    let initial = json!({"items": [], "counts": {}, "note": ""});
    let (id, read, write) = create_agent(&app, json!({"kind": "agent", "state": initial})).await;
    let mut local = initial.clone();
    let mut rng = SmallRng::seed_from_u64(5);
    let mut joined = None;
    for n in 0..50 {
        let patch = random_patch(&mut rng, &local);
        let ops: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
        json_patch::patch(&mut local, &ops).unwrap();
        // Half AG-UI, half native: both are the same state operation.
        let event = if n % 2 == 0 {
            json!({"type": "STATE_DELTA", "delta": patch})
        } else {
            json!({"type": "state.delta", "data": {"patch": patch}})
        };
        publish_ok(&app, &id, &write, &event).await;
        if n == 24 {
            // A dashboard joins late: the status gives it the state and where to tail from.
            joined = Some(app.status(&id).await);
        }
    }
    let status = app.status(&id).await;
    assert_eq!(status["aggregate"]["state"], local);

    // A patch that does not apply is refused whole: state and log stay as they were.
    let bad = json!([
        {"type": "STATE_DELTA", "delta": [{"op": "replace", "path": "/note", "value": "x"}]},
        {"type": "STATE_DELTA", "delta": [{"op": "remove", "path": "/missing"}]},
    ]);
    let (code, error) = error_of(publish(&app, &id, &write, &bad).await).await;
    assert_eq!(code, 409);
    assert_eq!(error["code"], "state_patch_failed");
    assert_eq!(error["param"], "[1].delta");
    let unchanged = app.status(&id).await;
    assert_eq!(unchanged["aggregate"]["state"], local);
    assert_eq!(unchanged["event_count"], status["event_count"]);

    let done = json!({"type": "RUN_FINISHED", "threadId": "t", "runId": "r"});
    publish_ok(&app, &id, &write, &done).await;

    // The late joiner's state plus the events after its last event id is the live state.
    let joined = joined.unwrap();
    let mut state = joined["aggregate"]["state"].clone();
    let since = joined["last_event_id"].as_str().unwrap();
    let tail = app
        .client
        .get(app.url(&format!("/v1/streams/{id}/events?token={read}")))
        .header("last-event-id", since)
        .send()
        .await
        .unwrap();
    let tail = SseReader::new(tail).collect().await;
    assert_eq!(tail.len(), 25 + 1, "25 deltas and the end");
    for event in &tail {
        if event.event == "state.delta" {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            let ops: json_patch::Patch = serde_json::from_value(data["patch"].clone()).unwrap();
            json_patch::patch(&mut state, &ops).unwrap();
        }
    }
    assert_eq!(state, local);
}

#[tokio::test]
async fn concurrent_publishers_each_land_once_in_their_order() {
    let app = spawn_app().await;
    let (id, _, write) = create_agent(&app, json!({"kind": "agent"})).await;
    let mut publishers = Vec::new();
    for p in 0..10 {
        let (client, url, write) = (
            app.client.clone(),
            app.url(&format!("/v1/streams/{id}/events")),
            write.clone(),
        );
        publishers.push(tokio::spawn(async move {
            for n in 0..100 {
                let event = json!({"type": "CUSTOM", "name": format!("p{p}"), "value": n});
                let response = client
                    .post(&url)
                    .bearer_auth(&write)
                    .json(&event)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let done = json!({"type": "stream.completed", "data": {"finish_reason": "stop"}});
    publish_ok(&app, &id, &write, &done).await;

    let events = read_all(&app, &id, "").await;
    assert_eq!(events.len(), 1 + 1000 + 1);
    for (i, event) in events.iter().enumerate() {
        assert!(
            event.id.ends_with(&format!(".{}", i + 1)),
            "{} at {i}",
            event.id
        );
    }
    let mut seen = vec![Vec::new(); 10];
    for event in events.iter().filter(|e| e.event == "custom") {
        let data: Value = serde_json::from_str(&event.data).unwrap();
        let p: usize = data["name"].as_str().unwrap()[1..].parse().unwrap();
        seen[p].push(data["value"].as_u64().unwrap());
    }
    for values in seen {
        assert_eq!(values, (0..100).collect::<Vec<u64>>());
    }
}

/// The next `presence` count a subscriber hears.
async fn next_presence(reader: &mut SseReader) -> u64 {
    loop {
        let event = reader.next().await.expect("stream still open");
        if event.event == "presence" {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            return data["subscribers"].as_u64().unwrap();
        }
    }
}

#[tokio::test]
async fn presence_follows_subscribers_as_they_come_and_go() {
    // A client that went away is noticed when a write to it fails: keepalives make that soon.
    let mut config = test_config();
    config.keepalive_secs = 1;
    let app = spawn_app_with(config, None).await;
    let (id, read, write) = create_agent(&app, json!({"kind": "agent"})).await;
    let query = format!("?presence=true&token={read}");
    let mut watcher = SseReader::new(app.events(&id, None, &query).await);
    assert_eq!(next_presence(&mut watcher).await, 1);
    let second = app.events(&id, None, "").await;
    assert_eq!(next_presence(&mut watcher).await, 2);
    assert_eq!(app.status(&id).await["subscribers"], 2);
    drop(second);
    assert_eq!(next_presence(&mut watcher).await, 1);
    assert_eq!(app.status(&id).await["subscribers"], 1);

    // AG-UI readers get presence as CUSTOM events, after RUN_STARTED.
    let run = json!({"type": "RUN_STARTED", "threadId": "t", "runId": "r"});
    publish_ok(&app, &id, &write, &run).await;
    let agui = app.events(&id, None, "?presence=true&format=agui").await;
    let mut agui = SseReader::new(agui);
    let first: Value = serde_json::from_str(&agui.next().await.unwrap().data).unwrap();
    assert_eq!(
        first["type"], "RUN_STARTED",
        "AG-UI readers get RUN_STARTED first"
    );
    let second: Value = serde_json::from_str(&agui.next().await.unwrap().data).unwrap();
    assert_eq!(
        second,
        json!({"type": "CUSTOM", "name": "presence", "value": {"subscribers": 2}})
    );
    // Presence is never stored: the log holds only what was published.
    assert_eq!(app.status(&id).await["event_count"], 2);
    let (code, error) = error_of(app.events(&id, None, "?presence=true&format=openai").await).await;
    assert_eq!((code, error["code"].as_str()), (400, Some("invalid_query")));
}

#[tokio::test]
async fn a_quiet_agent_stream_ends_with_agent_idle_timeout() {
    let mut config = test_config();
    config.agents.idle_timeout_secs = 0.4;
    let app = spawn_app_with(config, None).await;
    let (id, _, write) = create_agent(&app, json!({"kind": "agent"})).await;
    let reader = SseReader::new(app.events(&id, None, "").await);
    // Publishing keeps it alive past the idle time.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        publish_ok(
            &app,
            &id,
            &write,
            &json!({"type": "CUSTOM", "name": "tick"}),
        )
        .await;
    }
    assert_eq!(app.status(&id).await["status"], "running");
    let events = reader.collect().await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "stream.failed");
    let data: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(data["error"]["code"], "agent_idle_timeout");
    let (code, error) = error_of(
        publish(
            &app,
            &id,
            &write,
            &json!({"type": "CUSTOM", "name": "late"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (code, error["code"].as_str()),
        (409, Some("stream_finished"))
    );
}

#[tokio::test]
async fn nothing_is_appended_after_the_end() {
    let app = spawn_app().await;
    let (id, _, write) = create_agent(&app, json!({"kind": "agent"})).await;
    let error = json!({"type": "RUN_ERROR", "message": "tool crashed"});
    publish_ok(&app, &id, &write, &error).await;
    let late = json!([{"type": "CUSTOM", "name": "late"}]);
    let (code, body) = error_of(publish(&app, &id, &write, &late).await).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (409, Some("stream_finished"))
    );
    let status = app.status(&id).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["aggregate"]["error"]["code"], "agent_error");

    let (other, _, other_write) = create_agent(&app, json!({"kind": "agent"})).await;
    let cancel = app
        .client
        .post(app.url(&format!("/v1/streams/{other}/cancel")))
        .bearer_auth(&other_write)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    let (code, _) = error_of(publish(&app, &other, &other_write, &late).await).await;
    assert_eq!(code, 409);
    let events = read_all(&app, &other, "?format=agui").await;
    let last: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(last["type"], "RUN_ERROR");
}

#[tokio::test]
async fn tokens_open_only_their_own_stream_and_only_write_tokens_publish() {
    let app = spawn_app().await;
    let (a, read_a, write_a) = create_agent(&app, json!({"kind": "agent"})).await;
    let (b, _, write_b) = create_agent(&app, json!({"kind": "agent"})).await;
    let event = json!({"type": "CUSTOM", "name": "x"});

    let anonymous = app
        .client
        .post(app.url(&format!("/v1/streams/{a}/events")))
        .json(&event)
        .send()
        .await
        .unwrap();
    let (code, error) = error_of(anonymous).await;
    assert_eq!((code, error["code"].as_str()), (401, Some("missing_token")));
    let (code, error) = error_of(publish(&app, &a, &read_a, &event).await).await;
    assert_eq!(
        (code, error["code"].as_str()),
        (403, Some("write_token_required"))
    );
    // Another stream's token: the same 404 as a stream that does not exist.
    let (code, error) = error_of(publish(&app, &a, &write_b, &event).await).await;
    assert_eq!(
        (code, error["code"].as_str()),
        (404, Some("stream_not_found"))
    );
    let missing = "st_00000000000000000000000000";
    let (code, _) = error_of(publish(&app, missing, &write_b, &event).await).await;
    assert_eq!(code, 404);

    // A write token reads its own stream, and nobody else's.
    let own = app.events(&b, None, &format!("?token={write_b}")).await;
    assert_eq!(own.status(), 200);
    drop(own);
    let (code, _) = error_of(app.events(&a, None, &format!("?token={write_b}")).await).await;
    assert_eq!(code, 404);
    let status = app
        .client
        .get(app.url(&format!("/v1/streams/{a}")))
        .bearer_auth(&write_b)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 404);
    let own = app.events(&a, None, &format!("?token={read_a}")).await;
    assert_eq!(own.status(), 200, "a read token reads");
    drop(own);
    let cancel = app
        .client
        .post(app.url(&format!("/v1/streams/{a}/cancel?token={read_a}")))
        .send()
        .await
        .unwrap();
    let (code, error) = error_of(cancel).await;
    assert_eq!(
        (code, error["code"].as_str()),
        (403, Some("write_token_required"))
    );
    let _ = write_a;

    // A chat stream takes no published events, even with its own write token.
    let (chat, created) = app.create_stream("mock/3t-0ms").await;
    let chat_write = created["write_token"].as_str().unwrap();
    let (code, error) = error_of(publish(&app, &chat, chat_write, &event).await).await;
    assert_eq!(
        (code, error["code"].as_str()),
        (409, Some("not_an_agent_stream"))
    );
}

#[tokio::test]
async fn a_late_reader_of_a_long_run_is_told_the_start_is_gone_and_gets_the_status_instead() {
    let mut config = test_config();
    config.agents.window_events = 5;
    let app = spawn_app_with(config, None).await;
    let (id, _, write) = create_agent(&app, json!({"kind": "agent", "state": {"n": 0}})).await;
    for n in 1..=20 {
        let patch = json!([{"op": "replace", "path": "/n", "value": n}]);
        publish_ok(
            &app,
            &id,
            &write,
            &json!({"type": "STATE_DELTA", "delta": patch}),
        )
        .await;
    }
    let done = json!({"type": "RUN_FINISHED", "threadId": "t", "runId": "r"});
    publish_ok(&app, &id, &write, &done).await;

    // The whole state is in the status document, though the log kept only 5 events.
    let status = app.status(&id).await;
    assert_eq!(status["aggregate"]["state"], json!({"n": 20}));
    let native = read_all(&app, &id, "").await;
    assert_eq!(native[0].event, "reset");
    let reset: Value = serde_json::from_str(&native[0].data).unwrap();
    assert_eq!(reset["reason"], "before_window");
    assert_eq!(native.len(), 1 + 5);
    let agui = read_all(&app, &id, "?format=agui").await;
    let first: Vec<Value> = agui
        .iter()
        .take(2)
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(first[0]["type"], "RUN_STARTED");
    assert_eq!(
        (first[1]["type"].as_str(), first[1]["name"].as_str()),
        (Some("CUSTOM"), Some("reset"))
    );
    let (code, _) = error_of(app.events(&id, None, "?strict=true").await).await;
    assert_eq!(code, 410);
}
