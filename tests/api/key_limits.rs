//! A key's limits (requests per minute, concurrent streams), a stream's (subscribers, events
//! per publish), refusing to start open to the network, config errors that point at their
//! line, and CORS for browsers.

use std::future::Future;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokenrelay::auth::{KeyConfig, Secret};
use tokenrelay::config::Config;

use crate::access::{ALICE, BOB, Made, create, keyed_config, outcome};
use crate::support::{SseReader, TestApp, chat, spawn_app_with, test_config};

/// Polls `attempt` until it answers `want`, for at most a few seconds; the last answer.
async fn eventually<F, Fut>(want: u16, mut attempt: F) -> (u16, Option<String>, Value)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = reqwest::Response>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = outcome(attempt().await).await;
        if answer.0 == want || tokio::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A 429 with its code and a `retry-after` of whole seconds, at least one.
async fn assert_429(response: reqwest::Response, code: &str) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, got, body) = outcome(response).await;
    assert_eq!((status, got.as_deref()), (429, Some(code)), "{body}");
    let secs: u64 = retry_after
        .expect("retry-after")
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1);
}

fn key(name: &str, secret: &str) -> KeyConfig {
    KeyConfig {
        name: name.into(),
        key: Some(Secret(secret.into())),
        ..KeyConfig::default()
    }
}

async fn post_as(app: &TestApp, key: &str, path: &str, body: &Value) -> reqwest::Response {
    let request = app.client.post(app.url(path)).bearer_auth(key).json(body);
    request.send().await.unwrap()
}

fn long_chat() -> Value {
    json!({"kind": "chat", "request": chat("mock/1000t-100ms", false)})
}

#[tokio::test]
async fn a_key_over_its_requests_per_minute_waits_and_other_keys_do_not() {
    let mut config = test_config();
    config.limits.requests_per_minute_per_key = 2;
    let mut alice = key("alice", ALICE);
    alice.requests_per_minute = Some(4);
    config.keys = vec![alice, key("bob", BOB)];
    let app = spawn_app_with(config, None).await;
    let models = |key: &str| {
        app.client
            .get(app.url("/v1/models"))
            .bearer_auth(key)
            .send()
    };
    for _ in 0..4 {
        assert_eq!(models(ALICE).await.unwrap().status(), 200);
    }
    assert_429(models(ALICE).await.unwrap(), "rate_limited").await;
    // Bob has the default rate, untouched by alice's requests.
    for _ in 0..2 {
        assert_eq!(models(BOB).await.unwrap().status(), 200);
    }
    assert_429(models(BOB).await.unwrap(), "rate_limited").await;
}

#[tokio::test]
async fn a_key_runs_at_most_its_streams_at_once_and_a_slot_frees_when_one_ends() {
    let mut config = keyed_config();
    config.limits.max_streams_per_key = 1;
    config.keys[0].max_concurrent_streams = Some(2);
    let app = spawn_app_with(config, None).await;
    let first = create(&app, ALICE, &long_chat()).await;
    create(&app, ALICE, &long_chat()).await;
    let full = [
        ("/v1/streams", long_chat()),
        ("/v1/streams", json!({"kind": "agent"})),
        ("/v1/chat/completions", chat("mock/3t-0ms", true)),
    ];
    for (path, body) in &full {
        assert_429(post_as(&app, ALICE, path, body).await, "too_many_streams").await;
    }
    // Bob's slot (the default of one) is his own.
    let bobs = json!({"kind": "chat", "request": chat("mock/40t-50ms", false)});
    create(&app, BOB, &bobs).await;
    assert_429(
        post_as(&app, BOB, "/v1/streams", &bobs).await,
        "too_many_streams",
    )
    .await;

    let cancel = format!("/v1/streams/{}/cancel", first.id);
    assert_eq!(
        post_as(&app, ALICE, &cancel, &json!({})).await.status(),
        200
    );
    let long = long_chat();
    let (status, _, body) = eventually(201, || post_as(&app, ALICE, "/v1/streams", &long)).await;
    assert_eq!(status, 201, "a cancelled stream frees its slot: {body}");
    // Bob's stream ends on its own after about two seconds.
    let (status, _, body) = eventually(201, || post_as(&app, BOB, "/v1/streams", &bobs)).await;
    assert_eq!(status, 201, "a finished stream frees its slot: {body}");
}

#[tokio::test]
async fn a_key_at_its_maximum_can_still_retry_its_own_idempotent_request() {
    let mut config = keyed_config();
    config.limits.max_streams_per_key = 1;
    let app = spawn_app_with(config, None).await;
    let agent = json!({"kind": "agent"});
    let send = || {
        app.client
            .post(app.url("/v1/streams"))
            .bearer_auth(ALICE)
            .header("idempotency-key", "job-42")
            .json(&agent)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(
        again.status(),
        200,
        "the retry finds its stream, it is not refused"
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    // A new request still needs a slot.
    assert_429(
        post_as(&app, ALICE, "/v1/streams", &agent).await,
        "too_many_streams",
    )
    .await;
}

#[tokio::test]
async fn a_write_without_credentials_is_refused_before_its_body_is_read() {
    let app = spawn_app_with(keyed_config(), None).await;
    let made = create(&app, ALICE, &json!({"kind": "agent"})).await;
    for path in [
        format!("/v1/streams/{}/events", made.id),
        format!("/v1/streams/{}/audio?segment=0", made.id),
        format!(
            "/v1/streams/{}/events?token=rt_00000000000000000000000000000000",
            made.id
        ),
    ] {
        // A body that never ends: the answer can only come if nobody waits for it.
        let endless = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            app.client
                .post(app.url(&path))
                .header("content-length", "900000")
                .body(reqwest::Body::wrap_stream(endless))
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{path}: the server waited for the body"))
        .unwrap();
        assert!(
            [401, 404].contains(&response.status().as_u16()),
            "{path}: {}",
            response.status()
        );
    }
}

#[tokio::test]
async fn without_keys_web_pages_on_other_sites_and_rebound_hosts_are_refused() {
    let app = spawn_app_with(test_config(), None).await;
    let send = |origin: Option<&'static str>, host: Option<String>| {
        let mut request = app
            .client
            .post(app.url("/v1/chat/completions"))
            // A "simple" cross-site request: no preflight protects it.
            .header("content-type", "text/plain")
            .body(chat("mock/2t-0ms", false).to_string());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(host) = host {
            request = request.header("host", host);
        }
        request.send()
    };
    let port = app.addr.port();
    let cases = [
        (
            Some("https://evil.example"),
            None,
            403,
            Some("origin_not_allowed"),
        ),
        (
            None,
            Some(format!("evil.example:{port}")),
            403,
            Some("host_not_allowed"),
        ),
        (Some("http://localhost:3000"), None, 200, None),
        (None, Some(format!("localhost:{port}")), 200, None),
        (None, Some(format!("[::1]:{port}")), 200, None),
        (None, None, 200, None),
    ];
    for (origin, host, status, code) in cases {
        let (got, got_code, body) = outcome(send(origin, host.clone()).await.unwrap()).await;
        assert_eq!(
            (got, got_code.as_deref()),
            (status, code),
            "{origin:?} {host:?}: {body}"
        );
    }
}

#[tokio::test]
async fn an_agent_stream_holds_its_slot_until_it_finishes() {
    let mut config = keyed_config();
    config.limits.max_streams_per_key = 1;
    let app = spawn_app_with(config, None).await;
    let agent = json!({"kind": "agent"});
    let first: Made = create(&app, ALICE, &agent).await;
    assert_429(
        post_as(&app, ALICE, "/v1/streams", &agent).await,
        "too_many_streams",
    )
    .await;
    let done = json!({"type": "stream.completed"});
    let publish = format!("/v1/streams/{}/events", first.id);
    assert_eq!(post_as(&app, ALICE, &publish, &done).await.status(), 200);
    let (status, _, body) = eventually(201, || post_as(&app, ALICE, "/v1/streams", &agent)).await;
    assert_eq!(
        status, 201,
        "a completed agent stream frees its slot: {body}"
    );
    let second = body["id"].as_str().unwrap().to_owned();
    assert_429(
        post_as(&app, ALICE, "/v1/streams", &agent).await,
        "too_many_streams",
    )
    .await;
    let cancel = format!("/v1/streams/{second}/cancel");
    assert_eq!(
        post_as(&app, ALICE, &cancel, &json!({})).await.status(),
        200
    );
    let (status, _, body) = eventually(201, || post_as(&app, ALICE, "/v1/streams", &agent)).await;
    assert_eq!(
        status, 201,
        "a cancelled agent stream frees its slot: {body}"
    );
}

#[tokio::test]
async fn a_stream_takes_at_most_its_subscribers_and_a_place_frees_when_one_leaves() {
    let mut config = test_config();
    config.limits.max_subscribers_per_stream = 2;
    let app = spawn_app_with(config, None).await;
    let (id, _) = app.create_stream("mock/1000t-50ms").await;
    let mut first = SseReader::new(app.events(&id, None, "").await);
    let mut second = SseReader::new(app.events(&id, None, "").await);
    first.next().await.unwrap();
    second.next().await.unwrap();
    assert_429(app.events(&id, None, "").await, "too_many_subscribers").await;
    drop(first);
    let (status, _, body) = eventually(200, || app.events(&id, None, "")).await;
    assert_eq!(status, 200, "a place freed: {body}");
    drop(second);
}

#[tokio::test]
async fn a_publish_batch_over_the_limit_is_refused_whole() {
    let mut config = test_config();
    config.agents.max_batch_events = 2;
    let app = spawn_app_with(config, None).await;
    let agent = create(&app, "unused-without-keys", &json!({"kind": "agent"})).await;
    let publish = format!("/v1/streams/{}/events", agent.id);
    let event = json!({"type": "CUSTOM", "name": "x"});
    let three = json!([event, event, event]);
    let (status, code, body) = outcome(post_as(&app, &agent.write, &publish, &three).await).await;
    assert_eq!(
        (status, code.as_deref()),
        (413, Some("too_many_events")),
        "{body}"
    );
    let before = app.status(&agent.id).await["event_count"].clone();
    let two = json!([event, event]);
    assert_eq!(
        post_as(&app, &agent.write, &publish, &two).await.status(),
        200
    );
    let after = app.status(&agent.id).await["event_count"].clone();
    assert_eq!(after.as_u64().unwrap(), before.as_u64().unwrap() + 2);
}

#[test]
fn a_server_open_to_the_network_needs_keys_or_an_explicit_opt_out() {
    for listen in ["0.0.0.0:8080", "[::]:8080"] {
        let mut config = Config {
            listen: listen.parse().unwrap(),
            ..Config::default()
        };
        let refused = config.validate().unwrap_err().to_string();
        assert!(refused.contains("allow_unauthenticated"), "{refused}");
        config.allow_unauthenticated = true;
        config.validate().unwrap();
        config.allow_unauthenticated = false;
        config.keys = KeyConfig::parse_list(ALICE);
        config.validate().unwrap();
    }
    for loopback in ["127.0.0.1:8080", "[::1]:8080"] {
        let config = Config {
            listen: loopback.parse().unwrap(),
            ..Config::default()
        };
        config.validate().unwrap();
    }
}

#[test]
fn limits_of_zero_are_refused_rather_than_blocking_every_request() {
    type Set = fn(&mut Config);
    let zeros: [(&str, Set); 3] = [
        ("limits.max_streams_per_key", |c| {
            c.limits.max_streams_per_key = 0
        }),
        ("limits.requests_per_minute_per_key", |c| {
            c.limits.requests_per_minute_per_key = 0
        }),
        ("limits.max_subscribers_per_stream", |c| {
            c.limits.max_subscribers_per_stream = 0
        }),
    ];
    for (name, set) in zeros {
        let mut config = Config::default();
        set(&mut config);
        let refused = config.validate().expect_err(name).to_string();
        assert!(refused.contains(name), "{refused}");
    }
}

/// The real binary with `args` in an empty directory and none of its environment settings;
/// killed if it is still running after a few seconds (it should have refused to start).
fn tokenrelay(args: &[&str], dir: &std::path::Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenrelay"));
    command.args(args).current_dir(dir);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("TOKENRELAY_") {
            command.env_remove(name);
        }
    }
    let mut child = command.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("tokenrelay {args:?} is still running: it should have exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tokenrelay-keys-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_binary_refuses_to_listen_beyond_loopback_without_keys() {
    let dir = scratch_dir();
    let output = tokenrelay(&["--listen", "0.0.0.0:0"], &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("allow_unauthenticated"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_config_names_the_file_line_and_key_and_never_prints_a_key() {
    let dir = scratch_dir();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[upstream]\nidle_timeout_secs = 0\n").unwrap();
    let output = tokenrelay(&["check-config", "--config", bad.to_str().unwrap()], &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let at = format!("{}:2:", bad.display());
    assert!(stderr.contains(&at), "{stderr}");
    assert!(stderr.contains("upstream.idle_timeout_secs"), "{stderr}");

    let good = dir.join("good.toml");
    let text =
        format!("listen = \"0.0.0.0:8080\"\n\n[[keys]]\nname = \"web\"\nkey = \"{ALICE}\"\n");
    std::fs::write(&good, text).unwrap();
    let output = tokenrelay(&["check-config", "--config", good.to_str().unwrap()], &dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains(ALICE), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn browsers_on_an_allowed_origin_may_call_and_read_stream_ids_and_others_may_not() {
    let mut config = keyed_config();
    config.cors_allowed_origins = vec!["https://app.example".into()];
    let app = spawn_app_with(config, None).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/chat/completions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,last-event-id",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
    };
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    let headers = header(&allowed, "access-control-allow-headers").unwrap_or_default();
    assert!(
        headers.contains("authorization") && headers.contains("last-event-id"),
        "{headers}"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert_eq!(header(&other, "access-control-allow-origin"), None);

    // The browser may read the stream id of an answer, and the error of a refused call.
    let call = |key: Option<&str>| {
        let request = app
            .client
            .post(app.url("/v1/chat/completions"))
            .header("origin", "https://app.example");
        let request = match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        request.json(&chat("mock/3t-0ms", true)).send()
    };
    let answer = call(Some(ALICE)).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        header(&answer, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    let exposed = header(&answer, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("x-stream-id"), "{exposed}");
    let refused = call(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        header(&refused, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
}
