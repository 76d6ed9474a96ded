//! `GET /v1/streams/{id}/events`: subscribe with resume (SPEC §5), in any client format.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::access::{Need, StreamAccess};
use super::{ApiError, AppState};
use crate::auth::Caller;
use crate::event::{Format, StreamId, StreamKind};
use crate::relay::SubscriberGuard;
use crate::sse::{Renderer, ResumePlan, Subscription, plan};
use crate::store::{LogHead, StoreError};
use crate::telemetry::record_stream_id;

#[derive(Deserialize)]
pub struct EventsQuery {
    format: Option<String>,
    last_event_id: Option<String>,
    strict: Option<String>,
    presence: Option<String>,
    token: Option<String>,
}

/// How a subscriber asked to read.
pub struct ReadOptions<'a> {
    pub format: Format,
    /// The resume id, if any.
    pub position: Option<&'a str>,
    /// 410 instead of an in-band `reset`.
    pub strict: bool,
    /// Also send `presence` events when the subscriber count changes.
    pub presence: bool,
}

fn flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(other) => Err(ApiError::InvalidQuery(format!(
            "{name}={}: use true or false",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

pub async fn subscribe(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let access = StreamAccess::new(caller, &headers, query.token.as_deref(), Need::Read)?;
    let id: StreamId = id.parse().map_err(|_| ApiError::StreamNotFound)?;
    let position = last_event_id(&headers).or(query.last_event_id.filter(|v| !v.is_empty()));
    let head = state.log().head(&id).await.inspect_err(|e| {
        if *e == StoreError::NotFound && position.is_some() {
            state.metrics.resume_not_found();
        }
    })?;
    access.check(&head.meta)?;
    let format = match query.format {
        Some(name) => Format::parse(&name).ok_or(ApiError::UnsupportedFormat(name))?,
        None => head.meta.format,
    };
    let strict = flag("strict", query.strict.as_deref())?;
    let presence = flag("presence", query.presence.as_deref())?;
    if presence && !matches!(format, Format::Native | Format::Agui) {
        return Err(ApiError::InvalidQuery(
            "presence=true needs format=native or format=agui".into(),
        ));
    }
    if !head.status.is_finished() {
        if head.meta.kind == StreamKind::Agent {
            state.agents.watch(&id);
        } else if head.meta.feed.is_some() {
            state.feeds.watch(&id);
        }
    }
    let options = ReadOptions {
        format,
        position: position.as_deref(),
        strict,
        presence,
    };
    open(&state, id, head, options, None)
}

/// The resume position a client sent in `Last-Event-ID`. A value that is not even text still
/// counts as a position (a malformed one), so it gets `reset` rather than a fresh start; an
/// empty value means "no position", like a client that has seen nothing.
pub fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_or_else(|_| "\u{fffd}".to_owned(), str::to_owned)
        })
        .filter(|v| !v.trim().is_empty())
}

/// Answers a subscription: 204 when nothing is left, 410 where a reset cannot be carried,
/// else the SSE response. `guard` is an attachment the caller already holds.
pub fn open(
    state: &AppState,
    id: StreamId,
    head: LogHead,
    options: ReadOptions<'_>,
    guard: Option<SubscriberGuard>,
) -> Result<Response, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let renderer = Renderer::new(options.format, &id, &head.meta);
    let planned = plan(&head, options.position);
    if options.position.is_some() {
        let refused = options.strict || !renderer.carries_reset();
        state.metrics.resume(&planned, refused);
    }
    let (after, reset) = match planned {
        ResumePlan::From(after) => (after, None),
        ResumePlan::Finished => {
            return Ok(with_stream_id(StatusCode::NO_CONTENT.into_response(), &id));
        }
        // A reader with no position on a feed whose window moved on (a late joiner) is told
        // so where the format can say it; elsewhere it just gets the window.
        ResumePlan::Reset { after, .. }
            if options.position.is_none() && !options.strict && !renderer.carries_reset() =>
        {
            (after, None)
        }
        ResumePlan::Reset { reset, after } => {
            if options.strict || !renderer.carries_reset() {
                return Err(ApiError::ResumeGone(reset));
            }
            (after, Some(reset))
        }
    };
    let guard = match guard {
        Some(guard) => guard,
        None => {
            let max = state.config.limits.max_subscribers_per_stream;
            state
                .relay
                .registry
                .try_attach(&id, max)
                .ok_or(ApiError::TooManySubscribers { max })?
        }
    };
    let presence = options.presence.then(|| guard.presence());
    let subscription = Subscription {
        log: state.log().clone(),
        id: id.clone(),
        epoch: head.epoch,
        after,
        renderer,
        reset,
        keepalive: std::time::Duration::from_secs(state.config.keepalive_secs),
        retry_ms: Some(state.config.retry_ms),
        shutdown: state.let_go.clone(),
        guard,
        presence,
        metrics: state.metrics.clone(),
    };
    Ok(with_stream_id(subscription.into_response(), &id))
}

/// Also puts the stream on the request's span, for the routes that create one.
pub fn with_stream_id(mut response: Response, id: &StreamId) -> Response {
    record_stream_id(id);
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert("x-stream-id", value);
    }
    response
}
