//! `POST /v1/messages`: Anthropic-compatible, streaming (Anthropic's stream events with
//! resume ids and `x-stream-id`) or not (one `message`), errors in Anthropic's shape. The
//! request is kept as sent for an Anthropic upstream and translated for any other.

use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::chat::{Endpoint, answer, outcome};
use super::json::parse;
use super::{ApiError, AppState};
use crate::auth::Caller;
use crate::event::Format;
use crate::providers::{ChatMessage, ChatRequest, MessageContent};
use crate::store::StreamInfo;

#[derive(Deserialize)]
struct MessagesRequest {
    model: String,
    messages: Vec<InMessage>,
    /// Anthropic requires it; so do we, to answer like Anthropic.
    max_tokens: u64,
    #[serde(default)]
    system: Option<Content>,
    #[serde(default)]
    stream: Option<bool>,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    content: Content,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Value>),
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let fail = |e: ApiError| e.into_response_as(Format::Anthropic);
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return fail(ApiError::BodyTooLarge {
                limit: state.config.max_body_bytes,
            });
        }
        Err(rejection) => return fail(ApiError::InvalidJson(rejection.body_text())),
    };
    let request: MessagesRequest = match parse(&bytes) {
        Ok(request) => request,
        Err(e) => return fail(e),
    };
    let original: Map<String, Value> = serde_json::from_slice(&bytes).unwrap_or_default();
    let endpoint = Endpoint {
        name: "messages",
        format: Format::Anthropic,
        detach_grace: Some(Duration::from_secs(state.config.detach_grace_secs)),
        attach: true,
        caller,
    };
    answer(&state, &headers, to_chat(request, original), endpoint).await
}

/// The Messages request in the OpenAI shape every other upstream is spoken to from.
fn to_chat(request: MessagesRequest, original: Map<String, Value>) -> ChatRequest {
    let mut messages = Vec::new();
    if let Some(system) = request.system {
        messages.push(turn(
            "system",
            Some(MessageContent::Text(text_of(&system))),
            Map::new(),
        ));
    }
    for m in request.messages {
        let blocks = match m.content {
            Content::Text(text) => {
                messages.push(turn(&m.role, Some(MessageContent::Text(text)), Map::new()));
                continue;
            }
            Content::Blocks(blocks) => blocks,
        };
        let mut parts = Vec::new();
        let mut calls = Vec::new();
        for block in blocks {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => parts.push(json!({"type": "text", "text": block["text"]})),
                Some("image") => {
                    let source = &block["source"];
                    let url = match source["type"].as_str() {
                        Some("base64") => format!(
                            "data:{};base64,{}",
                            source["media_type"].as_str().unwrap_or("image/png"),
                            source["data"].as_str().unwrap_or("")
                        ),
                        _ => source["url"].as_str().unwrap_or("").to_owned(),
                    };
                    parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                }
                Some("tool_use") => calls.push(json!({
                    "id": block["id"], "type": "function",
                    "function": {"name": block["name"], "arguments": block["input"].to_string()},
                })),
                Some("tool_result") => {
                    let mut extra = Map::new();
                    extra.insert("tool_call_id".into(), block["tool_use_id"].clone());
                    let content = match &block["content"] {
                        Value::String(s) => s.clone(),
                        Value::Array(_) => text_of(&Content::Blocks(
                            block["content"].as_array().cloned().unwrap_or_default(),
                        )),
                        _ => String::new(),
                    };
                    messages.push(turn("tool", Some(MessageContent::Text(content)), extra));
                }
                // Thinking blocks only make sense to Anthropic, which gets the original.
                _ => {}
            }
        }
        let mut extra = Map::new();
        if !calls.is_empty() {
            extra.insert("tool_calls".into(), Value::Array(calls));
        }
        if !parts.is_empty() || !extra.is_empty() {
            let content = (!parts.is_empty()).then_some(MessageContent::Parts(parts));
            messages.push(turn(&m.role, content, extra));
        }
    }
    let mut extra = Map::new();
    extra.insert("max_tokens".into(), json!(request.max_tokens));
    // `top_k` has no OpenAI counterpart (OpenAI rejects it); an Anthropic upstream gets the
    // original body anyway.
    for key in ["temperature", "top_p"] {
        if let Some(value) = original.get(key) {
            extra.insert(key.into(), value.clone());
        }
    }
    if let Some(prompt) = original.get("prompt") {
        extra.insert("prompt".into(), prompt.clone());
    }
    if let Some(stops) = original.get("stop_sequences") {
        extra.insert("stop".into(), stops.clone());
    }
    if let Some(Value::Array(tools)) = original.get("tools") {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut function = json!({
                    "name": t["name"],
                    "parameters": t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"})),
                });
                if let Some(description) = t.get("description") {
                    function["description"] = description.clone();
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        extra.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = original.get("tool_choice") {
        let mapped = match choice["type"].as_str() {
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
            _ => json!("auto"),
        };
        extra.insert("tool_choice".into(), mapped);
    }
    ChatRequest {
        model: request.model,
        messages,
        stream: request.stream,
        stream_options: None,
        extra,
        anthropic: Some(original),
    }
}

fn turn(role: &str, content: Option<MessageContent>, extra: Map<String, Value>) -> ChatMessage {
    ChatMessage {
        role: role.to_owned(),
        content,
        extra,
    }
}

fn text_of(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        Content::Blocks(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The Anthropic `message` object for a completed stream.
pub fn message(info: &StreamInfo) -> Result<Value, ApiError> {
    outcome(info)?;
    let agg = &info.aggregate;
    let mut content = Vec::new();
    if !agg.reasoning.is_empty() {
        content.push(json!({"type": "thinking", "thinking": agg.reasoning, "signature": agg.reasoning_signature.clone().unwrap_or_default()}));
    }
    let text = agg.text();
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in &agg.tool_calls {
        let input: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
        content.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    let stop_reason = match agg.finish_reason.as_deref() {
        None | Some("stop") => "end_turn",
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        Some(other) => other,
    };
    let usage = agg.usage.unwrap_or_default();
    Ok(json!({
        "id": format!("msg_{}", info.id),
        "type": "message",
        "role": "assistant",
        "model": info.head.meta.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
    }))
}
