//! The `gemini` provider: `models/{model}:streamGenerateContent?alt=sse`. Data-only frames,
//! CRLF line ends, no terminator: the final chunk carries `finishReason`. Private wire
//! types, [`GeminiDecoder`] from one chunk to native events, the body in `gemini/request.rs`.

mod request;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::upstream::{Decoder, UpstreamConfig, decode_sse, null_as_default, send};
use super::{
    ChatRequest, Provider, ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream,
};
use crate::event::{EventBody, MessageDelta, Reasoning, ToolCallDelta, Usage};

pub struct GeminiProvider {
    client: reqwest::Client,
    config: UpstreamConfig,
}

impl GeminiProvider {
    pub fn new(config: UpstreamConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: config.client()?,
            config,
        })
    }
}

#[async_trait]
impl Provider for GeminiProvider {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn accepts(&self, model: &str) -> bool {
        // The model is a URL path segment.
        !model.is_empty()
            && model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    }

    fn listed_models(&self) -> Vec<String> {
        Vec::new()
    }

    async fn chat(
        &self,
        model: &str,
        request: &ChatRequest,
    ) -> Result<ProviderStream, ProviderError> {
        let url = self
            .config
            .url(&format!("models/{model}:streamGenerateContent?alt=sse"));
        let mut call = self
            .client
            .post(url)
            .header("accept", "text/event-stream")
            .json(&request::body(request));
        if let Some(key) = &self.config.api_key {
            call = call.header("x-goog-api-key", key);
        }
        let response = send(call).await?;
        Ok(decode_sse(
            response.bytes_stream(),
            self.config.max_line_bytes,
            GeminiDecoder::default(),
        ))
    }
}

/// Gemini chunks, one at a time. The stream is complete at the chunk with `finishReason`.
#[derive(Default)]
pub(crate) struct GeminiDecoder {
    tools: u32,
    usage: Option<Usage>,
    /// A call whose arguments Vertex streams in pieces (`willContinue`), being assembled.
    pending: Option<Pending>,
}

struct Pending {
    name: String,
    id: Option<String>,
    args: Value,
}

/// Sets `value` at a `$.a.b` path in `args` (appending when a string arrives in pieces).
fn set_path(args: &mut Value, path: &str, value: Value) {
    let mut at = args;
    let keys: Vec<&str> = path
        .trim_start_matches('$')
        .split('.')
        .filter(|k| !k.is_empty())
        .collect();
    for (i, key) in keys.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(serde_json::Map::new());
        }
        let Some(object) = at.as_object_mut() else {
            return;
        };
        if i + 1 == keys.len() {
            match (object.get_mut(*key), &value) {
                (Some(Value::String(existing)), Value::String(more)) => existing.push_str(more),
                _ => {
                    object.insert((*key).to_owned(), value);
                }
            }
            return;
        }
        at = object
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
}

impl GeminiDecoder {
    fn call(&mut self, name: String, id: Option<String>, args: &Value) -> ProviderEvent {
        let index = self.tools;
        self.tools += 1;
        ProviderEvent::Event(EventBody::ToolCallDelta(ToolCallDelta {
            index,
            id: Some(id.unwrap_or_else(|| format!("call_{index}"))),
            name: Some(name),
            arguments: args.to_string(),
        }))
    }

    /// One `functionCall` part: whole (the Gemini API), or a piece of a streamed one (Vertex).
    fn function_call(&mut self, call: FunctionCall, out: &mut Vec<ProviderEvent>) {
        if let Some(name) = call
            .name
            .clone()
            .filter(|_| call.will_continue && call.args.is_none())
        {
            self.pending = Some(Pending {
                name,
                id: call.id,
                args: Value::Object(serde_json::Map::new()),
            });
            return;
        }
        match (self.pending.as_mut(), call.name) {
            (Some(pending), None) => {
                for arg in call.partial_args {
                    let value = arg
                        .string_value
                        .map(Value::String)
                        .or(arg.number_value)
                        .or(arg.bool_value.map(Value::Bool))
                        .unwrap_or(Value::Null);
                    set_path(&mut pending.args, &arg.json_path, value);
                }
                if !call.will_continue {
                    if let Some(done) = self.pending.take() {
                        out.push(self.call(done.name, done.id, &done.args));
                    }
                }
            }
            (_, Some(name)) => {
                let args = call
                    .args
                    .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
                out.push(self.call(name, call.id, &args));
            }
            (None, None) => {}
        }
    }
}

fn finish_reason(reason: &str, called_tools: bool) -> String {
    match reason {
        "STOP" if called_tools => "tool_calls".to_owned(),
        "STOP" => "stop".to_owned(),
        "MAX_TOKENS" => "length".to_owned(),
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
            "content_filter".to_owned()
        }
        other => other.to_ascii_lowercase(),
    }
}

impl Decoder for GeminiDecoder {
    fn event(&mut self, _name: &str, data: &str) -> Result<Vec<ProviderEvent>, ProviderError> {
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::InvalidResponse,
                format!("upstream chunk is not valid JSON: {e}"),
            )
        })?;
        if let Some(error) = chunk.error {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream reported an error");
            return Err(ProviderError::new(
                ProviderErrorKind::Stream,
                message.to_owned(),
            ));
        }
        if let Some(u) = chunk.usage_metadata {
            self.usage = Some(Usage {
                input_tokens: u.prompt_token_count,
                output_tokens: u.candidates_token_count + u.thoughts_token_count,
                total_tokens: u.total_token_count,
            });
        }
        let mut out = Vec::new();
        let candidate = chunk.candidates.into_iter().next();
        let mut finish = None;
        if let Some(candidate) = candidate {
            for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(call) = part.function_call {
                    self.function_call(call, &mut out);
                } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    let body = if part.thought {
                        EventBody::ReasoningDelta(Reasoning {
                            text,
                            signature: None,
                            ..Default::default()
                        })
                    } else {
                        EventBody::MessageDelta(MessageDelta {
                            text,
                            index: 0,
                            ..Default::default()
                        })
                    };
                    out.push(ProviderEvent::Event(body));
                }
            }
            finish = candidate
                .finish_reason
                .map(|r| finish_reason(&r, self.tools > 0));
        } else if chunk.prompt_feedback.and_then(|f| f.block_reason).is_some() {
            finish = Some("content_filter".to_owned());
        }
        if let Some(finish_reason) = finish {
            if let Some(done) = self.pending.take() {
                out.push(self.call(done.name, done.id, &done.args));
            }
            if let Some(usage) = self.usage {
                out.push(ProviderEvent::Event(EventBody::Usage(usage)));
            }
            out.push(ProviderEvent::Done {
                finish_reason: Some(finish_reason),
            });
        }
        Ok(out)
    }

    fn end(&mut self) -> Result<ProviderEvent, ProviderError> {
        Err(ProviderError::new(
            ProviderErrorKind::Truncated,
            "upstream closed the connection before finishReason",
        ))
    }
}

// Wire types: only what tokenrelay reads.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default, deserialize_with = "null_as_default")]
    candidates: Vec<Candidate>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default, deserialize_with = "null_as_default")]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    function_call: Option<FunctionCall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    will_continue: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    partial_args: Vec<PartialArg>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialArg {
    json_path: String,
    #[serde(default)]
    string_value: Option<String>,
    #[serde(default)]
    number_value: Option<Value>,
    #[serde(default)]
    bool_value: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    total_token_count: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::GeminiDecoder;
    use crate::providers::fixtures::check_fixtures;

    #[tokio::test]
    async fn every_fixture_gives_its_exact_event_sequence_under_every_split() {
        check_fixtures("gemini", GeminiDecoder::default).await;
    }

    #[test]
    fn vertex_arguments_streamed_in_pieces_become_one_call() {
        use crate::providers::ProviderEvent;
        use crate::providers::upstream::Decoder;
        let mut d = GeminiDecoder::default();
        let chunks = [
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"book","willContinue":true}}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"partialArgs":[{"jsonPath":"$.trip.city","stringValue":"Zur","willContinue":true}],"willContinue":true}}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"partialArgs":[{"jsonPath":"$.trip.city","stringValue":"ich"},{"jsonPath":"$.nights","numberValue":3}]}}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"STOP"}]}"#,
        ];
        let mut events = Vec::new();
        for c in chunks {
            events.extend(d.event("message", c).unwrap());
        }
        let ProviderEvent::Event(crate::event::EventBody::ToolCallDelta(call)) = &events[0] else {
            panic!("{events:?}");
        };
        assert_eq!(call.name.as_deref(), Some("book"));
        assert_eq!(call.arguments, r#"{"trip":{"city":"Zurich"},"nights":3}"#);
        assert_eq!(events.len(), 2, "one call, then done");
        assert!(
            matches!(&events[1], ProviderEvent::Done { finish_reason: Some(r) } if r == "tool_calls")
        );
    }
}
