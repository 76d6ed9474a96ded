//! Decoding an upstream SSE body that is already in hand (recorded transcripts, property tests,
//! the fuzz target) through the same framing and adapter decoders a live response goes through.
//! Owns only the choice of decoder; the decoding itself is [`super::upstream::decode_sse`].

use bytes::Bytes;
use futures::Stream;

use super::ProviderStream;
use super::anthropic::AnthropicDecoder;
use super::gemini::GeminiDecoder;
use super::openai::{OpenAiDecoder, TranscriptionDecoder};
use super::upstream::decode_sse;

/// The streaming upstream APIs tokenrelay decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamApi {
    /// Chat Completions chunks, ended by `[DONE]`.
    OpenAiChat,
    /// Messages API events, ended by `message_stop`.
    Anthropic,
    /// `streamGenerateContent?alt=sse` chunks, ended by a `finishReason`.
    Gemini,
    /// Streamed `audio/transcriptions` events, ended by `transcript.text.done`.
    OpenAiTranscription,
}

impl UpstreamApi {
    pub const ALL: [Self; 4] = [
        Self::OpenAiChat,
        Self::Anthropic,
        Self::Gemini,
        Self::OpenAiTranscription,
    ];

    /// The folder of its recorded transcripts under `tests/fixtures/`.
    pub fn fixture_dir(self) -> &'static str {
        match self {
            Self::OpenAiChat => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::OpenAiTranscription => "openai_transcription",
        }
    }
}

/// Decodes `body` as `api`'s stream exactly as a live response would be: provider events,
/// ending with `Done` or one error. `max_line` is the longest line accepted.
pub fn replay<S, E>(api: UpstreamApi, body: S, max_line: usize) -> ProviderStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match api {
        UpstreamApi::OpenAiChat => decode_sse(body, max_line, OpenAiDecoder::default()),
        UpstreamApi::Anthropic => decode_sse(body, max_line, AnthropicDecoder::default()),
        UpstreamApi::Gemini => decode_sse(body, max_line, GeminiDecoder::default()),
        UpstreamApi::OpenAiTranscription => decode_sse(body, max_line, TranscriptionDecoder),
    }
}
