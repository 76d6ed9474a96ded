//! A chat request (OpenAI shape) as a Gemini `streamGenerateContent` body.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::providers::upstream::append_turn;
use crate::providers::{ChatRequest, MessageContent};

pub fn body(request: &ChatRequest) -> Value {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Gemini answers a call by function name; OpenAI by call id.
    let mut call_names: HashMap<String, Value> = HashMap::new();
    for message in &request.messages {
        match message.role.as_str() {
            "system" | "developer" => {
                system.push(json!({"text": message.content.as_ref().map(MessageContent::text).unwrap_or_default()}))
            }
            "assistant" => {
                let mut parts = parts(message.content.as_ref());
                let calls = message.extra.get("tool_calls").and_then(Value::as_array);
                for call in calls.into_iter().flatten() {
                    let function = &call["function"];
                    if let Some(id) = call["id"].as_str() {
                        call_names.insert(id.to_owned(), function["name"].clone());
                    }
                    let args: Value = function["arguments"]
                        .as_str()
                        .and_then(|a| serde_json::from_str(a).ok())
                        .unwrap_or_else(|| json!({}));
                    parts.push(json!({"functionCall": {"name": function["name"], "args": args}}));
                }
                append_turn(&mut contents, "model", "parts", parts);
            }
            "tool" => {
                let id = message
                    .extra
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let name = call_names.get(id).cloned().unwrap_or_else(|| json!(id));
                let response = json!({"content": message.content.as_ref().map(MessageContent::text).unwrap_or_default()});
                let part = json!({"functionResponse": {"name": name, "response": response}});
                append_turn(&mut contents, "user", "parts", vec![part]);
            }
            _ => append_turn(&mut contents, "user", "parts", parts(message.content.as_ref())),
        }
    }
    let mut body = json!({"contents": contents});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": system});
    }
    let extra = &request.extra;
    let mut config = serde_json::Map::new();
    let settings = [
        ("max_tokens", "maxOutputTokens"),
        ("max_completion_tokens", "maxOutputTokens"),
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
    ];
    for (ours, theirs) in settings {
        if let Some(value) = extra.get(ours) {
            config.insert(theirs.into(), value.clone());
        }
    }
    match extra.get("stop") {
        Some(Value::String(stop)) => {
            config.insert("stopSequences".into(), json!([stop]));
        }
        Some(stops @ Value::Array(_)) => {
            config.insert("stopSequences".into(), stops.clone());
        }
        _ => {}
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    if let Some(Value::Array(tools)) = extra.get("tools") {
        let declarations: Vec<Value> = tools
            .iter()
            .filter_map(|t| {
                let f = t.get("function")?;
                let mut d = json!({"name": f.get("name")?});
                if let Some(description) = f.get("description") {
                    d["description"] = description.clone();
                }
                if let Some(parameters) = f.get("parameters") {
                    d["parameters"] = parameters.clone();
                }
                Some(d)
            })
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    if let Some(mode) = extra.get("tool_choice").and_then(tool_mode) {
        body["toolConfig"] = json!({"functionCallingConfig": mode});
    }
    body
}

fn tool_mode(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"mode": "AUTO"})),
            "required" => Some(json!({"mode": "ANY"})),
            "none" => Some(json!({"mode": "NONE"})),
            _ => None,
        },
        Value::Object(o) => {
            let name = o.get("function")?.get("name")?;
            Some(json!({"mode": "ANY", "allowedFunctionNames": [name]}))
        }
        _ => None,
    }
}

fn parts(content: Option<&MessageContent>) -> Vec<Value> {
    match content {
        Some(MessageContent::Text(text)) if !text.is_empty() => vec![json!({"text": text})],
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|p| match p.get("type")?.as_str()? {
                "text" => Some(json!({"text": p.get("text")?})),
                "image_url" => {
                    let url = p.get("image_url")?.get("url")?.as_str()?;
                    let (mime, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
                    Some(json!({"inlineData": {"mimeType": mime, "data": data}}))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openai_conversation_becomes_gemini_contents() {
        let request: ChatRequest = serde_json::from_value(json!({
            "model": "gemini/gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ],
            "max_tokens": 50, "temperature": 0.2,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
        }))
        .unwrap();
        let body = body(&request);
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be brief.");
        assert_eq!(
            body["generationConfig"],
            json!({"maxOutputTokens": 50, "temperature": 0.2})
        );
        assert_eq!(
            body["contents"][1]["parts"][0]["functionCall"]["args"],
            json!({"city": "Paris"})
        );
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"]["name"],
            "get_weather"
        );
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "get_weather"
        );
    }
}
