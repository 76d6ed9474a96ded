//! Routes that create streams or list what is configured: a valid key in either header, no
//! body looked at without one, and a key's model allowlist wherever a model is named.

use serde_json::{Value, json};
use tokenrelay::auth::{KeyConfig, Secret};
use tokenrelay::providers::ModelAlias;

use crate::access::{
    ALICE, CAROL, Cred, Cred::*, StreamRoute::*, keyed_config, make, outcome, report, with_cred,
};
use crate::support::{TestApp, chat, spawn_app_with};
use crate::transcriptions::wav;

/// Routes that need a key, with a body that succeeds, and what success is.
async fn key_route(app: &TestApp, route: &str) -> (reqwest::RequestBuilder, u16) {
    let c = &app.client;
    let streams = |body: Value| (c.post(app.url("/v1/streams")).json(&body), 201);
    match route {
        "POST /v1/chat/completions" => (
            c.post(app.url("/v1/chat/completions"))
                .json(&chat("mock/3t-0ms", false)),
            200,
        ),
        "POST /v1/messages" => (
            c.post(app.url("/v1/messages")).json(&json!({
                "model": "mock/3t-0ms", "max_tokens": 16,
                "messages": [{"role": "user", "content": "Hi"}],
            })),
            200,
        ),
        "POST /v1/audio/transcriptions" => {
            let form = reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(wav(400)).file_name("a.wav"),
                )
                .text("model", "mock/default");
            (
                c.post(app.url("/v1/audio/transcriptions")).multipart(form),
                200,
            )
        }
        "POST /v1/streams chat" => {
            streams(json!({"kind": "chat", "request": chat("mock/3t-0ms", false)}))
        }
        "POST /v1/streams agent" => streams(json!({"kind": "agent"})),
        "POST /v1/streams transcription" => {
            streams(json!({"kind": "transcription", "model": "mock/default"}))
        }
        "GET /v1/models" => (c.get(app.url("/v1/models")), 200),
        "GET /v1/prompts" => (c.get(app.url("/v1/prompts")), 200),
        "GET /v1/prompts/{name}" => (c.get(app.url("/v1/prompts/summarize")), 200),
        other => panic!("no such route in the table: {other}"),
    }
}

const KEY_ROUTES: &[&str] = &[
    "POST /v1/chat/completions",
    "POST /v1/messages",
    "POST /v1/audio/transcriptions",
    "POST /v1/streams chat",
    "POST /v1/streams agent",
    "POST /v1/streams transcription",
    "GET /v1/models",
    "GET /v1/prompts",
    "GET /v1/prompts/{name}",
];

#[tokio::test]
async fn routes_that_create_or_list_need_a_valid_key_in_either_header() {
    let app = spawn_app_with(keyed_config(), None).await;
    let stream = make(&app, Status, ALICE).await;
    // `None`: the route's own success status.
    let cases: [(Cred, Option<(u16, &str)>); 5] = [
        (NoCredential, Some((401, "missing_api_key"))),
        (InvalidKey, Some((401, "invalid_api_key"))),
        // A stream token opens its stream, not the API.
        (ReadBearer, Some((401, "missing_api_key"))),
        (Owner, None),
        (OwnerXApiKey, None),
    ];
    let mut failures = Vec::new();
    for route in KEY_ROUTES {
        for (cred, error) in cases {
            let (request, ok) = key_route(&app, route).await;
            let response = with_cred(request, cred, &stream, &stream)
                .send()
                .await
                .unwrap();
            let (got, code, body) = outcome(response).await;
            let want = error.map_or((ok, None), |(s, c)| (s, Some(c)));
            if (got, code.as_deref()) != want {
                failures.push(format!("{route} {cred:?}: want {want:?}, got {got} {body}"));
            }
            // Anthropic's SDKs read their own error shape on /v1/messages.
            if route.contains("messages") && got == 401 {
                assert_eq!(body["type"], "error", "{body}");
                assert_eq!(body["error"]["type"], "authentication_error", "{body}");
            }
        }
    }
    report(&failures);
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} needs no key");
    }
}

#[tokio::test]
async fn without_a_key_nothing_about_the_request_is_looked_at() {
    let mut config = keyed_config();
    config.transcription.max_segment_bytes = 1024;
    let app = spawn_app_with(config, None).await;
    let agent = make(&app, Publish, ALICE).await;
    let publish = format!("/v1/streams/{}/events", agent.id);
    let feed = make(&app, Audio, ALICE).await;
    let audio = format!("/v1/streams/{}/audio?segment=0", feed.id);
    let unknown_prompt = json!({
        "model": "mock/default", "messages": [{"role": "user", "content": "Hi"}],
        "prompt": {"name": "no-such-prompt"},
    });
    let rows = [
        ("/v1/chat/completions", "{not json".to_owned()),
        ("/v1/messages", "{not json".to_owned()),
        ("/v1/streams", "{not json".to_owned()),
        (
            "/v1/chat/completions",
            chat("nosuchprovider/x", true).to_string(),
        ),
        // Whether a prompt exists is the API's business, not an anonymous caller's.
        ("/v1/chat/completions", unknown_prompt.to_string()),
        // A stream's own routes: no key and no token is refused before the body, too.
        (publish.as_str(), "{not json".to_owned()),
        (
            "/v1/streams/st_00000000000000000000000000/events",
            "[]".to_owned(),
        ),
        (audio.as_str(), "x".repeat(2048)),
    ];
    let mut failures = Vec::new();
    for (path, body) in rows {
        let (status, code, answer) = outcome(app.post_raw(path, body.clone()).await).await;
        if (status, code.as_deref()) != (401, Some("missing_api_key")) {
            let sent: String = body.chars().take(80).collect();
            failures.push(format!("{path} {sent}: got {status} {answer}"));
        }
    }
    report(&failures);
}

#[tokio::test]
async fn a_key_limited_to_some_models_is_refused_the_others_everywhere() {
    let mut config = keyed_config();
    config.keys.push(KeyConfig {
        name: "carol".into(),
        key: Some(Secret(CAROL.into())),
        models: vec!["mock/*".into()],
        ..KeyConfig::default()
    });
    // An alias to another provider, listed for keys that may use it.
    config.models.push(ModelAlias {
        name: "smart".into(),
        provider: "openai".into(),
        model: "gpt-4o".into(),
        fallbacks: Vec::new(),
    });
    let app = spawn_app_with(config, None).await;
    let post = |path: &str, body: Value| {
        app.client
            .post(app.url(path))
            .bearer_auth(CAROL)
            .json(&body)
    };
    let allowed = post("/v1/chat/completions", chat("mock/default", false));
    assert_eq!(allowed.send().await.unwrap().status(), 200);
    let refused = [
        post("/v1/chat/completions", chat("openai/gpt-4o", true)),
        post(
            "/v1/streams",
            json!({"kind": "chat", "request": chat("openai/gpt-4o", false)}),
        ),
        post(
            "/v1/streams",
            json!({"kind": "transcription", "model": "openai/whisper-1"}),
        ),
    ];
    for request in refused {
        let (status, code, body) = outcome(request.send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_deref()),
            (403, Some("model_not_allowed")),
            "{body}"
        );
        assert_eq!(body["error"]["param"], "model");
    }
    let messages = post(
        "/v1/messages",
        json!({"model": "anthropic/claude-3-5-haiku", "max_tokens": 16,
               "messages": [{"role": "user", "content": "Hi"}]}),
    );
    let (status, _, body) = outcome(messages.send().await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(body["error"]["code"], "model_not_allowed");

    let response = app
        .client
        .post(app.url("/v1/audio/transcriptions"))
        .bearer_auth(CAROL)
        .multipart(
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(wav(400)).file_name("a.wav"),
                )
                .text("model", "openai/whisper-1"),
        )
        .send()
        .await
        .unwrap();
    let (status, code, _) = outcome(response).await;
    assert_eq!((status, code.as_deref()), (403, Some("model_not_allowed")));

    let listed = |key: &'static str| {
        let request = app.client.get(app.url("/v1/models")).bearer_auth(key);
        async move {
            let models: Value = request.send().await.unwrap().json().await.unwrap();
            let data = models["data"].as_array().unwrap().iter();
            data.map(|m| m["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let (everything, carols) = (listed(ALICE).await, listed(CAROL).await);
    assert!(everything.contains(&"smart".to_owned()), "{everything:?}");
    assert!(carols.contains(&"mock/default".to_owned()), "{carols:?}");
    assert!(
        carols.iter().all(|id| id.starts_with("mock/")),
        "{carols:?}"
    );
}
