//! OpenAI-compatible `POST /audio/transcriptions`: the multipart call, [`normalize`] from one
//! streamed transcription event (`transcript.text.delta` / `.segment` / `.done`) to native
//! events, and a model that cannot stream (whisper-1 answers JSON whatever `stream` says)
//! turned into one `transcript.done`.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value};

use super::OpenAiProvider;
use crate::event::{Custom, EventBody, Text, Usage};
use crate::providers::upstream::{Decoder, decode_sse, send};
use crate::providers::{
    ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream, TranscriptionRequest,
    WholeAnswer,
};

impl OpenAiProvider {
    fn transcription_call(
        &self,
        model: &str,
        request: &TranscriptionRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let file = Part::stream(request.audio.clone())
            .file_name(request.filename.clone())
            .mime_str(request.format.mime())
            .map_err(|e| ProviderError::new(ProviderErrorKind::InvalidResponse, e.to_string()))?;
        let mut form = Form::new()
            .part("file", file)
            .text("model", model.to_owned());
        if stream {
            form = form.text("stream", "true");
        }
        for (name, value) in &request.fields {
            form = form.text(name.clone(), value.clone());
        }
        let mut call = self
            .client
            .post(self.config.url("audio/transcriptions"))
            .multipart(form);
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key);
        }
        Ok(call)
    }

    pub(super) async fn transcribe_stream(
        &self,
        model: &str,
        request: &TranscriptionRequest,
    ) -> Result<ProviderStream, ProviderError> {
        let call = self.transcription_call(model, request, true)?;
        let response = send(call.header("accept", "text/event-stream")).await?;
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            return Ok(decode_sse(
                response.bytes_stream(),
                self.config.max_line_bytes,
                TranscriptionDecoder,
            ));
        }
        // A model that cannot stream: its one JSON answer is the whole transcript.
        let body = response.bytes().await.map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::Truncated,
                format!("upstream answer cut: {e}"),
            )
        })?;
        let events = whole_as_events(&body)?;
        Ok(futures::stream::iter(events.into_iter().map(Ok)).boxed())
    }

    pub(super) async fn transcribe_answer(
        &self,
        model: &str,
        request: &TranscriptionRequest,
    ) -> Result<WholeAnswer, ProviderError> {
        let response = send(self.transcription_call(model, request, false)?).await?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let body = response.bytes().await.map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::Truncated,
                format!("upstream answer cut: {e}"),
            )
        })?;
        Ok(WholeAnswer { content_type, body })
    }
}

/// `{"text": ..., "usage": ...}` (json or verbose_json) as the events of a finished stream;
/// a plain-text answer (`response_format=text`) is the text itself.
fn whole_as_events(body: &Bytes) -> Result<Vec<ProviderEvent>, ProviderError> {
    let mut answer: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(_) => match std::str::from_utf8(body) {
            Ok(text) if !body.trim_ascii_start().starts_with(b"{") => {
                Map::from_iter([("text".to_owned(), Value::String(text.trim_end().to_owned()))])
            }
            _ => {
                return Err(ProviderError::new(
                    ProviderErrorKind::InvalidResponse,
                    "upstream transcription is neither JSON nor text",
                ));
            }
        },
    };
    let Some(Value::String(text)) = answer.remove("text") else {
        return Err(ProviderError::new(
            ProviderErrorKind::InvalidResponse,
            "upstream transcription has no `text`",
        ));
    };
    let mut events = Vec::new();
    if let Some(usage) = answer.get("usage").and_then(usage_of) {
        events.push(ProviderEvent::Event(EventBody::Usage(usage)));
    }
    events.push(ProviderEvent::Event(EventBody::TranscriptDone(Text {
        text,
        extra: answer,
    })));
    events.push(ProviderEvent::Done {
        finish_reason: None,
    });
    Ok(events)
}

/// Token usage (`{"type":"tokens", input_tokens, output_tokens, total_tokens}`); duration
/// usage has no tokens to count.
fn usage_of(usage: &Value) -> Option<Usage> {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64);
    let input_tokens = count("input_tokens")?;
    let output_tokens = count("output_tokens").unwrap_or(0);
    Some(Usage {
        input_tokens,
        output_tokens,
        total_tokens: count("total_tokens").unwrap_or(input_tokens + output_tokens),
    })
}

/// Streamed transcription events; the stream may or may not end with `[DONE]` after
/// `transcript.text.done`, which is what ends it.
#[derive(Default)]
pub(crate) struct TranscriptionDecoder;

impl Decoder for TranscriptionDecoder {
    fn event(&mut self, name: &str, data: &str) -> Result<Vec<ProviderEvent>, ProviderError> {
        if name == "error" {
            // Usually `{"type":"error","error":{...}}`, which `normalize` reads.
            return match normalize(data) {
                Err(e) => Err(e),
                Ok(_) => Err(ProviderError::new(
                    ProviderErrorKind::Stream,
                    format!(
                        "upstream error event: {}",
                        data.chars().take(500).collect::<String>()
                    ),
                )),
            };
        }
        normalize(data)
    }

    fn end(&mut self) -> Result<ProviderEvent, ProviderError> {
        Err(ProviderError::new(
            ProviderErrorKind::Truncated,
            "upstream closed the connection before transcript.text.done",
        ))
    }
}

/// Converts one upstream transcription event into native events. Pure.
pub(crate) fn normalize(data: &str) -> Result<Vec<ProviderEvent>, ProviderError> {
    if data.trim() == "[DONE]" {
        return Err(ProviderError::new(
            ProviderErrorKind::Truncated,
            "upstream sent [DONE] before transcript.text.done",
        ));
    }
    let mut event: Map<String, Value> = serde_json::from_str(data).map_err(|e| {
        ProviderError::new(
            ProviderErrorKind::InvalidResponse,
            format!("upstream event is not a JSON object: {e}"),
        )
    })?;
    let kind = match event.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => String::new(),
    };
    if kind == "error" || event.contains_key("error") {
        let error = event.get("error").unwrap_or(&Value::Null);
        let message = error
            .get("message")
            .or(error.as_str().map(|_| error))
            .and_then(Value::as_str)
            .unwrap_or("upstream reported an error");
        // The upstream's own code (`rate_limit_exceeded`, `server_error`) names the failure.
        let message = match error
            .get("code")
            .or(error.get("type"))
            .and_then(Value::as_str)
        {
            Some(code) => format!("{message} (upstream code `{code}`)"),
            None => message.to_owned(),
        };
        return Err(ProviderError::new(ProviderErrorKind::Stream, message));
    }
    let text = |event: &mut Map<String, Value>, key: &str| match event.remove(key) {
        Some(Value::String(text)) => Ok(text),
        _ => Err(ProviderError::new(
            ProviderErrorKind::InvalidResponse,
            format!("upstream {kind} has no `{key}`"),
        )),
    };
    match kind.as_str() {
        "transcript.text.delta" => {
            let delta = text(&mut event, "delta")?;
            if delta.is_empty() {
                return Ok(Vec::new());
            }
            let delta = Text {
                text: delta,
                extra: event,
            };
            Ok(vec![ProviderEvent::Event(EventBody::TranscriptDelta(
                delta,
            ))])
        }
        "transcript.text.done" => {
            let text = text(&mut event, "text")?;
            let mut out = Vec::new();
            if let Some(usage) = event.get("usage").and_then(usage_of) {
                out.push(ProviderEvent::Event(EventBody::Usage(usage)));
            }
            out.push(ProviderEvent::Event(EventBody::TranscriptDone(Text {
                text,
                extra: event,
            })));
            out.push(ProviderEvent::Done {
                finish_reason: None,
            });
            Ok(out)
        }
        // Diarized segments carry who spoke when; kept whole for clients that want them.
        "transcript.text.segment" => Ok(vec![ProviderEvent::Event(EventBody::Custom(Custom {
            name: "openai.transcript.text.segment".into(),
            value: Value::Object(event),
            ..Custom::default()
        }))]),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests;
