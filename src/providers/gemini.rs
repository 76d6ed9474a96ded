//! The `gemini` provider: `models/{model}:streamGenerateContent?alt=sse`. Data-only frames,
//! CRLF line ends, no terminator: the final chunk carries `finishReason`. Private wire
//! types, [`GeminiDecoder`] from one chunk to native events, the body in `gemini/request.rs`.

mod request;

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::upstream::{Decoder, decode_sse, null_as_default, send};
use super::{
    ChatRequest, Provider, ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream,
};
use crate::event::{EventBody, MessageDelta, Reasoning, ToolCallDelta, Usage};

#[derive(Clone, Debug)]
pub struct GeminiConfig {
    /// Up to and including the API version, e.g. `https://generativelanguage.googleapis.com/v1beta`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    pub max_line_bytes: usize,
}

pub struct GeminiProvider {
    client: reqwest::Client,
    config: GeminiConfig,
}

impl GeminiProvider {
    pub fn new(config: GeminiConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { client, config })
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
        let base = self.config.base_url.trim_end_matches('/');
        let url = format!("{base}/models/{model}:streamGenerateContent?alt=sse");
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
                    let index = self.tools;
                    self.tools += 1;
                    out.push(ProviderEvent::Event(EventBody::ToolCallDelta(
                        ToolCallDelta {
                            index,
                            id: Some(call.id.unwrap_or_else(|| format!("call_{index}"))),
                            name: Some(call.name),
                            arguments: call.args.map_or_else(|| "{}".to_owned(), |a| a.to_string()),
                        },
                    )));
                } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    let body = if part.thought {
                        EventBody::ReasoningDelta(Reasoning {
                            text,
                            signature: None,
                        })
                    } else {
                        EventBody::MessageDelta(MessageDelta { text, index: 0 })
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
struct FunctionCall {
    name: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    id: Option<String>,
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
}
