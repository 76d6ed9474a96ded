//! Agent streams over HTTP: create (`POST /v1/streams {"kind":"agent"}`) and publish
//! (`POST /v1/streams/{id}/events`, one event or an array, native or AG-UI).

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Need, StreamAccess, TokenQuery};
use super::admission::{idempotency_key, stream_permit};
use super::json::ApiJson;
use super::streams::{created_answer, default_format, external_body};
use super::{ApiError, AppState};
use crate::agent::{BatchError, PublishError, parse_batch};
use crate::auth::Caller;
use crate::event::token::mint;
use crate::event::{StreamId, StreamKind, unix_millis};
use crate::store::StreamMeta;

/// Names are stored with every stream and shown in status; real ones are short.
const MAX_NAME_LEN: usize = 256;

/// The body of `POST /v1/streams` for an agent stream.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Shown as the stream's `model` (e.g. the agent's name); `agent` by default.
    #[serde(default)]
    name: Option<String>,
    /// The initial state (a `state.snapshot`).
    #[serde(default)]
    state: Option<Value>,
    /// The format subscribers get without `?format=`: `native` (default) or `agui`.
    #[serde(default)]
    format: Option<String>,
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Value,
) -> Result<Response, ApiError> {
    let (body, request_hash): (CreateAgent, String) = external_body(state, body)?;
    let name = body.name.unwrap_or_else(|| "agent".to_owned());
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidField {
            param: "name".into(),
            message: format!("`name` must be 1 to {MAX_NAME_LEN} bytes, no control characters"),
        });
    }
    let format = default_format(body.format.as_deref())?;
    let key = idempotency_key(headers, "streams.agent")?;
    let (read, write) = (mint("rt_"), mint("wt_"));
    let meta = StreamMeta {
        kind: StreamKind::Agent,
        model: name,
        provider: "publisher".into(),
        owner: caller.owner().to_owned(),
        created_at: unix_millis() / 1000,
        format,
        include_usage: false,
        choices: 1,
        read_token_hash: read.hash,
        write_token_hash: write.hash,
        request_hash: request_hash.clone(),
        feed: None,
    };
    let id = StreamId::random();
    let permit = stream_permit(state, caller, key.as_deref()).await?;
    let created = state
        .agents
        .create(id.clone(), meta, key, body.state, permit)
        .await?;
    let urls = [("events_url", "events"), ("publish_url", "events")];
    let tokens = (read.token, write.token);
    created_answer(state, created, id, tokens, &request_hash, &urls).await
}

pub async fn publish(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    // Refused before anything is looked up: the answer says nothing about the stream.
    let access = StreamAccess::new(caller, &headers, query.token.as_deref(), Need::Write)?;
    let id: StreamId = id.parse().map_err(|_| ApiError::StreamNotFound)?;
    let head = state.log().head(&id).await?;
    access.check(&head.meta)?;
    // The body is read only now: a caller who may not write cannot make the server buffer
    // it, nor learn what is wrong with it.
    let ApiJson(body) = ApiJson::<Value>::from_request(request, &state).await?;
    if head.meta.kind != StreamKind::Agent {
        return Err(ApiError::NotAgentStream);
    }
    let batch = parse_batch(body, state.agents.settings.max_batch).map_err(batch_error)?;
    let patch_field = |index: usize| batch.patch_field(index);
    let param = (0..batch.events.len()).map(patch_field).collect::<Vec<_>>();
    let published = state
        .agents
        .publish(&id, batch)
        .await
        .map_err(|e| match e {
            PublishError::NotAgent => ApiError::NotAgentStream,
            PublishError::Finished => ApiError::StreamFinished,
            PublishError::StatePatch { index, message } => ApiError::StatePatchFailed {
                param: format!("[{index}].{}", param.get(index).copied().unwrap_or("")),
                message: format!("event {index}: the state patch does not apply: {message}"),
            },
            PublishError::Contended => ApiError::PublishContended,
            PublishError::Store(e) => e.into(),
        })?;
    let ids = published.ids();
    Ok(Json(json!({
        "ids": ids,
        "last_event_id": ids.last(),
        "status": published.status,
    })))
}

fn batch_error(e: BatchError) -> ApiError {
    match e {
        BatchError::Empty => ApiError::EmptyBatch,
        BatchError::TooMany { max } => ApiError::TooManyEvents { max },
        BatchError::Invalid { .. } => ApiError::InvalidEvent {
            param: e.param().unwrap_or_default(),
            message: e.to_string(),
        },
    }
}
