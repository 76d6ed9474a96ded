//! Who may do what on a stream's own routes. Each table row is one route × credential case
//! with the status and code a client must get; every row is checked and the failures are
//! reported together, each naming its row. Routes that need a key: `access_keys.rs`.

use std::time::Duration;

use serde_json::{Value, json};
use tokenrelay::auth::KeyConfig;
use tokenrelay::config::Config;

use crate::support::{TestApp, chat, spawn_app_with, test_config};
use crate::transcriptions::wav;

pub const ALICE: &str = "sk-alice-0123456789abcdef";
pub const BOB: &str = "sk-bob-0123456789abcdef";
pub const CAROL: &str = "sk-carol-0123456789abcdef";
/// A well-formed id that no stream has.
const MISSING: &str = "st_00000000000000000000000000";

/// Keys alice and bob, with limits high enough that no row is answered by a limit.
pub fn keyed_config() -> Config {
    let mut config = test_config();
    config.keys = KeyConfig::parse_list(&format!("alice={ALICE},bob={BOB}"));
    config.limits.requests_per_minute_per_key = 100_000;
    config.limits.max_streams_per_key = 10_000;
    config.transcription.mock_speedup = 50.0;
    config
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cred {
    /// The key that created the stream, as `Authorization: Bearer`.
    Owner,
    OwnerXApiKey,
    /// Another configured key.
    OtherKey,
    /// Another key, with the stream's read token in `?token=`.
    OtherKeyAndRead,
    InvalidKey,
    NoCredential,
    ReadQuery,
    ReadBearer,
    WriteQuery,
    WriteBearer,
    /// A token-shaped value that no stream has.
    ForgedToken,
    /// The write token of another stream.
    OtherStreamsWrite,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    Own,
    /// A well-formed id nobody created.
    Missing,
    /// Not an id at all.
    Malformed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StreamRoute {
    Status,
    Events,
    Publish,
    Cancel,
    Audio,
    Finish,
}

use Cred::*;
use StreamRoute::*;
use Target::*;

/// A stream alice created, with its tokens.
pub struct Made {
    pub id: String,
    pub read: String,
    pub write: String,
}

/// Creates a stream of the kind `route` works on, as `key`.
pub async fn make(app: &TestApp, route: StreamRoute, key: &str) -> Made {
    let body = match route {
        Status | Events | Cancel => json!({"kind": "chat", "request": chat("mock/3t-0ms", false)}),
        Publish => json!({"kind": "agent"}),
        Audio | Finish => json!({"kind": "transcription", "model": "mock/3t-0ms"}),
    };
    create(app, key, &body).await
}

pub async fn create(app: &TestApp, key: &str, body: &Value) -> Made {
    let response = app
        .client
        .post(app.url("/v1/streams"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let created: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    let field = |name: &str| created[name].as_str().unwrap().to_owned();
    Made {
        id: field("id"),
        read: field("read_token"),
        write: field("write_token"),
    }
}

fn request(app: &TestApp, route: StreamRoute, id: &str) -> reqwest::RequestBuilder {
    let url = |tail: &str| app.url(&format!("/v1/streams/{id}{tail}"));
    let c = &app.client;
    match route {
        Status => c.get(url("")),
        Events => c.get(url("/events")),
        Publish => c
            .post(url("/events"))
            .json(&json!({"type": "CUSTOM", "name": "x"})),
        Cancel => c.post(url("/cancel")),
        Audio => c
            .post(url("/audio?segment=0"))
            .header("content-type", "audio/wav")
            .body(wav(400)),
        Finish => c.post(url("/finish")),
    }
}

pub fn with_cred(
    request: reqwest::RequestBuilder,
    cred: Cred,
    made: &Made,
    other: &Made,
) -> reqwest::RequestBuilder {
    let token = |t: &str| vec![("token", t.to_owned())];
    match cred {
        Owner => request.bearer_auth(ALICE),
        OwnerXApiKey => request.header("x-api-key", ALICE),
        OtherKey => request.bearer_auth(BOB),
        OtherKeyAndRead => request.bearer_auth(BOB).query(&token(&made.read)),
        InvalidKey => request.bearer_auth("sk-nobody-0123456789abcdef"),
        NoCredential => request,
        ReadQuery => request.query(&token(&made.read)),
        ReadBearer => request.bearer_auth(&made.read),
        WriteQuery => request.query(&token(&made.write)),
        WriteBearer => request.bearer_auth(&made.write),
        ForgedToken => request.bearer_auth("rt_00000000000000000000000000000000"),
        OtherStreamsWrite => request.bearer_auth(&other.write),
    }
}

/// Status, `error.code` (none on success) and the whole body (an SSE body is not read).
pub async fn outcome(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    if status == 401 {
        assert!(
            response.headers().contains_key("www-authenticate"),
            "a 401 says how to authenticate"
        );
    }
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if sse {
        return (status, None, Value::Null);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (status, code, body)
}

type Row = (Cred, Target, u16, Option<&'static str>);

pub const NOT_FOUND: Option<&str> = Some("stream_not_found");

/// Reading a stream: its owner or either of its tokens.
const READS: &[Row] = &[
    (Owner, Own, 200, None),
    (OwnerXApiKey, Own, 200, None),
    (OtherKey, Own, 404, NOT_FOUND),
    (OtherKeyAndRead, Own, 200, None),
    (ReadQuery, Own, 200, None),
    (ReadBearer, Own, 200, None),
    (WriteQuery, Own, 200, None),
    (WriteBearer, Own, 200, None),
    (ForgedToken, Own, 404, NOT_FOUND),
    (OtherStreamsWrite, Own, 404, NOT_FOUND),
    (NoCredential, Own, 401, Some("missing_api_key")),
    (InvalidKey, Own, 401, Some("invalid_api_key")),
    (Owner, Missing, 404, NOT_FOUND),
    (ReadQuery, Missing, 404, NOT_FOUND),
    (NoCredential, Missing, 401, Some("missing_api_key")),
    (InvalidKey, Missing, 401, Some("invalid_api_key")),
    (Owner, Malformed, 404, NOT_FOUND),
];

const WRITE_TOKEN: Option<&str> = Some("write_token_required");

/// Writing to a stream (and cancelling it): its owner or its write token.
const WRITES: &[Row] = &[
    (Owner, Own, 200, None),
    (OwnerXApiKey, Own, 200, None),
    (OtherKey, Own, 404, NOT_FOUND),
    (OtherKeyAndRead, Own, 403, WRITE_TOKEN),
    (ReadQuery, Own, 403, WRITE_TOKEN),
    (ReadBearer, Own, 403, WRITE_TOKEN),
    (WriteQuery, Own, 200, None),
    (WriteBearer, Own, 200, None),
    (ForgedToken, Own, 404, NOT_FOUND),
    (OtherStreamsWrite, Own, 404, NOT_FOUND),
    (NoCredential, Own, 401, Some("missing_api_key")),
    (InvalidKey, Own, 401, Some("invalid_api_key")),
    (Owner, Missing, 404, NOT_FOUND),
    (WriteBearer, Missing, 404, NOT_FOUND),
    (NoCredential, Missing, 401, Some("missing_api_key")),
    (InvalidKey, Missing, 401, Some("invalid_api_key")),
    (Owner, Malformed, 404, NOT_FOUND),
];

/// Runs `rows` on each of `routes`, each row on a stream of its own (writes change streams);
/// returns a line per row that got something else.
async fn run(app: &TestApp, routes: &[StreamRoute], rows: &[Row]) -> Vec<String> {
    let other = make(app, Status, ALICE).await;
    let mut failures = Vec::new();
    for &route in routes {
        for &(cred, target, status, code) in rows {
            let made = make(app, route, ALICE).await;
            let id = match target {
                Own => made.id.as_str(),
                Missing => MISSING,
                Malformed => "not-a-stream",
            };
            let response = with_cred(request(app, route, id), cred, &made, &other)
                .send()
                .await
                .unwrap();
            let (got, got_code, body) = outcome(response).await;
            if (got, got_code.as_deref()) != (status, code) {
                failures.push(format!(
                    "{route:?} {cred:?} on {target:?}: want {status} {code:?}, got {got} {body}"
                ));
            }
        }
    }
    failures
}

pub fn report(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_stream_is_read_by_its_owner_and_its_tokens_and_written_only_with_write_rights() {
    let app = spawn_app_with(keyed_config(), None).await;
    let mut failures = run(&app, &[Status, Events], READS).await;
    failures.extend(run(&app, &[Publish, Cancel, Audio, Finish], WRITES).await);
    report(&failures);
}

#[tokio::test]
async fn someone_elses_stream_is_answered_exactly_like_one_that_does_not_exist() {
    let app = spawn_app_with(keyed_config(), None).await;
    let mut failures = Vec::new();
    for route in [Status, Events, Publish, Cancel, Audio, Finish] {
        let made = make(&app, route, ALICE).await;
        for cred in [OtherKey, ForgedToken, NoCredential, InvalidKey] {
            let own = with_cred(request(&app, route, &made.id), cred, &made, &made);
            let missing = with_cred(request(&app, route, MISSING), cred, &made, &made);
            let own = outcome(own.send().await.unwrap()).await;
            let missing = outcome(missing.send().await.unwrap()).await;
            if own != missing {
                failures.push(format!("{route:?} {cred:?}: {own:?} but {missing:?}"));
            }
        }
    }
    report(&failures);
}

#[tokio::test]
async fn without_keys_anyone_reads_and_cancels_but_writes_need_the_write_token() {
    let app = spawn_app_with(test_config(), None).await;
    let rows: &[(StreamRoute, Cred, u16, Option<&str>)] = &[
        (Status, NoCredential, 200, None),
        (Events, NoCredential, 200, None),
        // Keys are not checked when none are configured.
        (Status, InvalidKey, 200, None),
        (Status, ForgedToken, 404, NOT_FOUND),
        (Cancel, NoCredential, 200, None),
        (Cancel, ReadQuery, 403, WRITE_TOKEN),
        (Publish, NoCredential, 401, Some("missing_token")),
        (Publish, ReadBearer, 403, WRITE_TOKEN),
        (Publish, WriteBearer, 200, None),
        (Audio, NoCredential, 401, Some("missing_token")),
        (Audio, WriteQuery, 200, None),
        (Finish, NoCredential, 401, Some("missing_token")),
        (Finish, WriteBearer, 200, None),
    ];
    let mut failures = Vec::new();
    for &(route, cred, status, code) in rows {
        let made = make(&app, route, ALICE).await;
        let response = with_cred(request(&app, route, &made.id), cred, &made, &made);
        let (got, got_code, body) = outcome(response.send().await.unwrap()).await;
        if (got, got_code.as_deref()) != (status, code) {
            failures.push(format!(
                "{route:?} {cred:?}: want {status} {code:?}, got {got} {body}"
            ));
        }
    }
    report(&failures);
}

#[tokio::test]
async fn an_expired_stream_is_gone_for_its_owner_and_its_tokens() {
    let mut config = keyed_config();
    config.limits.log_retention_secs = 1;
    config.limits.status_retention_secs = 1;
    let app = spawn_app_with(config, None).await;
    let chat_stream = make(&app, Status, ALICE).await;
    let agent = make(&app, Publish, ALICE).await;
    let done = json!({"type": "stream.completed"});
    let published = request(&app, Publish, &agent.id)
        .bearer_auth(ALICE)
        .json(&done);
    assert_eq!(published.send().await.unwrap().status(), 200);
    let feed = make(&app, Finish, ALICE).await;
    let finished = request(&app, Finish, &feed.id).bearer_auth(ALICE);
    assert_eq!(finished.send().await.unwrap().status(), 200);
    let cases = [
        (Status, &chat_stream),
        (Events, &chat_stream),
        (Cancel, &chat_stream),
        (Publish, &agent),
        (Audio, &feed),
        (Finish, &feed),
    ];
    // Retention runs on the real clock: wait (polling) until the owner no longer sees them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for made in [&chat_stream, &agent, &feed] {
        loop {
            let response = request(&app, Status, &made.id).bearer_auth(ALICE);
            if response.send().await.unwrap().status() == 404 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never expired",
                made.id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut failures = Vec::new();
    for (route, made) in cases {
        for cred in [Owner, ReadQuery, WriteBearer] {
            let response = with_cred(request(&app, route, &made.id), cred, made, made);
            let (status, code, body) = outcome(response.send().await.unwrap()).await;
            if (status, code.as_deref()) != (404, NOT_FOUND) {
                failures.push(format!("{route:?} {cred:?}: got {status} {body}"));
            }
        }
    }
    report(&failures);
}
