//! Several instances on one Redis (SPEC §8): cross-instance resume and cancel, producer
//! loss, fencing, and Redis losing data or going away.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenrelay::event::{EventBody, MessageDelta, StreamId};
use tokenrelay::store::{EventLog, RedisConfig, RedisStore, StoreError, StoreLimits};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::support::fake_upstream::openai_chunk;
use crate::support::process::Instance;
use crate::support::redis::{PrivateRedis, fresh_prefix, url};
use crate::support::sse::assert_dense_tokens;
use crate::support::{FakeUpstream, Reply, SseEvent, SseReader, chat, spawn_app_with, test_config};

fn instance_config(redis_url: &str, prefix: &str, lease_secs: f64) -> String {
    format!(
        "store = \"{redis_url}\"\nshutdown_drain_secs = 1\n[redis]\nkey_prefix = \"{prefix}\"\nlease_secs = {lease_secs}\n"
    )
}

async fn two_instances(upstream: &FakeUpstream, lease_secs: f64) -> (Instance, Instance) {
    let config = instance_config(&url(), &fresh_prefix(), lease_secs);
    let env = [
        ("OPENAI_BASE_URL", upstream.base_url()),
        ("OPENAI_API_KEY", "sk-test".to_owned()),
    ];
    let a = Instance::start(&config, &env).await;
    let b = Instance::start(&config, &env).await;
    (a, b)
}

async fn create(client: &reqwest::Client, instance: &Instance, model: &str) -> String {
    let response = client
        .post(instance.url("/v1/streams"))
        .json(&json!({"kind": "chat", "request": chat(model, false)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn subscribe(
    client: &reqwest::Client,
    instance: &Instance,
    id: &str,
    last: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(instance.url(&format!("/v1/streams/{id}/events")));
    if let Some(last) = last {
        request = request.header("last-event-id", last);
    }
    request.send().await.unwrap()
}

fn counted(tokens: usize) -> Vec<axum::body::Bytes> {
    let mut chunks: Vec<_> = (1..=tokens)
        .map(|i| openai_chunk(&format!("tok{i} ")))
        .collect();
    chunks.push(axum::body::Bytes::from_static(b"data: [DONE]\n\n"));
    chunks
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn a_stream_made_on_a_is_read_on_b_resumed_on_a_and_cancelled_from_b() {
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks: counted(40),
        gap: Duration::from_millis(25),
        hang: false,
    })
    .await;
    let (a, b) = two_instances(&upstream, 15.0).await;
    let client = reqwest::Client::new();

    let id = create(&client, &a, "openai/gpt-4o").await;
    let mut on_b = SseReader::new(subscribe(&client, &b, &id, None).await);
    let mut seen: Vec<SseEvent> = Vec::new();
    for _ in 0..10 {
        seen.push(on_b.next().await.unwrap());
    }
    drop(on_b);
    let last = seen.last().unwrap().id.clone();
    seen.extend(
        SseReader::new(subscribe(&client, &a, &id, Some(&last)).await)
            .collect()
            .await,
    );
    assert_eq!(seen.last().unwrap().event, "stream.completed");
    let whole = SseReader::new(subscribe(&client, &b, &id, None).await)
        .collect()
        .await;
    assert_eq!(
        seen, whole,
        "resumed across instances = one uninterrupted read"
    );
    assert_eq!(upstream.requests().len(), 1);

    // Cancel reaches the producer on A from B, and A hangs up on the upstream.
    upstream.set_reply(Reply::Endless {
        gap: Duration::from_millis(20),
    });
    let id = create(&client, &a, "openai/gpt-4o").await;
    let mut on_b = SseReader::new(subscribe(&client, &b, &id, None).await);
    on_b.next().await.unwrap();
    let cancelled = client
        .post(b.url(&format!("/v1/streams/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    assert!(
        upstream.wait_cut(1, Duration::from_secs(3)).await,
        "A closed the upstream"
    );
    let mut rest = Vec::new();
    while let Some(event) = on_b.next().await {
        rest.push(event);
    }
    assert_eq!(rest.last().unwrap().event, "stream.cancelled");
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn killing_the_producing_instance_ends_its_streams_producer_lost_within_the_lease() {
    let upstream = FakeUpstream::start(Reply::Endless {
        gap: Duration::from_millis(20),
    })
    .await;
    let lease = 2.0;
    let (mut a, b) = two_instances(&upstream, lease).await;
    let client = reqwest::Client::new();
    let id = create(&client, &a, "openai/gpt-4o").await;
    let mut on_b = SseReader::new(subscribe(&client, &b, &id, None).await);
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(on_b.next().await.unwrap());
    }
    a.kill_9().await;
    let killed = Instant::now();
    while let Some(event) = on_b.next().await {
        seen.push(event);
    }
    let waited = killed.elapsed();
    eprintln!("producer_lost {waited:?} after kill -9 (lease {lease} s)");
    let last = seen.last().unwrap();
    assert_eq!(last.event, "stream.failed");
    assert!(last.data.contains("producer_lost"), "{}", last.data);
    assert!(
        waited < Duration::from_secs_f64(lease + 1.2),
        "took {waited:?}"
    );
    // Every event before the failure is intact: dense ids, tokens in order.
    assert_dense_tokens(&seen);
}

fn store(url: String, prefix: &str, lease: Duration) -> RedisStore {
    let limits = StoreLimits::default();
    RedisStore::new(
        RedisConfig {
            url,
            prefix: prefix.to_owned(),
            lease,
        },
        limits,
    )
    .unwrap()
}

fn delta(text: &str) -> EventBody {
    EventBody::MessageDelta(MessageDelta {
        text: text.into(),
        index: 0,
        ..Default::default()
    })
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn a_producer_whose_lease_was_taken_over_cannot_append() {
    let prefix = fresh_prefix();
    // The zombie: holds a lease it never renews (no background tasks).
    let zombie = store(url(), &prefix, Duration::from_millis(500));
    let id = StreamId::random();
    zombie
        .create(crate::store_contract::new_leased(&id))
        .await
        .unwrap();
    zombie.append(&id, vec![delta("a")]).await.unwrap();
    // Another instance notices the expired lease and takes over.
    let survivor = store(url(), &prefix, Duration::from_millis(500));
    survivor.start(&TaskTracker::new(), CancellationToken::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !zombie.head(&id).await.unwrap().status.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the expired lease was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rejected = zombie.append(&id, vec![delta("late")]).await;
    assert!(
        matches!(rejected, Err(StoreError::Finished | StoreError::Fenced)),
        "{rejected:?}"
    );
    let info = survivor.info(&id).await.unwrap();
    assert_eq!(info.head.last_seq, 2, "nothing after producer_lost");
    assert_eq!(info.aggregate.error.unwrap().code, "producer_lost");

    // A fence taken while the stream still runs rejects the old holder too.
    let id = StreamId::random();
    zombie
        .create(crate::store_contract::new_leased(&id))
        .await
        .unwrap();
    let client = ::redis::Client::open(url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::cmd("HSET")
        .arg(format!("{prefix}:{{{id}}}:m"))
        .arg("fence")
        .arg("999999")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        zombie.append(&id, vec![delta("x")]).await,
        Err(StoreError::Fenced)
    );
    assert_eq!(zombie.head(&id).await.unwrap().last_seq, 0);
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn every_lease_is_renewed_past_the_first_batch_and_past_a_broken_key() {
    // More streams than one renewal batch (200), with a lease short enough that a missed
    // renewal of any of them is reaped within the wait (renewals come every 500 ms: a second
    // of slack for a loaded CI machine). One stream's record is clobbered by something else
    // writing to Redis: only that one may lose its lease.
    let prefix = fresh_prefix();
    let lease = Duration::from_millis(1500);
    let producer = store(url(), &prefix, lease);
    let reaper = store(url(), &prefix, lease);
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    producer.start(&tasks, stop.clone());
    reaper.start(&tasks, stop.clone());
    let mut ids = Vec::new();
    for _ in 0..450 {
        let id = StreamId::random();
        producer
            .create(crate::store_contract::new_leased(&id))
            .await
            .unwrap();
        ids.push(id);
    }
    let broken = ids.remove(0);
    let client = ::redis::Client::open(url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::cmd("SET")
        .arg(format!("{prefix}:{{{broken}}}:m"))
        .arg("not a hash")
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(lease * 4).await;
    for id in &ids {
        let head = reaper.head(id).await.unwrap();
        assert!(!head.status.is_finished(), "{id} was reaped: {head:?}");
        producer
            .append(id, vec![delta("still here")])
            .await
            .unwrap();
    }
    stop.cancel();
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn redis_losing_the_data_gives_resuming_clients_reset_never_mixed_data() {
    let redis = PrivateRedis::start().await;
    let mut config = test_config();
    config.store = redis.url();
    let app = spawn_app_with(config, None).await;
    let (id, _) = app.create_stream("mock/300t-20ms").await;
    let mut reader = SseReader::new(app.events(&id, None, "").await);
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(reader.next().await.unwrap());
    }
    let old = held.last().unwrap().id.clone();
    let old_epoch = old.split('.').next().unwrap().to_owned();
    redis.flush_all().await;
    // The producer's next append finds the log gone and starts it again under a new epoch.
    let deadline = Instant::now() + Duration::from_secs(5);
    let new_epoch = loop {
        let response = app
            .client
            .get(app.url(&format!("/v1/streams/{id}")))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            let status: Value = response.json().await.unwrap();
            if let Some(last) = status["last_event_id"].as_str() {
                let epoch = last.split('.').next().unwrap().to_owned();
                if epoch != old_epoch {
                    break epoch;
                }
            }
        }
        assert!(Instant::now() < deadline, "the log was never recreated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The old reader does not continue into the new log.
    while let Some(event) = reader.next().await {
        assert!(event.id.starts_with(&old_epoch), "mixed data: {}", event.id);
    }
    let mut resumed = SseReader::new(app.events(&id, Some(&old), "").await);
    let reset = resumed.next().await.unwrap();
    assert_eq!(reset.event, "reset");
    assert!(reset.data.contains("epoch_mismatch"), "{}", reset.data);
    let next = resumed.next().await.unwrap();
    assert_eq!(next.id, format!("{new_epoch}.1"));
    let strict = app.events(&id, Some(&old), "?format=openai").await;
    assert_eq!(strict.status(), 410);
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn redis_going_away_and_coming_back_is_survived_without_a_restart() {
    let mut redis = PrivateRedis::start().await;
    let mut config = test_config();
    config.store = redis.url();
    let app = spawn_app_with(config, None).await;
    let (id, _) = app.create_stream("mock/400t-20ms").await;
    let mut reader = SseReader::new(app.events(&id, None, "").await);
    let first = reader.next().await.unwrap();

    redis.stop().await;
    // Open subscribers end cleanly (no terminal event: they resume later).
    let mut last = first;
    while let Some(event) = reader.next().await {
        last = event;
    }
    assert!(!last.event.starts_with("stream.") || last.event == "stream.started");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let create = app
        .post(
            "/v1/streams",
            &json!({"kind": "chat", "request": chat("mock/3t-0ms", false)}),
        )
        .await;
    assert_eq!(create.status(), 503);
    assert_eq!(
        create.json::<Value>().await.unwrap()["error"]["code"],
        "store_unavailable"
    );
    let chat_call = app
        .post("/v1/chat/completions", &chat("mock/3t-0ms", true))
        .await;
    assert_eq!(chat_call.status(), 503);

    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Normal service: a new stream runs to completion.
    let (fresh, _) = app.create_stream("mock/3t-0ms").await;
    assert_eq!(
        app.wait_finished(&fresh, Duration::from_secs(5)).await["status"],
        "completed"
    );
    // The stream that ran through the outage lost its data with Redis: resuming gets reset.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.events(&id, Some(&last.id), "").await;
        if response.status() == 200 {
            let mut resumed = SseReader::new(response);
            assert_eq!(resumed.next().await.unwrap().event, "reset");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the surviving producer never recreated its log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn a_stalled_redis_never_makes_the_producer_append_twice() {
    let redis = PrivateRedis::start().await;
    let mut config = test_config();
    config.store = redis.url();
    let app = spawn_app_with(config, None).await;
    let (id, _) = app.create_stream("mock/200t-10ms").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Appends time out (3 s) while Redis is frozen; it runs them when it thaws, and the
    // producer retries the same batch meanwhile.
    redis.freeze(true);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    redis.freeze(false);
    let status = app.wait_finished(&id, Duration::from_secs(20)).await;
    assert_eq!(status["status"], "completed");
    let log = SseReader::new(app.events(&id, None, "").await)
        .collect()
        .await;
    assert_eq!(assert_dense_tokens(&log), 200);
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn a_finished_streams_aggregate_outlives_its_log() {
    let mut config = test_config();
    config.store = url();
    config.redis.key_prefix = fresh_prefix();
    config.limits.log_retention_secs = 1;
    let app = spawn_app_with(config, None).await;
    let response = app
        .post("/v1/chat/completions", &chat("mock/3t-0ms", false))
        .await;
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        app.events(&id, None, "").await.status(),
        404,
        "the log expired"
    );
    let status = app.status(&id).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["events_available"], false);
    assert_eq!(status["aggregate"]["choices"][0]["text"], "tok1 tok2 tok3 ");
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn agents_publishing_through_two_instances_share_one_ordered_log_and_state() {
    let mut config = test_config();
    config.store = url();
    config.redis.key_prefix = fresh_prefix();
    let a = spawn_app_with(config.clone(), None).await;
    let b = spawn_app_with(config, None).await;
    let created: Value = a
        .post("/v1/streams", &json!({"kind": "agent", "state": {}}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let write = created["write_token"].as_str().unwrap().to_owned();
    // Ten publishers, half on each instance, each appending to its own list in the state:
    // every compare-and-append race between the instances is retried, never lost or doubled.
    let mut publishers = Vec::new();
    for p in 0..10 {
        let app = if p % 2 == 0 { &a } else { &b };
        let (client, url, write) = (
            app.client.clone(),
            app.url(&format!("/v1/streams/{id}/events")),
            write.clone(),
        );
        publishers.push(tokio::spawn(async move {
            for n in 0..30 {
                let mut ops = vec![json!({"op": "add", "path": format!("/p{p}/-"), "value": n})];
                if n == 0 {
                    ops.insert(
                        0,
                        json!({"op": "add", "path": format!("/p{p}"), "value": []}),
                    );
                }
                let event = json!({"type": "STATE_DELTA", "delta": ops, "publisher": p});
                let response = client
                    .post(&url)
                    .bearer_auth(&write)
                    .json(&event)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let done = json!({"type": "RUN_FINISHED", "threadId": "t", "runId": "r"});
    let response = b
        .client
        .post(b.url(&format!("/v1/streams/{id}/events")))
        .bearer_auth(&write)
        .json(&done)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let expected: Value = (0..10)
        .map(|p| (format!("p{p}"), json!((0..30).collect::<Vec<u32>>())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    for app in [&a, &b] {
        let status = app.wait_finished(&id, Duration::from_secs(5)).await;
        assert_eq!(status["status"], "completed");
        assert_eq!(status["aggregate"]["state"], expected);
    }
    let events = SseReader::new(a.events(&id, None, "").await)
        .collect()
        .await;
    assert_eq!(
        events.len(),
        1 + 1 + 300 + 1,
        "started, initial state, deltas, end"
    );
    for (i, event) in events.iter().enumerate() {
        assert!(
            event.id.ends_with(&format!(".{}", i + 1)),
            "{} at {i}",
            event.id
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn an_agent_stream_outlives_its_creating_instance_and_still_times_out() {
    let mut config = test_config();
    config.store = url();
    config.redis.key_prefix = fresh_prefix();
    config.agents.idle_timeout_secs = 0.4;
    let a = spawn_app_with(config.clone(), None).await;
    let b = spawn_app_with(config, None).await;
    let created: Value = a
        .post("/v1/streams", &json!({"kind": "agent"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    // A is redeployed: its idle watch goes with it, and the agent never publishes again.
    a.stop().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(b.status(&id).await["status"], "running");
    // A dashboard tailing it on B is enough for B to take the watch over.
    let events = SseReader::new(b.events(&id, None, "").await)
        .collect()
        .await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "stream.failed");
    assert!(last.data.contains("agent_idle_timeout"), "{}", last.data);
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn a_feeds_segments_sent_to_two_instances_are_transcribed_once_in_order() {
    let mut config = test_config();
    config.store = url();
    config.redis.key_prefix = fresh_prefix();
    let a = spawn_app_with(config.clone(), None).await;
    let b = spawn_app_with(config, None).await;
    let created: Value = a
        .post(
            "/v1/streams",
            &json!({"kind": "transcription", "model": "mock/3t-10ms"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let write = created["write_token"].as_str().unwrap().to_owned();
    let send = |app: &crate::support::TestApp, n: u64| {
        app.client
            .post(app.url(&format!("/v1/streams/{id}/audio?segment={n}")))
            .bearer_auth(&write)
            .body(crate::transcriptions::wav(300))
            .send()
    };
    // Every segment to both instances at once: each is transcribed once, by one of them.
    for n in 0..6 {
        let (x, y) = tokio::join!(send(&a, n), send(&b, n));
        let (x, y) = (x.unwrap(), y.unwrap());
        let statuses = [x.status().as_u16(), y.status().as_u16()];
        let bodies = [
            x.json::<Value>().await.unwrap(),
            y.json::<Value>().await.unwrap(),
        ];
        let transcribed = bodies
            .iter()
            .filter(|b| b["status"] == "transcribed")
            .count();
        assert_eq!(transcribed, 1, "segment {n}: {statuses:?} {bodies:?}");
    }
    let finished = b
        .client
        .post(b.url(&format!("/v1/streams/{id}/finish")))
        .bearer_auth(&write)
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), 200);
    let events = SseReader::new(a.events(&id, None, "").await)
        .collect()
        .await;
    let segments: Vec<u64> = events
        .iter()
        .filter(|e| e.event == "transcript.delta")
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).unwrap()["segment"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        segments,
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]
    );
    assert_eq!(b.status(&id).await["aggregate"]["segments"], 6);
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn a_segment_sent_to_two_instances_calls_the_upstream_once_and_order_holds_across_them() {
    let fixture = std::fs::read(format!(
        "{}/tests/fixtures/openai_transcription/with_done_marker.sse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let slow = Reply::Stream {
        chunks: fixture
            .chunks(64)
            .map(axum::body::Bytes::copy_from_slice)
            .collect(),
        gap: Duration::from_millis(15),
        hang: false,
    };
    let upstream = FakeUpstream::start(slow).await;
    let mut config = test_config();
    config.store = url();
    config.redis.key_prefix = fresh_prefix();
    let a = spawn_app_with(config.clone(), Some(&upstream)).await;
    let b = spawn_app_with(config, Some(&upstream)).await;
    let created: Value = a
        .post(
            "/v1/streams",
            &json!({"kind": "transcription", "model": "openai/gpt-4o-transcribe"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let write = created["write_token"].as_str().unwrap().to_owned();
    let send = |app: &crate::support::TestApp, n: u64| {
        app.client
            .post(app.url(&format!("/v1/streams/{id}/audio?segment={n}")))
            .bearer_auth(&write)
            .body(crate::transcriptions::wav(300))
            .send()
    };
    // Segment 0 on A; the same segment on B while A is at it; segment 1 on B before 0 is done.
    let (zero, zero_again, one) = tokio::join!(
        send(&a, 0),
        async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            send(&b, 0).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(60)).await;
            send(&b, 1).await
        },
    );
    let zero: Value = zero.unwrap().json().await.unwrap();
    assert_eq!(zero["status"], "transcribed");
    let again = zero_again.unwrap();
    let again_status = again.status().as_u16();
    let again: Value = again.json().await.unwrap();
    assert!(
        again["status"] == "duplicate" || again["error"]["code"] == "segment_in_progress",
        "{again_status} {again}"
    );
    let one: Value = one.unwrap().json().await.unwrap();
    assert_eq!(one["status"], "transcribed", "{one}");
    assert_eq!(
        upstream.requests().len(),
        2,
        "one upstream call per segment"
    );
    let status = b.status(&id).await;
    assert_eq!(status["status"], "running");
    assert_eq!(status["aggregate"]["segments"], 2);
    assert_eq!(
        status["aggregate"]["transcript"],
        "The quick brown fox.The quick brown fox."
    );
}
