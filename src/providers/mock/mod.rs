//! The built-in `mock` provider: deterministic answers with no key and no network.
//!
//! Model names are part of the contract (SPEC §7): `mock/default` is a short answer at a
//! natural pace; `mock/<N>t-<D>ms` is exactly N tokens `tok1 `, `tok2 `, ... D ms apart, so a
//! gap or a duplicate is visible in the text. The same names transcribe (`transcription.rs`).

mod transcription;

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::{
    AudioFormat, ChatRequest, MessageContent, Provider, ProviderError, ProviderEvent,
    ProviderStream, TranscriptionRequest, WholeAnswer,
};
use crate::event::{EventBody, MessageDelta, Usage};

const DEFAULT_ANSWER: &str = "Hello! This is tokenrelay's mock model. Every word you read \
arrived as its own event with a resume id, so a dropped connection picks up exactly where it \
stopped.";
const DEFAULT_DELAY: Duration = Duration::from_millis(40);
const MAX_TOKENS: u64 = 1_000_000;
const MAX_DELAY_MS: u64 = 60_000;

/// A parsed mock model name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MockModel {
    Default,
    Counted { tokens: u64, delay: Duration },
}

impl MockModel {
    pub fn parse(name: &str) -> Option<Self> {
        if name == "default" {
            return Some(Self::Default);
        }
        let (tokens, delay) = name.strip_suffix("ms")?.split_once("t-")?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 7 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(tokens) || !digits(delay) {
            return None;
        }
        let tokens: u64 = tokens.parse().ok()?;
        let delay: u64 = delay.parse().ok()?;
        (tokens <= MAX_TOKENS && delay <= MAX_DELAY_MS).then(|| Self::Counted {
            tokens,
            delay: Duration::from_millis(delay),
        })
    }

    /// The tokens this model answers with, in order.
    pub fn tokens(&self) -> Box<dyn Iterator<Item = String> + Send> {
        match self {
            Self::Default => Box::new(
                DEFAULT_ANSWER
                    .split_inclusive(' ')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
            Self::Counted { tokens, .. } => Box::new((1..=*tokens).map(|i| format!("tok{i} "))),
        }
    }

    fn delay(&self) -> Duration {
        match self {
            Self::Default => DEFAULT_DELAY,
            Self::Counted { delay, .. } => *delay,
        }
    }
}

#[derive(Clone, Debug)]
pub struct MockProvider {
    /// How much faster than the audio plays `mock/default` transcribes (1 = real time).
    transcription_speedup: f64,
}

impl Default for MockProvider {
    fn default() -> Self {
        Self {
            transcription_speedup: 1.0,
        }
    }
}

impl MockProvider {
    pub fn with_transcription_speedup(speedup: f64) -> Self {
        Self {
            transcription_speedup: speedup,
        }
    }
}

/// A rough prompt size: one token per whitespace-separated word of text content.
fn prompt_tokens(request: &ChatRequest) -> u64 {
    request
        .messages
        .iter()
        .filter_map(|m| match &m.content {
            Some(MessageContent::Text(t)) => Some(t.split_whitespace().count() as u64),
            _ => None,
        })
        .sum()
}

#[async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn accepts(&self, model: &str) -> bool {
        MockModel::parse(model).is_some()
    }

    fn listed_models(&self) -> Vec<String> {
        ["default", "100t-10ms", "20t-50ms", "5t-0ms"]
            .iter()
            .map(|m| format!("mock/{m}"))
            .collect()
    }

    async fn chat(
        &self,
        model: &str,
        request: &ChatRequest,
    ) -> Result<ProviderStream, ProviderError> {
        let model = MockModel::parse(model).unwrap_or(MockModel::Default);
        let input_tokens = prompt_tokens(request);
        let delay = model.delay();
        let stream = async_stream::stream! {
            let mut output_tokens = 0;
            for (i, text) in model.tokens().enumerate() {
                if i > 0 {
                    if delay.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(delay).await;
                    }
                }
                output_tokens += 1;
                yield Ok(ProviderEvent::Event(EventBody::MessageDelta(MessageDelta { text, index: 0, ..Default::default() })));
            }
            yield Ok(ProviderEvent::Event(EventBody::Usage(Usage {
                input_tokens,
                output_tokens,
                total_tokens: input_tokens + output_tokens,
            })));
            yield Ok(ProviderEvent::Done { finish_reason: Some("stop".to_owned()) });
        };
        Ok(stream.boxed())
    }

    fn transcribes(&self) -> bool {
        true
    }

    /// Its pacing comes from the WAV header.
    fn accepts_audio(&self, format: AudioFormat) -> bool {
        format == AudioFormat::Wav
    }

    async fn transcribe(
        &self,
        model: &str,
        request: &TranscriptionRequest,
    ) -> Result<ProviderStream, ProviderError> {
        transcription::stream(model, request, self.transcription_speedup)
    }

    async fn transcribe_whole(
        &self,
        model: &str,
        request: &TranscriptionRequest,
    ) -> Result<WholeAnswer, ProviderError> {
        transcription::whole(model, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_follow_the_contract() {
        assert_eq!(MockModel::parse("default"), Some(MockModel::Default));
        assert_eq!(
            MockModel::parse("100t-10ms"),
            Some(MockModel::Counted {
                tokens: 100,
                delay: Duration::from_millis(10)
            })
        );
        for bad in [
            "",
            "5t",
            "t-0ms",
            "5t-ms",
            "-5t-0ms",
            "5t-0s",
            "99999999t-0ms",
            "5t-0msx",
        ] {
            assert_eq!(MockModel::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn counted_tokens_say_their_number() {
        let tokens: Vec<_> = MockModel::parse("3t-0ms").unwrap().tokens().collect();
        assert_eq!(tokens, ["tok1 ", "tok2 ", "tok3 "]);
    }
}
