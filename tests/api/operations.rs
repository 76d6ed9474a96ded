//! The real binary as operators run it: SIGTERM drains and exits cleanly, and no secret (an
//! upstream key, a client key, a stream token) reaches logs, error bodies or metrics.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::fake_upstream::openai_chunk;
use crate::support::process::Instance;
use crate::support::redis::{fresh_prefix, url};
use crate::support::{FakeUpstream, Reply, SseEvent, SseReader, chat};

const DRAIN_SECS: u64 = 3;

fn counted(tokens: usize) -> Vec<axum::body::Bytes> {
    let mut chunks: Vec<_> = (1..=tokens)
        .map(|i| openai_chunk(&format!("tok{i} ")))
        .collect();
    chunks.push(axum::body::Bytes::from_static(b"data: [DONE]\n\n"));
    chunks
}

async fn create(client: &reqwest::Client, instance: &Instance) -> reqwest::Response {
    client
        .post(instance.url("/v1/streams"))
        .json(&json!({"kind": "chat", "request": chat("openai/gpt-4o", false)}))
        .send()
        .await
        .unwrap()
}

async fn created_id(client: &reqwest::Client, instance: &Instance) -> String {
    let response = create(client, instance).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn events(client: &reqwest::Client, instance: &Instance, id: &str) -> SseReader {
    let url = instance.url(&format!("/v1/streams/{id}/events"));
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "subscribing to {id}");
    SseReader::new(response)
}

fn text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.event == "message.delta")
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
#[cfg_attr(
    not(redis_tests),
    ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)"
)]
async fn sigterm_fails_readiness_ends_subscribers_drains_producers_and_exits_zero() {
    // One answer finishes well inside the drain window, the other never would.
    let upstream = FakeUpstream::start_sequence(vec![
        Reply::Stream {
            chunks: counted(15),
            gap: Duration::from_millis(100),
            hang: false,
        },
        Reply::Stream {
            chunks: counted(2)[..2].to_vec(),
            gap: Duration::ZERO,
            hang: true,
        },
    ])
    .await;
    // Streams live in Redis, so a second instance can tell how they ended after the first
    // has exited.
    let config = format!(
        "store = \"{}\"\nshutdown_drain_secs = {DRAIN_SECS}\n[redis]\nkey_prefix = \"{}\"\n",
        url(),
        fresh_prefix()
    );
    let env = [
        ("OPENAI_BASE_URL", upstream.base_url()),
        ("OPENAI_API_KEY", "sk-test".to_owned()),
    ];
    let mut draining = Instance::start(&config, &env).await;
    let witness = Instance::start(&config, &env).await;
    let client = reqwest::Client::new();

    let finishing = created_id(&client, &draining).await;

    let mut finishing_reader = events(&client, &draining, &finishing).await;
    finishing_reader.next().await.unwrap();
    let stuck = created_id(&client, &draining).await;
    let mut stuck_reader = events(&client, &draining, &stuck).await;
    while let Some(event) = stuck_reader.next().await {
        if event.event == "message.delta" && event.data.contains("tok2") {
            break;
        }
    }

    let signalled = Instant::now();
    draining.signal("TERM");
    // The signal is delivered asynchronously: poll briefly rather than race it.
    let deadline = Instant::now() + Duration::from_secs(2);
    let ready = loop {
        let ready = client.get(draining.url("/readyz")).send().await.unwrap();
        if ready.status() == 503 || Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        ready.status(),
        503,
        "readiness fails within moments of SIGTERM"
    );
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["draining"], true);
    let refused = create(&client, &draining).await;
    assert_eq!(refused.status(), 503);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "shutting_down");

    // Subscribers are closed (to resume elsewhere by id), without a terminal event.
    for reader in [finishing_reader, stuck_reader] {
        let rest = tokio::time::timeout(Duration::from_secs(2), reader.collect())
            .await
            .expect("subscribers are closed at once");
        assert!(rest.iter().all(|e| !e.event.starts_with("stream.")));
    }

    let status = draining
        .wait_exit(Duration::from_secs(DRAIN_SECS + 5))
        .await
        .expect("the process exits within the drain window plus a few seconds");
    assert!(status.success(), "exit status {status:?}");
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(DRAIN_SECS + 3),
        "exited after {took:?}"
    );

    let finished = events(&client, &witness, &finishing).await.collect().await;
    assert_eq!(finished.last().unwrap().event, "stream.completed");
    let expected: String = (1..=15).map(|i| format!("tok{i} ")).collect();
    assert_eq!(text(&finished), expected, "the drained answer is whole");

    let interrupted = events(&client, &witness, &stuck).await.collect().await;
    let last = interrupted.last().unwrap();
    assert_eq!(last.event, "stream.failed");
    let failure: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(failure["error"]["code"], "interrupted");
    assert_eq!(text(&interrupted), "tok1 tok2 ", "what was sent stays");
}

#[tokio::test]
async fn keys_and_tokens_never_reach_logs_error_bodies_or_metrics() {
    const UPSTREAM_KEY: &str = "sk-upstream-SECRET-4f1c9a7e2b";
    const CLIENT_KEY: &str = "sk-client-SECRET-8d2e6b0a13";
    // An upstream that echoes the key it was sent in its error message, as some do.
    let upstream = FakeUpstream::start(Reply::Status {
        status: 400,
        body: format!(r#"{{"error":{{"message":"bad request for key {UPSTREAM_KEY}"}}}}"#),
        retry_after: None,
    })
    .await;
    let env = [
        ("OPENAI_BASE_URL", upstream.base_url()),
        ("OPENAI_API_KEY", UPSTREAM_KEY.to_owned()),
        ("TOKENRELAY_API_KEYS", format!("app={CLIENT_KEY}")),
        ("RUST_LOG", "debug".to_owned()),
    ];
    let instance = Instance::start("", &env).await;
    let client = reqwest::Client::new();
    let mut bodies = Vec::new();

    let failed = client
        .post(instance.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&chat("openai/gpt-4o", true))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 400);
    bodies.push(failed.text().await.unwrap());

    let created = client
        .post(instance.url("/v1/streams"))
        .header("x-api-key", CLIENT_KEY)
        .json(&json!({"kind": "chat", "request": chat("mock/default", false)}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let (id, read_token) = (
        created["id"].as_str().unwrap().to_owned(),
        created["read_token"].as_str().unwrap().to_owned(),
    );
    let url = instance.url(&format!("/v1/streams/{id}/events?token={read_token}"));
    let read = SseReader::new(client.get(&url).send().await.unwrap())
        .collect()
        .await;
    assert_eq!(read.last().unwrap().event, "stream.completed");
    // Bad requests carrying the secrets: a bad format, a wrong token, a key that is off by one.
    for url in [
        format!("{url}&format=nope"),
        instance.url(&format!("/v1/streams/{id}/cancel?token={read_token}")),
        instance.url(&format!("/v1/streams/{id}?token={read_token}x")),
    ] {
        let response = client.get(&url).send().await.unwrap();
        bodies.push(response.text().await.unwrap());
        let response = client.post(&url).send().await.unwrap();
        bodies.push(response.text().await.unwrap());
    }
    let wrong_key = client
        .get(instance.url("/v1/models"))
        .bearer_auth(format!("{CLIENT_KEY}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), 401);
    bodies.push(wrong_key.text().await.unwrap());

    let metrics = client
        .get(instance.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tokenrelay_tokens_total{"), "{metrics}");
    bodies.push(metrics);

    let logs = instance.output();
    assert!(logs.contains("stream started"), "debug logs were captured");
    for secret in [UPSTREAM_KEY, CLIENT_KEY, read_token.as_str()] {
        assert!(!logs.contains(secret), "a secret in the logs:\n{logs}");
        for body in &bodies {
            assert!(!body.contains(secret), "a secret in an error body: {body}");
        }
    }
    assert!(
        bodies[0].contains("upstream returned HTTP 400") && bodies[0].contains("***"),
        "the upstream's message is kept, the key cut out: {}",
        bodies[0]
    );
}
