//! `POST /v1/chat/completions`: OpenAI-compatible, streaming (SSE with resume ids and
//! `x-stream-id`) or not (one `chat.completion`). The generation is a stream like any other.

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::access::require_key;
use super::admission::{idempotency_key, route_for, stream_permit};
use super::events::{ReadOptions, last_event_id, open, with_stream_id};
use super::json::ApiJson;
use super::{ApiError, AppState};
use crate::auth::Caller;
use crate::event::token::{Minted, hash, mint};
use crate::event::{Aggregate, Format, StreamId, StreamKind, StreamStatus, unix_millis};
use crate::providers::ProviderError;
use crate::providers::{ChatMessage, ChatRequest, Job, MessageContent, Route};
use crate::relay::{Launch, Launched, SubscriberGuard};
use crate::store::{StoreError, StreamInfo, StreamMeta};
use tokio::sync::oneshot;

/// Model names are stored with every stream; real ones are far shorter.
const MAX_MODEL_LEN: usize = 256;

struct Prepared {
    pub meta: StreamMeta,
    pub route: Route,
}

pub struct Tokens {
    pub read: Minted,
    pub write: Minted,
}

/// How a creating route runs its chat streams.
pub struct Endpoint {
    /// Scopes idempotency keys: the same key on two routes names two streams.
    pub name: &'static str,
    /// The format subscribers get by default.
    pub format: Format,
    /// Cancel the generation after this long with nobody attached.
    pub detach_grace: Option<Duration>,
    /// Attach the caller as a subscriber before the producer starts.
    pub attach: bool,
    /// Who asks: owns the stream, and its key's allowlist and limits apply.
    pub caller: Caller,
}

/// Validates the request, then starts its stream, or finds the one its idempotency key names
/// (which must have been created by the same request).
pub async fn launch(
    state: &AppState,
    headers: &HeaderMap,
    request: ChatRequest,
    endpoint: Endpoint,
) -> Result<(Launched, Tokens), ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    // Hashed as the client sent it: a template reload between two tries changes nothing.
    let sent = format!(
        "{}{}",
        serde_json::to_string(&request).unwrap_or_default(),
        serde_json::to_string(&request.anthropic).unwrap_or_default()
    );
    let mut request = request;
    apply_prompt(state, &mut request)?;
    let key = idempotency_key(headers, endpoint.name)?;
    require_key(&endpoint.caller)?;
    let (prepared, tokens) = prepare(state, &request, &endpoint, hash(&sent))?;
    let permit = stream_permit(state, &endpoint.caller, key.as_deref()).await?;
    let request_hash = prepared.meta.request_hash.clone();
    let launched = state
        .relay
        .start(Launch {
            meta: prepared.meta,
            route: prepared.route,
            job: Job::Chat(request),
            idempotency_key: key,
            detach_grace: endpoint.detach_grace,
            attach: endpoint.attach,
            permit,
        })
        .await?;
    if let Launched::Existing(id) = &launched {
        let existing = state.log().info(id).await?;
        if existing.head.meta.request_hash != request_hash {
            return Err(ApiError::IdempotencyKeyReused);
        }
    }
    Ok((launched, tokens))
}

/// `prompt: {name, variables}` becomes the first (system) message; the field itself is not
/// sent upstream.
fn apply_prompt(state: &AppState, request: &mut ChatRequest) -> Result<(), ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PromptRef {
        name: String,
        #[serde(default)]
        variables: Map<String, Value>,
    }
    let Some(prompt) = request.extra.remove("prompt") else {
        return Ok(());
    };
    let prompt: PromptRef = serde_json::from_value(prompt).map_err(|e| ApiError::InvalidField {
        param: "prompt".into(),
        message: format!("invalid value for `prompt`: {e}"),
    })?;
    let system = state.prompts.render(&prompt.name, &prompt.variables)?;
    if let Some(original) = request.anthropic.as_mut() {
        original.remove("prompt");
        let merged = match original.remove("system") {
            Some(Value::String(existing)) => json!(format!("{system}\n\n{existing}")),
            Some(Value::Array(mut blocks)) => {
                blocks.insert(0, json!({"type": "text", "text": system}));
                Value::Array(blocks)
            }
            _ => json!(system),
        };
        original.insert("system".into(), merged);
    }
    let message = ChatMessage {
        role: "system".into(),
        content: Some(MessageContent::Text(system)),
        extra: Map::new(),
    };
    request.messages.insert(0, message);
    Ok(())
}

/// Validates a chat request and resolves its model.
fn prepare(
    state: &AppState,
    request: &ChatRequest,
    endpoint: &Endpoint,
    request_hash: String,
) -> Result<(Prepared, Tokens), ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::EmptyMessages);
    }
    if request.model.len() > MAX_MODEL_LEN {
        return Err(ApiError::InvalidField {
            param: "model".into(),
            message: format!("`model` is longer than {MAX_MODEL_LEN} bytes"),
        });
    }
    let route = route_for(state, &endpoint.caller, &request.model)?;
    let tokens = Tokens {
        read: mint("rt_"),
        write: mint("wt_"),
    };
    let meta = StreamMeta {
        kind: StreamKind::Chat,
        model: request.model.clone(),
        provider: route.primary().provider.name().to_owned(),
        owner: endpoint.caller.owner().to_owned(),
        created_at: unix_millis() / 1000,
        format: endpoint.format,
        include_usage: request.wants_usage_chunk(),
        choices: request
            .extra
            .get("n")
            .and_then(Value::as_u64)
            .map_or(1, |n| n.clamp(1, 128) as u32),
        read_token_hash: tokens.read.hash.clone(),
        write_token_hash: tokens.write.hash.clone(),
        request_hash,
        feed: None,
    };
    Ok((Prepared { meta, route }, tokens))
}

pub async fn completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Response {
    let endpoint = Endpoint {
        name: "chat.completions",
        format: Format::OpenAi,
        detach_grace: Some(Duration::from_secs(state.config.detach_grace_secs)),
        attach: true,
        caller,
    };
    answer(&state, &headers, request, endpoint).await
}

/// Waits until the producer's upstream has spoken, so the answer commits to 200 only then: a
/// refusal before the first event is an HTTP error with the upstream's status.
pub(super) async fn upstream_spoke(
    state: &AppState,
    started: oneshot::Receiver<Result<(), ProviderError>>,
) -> Result<(), ApiError> {
    tokio::select! {
        started = started => match started {
            Ok(Err(e)) => Err(ApiError::Upstream(e)),
            _ => Ok(()),
        },
                () = state.let_go.cancelled() => Err(ApiError::ShuttingDown),
    }
}

/// Runs a chat request for a route that answers it directly: SSE in the route's format
/// (`stream: true`) or one JSON answer; errors in the route's error shape.
pub async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    request: ChatRequest,
    endpoint: Endpoint,
) -> Response {
    let format = endpoint.format;
    let (result, id) = answer_inner(state, headers, request, endpoint).await;
    let response = result.unwrap_or_else(|e| e.into_response_as(format));
    match id {
        Some(id) => with_stream_id(response, &id),
        None => response,
    }
}

async fn answer_inner(
    state: &AppState,
    headers: &HeaderMap,
    request: ChatRequest,
    endpoint: Endpoint,
) -> (Result<Response, ApiError>, Option<StreamId>) {
    let stream = request.wants_stream();
    let format = endpoint.format;
    let launched = match launch(state, headers, request, endpoint).await {
        Ok((launched, _tokens)) => launched,
        Err(e) => return (Err(e), None),
    };
    let (id, guard, position) = match launched {
        Launched::New {
            id,
            started,
            subscriber,
            ..
        } => {
            if let Err(e) = upstream_spoke(state, started).await {
                return (Err(e), Some(id));
            }
            (id, subscriber, None)
        }
        // A repeated key joins the existing generation instead of paying for a second one.
        Launched::Existing(id) => (id, None, last_event_id(headers)),
    };
    let result = if stream {
        match state.log().head(&id).await {
            Ok(head) => {
                let options = ReadOptions {
                    format,
                    position: position.as_deref(),
                    strict: false,
                    presence: false,
                };
                open(state, id.clone(), head, options, guard)
            }
            Err(e) => Err(e.into()),
        }
    } else {
        finished_info(state, &id, guard)
            .await
            .and_then(|info| match format {
                Format::Anthropic => {
                    super::messages::message(&info).map(|m| Json(m).into_response())
                }
                _ => outcome(&info).map(|()| Json(completion(&info)).into_response()),
            })
    };
    (result, Some(id))
}

/// Waits for the stream to finish; returns its final status and aggregate.
async fn finished_info(
    state: &AppState,
    id: &StreamId,
    guard: Option<SubscriberGuard>,
) -> Result<StreamInfo, ApiError> {
    let _guard = guard.unwrap_or_else(|| state.relay.registry.attach(id));
    let log = state.log();
    // Waiting touches only the head; the aggregate is read once, at the end. The status
    // outlives the log, so a late repeated request is still answered from it.
    tokio::select! {
        finished = log.finished(id) => match finished {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        },
                () = state.let_go.cancelled() => return Err(ApiError::ShuttingDown),
    }
    Ok(log.info(id).await?)
}

/// A stream that did not complete is an error for a non-streaming answer.
pub fn outcome(info: &StreamInfo) -> Result<(), ApiError> {
    let aggregate = &info.aggregate;
    match info.head.status {
        StreamStatus::Completed => Ok(()),
        StreamStatus::Failed => Err(ApiError::StreamFailed(
            aggregate
                .error
                .clone()
                .unwrap_or_else(|| crate::event::ErrorInfo {
                    code: "internal_error".into(),
                    message: "the stream failed".into(),
                    retryable: true,
                }),
        )),
        StreamStatus::Cancelled => Err(ApiError::StreamCancelled(
            aggregate.cancel_reason.clone().unwrap_or_default(),
        )),
        StreamStatus::Running => Err(ApiError::Internal),
    }
}

/// The `chat.completion` object for a completed stream.
fn completion(info: &StreamInfo) -> Value {
    let agg: &Aggregate = &info.aggregate;
    let mut indexes: Vec<u32> = agg.choices.iter().map(|c| c.index).collect();
    if !indexes.contains(&0) {
        indexes.insert(0, 0);
    }
    let choices: Vec<Value> = indexes
        .into_iter()
        .map(|index| {
            let text = agg.choices.iter().find(|c| c.index == index).map(|c| c.text.as_str());
            let mut message = json!({
                "role": "assistant",
                "content": text,
                "refusal": (index == 0 && !agg.refusal.is_empty()).then_some(&agg.refusal),
            });
            if index == 0 && !agg.tool_calls.is_empty() {
                let calls: Vec<Value> = agg
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                message["tool_calls"] = json!(calls);
            }
            if index == 0 && !agg.reasoning.is_empty() {
                message["reasoning_content"] = json!(agg.reasoning);
            }
            json!({"index": index, "message": message, "logprobs": null, "finish_reason": agg.finish_reason})
        })
        .collect();
    let usage = agg.usage.map(|u| {
        json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total_tokens})
    });
    json!({
        "id": format!("chatcmpl-{}", info.id),
        "object": "chat.completion",
        "created": info.head.meta.created_at,
        "model": info.head.meta.model,
        "choices": choices,
        "usage": usage,
    })
}
