//! The HTTP error boundary: every failure a client can see, its status and stable code, in
//! one exhaustive match. Bodies use OpenAI's shape: `{"error":{message,type,code,param}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::event::{ErrorInfo, Format};
use crate::prompts::PromptError;
use crate::providers::{ModelNotFound, ProviderError};
use crate::sse::Reset;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{message}")]
    InvalidField { param: String, message: String },
    #[error("{message}")]
    MissingField { param: String, message: String },
    #[error("`messages` must contain at least one message")]
    EmptyMessages,
    #[error("stream kind `{0}` is not supported; use `chat`, `agent` or `transcription`")]
    UnsupportedKind(String),
    #[error("`Idempotency-Key` must be 1 to 255 visible ASCII characters")]
    InvalidIdempotencyKey,
    #[error("this `Idempotency-Key` was already used with a different request")]
    IdempotencyKeyReused,
    #[error("format `{0}` is not supported; use `native`, `openai`, `anthropic` or `agui`")]
    UnsupportedFormat(String),
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error(transparent)]
    ModelNotFound(#[from] ModelNotFound),
    #[error("stream not found or expired")]
    StreamNotFound,
    #[error("{0}")]
    PromptNotFound(String),
    #[error("{0}")]
    PromptVariableMissing(String),
    #[error("{0}")]
    PromptRender(String),
    #[error("no route for this path")]
    RouteNotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("{}; read the stream from the start", .0.reason.describe())]
    ResumeGone(Reset),
    #[error("the event store is full; retry later")]
    StoreFull,
    #[error("the event store is unavailable; retry later")]
    StoreUnavailable,
    #[error("the server is shutting down; retry on another instance")]
    ShuttingDown,
    #[error(transparent)]
    Upstream(ProviderError),
    #[error("{}", .0.message)]
    StreamFailed(ErrorInfo),
    #[error("the stream was cancelled ({0})")]
    StreamCancelled(String),
    #[error(
        "this request needs the stream's write token (`Authorization: Bearer wt_…` or `?token=`)"
    )]
    MissingToken,
    #[error("a read token cannot publish or cancel; use the stream's write token")]
    WriteTokenRequired,
    #[error("only agent streams take published events")]
    NotAgentStream,
    #[error("the stream already finished; nothing more can be appended")]
    StreamFinished,
    #[error("{message}")]
    InvalidEvent { param: String, message: String },
    #[error("the batch holds no events")]
    EmptyBatch,
    #[error("a publish call takes at most {max} events")]
    TooManyEvents { max: usize },
    #[error("{message}")]
    StatePatchFailed { param: String, message: String },
    #[error("too many concurrent publishers on this stream; retry")]
    PublishContended,
    #[error("{0}")]
    UnsupportedAudio(String),
    #[error("only live transcription feeds take audio segments")]
    NotAFeed,
    #[error("segment {got} came before segment {expected}; send segments in order")]
    SegmentOutOfOrder { expected: u64, got: u64 },
    #[error("this segment (or the one before it) is still being transcribed; retry")]
    SegmentInProgress,
    #[error("this request needs an API key (`Authorization: Bearer …` or `x-api-key`)")]
    MissingApiKey,
    #[error("the API key is not valid")]
    InvalidApiKey,
    #[error("this API key may not use model `{0}`")]
    ModelNotAllowed(String),
    #[error("this API key is over its {per_minute} requests per minute; retry after {} s", retry_after_secs(.retry_after))]
    RateLimited {
        per_minute: u32,
        retry_after: std::time::Duration,
    },
    #[error("this API key already runs {max} streams, its maximum; retry when one ends")]
    TooManyStreams { max: usize },
    #[error("this stream already has {max} subscribers, its maximum")]
    TooManySubscribers { max: usize },
    #[error(
        "without API keys tokenrelay answers only requests addressed to a loopback host (Host)"
    )]
    HostNotAllowed,
    #[error(
        "without API keys tokenrelay answers browsers only from loopback pages or `cors_allowed_origins`"
    )]
    OriginNotAllowed,
    #[error("internal error")]
    Internal,
}

/// Whole seconds to wait, at least one (a `retry-after` of 0 invites a busy loop).
fn retry_after_secs(wait: &std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &str) {
        match self {
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::InvalidField { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::MissingField { .. } => (StatusCode::BAD_REQUEST, "missing_field"),
            Self::EmptyMessages => (StatusCode::BAD_REQUEST, "empty_messages"),
            Self::UnsupportedKind(_) => (StatusCode::BAD_REQUEST, "unsupported_kind"),
            Self::InvalidIdempotencyKey => (StatusCode::BAD_REQUEST, "invalid_idempotency_key"),
            Self::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            Self::UnsupportedFormat(_) => (StatusCode::BAD_REQUEST, "unsupported_format"),
            Self::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::ModelNotFound(_) => (StatusCode::NOT_FOUND, "model_not_found"),
            Self::StreamNotFound => (StatusCode::NOT_FOUND, "stream_not_found"),
            Self::PromptNotFound(_) => (StatusCode::NOT_FOUND, "prompt_not_found"),
            Self::PromptVariableMissing(_) => (StatusCode::BAD_REQUEST, "prompt_variable_missing"),
            Self::PromptRender(_) => (StatusCode::BAD_REQUEST, "prompt_render_failed"),
            Self::RouteNotFound => (StatusCode::NOT_FOUND, "route_not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::ResumeGone(_) => (StatusCode::GONE, "resume_unavailable"),
            Self::StoreFull => (StatusCode::SERVICE_UNAVAILABLE, "store_full"),
            Self::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Self::Upstream(e) => (e.http_status(), e.code()),
            Self::StreamFailed(info) => (failure_status(&info.code), info.code.as_str()),
            Self::StreamCancelled(_) => (StatusCode::CONFLICT, "stream_cancelled"),
            Self::MissingToken => (StatusCode::UNAUTHORIZED, "missing_token"),
            Self::WriteTokenRequired => (StatusCode::FORBIDDEN, "write_token_required"),
            Self::NotAgentStream => (StatusCode::CONFLICT, "not_an_agent_stream"),
            Self::StreamFinished => (StatusCode::CONFLICT, "stream_finished"),
            Self::InvalidEvent { .. } => (StatusCode::BAD_REQUEST, "invalid_event"),
            Self::EmptyBatch => (StatusCode::BAD_REQUEST, "empty_batch"),
            Self::TooManyEvents { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events"),
            Self::StatePatchFailed { .. } => (StatusCode::CONFLICT, "state_patch_failed"),
            Self::PublishContended => (StatusCode::SERVICE_UNAVAILABLE, "publish_contended"),
            Self::UnsupportedAudio(_) => (StatusCode::BAD_REQUEST, "unsupported_audio"),
            Self::NotAFeed => (StatusCode::CONFLICT, "not_a_feed"),
            Self::SegmentOutOfOrder { .. } => (StatusCode::CONFLICT, "segment_out_of_order"),
            Self::SegmentInProgress => (StatusCode::CONFLICT, "segment_in_progress"),
            Self::MissingApiKey => (StatusCode::UNAUTHORIZED, "missing_api_key"),
            Self::InvalidApiKey => (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            Self::ModelNotAllowed(_) => (StatusCode::FORBIDDEN, "model_not_allowed"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::TooManyStreams { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_streams"),
            Self::TooManySubscribers { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_subscribers")
            }
            Self::HostNotAllowed => (StatusCode::FORBIDDEN, "host_not_allowed"),
            Self::OriginNotAllowed => (StatusCode::FORBIDDEN, "origin_not_allowed"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidField { param, .. }
            | Self::MissingField { param, .. }
            | Self::InvalidEvent { param, .. }
            | Self::StatePatchFailed { param, .. } => Some(param),
            Self::EmptyMessages => Some("messages"),
            Self::ModelNotFound(_) | Self::ModelNotAllowed(_) => Some("model"),
            Self::UnsupportedFormat(_) => Some("format"),
            Self::UnsupportedKind(_) => Some("kind"),
            Self::UnsupportedAudio(_) => Some("file"),
            Self::SegmentOutOfOrder { .. } => Some("segment"),
            Self::PromptNotFound(_) | Self::PromptVariableMissing(_) | Self::PromptRender(_) => {
                Some("prompt")
            }
            _ => None,
        }
    }
}

/// The status for a stream that failed after it started (a non-streaming answer).
fn failure_status(code: &str) -> StatusCode {
    match code {
        "upstream_first_event_timeout" | "upstream_idle_timeout" => StatusCode::GATEWAY_TIMEOUT,
        c if c.starts_with("upstream_") => StatusCode::BAD_GATEWAY,
        "interrupted" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<PromptError> for ApiError {
    fn from(e: PromptError) -> Self {
        match e {
            PromptError::NotFound(_) => Self::PromptNotFound(e.to_string()),
            PromptError::MissingVariable { .. } => Self::PromptVariableMissing(e.to_string()),
            PromptError::Render { .. } | PromptError::Load { .. } => {
                Self::PromptRender(e.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::StreamNotFound,
            StoreError::Full => Self::StoreFull,
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "event store unavailable");
                Self::StoreUnavailable
            }
            // Callers handle these where they can happen; reaching here is a bug.
            StoreError::Finished
            | StoreError::TooLarge
            | StoreError::Replaced
            | StoreError::Fenced
            | StoreError::Conflict => {
                tracing::error!(error = %e, "unexpected store error");
                Self::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_as(Format::OpenAi)
    }
}

/// Anthropic's error `type` for a status (its SDKs branch on it).
fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 405 | 409 | 410 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

impl ApiError {
    /// The response in the error shape of the route's API: Anthropic's
    /// `{"type":"error","error":{type,message}}` on `/v1/messages`, OpenAI's elsewhere. The
    /// stable code travels in both.
    pub fn into_response_as(self, format: Format) -> Response {
        let (status, code) = self.status_and_code();
        let body = if format == Format::Anthropic {
            json!({
                "type": "error",
                "error": {"type": anthropic_type(status), "message": self.to_string(), "code": code},
            })
        } else {
            let kind = if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request_error"
            };
            let mut error = json!({
                "message": self.to_string(),
                "type": kind,
                "code": code,
                "param": self.param(),
            });
            if let Self::ResumeGone(reset) = &self {
                error["reset"] = json!(reset);
            }
            json!({ "error": error })
        };
        let mut response = (status, Json(body)).into_response();
        let retry_after = match &self {
            Self::Upstream(e) => e.retry_after.map(|d| d.as_secs().max(1)),
            Self::RateLimited { retry_after, .. } => Some(retry_after_secs(retry_after).max(1)),
            Self::StoreFull
            | Self::StoreUnavailable
            | Self::ShuttingDown
            | Self::PublishContended
            | Self::TooManyStreams { .. }
            | Self::TooManySubscribers { .. } => Some(1),
            _ => None,
        };
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tokenrelay\""),
            );
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
