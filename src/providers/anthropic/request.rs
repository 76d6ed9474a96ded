//! A chat request (OpenAI shape) as an Anthropic Messages API body.

use serde_json::{Map, Value, json};

use crate::providers::upstream::append_turn;
use crate::providers::{ChatMessage, ChatRequest, MessageContent};

/// Anthropic requires `max_tokens`; this is used when the client gave none.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The streaming Messages body for `model`.
pub fn body(model: &str, request: &ChatRequest) -> Value {
    if let Some(original) = &request.anthropic {
        let mut body = original.clone();
        body.insert("model".into(), json!(model));
        body.insert("stream".into(), json!(true));
        return Value::Object(body);
    }
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for message in &request.messages {
        match message.role.as_str() {
            "system" | "developer" => system.push(
                message
                    .content
                    .as_ref()
                    .map(MessageContent::text)
                    .unwrap_or_default(),
            ),
            "assistant" => append_turn(
                &mut messages,
                "assistant",
                "content",
                assistant_blocks(message),
            ),
            "tool" => {
                let result = json!({
                    "type": "tool_result",
                    "tool_use_id": message.extra.get("tool_call_id").cloned().unwrap_or(Value::Null),
                    "content": message.content.as_ref().map(MessageContent::text).unwrap_or_default(),
                });
                append_turn(&mut messages, "user", "content", vec![result]);
            }
            _ => append_turn(
                &mut messages,
                "user",
                "content",
                blocks(message.content.as_ref()),
            ),
        }
    }
    let extra = &request.extra;
    let budget = extra
        .get("thinking")
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64);
    let max_tokens = extra
        .get("max_tokens")
        .or_else(|| extra.get("max_completion_tokens"))
        .and_then(Value::as_u64)
        // Anthropic wants room for the answer beyond the thinking budget.
        .unwrap_or_else(|| budget.map_or(DEFAULT_MAX_TOKENS, |b| b + DEFAULT_MAX_TOKENS));
    let mut body =
        json!({"model": model, "messages": messages, "max_tokens": max_tokens, "stream": true});
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    // OpenAI's `metadata` is a free-form map Anthropic would refuse; only these carry over.
    for key in ["top_p", "top_k", "thinking"] {
        if let Some(value) = extra.get(key) {
            body[key] = value.clone();
        }
    }
    // OpenAI allows temperatures up to 2, Anthropic up to 1.
    if let Some(t) = extra.get("temperature").and_then(Value::as_f64) {
        body["temperature"] = json!(t.min(1.0));
    }
    match extra.get("stop") {
        Some(Value::String(stop)) => body["stop_sequences"] = json!([stop]),
        Some(stops @ Value::Array(_)) => body["stop_sequences"] = stops.clone(),
        _ => {}
    }
    if let Some(Value::Array(tools)) = extra.get("tools") {
        body["tools"] = Value::Array(tools.iter().filter_map(tool).collect());
    }
    if let Some(choice) = extra.get("tool_choice").and_then(tool_choice) {
        body["tool_choice"] = choice;
    }
    body
}

fn blocks(content: Option<&MessageContent>) -> Vec<Value> {
    match content {
        Some(MessageContent::Text(text)) if !text.is_empty() => {
            vec![json!({"type": "text", "text": text})]
        }
        Some(MessageContent::Parts(parts)) => parts.iter().filter_map(part).collect(),
        _ => Vec::new(),
    }
}

fn part(part: &Value) -> Option<Value> {
    match part.get("type")?.as_str()? {
        // Anthropic refuses empty text blocks.
        "text" => {
            let text = part.get("text")?.as_str().filter(|t| !t.is_empty())?;
            Some(json!({"type": "text", "text": text}))
        }
        "image_url" => {
            let url = part.get("image_url")?.get("url")?.as_str()?;
            let source = match url
                .strip_prefix("data:")
                .and_then(|rest| rest.split_once(";base64,"))
            {
                Some((media_type, data)) => {
                    json!({"type": "base64", "media_type": media_type, "data": data})
                }
                None => json!({"type": "url", "url": url}),
            };
            Some(json!({"type": "image", "source": source}))
        }
        _ => None,
    }
}

fn assistant_blocks(message: &ChatMessage) -> Vec<Value> {
    let mut content = blocks(message.content.as_ref());
    let calls = message.extra.get("tool_calls").and_then(Value::as_array);
    for call in calls.into_iter().flatten() {
        let function = &call["function"];
        let arguments = function["arguments"].as_str().unwrap_or("{}");
        let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
        content.push(
            json!({"type": "tool_use", "id": call["id"], "name": function["name"], "input": input}),
        );
    }
    content
}

fn tool(tool: &Value) -> Option<Value> {
    let function = tool.get("function")?;
    let mut out = Map::new();
    out.insert("name".into(), function.get("name")?.clone());
    if let Some(description) = function.get("description") {
        out.insert("description".into(), description.clone());
    }
    let schema = function
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    out.insert("input_schema".into(), schema);
    Some(Value::Object(out))
}

fn tool_choice(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => None,
        },
        Value::Object(o) => {
            let name = o.get("function")?.get("name")?;
            Some(json!({"type": "tool", "name": name}))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openai_conversation_becomes_a_messages_body() {
        let request: ChatRequest = serde_json::from_value(json!({
            "model": "anthropic/claude",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "user", "content": "Thanks"}
            ],
            "max_tokens": 100, "stop": "END",
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "tool_choice": "required"
        }))
        .unwrap();
        let body = body("claude-x", &request);
        assert_eq!(body["model"], "claude-x");
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["tool_choice"], json!({"type": "any"}));
        assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(
            messages.len(),
            3,
            "tool result and next user turn merged: roles alternate"
        );
        assert_eq!(
            messages[0]["content"][1]["source"]["media_type"],
            "image/png"
        );
        assert_eq!(messages[1]["content"][0]["input"], json!({"city": "Paris"}));
        assert_eq!(messages[2]["content"][0]["type"], "tool_result");
        assert_eq!(messages[2]["content"][1]["text"], "Thanks");
    }
}
