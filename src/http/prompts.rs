//! `GET /v1/prompts` and `GET /v1/prompts/{name}`: the templates in use.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiError, AppState};

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .prompts
        .list()
        .into_iter()
        .map(|p| json!({"name": p.name, "object": "prompt", "description": p.description, "variables": p.variables}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let prompt = state.prompts.get(&name)?;
    let mut body = json!(prompt);
    body["object"] = json!("prompt");
    Ok(Json(body))
}
