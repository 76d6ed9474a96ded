//! What is configured and whether the instance is healthy: models, liveness, readiness,
//! metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::access::require_key;
use super::{ApiError, AppState};
use crate::auth::Caller;

/// The models the caller's key may use.
pub async fn models(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    require_key(&caller)?;
    let data: Vec<Value> = state
        .providers
        .listed_models()
        .into_iter()
        .filter(|(id, _)| caller.allows_model(id))
        .map(|(id, provider)| json!({"id": id, "object": "model", "created": 0, "owned_by": provider}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store answers and the instance is not draining.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let draining = state.shutdown.is_cancelled();
    let store = state.log().ready().await;
    let status = if store && !draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": status == StatusCode::OK, "store": store, "draining": draining})),
    )
}

/// The Prometheus text exposition of this instance's metrics.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
