//! What a segment's upstream call hears of the feed so far. OpenAI's transcription `prompt`
//! is meant to "continue a previous audio segment": each segment after the first is sent the
//! end of the transcript before it, after the feed's own prompt, so words split across two
//! segments and the speaker's spelling carry over.

use crate::providers::TranscriptionRequest;

/// How much of the transcript goes along: about 40 words, well inside the 224 tokens
/// Whisper reads of a prompt.
const CONTEXT_CHARS: usize = 240;

/// Sets `prompt` to the feed's own prompt followed by the end of `transcript`.
pub fn carry_over(request: &mut TranscriptionRequest, transcript: &str) {
    let context = tail_words(transcript.trim(), CONTEXT_CHARS);
    if context.is_empty() {
        return;
    }
    let prompt = match request.field("prompt") {
        Some(own) if !own.trim().is_empty() => format!("{} {context}", own.trim()),
        _ => context.to_owned(),
    };
    request.fields.retain(|(name, _)| name != "prompt");
    request.fields.push(("prompt".to_owned(), prompt));
}

/// The last `max` bytes of `text` or fewer, starting at a word.
fn tail_words(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let tail = &text[cut..];
    // Mid-word: drop the partial word (unless there is nothing else).
    match tail.find(char::is_whitespace) {
        Some(space) if !text[..cut].ends_with(char::is_whitespace) => tail[space..].trim_start(),
        _ => tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::AudioFormat;
    use bytes::Bytes;

    fn request(fields: &[(&str, &str)]) -> TranscriptionRequest {
        TranscriptionRequest {
            audio: Bytes::new(),
            filename: "segment-1.wav".into(),
            format: AudioFormat::Wav,
            duration: None,
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_first_segment_gets_only_the_feeds_own_prompt() {
        let mut first = request(&[("language", "en"), ("prompt", "Names: Zoë")]);
        carry_over(&mut first, "  ");
        assert_eq!(first.field("prompt"), Some("Names: Zoë"));
        assert_eq!(first.fields.len(), 2);
    }

    #[test]
    fn later_segments_get_the_end_of_the_transcript_after_the_feeds_prompt() {
        let mut later = request(&[("prompt", "Names: Zoë"), ("language", "en")]);
        carry_over(&mut later, "the quick brown fox ");
        assert_eq!(
            later.field("prompt"),
            Some("Names: Zoë the quick brown fox")
        );
        assert_eq!(later.field("language"), Some("en"));
        assert_eq!(
            later.fields.iter().filter(|(k, _)| k == "prompt").count(),
            1
        );

        let mut plain = request(&[]);
        carry_over(&mut plain, "the quick brown fox");
        assert_eq!(plain.field("prompt"), Some("the quick brown fox"));
    }

    #[test]
    fn a_long_transcript_is_cut_to_whole_words_at_a_char_boundary() {
        let long = "é".repeat(300) + " " + &"word ".repeat(60);
        let tail = tail_words(long.trim(), CONTEXT_CHARS);
        assert!(tail.len() <= CONTEXT_CHARS, "{}", tail.len());
        assert!(tail.starts_with("word"), "{tail}");
        let one_word = "x".repeat(500);
        assert_eq!(tail_words(&one_word, 10), &one_word[490..]);
    }
}
