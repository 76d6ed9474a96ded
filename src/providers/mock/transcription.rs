//! The mock's transcriptions: deterministic words paced by the audio's length (from the WAV
//! header), so demos and tests see a live-looking transcript with no key. `mock/default`
//! speaks 2.5 words per second of audio, spread over the audio's duration divided by the
//! configured speed-up; `mock/<N>t-<D>ms` gives exactly `tok1 ` … `tokN `, D ms apart.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use super::MockModel;
use crate::event::{EventBody, Text, Usage};
use crate::providers::{
    ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream, TranscriptionRequest,
    WholeAnswer,
};

const WORDS: &str = "the quick brown fox jumps over the lazy dog while every word keeps its place";
const WORDS_PER_SECOND: f64 = 2.5;
/// The most words one transcription says (a 25 MiB upload at 1 kHz is over 7 hours).
const MAX_WORDS: usize = 100_000;
/// Audio tokens per second of audio, roughly what OpenAI's models count.
const AUDIO_TOKENS_PER_SECOND: f64 = 10.0;

fn bad_request(message: &str) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Status(400), message)
}

/// The words for `request` and the pause before each one after the first.
fn plan(
    model: &str,
    request: &TranscriptionRequest,
    speedup: f64,
) -> Result<(Vec<String>, Duration, Duration), ProviderError> {
    let audio = request
        .duration
        .ok_or_else(|| bad_request("the mock transcribes WAV audio only"))?;
    let (words, pause) = match MockModel::parse(model).unwrap_or(MockModel::Default) {
        MockModel::Counted { tokens, delay } => {
            ((1..=tokens).map(|i| format!("tok{i} ")).collect(), delay)
        }
        MockModel::Default => {
            let count = (audio.as_secs_f64() * WORDS_PER_SECOND)
                .round()
                .clamp(1.0, MAX_WORDS as f64) as usize;
            let start = continue_after(request.field("prompt").unwrap_or(""));
            let words: Vec<String> = WORDS
                .split(' ')
                .cycle()
                .skip(start)
                .take(count)
                .map(|w| format!("{w} "))
                .collect();
            let pause = audio.div_f64(speedup.max(0.001) * count as f64);
            (words, pause)
        }
    };
    Ok((words, pause, audio))
}

/// Where in its sentence the mock goes on when the prompt ends with words of it (a live
/// feed sends the end of the transcript so far), so a feed's segments read as one text: the
/// index after the prompt's last two words, found in the sentence; 0 if they are not in it.
fn continue_after(prompt: &str) -> usize {
    let sentence: Vec<&str> = WORDS.split(' ').collect();
    let tail: Vec<&str> = prompt.split_whitespace().rev().take(2).collect();
    let n = sentence.len();
    let found = match tail.as_slice() {
        [last, before] => {
            (0..n).find(|&i| sentence[i] == *last && sentence[(i + n - 1) % n] == *before)
        }
        [last] => (0..n).find(|&i| sentence[i] == *last),
        _ => None,
    };
    found.map_or(0, |i| (i + 1) % n)
}

fn usage(audio: Duration, words: usize) -> Usage {
    let input_tokens = (audio.as_secs_f64() * AUDIO_TOKENS_PER_SECOND).ceil() as u64;
    let output_tokens = words as u64;
    Usage {
        input_tokens,
        output_tokens,
        total_tokens: input_tokens + output_tokens,
    }
}

pub fn stream(
    model: &str,
    request: &TranscriptionRequest,
    speedup: f64,
) -> Result<ProviderStream, ProviderError> {
    let (words, pause, audio) = plan(model, request, speedup)?;
    let stream = async_stream::stream! {
        let mut text = String::new();
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                if pause.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(pause).await;
                }
            }
            text.push_str(word);
            let delta = Text { text: word.clone(), ..Text::default() };
            yield Ok(ProviderEvent::Event(EventBody::TranscriptDelta(delta)));
        }
        yield Ok(ProviderEvent::Event(EventBody::Usage(usage(audio, words.len()))));
        yield Ok(ProviderEvent::Event(EventBody::TranscriptDone(Text { text, ..Text::default() })));
        yield Ok(ProviderEvent::Done { finish_reason: None });
    };
    Ok(stream.boxed())
}

/// The whole transcript at once, in the `response_format` asked for.
pub fn whole(model: &str, request: &TranscriptionRequest) -> Result<WholeAnswer, ProviderError> {
    let (words, _, audio) = plan(model, request, 1.0)?;
    let text: String = words.concat();
    let u = usage(audio, words.len());
    let json = |value: serde_json::Value| WholeAnswer {
        content_type: "application/json".into(),
        body: Bytes::from(value.to_string()),
    };
    match request.field("response_format").unwrap_or("json") {
        "json" => Ok(json(json!({
            "text": text,
            "usage": {"type": "tokens", "input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "total_tokens": u.total_tokens},
        }))),
        "text" => Ok(WholeAnswer {
            content_type: "text/plain; charset=utf-8".into(),
            body: Bytes::from(text),
        }),
        "verbose_json" => Ok(json(json!({
            "task": "transcribe",
            "language": request.field("language").unwrap_or("english"),
            "duration": audio.as_secs_f64(),
            "text": text,
            "segments": [{"id": 0, "start": 0.0, "end": audio.as_secs_f64(), "text": text}],
            "usage": {"type": "duration", "seconds": audio.as_secs_f64().ceil()},
        }))),
        other => Err(bad_request(&format!(
            "the mock answers response_format json, text or verbose_json, not `{}`",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::AudioFormat;
    use crate::providers::transcription::tests::wav;

    fn request(millis: u32) -> TranscriptionRequest {
        TranscriptionRequest {
            audio: Bytes::from(wav(millis)),
            filename: "a.wav".into(),
            format: AudioFormat::Wav,
            duration: Some(Duration::from_millis(u64::from(millis))),
            fields: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn words_are_paced_by_the_audio_and_the_speedup() {
        let started = tokio::time::Instant::now();
        let mut stream = stream("default", &request(4000), 2.0).unwrap();
        let mut deltas = Vec::new();
        let mut done = None;
        while let Some(Ok(event)) = stream.next().await {
            match event {
                ProviderEvent::Event(EventBody::TranscriptDelta(t)) => deltas.push(t.text),
                ProviderEvent::Event(EventBody::TranscriptDone(t)) => done = Some(t.text),
                _ => {}
            }
        }
        assert_eq!(deltas.len(), 10, "2.5 words per second of audio");
        assert_eq!(done, Some(deltas.concat()));
        // 10 words over 4 s / 2: nine pauses of 200 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(1800));
    }

    #[test]
    fn the_whole_answer_comes_in_the_format_asked_for() {
        let mut r = request(1000);
        let answer = whole("3t-0ms", &r).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body["text"], "tok1 tok2 tok3 ");
        r.fields.push(("response_format".into(), "text".into()));
        assert_eq!(whole("3t-0ms", &r).unwrap().body, "tok1 tok2 tok3 ");
        r.fields.push(("response_format".into(), "srt".into()));
        assert!(whole("3t-0ms", &r).is_err());
        r.duration = None;
        assert!(stream("default", &r, 1.0).is_err(), "WAV only");
    }

    #[test]
    fn a_prompt_ending_in_the_mocks_sentence_continues_it() {
        assert_eq!(continue_after(""), 0);
        assert_eq!(continue_after("Names: Zoë"), 0);
        // "the" is in the sentence twice: the word before it decides which.
        assert_eq!(continue_after("the quick brown fox jumps over the"), 7);
        assert_eq!(continue_after("Names: Zoë. the quick brown"), 3);
        assert_eq!(continue_after("keeps its place"), 0, "wraps around");
        let mut r = request(1200);
        r.fields.push(("prompt".into(), "the quick brown ".into()));
        let (words, _, _) = plan("default", &r, 1.0).unwrap();
        assert_eq!(words.concat(), "fox jumps over ");
    }
}
