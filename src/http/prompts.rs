//! `GET /v1/prompts` and `GET /v1/prompts/{name}`: the templates in use.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::access::require_key;
use super::{ApiError, AppState};
use crate::auth::Caller;

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    require_key(&caller)?;
    let data: Vec<Value> = state
        .prompts
        .list()
        .into_iter()
        .map(|p| json!({"name": p.name, "object": "prompt", "description": p.description, "variables": p.variables}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_key(&caller)?;
    let prompt = state.prompts.get(&name)?;
    let mut body = json!(prompt);
    body["object"] = json!("prompt");
    Ok(Json(body))
}
