//! Chat request bodies (`POST /v1/chat/completions`, through the in-process router): any
//! bytes, any JSON and mutations of a valid request never panic (a panic would surface as a
//! 500 `internal_error`) and give either an answer or an error with a stable code, which one
//! decided by an independent reading of the body.

use std::sync::OnceLock;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokenrelay::app::AppState;
use tokenrelay::config::{Config, Secrets};
use tokenrelay::providers::ChatRequest;
use tower::ServiceExt;

use crate::strategies::{json, key};

/// The model every otherwise valid request names: fast, deterministic, no network.
const MODEL: &str = "mock/2t-0ms";

/// Codes a chat request may be refused with. Real providers point at a closed port, so a body
/// that routes to one gets an `upstream_*` code quickly instead of reaching the network.
const STABLE_CODES: &[&str] = &[
    "invalid_json",
    "invalid_request",
    "missing_field",
    "empty_messages",
    "model_not_found",
    "prompt_not_found",
    "prompt_variable_missing",
    "prompt_render_failed",
    "body_too_large",
    "upstream_unreachable",
    "upstream_unauthorized",
    "upstream_unavailable",
    "upstream_bad_request",
];

fn runtime_and_router() -> &'static (tokio::runtime::Runtime, Router) {
    static APP: OnceLock<(tokio::runtime::Runtime, Router)> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut config = Config::default();
        let closed = "http://127.0.0.1:9".to_owned();
        config.upstream.openai_base_url = format!("{closed}/v1");
        config.upstream.anthropic_base_url = format!("{closed}/v1");
        config.upstream.gemini_base_url = format!("{closed}/v1beta");
        config.routing.backoff_ms = 1;
        config.routing.max_backoff_ms = 2;
        let secrets = Secrets {
            openai_api_key: None,
            anthropic_api_key: None,
            gemini_api_key: None,
        };
        // The state spawns background tasks: build it inside the runtime.
        let router = runtime
            .block_on(async { tokenrelay::http::router(AppState::new(config, secrets).unwrap()) });
        (runtime, router)
    })
}

/// Posts `body`; returns the status, and the error code if the answer is an error.
fn post(body: Vec<u8>) -> (StatusCode, Option<String>) {
    let (runtime, router) = runtime_and_router();
    runtime.block_on(async {
        let request = Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        if status.is_success() {
            return (status, None);
        }
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        (status, body["error"]["code"].as_str().map(str::to_owned))
    })
}

fn valid() -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
}

/// Where a mutation lands: the request's fields and its first message's.
const PATHS: &[&str] = &[
    "/model",
    "/messages",
    "/stream",
    "/stream_options",
    "/stream_options/include_usage",
    "/n",
    "/prompt",
    "/messages/0",
    "/messages/0/role",
    "/messages/0/content",
    "/messages/0/content/0",
];

/// A valid request with a few fields replaced by any JSON or removed, and keys added.
fn mutated() -> impl Strategy<Value = Value> {
    let edit = (prop::sample::select(PATHS), prop::option::of(json()));
    (
        any::<bool>(),
        prop::collection::vec(edit, 1..4),
        prop::collection::vec((key(), json()), 0..2),
    )
        .prop_map(|(stream, edits, extra)| {
            let mut request = valid();
            request["stream"] = json!(stream);
            for (path, value) in edits {
                let (parent, last) = path.rsplit_once('/').unwrap();
                let parent = if parent.is_empty() {
                    Some(&mut request)
                } else {
                    request.pointer_mut(parent)
                };
                match (parent, value) {
                    (Some(Value::Object(map)), Some(v)) => {
                        map.insert(last.to_owned(), v);
                    }
                    (Some(Value::Object(map)), None) => {
                        map.remove(last);
                    }
                    (Some(Value::Array(list)), Some(v)) if !list.is_empty() => list[0] = v,
                    (Some(Value::Array(list)), None) if !list.is_empty() => {
                        list.remove(0);
                    }
                    _ => {}
                }
            }
            if let Value::Object(map) = &mut request {
                map.extend(extra);
            }
            request
        })
}

/// What a body must get, read without tokenrelay's HTTP code.
enum Expect {
    Answer,
    /// Refused with one of these codes.
    Refused(&'static [&'static str]),
    /// An answer or any stable code (a `prompt` template may or may not render).
    Either,
}

fn expected(body: &[u8]) -> Expect {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Expect::Refused(&["invalid_json"]);
    };
    match serde_json::from_value::<ChatRequest>(value) {
        Err(_) => Expect::Refused(&["invalid_request", "missing_field"]),
        // The template is applied before the other checks, so its errors can come first.
        Ok(r) if r.extra.contains_key("prompt") => Expect::Either,
        Ok(r) if r.messages.is_empty() => Expect::Refused(&["empty_messages"]),
        Ok(r) if r.model == MODEL => Expect::Answer,
        Ok(_) => Expect::Refused(STABLE_CODES),
    }
}

/// Requests that must be answered: the optional fields in their valid forms, unknown keys.
fn valid_variant() -> impl Strategy<Value = Value> {
    let content = prop_oneof![
        crate::strategies::text().prop_map(Value::from),
        Just(Value::Null),
        crate::strategies::text().prop_map(|t| json!([{"type": "text", "text": t}])),
    ];
    (
        any::<bool>(),
        prop::option::of(any::<bool>()),
        prop::option::of(0u64..300),
        prop::collection::vec(
            (
                prop::sample::select(&["user", "system", "assistant", "tool", "x"][..]),
                content,
            ),
            1..4,
        ),
        prop::collection::vec(("x_[a-z]{1,8}", json()), 0..3),
    )
        .prop_map(|(stream, usage, n, messages, extra)| {
            let mut request = valid();
            request["stream"] = json!(stream);
            if let Some(usage) = usage {
                request["stream_options"] = json!({"include_usage": usage});
            }
            if let Some(n) = n {
                request["n"] = json!(n);
            }
            request["messages"] = messages
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect();
            if let Value::Object(map) = &mut request {
                map.extend(extra);
            }
            request
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => valid_variant().prop_map(|v| v.to_string().into_bytes()),
        4 => mutated().prop_map(|v| v.to_string().into_bytes()),
        2 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => (mutated(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            text[..cut.index(text.len())].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn chat_bodies_get_an_answer_or_a_stable_error(body in body()) {
        let want = expected(&body);
        let (status, code) = post(body.clone());
        let shown = String::from_utf8_lossy(&body).into_owned();
        let codes = match want {
            Expect::Answer => {
                prop_assert_eq!(status, StatusCode::OK, "{} -> {:?}", shown, code);
                return Ok(());
            }
            Expect::Either if status == StatusCode::OK => return Ok(()),
            Expect::Either => STABLE_CODES,
            Expect::Refused(codes) => codes,
        };
        prop_assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{}", shown);
        let code = code.unwrap_or_default();
        prop_assert!(codes.contains(&code.as_str()), "{} -> {} {}", shown, status, code);
    }
}
