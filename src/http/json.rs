//! `ApiJson`: a JSON body extractor whose every failure is an [`ApiError`] with a stable code
//! and, for type errors, the path of the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_body_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge { limit }
            } else {
                ApiError::InvalidJson(rejection.body_text())
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Syntax errors are `invalid_json`; well-formed JSON of the wrong shape is `invalid_request`
/// naming the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, over the whole body, so trailing garbage is never read as a shape error.
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    from_value(json)
}

/// Well-formed JSON into `T`; a wrong shape is `invalid_request` naming the field.
pub fn from_value<T: DeserializeOwned>(json: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let detail = e.into_inner().to_string();
        // A missing field is reported at its parent; name the field itself.
        let param = match missing_field(&detail) {
            Some(field) if path.is_empty() => field.to_owned(),
            Some(field) => format!("{path}.{field}"),
            None => path,
        };
        if let Some(field) = missing_field(&detail) {
            return ApiError::MissingField {
                message: format!("missing required field `{field}`"),
                param,
            };
        }
        let message = if param.is_empty() {
            format!("invalid request: {detail}")
        } else {
            format!("invalid value for `{param}`: {detail}")
        };
        ApiError::InvalidField { param, message }
    })
}

fn missing_field(detail: &str) -> Option<&str> {
    detail.strip_prefix("missing field `")?.split('`').next()
}
