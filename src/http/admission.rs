//! What a request that creates a stream must pass before anything starts: a model name it
//! may use, a well-formed idempotency key, and a slot among its key's concurrent streams.

use axum::http::HeaderMap;

use super::{ApiError, AppState};
use crate::auth::{Caller, StreamPermit};
use crate::providers::Route;

/// The route for `model`, if the caller's key may use it.
pub fn route_for(state: &AppState, caller: &Caller, model: &str) -> Result<Route, ApiError> {
    check_model_name(model)?;
    if !caller.allows_model(model) {
        return Err(ApiError::ModelNotAllowed(model.chars().take(100).collect()));
    }
    Ok(state.providers.route(model)?)
}

/// Model names end up in logs and metrics: no control characters (a newline would forge a
/// log line).
pub fn check_model_name(model: &str) -> Result<(), ApiError> {
    if model.chars().any(char::is_control) {
        return Err(ApiError::InvalidField {
            param: "model".into(),
            message: "`model` must not contain control characters".into(),
        });
    }
    Ok(())
}

/// A slot among the caller key's concurrent streams (none to take without keys). A key at its
/// maximum may still retry a request whose idempotency `key` names a stream it has: that
/// stream needs no new slot.
pub async fn stream_permit(
    state: &AppState,
    caller: &Caller,
    key: Option<&str>,
) -> Result<Option<StreamPermit>, ApiError> {
    match caller.stream_permit() {
        Ok(permit) => Ok(permit),
        Err(max) => match key {
            Some(key)
                if state
                    .log()
                    .find_idempotent(caller.owner(), key)
                    .await?
                    .is_some() =>
            {
                Ok(None)
            }
            _ => Err(ApiError::TooManyStreams { max }),
        },
    }
}

/// The `Idempotency-Key` header, if any, checked for a sane shape and scoped to `route`.
pub fn idempotency_key(headers: &HeaderMap, route: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::InvalidIdempotencyKey)?;
    let ok = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| Some(format!("{route} {key}")))
        .ok_or(ApiError::InvalidIdempotencyKey)
}
