//! Bad input: each case has its own status and stable code, in OpenAI's error shape.

use serde_json::{Value, json};
use tokenrelay::event::StreamId;

use crate::support::{FakeUpstream, Reply, TestApp, chat, spawn_app, spawn_app_with, test_config};

async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "for {code}");
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], code);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["type"].is_string());
    assert!(error.get("param").is_some());
    body
}

async fn chat_raw(app: &TestApp, body: &str) -> reqwest::Response {
    app.post_raw("/v1/chat/completions", body.to_owned()).await
}

#[tokio::test]
async fn malformed_json_is_invalid_json() {
    let app = spawn_app().await;
    for body in [
        "{",
        "not json",
        "{\"model\": \"mock/default\",}",
        "",
        "{} {}",
    ] {
        expect_error(chat_raw(&app, body).await, 400, "invalid_json").await;
    }
}

#[tokio::test]
async fn wrong_field_types_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"model": 5, "messages": []}), "model"),
        (
            json!({"model": "mock/default", "messages": "hi"}),
            "messages",
        ),
        (
            json!({"model": "mock/default", "messages": [{"role": 1}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "mock/default", "messages": [{"role": "user", "content": 7}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "mock/default", "messages": [], "stream": "yes"}),
            "stream",
        ),
        (json!([1, 2]), ""),
    ];
    for (body, param) in cases {
        let response = app.post("/v1/chat/completions", &body).await;
        let body = expect_error(response, 400, "invalid_request").await;
        assert_eq!(body["error"]["param"], param);
    }
    for (body, param) in [
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (json!({"model": "mock/default"}), "messages"),
        (
            json!({"model": "mock/default", "messages": [{"content": "x"}]}),
            "messages[0].role",
        ),
    ] {
        let response = app.post("/v1/chat/completions", &body).await;
        let body = expect_error(response, 400, "missing_field").await;
        assert_eq!(body["error"]["param"], param);
    }
    let long = json!({"model": format!("openai/{}", "x".repeat(300)), "messages": [{"role": "user", "content": "x"}]});
    let body = expect_error(
        app.post("/v1/chat/completions", &long).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(body["error"]["param"], "model");
}

#[tokio::test]
async fn empty_messages_is_its_own_error() {
    let app = spawn_app().await;
    let body = json!({"model": "mock/default", "messages": []});
    let body = expect_error(
        app.post("/v1/chat/completions", &body).await,
        400,
        "empty_messages",
    )
    .await;
    assert_eq!(body["error"]["param"], "messages");
}

#[tokio::test]
async fn unknown_models_are_404() {
    let app = spawn_app().await;
    for model in ["gpt-4o", "mock/bogus", "nope/x", "mock/", ""] {
        expect_error(
            app.post("/v1/chat/completions", &chat(model, true)).await,
            404,
            "model_not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_streams_are_404_on_every_route() {
    let app = spawn_app().await;
    let id = StreamId::random();
    let get = |path: String| app.client.get(app.url(&path)).send();
    expect_error(
        get(format!("/v1/streams/{id}")).await.unwrap(),
        404,
        "stream_not_found",
    )
    .await;
    expect_error(
        get(format!("/v1/streams/{id}/events")).await.unwrap(),
        404,
        "stream_not_found",
    )
    .await;
    expect_error(
        get("/v1/streams/garbage".into()).await.unwrap(),
        404,
        "stream_not_found",
    )
    .await;
    let cancel = app
        .post(&format!("/v1/streams/{id}/cancel"), &json!({}))
        .await;
    expect_error(cancel, 404, "stream_not_found").await;
}

#[tokio::test]
async fn unsupported_format_and_bad_query_are_400() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/2t-0ms").await;
    expect_error(
        app.events(&id, None, "?format=xml").await,
        400,
        "unsupported_format",
    )
    .await;
    expect_error(
        app.events(&id, None, "?strict=maybe").await,
        400,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let big = "x".repeat(1024 * 1024 + 1);
    let body = json!({"model": "mock/default", "messages": [{"role": "user", "content": big}]});
    expect_error(
        app.post("/v1/chat/completions", &body).await,
        413,
        "body_too_large",
    )
    .await;
    let mut config = test_config();
    config.max_body_bytes = 100;
    let small = spawn_app_with(config, None).await;
    expect_error(
        small
            .post(
                "/v1/streams",
                &json!({"kind": "chat", "request": chat("mock/default", false)}),
            )
            .await,
        413,
        "body_too_large",
    )
    .await;
}

#[tokio::test]
async fn malformed_last_event_id_is_reset_in_native_and_410_in_openai() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/2t-0ms").await;
    app.wait_finished(&id, std::time::Duration::from_secs(5))
        .await;
    let native = app.events(&id, Some("not/an:id"), "").await;
    assert_eq!(native.status(), 200);
    let text = native.text().await.unwrap();
    assert!(text.contains("event: reset\n"), "{text}");
    let openai = app.events(&id, Some("12"), "?format=openai").await;
    expect_error(openai, 410, "resume_unavailable").await;
}

#[tokio::test]
async fn other_bad_requests_have_their_own_codes() {
    let app = spawn_app().await;
    let agent = app.post("/v1/streams", &json!({"kind": "nope"})).await;
    expect_error(agent, 400, "unsupported_kind").await;
    let no_request = app.post("/v1/streams", &json!({"kind": "chat"})).await;
    expect_error(no_request, 400, "missing_field").await;
    let bad_key = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("idempotency-key", "has space")
        .json(&chat("mock/default", false))
        .send()
        .await
        .unwrap();
    expect_error(bad_key, 400, "invalid_idempotency_key").await;
    expect_error(
        app.client.get(app.url("/v2/nothing")).send().await.unwrap(),
        404,
        "route_not_found",
    )
    .await;
    expect_error(
        app.client
            .delete(app.url("/v1/models"))
            .send()
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_same_stream_and_bills_once() {
    let chunks = vec![
        crate::support::fake_upstream::openai_chunk("Hi"),
        axum::body::Bytes::from_static(b"data: [DONE]\n\n"),
    ];
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks,
        gap: std::time::Duration::ZERO,
        hang: false,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let send = || {
        app.client
            .post(app.url("/v1/chat/completions"))
            .header("idempotency-key", "order-42")
            .json(&chat("openai/gpt-4o", false))
            .send()
    };
    let first = send().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(
        first.headers()["x-stream-id"],
        second.headers()["x-stream-id"]
    );
    let a: Value = first.json().await.unwrap();
    let b: Value = second.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["choices"][0]["message"]["content"], "Hi");
    assert_eq!(upstream.requests().len(), 1);

    let create = |key: &'static str| {
        app.client
            .post(app.url("/v1/streams"))
            .header("idempotency-key", key)
            .json(&json!({"kind": "chat", "request": chat("mock/3t-0ms", false)}))
            .send()
    };
    let one = create("job-1").await.unwrap();
    assert_eq!(one.status(), 201);
    let one: Value = one.json().await.unwrap();
    let two = create("job-1").await.unwrap();
    assert_eq!(two.status(), 200);
    let two: Value = two.json().await.unwrap();
    assert_eq!(one["id"], two["id"]);
    assert!(one["read_token"].is_string());
    assert!(
        two["read_token"].is_null(),
        "tokens are only handed out once"
    );
}

#[tokio::test]
async fn a_reused_idempotency_key_with_another_request_is_422_and_keys_are_per_endpoint() {
    let app = spawn_app().await;
    let send = |path: &'static str, body: Value| {
        app.client
            .post(app.url(path))
            .header("idempotency-key", "same-key")
            .json(&body)
            .send()
    };
    let first = send("/v1/chat/completions", chat("mock/2t-0ms", false))
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let other = send("/v1/chat/completions", chat("mock/3t-0ms", false))
        .await
        .unwrap();
    expect_error(other, 422, "idempotency_key_reused").await;
    let elsewhere = send(
        "/v1/streams",
        json!({"kind": "chat", "request": chat("mock/3t-0ms", false)}),
    )
    .await
    .unwrap();
    assert_eq!(elsewhere.status(), 201, "the key is scoped to its endpoint");
    assert_ne!(
        first.headers()["x-stream-id"],
        elsewhere.headers()["x-stream-id"]
    );
}
