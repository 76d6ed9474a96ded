//! Background streams: create (`POST /v1/streams`), status (`GET /v1/streams/{id}`) and
//! cancel (`POST /v1/streams/{id}/cancel`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::access::{Need, StreamAccess, TokenQuery, require_key};
use super::chat::{Endpoint, launch};
use super::events::with_stream_id;
use super::json::{ApiJson, from_value};
use super::{ApiError, AppState};
use super::{agents, feeds};
use crate::auth::Caller;
use crate::event::token::hash;
use crate::event::{EventId, Format, StreamId};
use crate::providers::ChatRequest;
use crate::relay::Launched;
use crate::store::{Created, StreamInfo};

#[derive(Deserialize)]
pub struct CreateStream {
    #[serde(default)]
    request: Option<ChatRequest>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    require_key(&caller)?;
    let kind = match body.get("kind") {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => {
            return Err(ApiError::InvalidField {
                param: "kind".into(),
                message: "`kind` must be a string: `chat`, `agent` or `transcription`".into(),
            });
        }
        None => {
            return Err(ApiError::MissingField {
                param: "kind".into(),
                message: "missing required field `kind` (`chat`, `agent` or `transcription`)"
                    .into(),
            });
        }
    };
    match kind.as_str() {
        "chat" => create_chat(&state, caller, &headers, from_value(body)?).await,
        "agent" => agents::create(&state, &caller, &headers, body).await,
        "transcription" => feeds::create(&state, &caller, &headers, body).await,
        other => Err(ApiError::UnsupportedKind(other.chars().take(40).collect())),
    }
}

async fn create_chat(
    state: &AppState,
    caller: Caller,
    headers: &HeaderMap,
    body: CreateStream,
) -> Result<Response, ApiError> {
    let request = body.request.ok_or_else(|| ApiError::MissingField {
        param: "request".into(),
        message: "a chat stream needs `request`, a chat completion request".into(),
    })?;
    let endpoint = Endpoint {
        name: "streams",
        format: Format::Native,
        detach_grace: None,
        attach: false,
        caller,
    };
    let (launched, tokens) = launch(state, headers, request, endpoint).await?;
    let (id, status, read_token, write_token) = match launched {
        Launched::New { id, .. } => (
            id,
            StatusCode::CREATED,
            Some(tokens.read.token),
            Some(tokens.write.token),
        ),
        // Tokens are stored only as hashes: a repeated request cannot get them again.
        Launched::Existing(id) => (id, StatusCode::OK, None, None),
    };
    let info = state.log().info(&id).await?;
    let mut body = describe(state, &info);
    body["events_url"] = json!(format!("/v1/streams/{id}/events"));
    body["read_token"] = json!(read_token);
    body["write_token"] = json!(write_token);
    Ok(with_stream_id((status, Json(body)).into_response(), &id))
}

pub async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let access = StreamAccess::new(caller, &headers, query.token.as_deref(), Need::Read)?;
    let id: StreamId = id.parse().map_err(|_| ApiError::StreamNotFound)?;
    // A status outlives its log (`head` would be gone), so this reads the whole info.
    let info = state.log().info(&id).await?;
    access.check(&info.head.meta)?;
    Ok(Json(describe(&state, &info)))
}

/// Cancels the generation (idempotent) and answers the resulting status.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let access = StreamAccess::new(caller, &headers, query.token.as_deref(), Need::Cancel)?;
    let id: StreamId = id.parse().map_err(|_| ApiError::StreamNotFound)?;
    // Only streams whose log still exists can be cancelled; 404 otherwise.
    let head = state.log().head(&id).await?;
    access.check(&head.meta)?;
    let cancelled_now = state.relay.cancel(&id, "user").await?;
    if cancelled_now {
        tracing::info!(stream_id = %id, "stream cancelled by request");
    }
    let info = state.log().info(&id).await?;
    Ok(Json(describe(&state, &info)))
}

/// Reads the body of a request creating a stream written from outside (agent, feed) as `T`,
/// with the hash that binds an idempotency key to it; `kind` chose the route and is dropped.
pub fn external_body<T: DeserializeOwned>(
    state: &AppState,
    mut body: Value,
) -> Result<(T, String), ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let request_hash = hash(&body.to_string());
    if let Some(fields) = body.as_object_mut() {
        fields.remove("kind");
    }
    Ok((from_value(body)?, request_hash))
}

/// The format subscribers of a stream written from outside get without `?format=`:
/// `native` unless the creating request named another.
pub fn default_format(name: Option<&str>) -> Result<Format, ApiError> {
    match name {
        None => Ok(Format::Native),
        Some(name) => Format::parse(name).ok_or_else(|| ApiError::UnsupportedFormat(name.into())),
    }
}

/// The answer to creating a stream written from outside (agent, feed): 201 with its status,
/// its `urls` and its tokens, or 200 without tokens (they are stored only as hashes) when the
/// idempotency key named an existing stream made by the same request.
pub async fn created_answer(
    state: &AppState,
    created: Created,
    new_id: StreamId,
    tokens: (String, String),
    request_hash: &str,
    urls: &[(&str, &str)],
) -> Result<Response, ApiError> {
    let (id, status, tokens) = match created {
        Created::New { .. } => (new_id, StatusCode::CREATED, Some(tokens)),
        Created::Existing(existing) => (existing, StatusCode::OK, None),
    };
    let info = state.log().info(&id).await?;
    if status == StatusCode::OK && info.head.meta.request_hash != request_hash {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let mut answer = describe(state, &info);
    for (name, path) in urls {
        answer[*name] = json!(format!("/v1/streams/{id}/{path}"));
    }
    answer["read_token"] = json!(tokens.as_ref().map(|t| &t.0));
    answer["write_token"] = json!(tokens.as_ref().map(|t| &t.1));
    Ok(with_stream_id((status, Json(answer)).into_response(), &id))
}

/// The status document of a stream.
pub fn describe(state: &AppState, info: &StreamInfo) -> Value {
    let head = &info.head;
    let meta = &head.meta;
    let last_event_id =
        (head.last_seq > 0).then(|| EventId::new(&head.epoch, head.last_seq).to_string());
    // A live feed shows its recent transcript only (it may run for hours).
    let mut aggregate = info.aggregate.clone();
    if meta.feed.is_some() {
        let keep = state.config.transcription.recent_transcript_chars;
        let chars = aggregate.transcript.chars().count();
        if chars > keep {
            aggregate.transcript = aggregate.transcript.chars().skip(chars - keep).collect();
        }
    }
    json!({
        "id": info.id,
        "object": "stream",
        "kind": meta.kind,
        "status": head.status,
        "model": meta.model,
        "provider": meta.provider,
        "format": meta.format,
        "created_at": meta.created_at,
        "updated_at": info.updated_at_ms / 1000,
        "last_event_id": last_event_id,
        "event_count": head.last_seq,
        "events_available": info.log_available,
        "usage": info.aggregate.usage,
        "subscribers": state.relay.registry.subscribers(&info.id),
        "aggregate": aggregate,
    })
}
