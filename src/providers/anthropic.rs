//! The `anthropic` provider: the Messages API with `stream: true`. Private wire types,
//! [`AnthropicDecoder`] from one SSE event to native events, and the request body in
//! `anthropic/request.rs`.

mod request;

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::upstream::{Decoder, UpstreamConfig, decode_sse, send};
use super::{
    ChatRequest, Provider, ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream,
};
use crate::event::{Custom, EventBody, MessageDelta, Reasoning, ToolCallDelta, Usage};

const API_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    client: reqwest::Client,
    config: UpstreamConfig,
}

impl AnthropicProvider {
    pub fn new(config: UpstreamConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: config.client()?,
            config,
        })
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn accepts(&self, model: &str) -> bool {
        !model.is_empty()
    }

    fn listed_models(&self) -> Vec<String> {
        Vec::new()
    }

    async fn chat(
        &self,
        model: &str,
        request: &ChatRequest,
    ) -> Result<ProviderStream, ProviderError> {
        let url = self.config.url("messages");
        let mut call = self
            .client
            .post(url)
            .header("accept", "text/event-stream")
            .header("anthropic-version", API_VERSION)
            .json(&request::body(model, request));
        if let Some(key) = &self.config.api_key {
            call = call.header("x-api-key", key);
        }
        let response = send(call).await?;
        Ok(decode_sse(
            response.bytes_stream(),
            self.config.max_line_bytes,
            AnthropicDecoder::default(),
        ))
    }
}

/// What a content block turned into, by its index in the message.
#[derive(Clone, Copy)]
enum Block {
    Text,
    Tool(u32),
    Thinking,
    Other,
}

/// Anthropic's events, one at a time; the stream must end with `message_stop`.
#[derive(Default)]
pub(crate) struct AnthropicDecoder {
    input_tokens: u64,
    stop_reason: Option<String>,
    blocks: HashMap<u32, Block>,
    tools: u32,
}

/// Anthropic's stop reasons in the native (OpenAI) vocabulary.
pub(crate) fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => other,
    }
    .to_owned()
}

fn event(body: EventBody) -> ProviderEvent {
    ProviderEvent::Event(body)
}

impl Decoder for AnthropicDecoder {
    fn event(&mut self, _name: &str, data: &str) -> Result<Vec<ProviderEvent>, ProviderError> {
        let wire: Wire = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::InvalidResponse,
                format!("upstream event is not valid JSON: {e}"),
            )
        })?;
        let mut out = Vec::new();
        match wire {
            Wire::MessageStart { message } => {
                let u = message.usage;
                self.input_tokens =
                    u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens;
            }
            Wire::ContentBlockStart {
                index,
                content_block,
            } => {
                let block = match content_block {
                    StartBlock::Text { text } => {
                        if !text.is_empty() {
                            out.push(event(EventBody::MessageDelta(MessageDelta {
                                text,
                                index: 0,
                                ..Default::default()
                            })));
                        }
                        Block::Text
                    }
                    StartBlock::ToolUse { id, name } => {
                        let tool = self.tools;
                        self.tools += 1;
                        out.push(event(EventBody::ToolCallDelta(ToolCallDelta {
                            index: tool,
                            id: Some(id),
                            name: Some(name),
                            arguments: String::new(),
                        })));
                        Block::Tool(tool)
                    }
                    StartBlock::Thinking { thinking } => {
                        if !thinking.is_empty() {
                            out.push(event(EventBody::ReasoningDelta(Reasoning {
                                text: thinking,
                                signature: None,
                                ..Default::default()
                            })));
                        }
                        Block::Thinking
                    }
                    StartBlock::RedactedThinking { data } => {
                        out.push(event(EventBody::Custom(Custom {
                            name: "anthropic.redacted_thinking".into(),
                            value: serde_json::json!({ "data": data }),
                            ..Default::default()
                        })));
                        Block::Other
                    }
                    StartBlock::Other => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            Wire::ContentBlockDelta { index, delta } => {
                match (delta, self.blocks.get(&index).copied()) {
                    (Delta::Text { text }, _) if !text.is_empty() => {
                        out.push(event(EventBody::MessageDelta(MessageDelta {
                            text,
                            index: 0,
                            ..Default::default()
                        })));
                    }
                    (Delta::InputJson { partial_json }, Some(Block::Tool(tool)))
                        if !partial_json.is_empty() =>
                    {
                        out.push(event(EventBody::ToolCallDelta(ToolCallDelta {
                            index: tool,
                            id: None,
                            name: None,
                            arguments: partial_json,
                        })));
                    }
                    (Delta::Thinking { thinking }, _) if !thinking.is_empty() => {
                        out.push(event(EventBody::ReasoningDelta(Reasoning {
                            text: thinking,
                            signature: None,
                            ..Default::default()
                        })));
                    }
                    (Delta::Signature { signature }, _) => {
                        out.push(event(EventBody::ReasoningDelta(Reasoning {
                            text: String::new(),
                            signature: Some(signature),
                            ..Default::default()
                        })));
                    }
                    _ => {}
                }
            }
            Wire::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = usage {
                    if let Some(input) = usage.input_tokens {
                        let cached =
                            usage.cache_creation_input_tokens + usage.cache_read_input_tokens;
                        // Cumulative counts never go down; a delta without its cache fields
                        // must not undercount.
                        self.input_tokens = self.input_tokens.max(input + cached);
                    }
                    out.push(event(EventBody::Usage(Usage {
                        input_tokens: self.input_tokens,
                        output_tokens: usage.output_tokens,
                        total_tokens: self.input_tokens + usage.output_tokens,
                    })));
                }
            }
            Wire::MessageStop => {
                out.push(ProviderEvent::Done {
                    finish_reason: self.stop_reason.as_deref().map(finish_reason),
                });
            }
            Wire::Error { error } => {
                let message = format!("upstream {}: {}", error.kind, error.message);
                return Err(ProviderError::new(ProviderErrorKind::Stream, message));
            }
            Wire::ContentBlockStop | Wire::Ping | Wire::Unknown => {}
        }
        Ok(out)
    }

    fn end(&mut self) -> Result<ProviderEvent, ProviderError> {
        Err(ProviderError::new(
            ProviderErrorKind::Truncated,
            "upstream closed the connection before message_stop",
        ))
    }
}

// Wire types: only what tokenrelay reads; unknown event and block types are skipped.

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta,
    },
    ContentBlockStop,
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<DeltaUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: WireError,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: StartUsage,
}

/// Anthropic counts cached prompt tokens apart; the native `input_tokens` is the whole prompt.
#[derive(Deserialize, Default)]
struct StartUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    RedactedThinking {
        #[serde(default)]
        data: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct DeltaUsage {
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

#[cfg(test)]
mod tests;
