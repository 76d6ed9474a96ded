//! The HTTP API (SPEC §3): the router, its middleware, and one file per group of routes.

mod access;
mod admission;
mod agents;
mod chat;
mod error;
mod events;
mod feeds;
mod json;
mod listen;
mod messages;
mod meta;
mod playground;
mod prompts;
mod streams;
mod transcriptions;

pub use error::ApiError;
pub use listen::{HEAD_TIMEOUT, serve_connections};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::middleware;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use crate::app::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the router. Layers, outermost first:
/// 1. `SetRequestId`: gives every request an `x-request-id` (keeps a client-sent one).
/// 2. `Trace`: one span per request carrying that id; `stream_id` is recorded on it by the
///    route layer (ids in paths) and by `with_stream_id` (created streams).
/// 3. `PropagateRequestId`: echoes the id on the response.
/// 4. `CatchPanic`: a panic becomes a 500 JSON error, never a dropped connection.
/// 5. `DefaultBodyLimit`: `max_body_bytes`; `ApiJson` turns a breach into 413 `body_too_large`.
///
/// Outside them `Cors` answers preflights before anything else runs; inside, every route but
/// health, readiness, metrics and the playground's page goes through `authenticate` (keys,
/// rate limits), and the routes that need a key through `key_required` before their body is
/// read.
///
/// Around each matched route (after routing, so the route template is known):
/// `telemetry::observe` counts the request by template and status and records `stream_id`.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let upload_limit = state.config.transcription.max_upload_bytes;
    let segment_limit = state.config.transcription.max_segment_bytes;
    // Prometheus text, without a client key. With `metrics_listen` it moves to that address.
    let public_metrics = match state.config.metrics_listen {
        None => Router::new().route("/metrics", get(meta::metrics)),
        Some(_) => Router::new(),
    };
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %id,
                    stream_id = tracing::field::Empty,
                    key = tracing::field::Empty,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal)
        }))
        .layer(DefaultBodyLimit::max(limit));
    let cors = cors(&state.config.cors_allowed_origins);
    let open = Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .merge(public_metrics)
        .merge(playground::routes());
    // Routes that need a key when keys are configured; a stream's own routes (below) also
    // take its tokens, so they check the caller themselves (`StreamAccess`).
    let keyed = Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/messages", post(messages::create))
        .route(
            "/v1/audio/transcriptions",
            post(transcriptions::create).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/v1/streams", post(streams::create))
        .route("/v1/models", get(meta::models))
        .route("/v1/prompts", get(prompts::list))
        .route("/v1/prompts/{name}", get(prompts::get))
        .route_layer(middleware::from_fn(access::key_required));
    Router::new()
        .route("/v1/streams/{id}", get(streams::status))
        .route(
            "/v1/streams/{id}/events",
            get(events::subscribe).post(agents::publish),
        )
        .route("/v1/streams/{id}/cancel", post(streams::cancel))
        .route(
            "/v1/streams/{id}/audio",
            post(feeds::audio).layer(DefaultBodyLimit::max(segment_limit)),
        )
        .route("/v1/streams/{id}/finish", post(feeds::finish))
        .merge(keyed)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            access::authenticate,
        ))
        .merge(open)
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::telemetry::observe,
        ))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(layers)
        .layer(cors)
        .with_state(state)
}

/// CORS for browsers on `origins` (`*` for any): the headers clients send (keys, resume ids,
/// idempotency keys) are allowed, and the ones they read (stream and request ids) exposed.
fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("anthropic-version"),
        ])
        .expose_headers([
            HeaderName::from_static("x-stream-id"),
            REQUEST_ID,
            header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600))
}

/// What `metrics_listen` serves: metrics and health for operators, nothing a client uses.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(meta::metrics))
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .with_state(state)
}

#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = format!("req_{:032x}", rand::random::<u128>());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}
