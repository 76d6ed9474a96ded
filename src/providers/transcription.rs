//! A transcription request as OpenAI's multipart API takes it, and what tokenrelay itself
//! checks of the audio: its container (by magic bytes, not by name) and, for WAV, the header.

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;

/// One upload: the audio and the form fields to pass upstream.
#[derive(Clone, Debug)]
pub struct TranscriptionRequest {
    pub audio: Bytes,
    pub filename: String,
    pub format: AudioFormat,
    /// From the WAV header, when the audio is WAV.
    pub duration: Option<Duration>,
    /// Form fields other than `file`, `model` and `stream`, in order and as sent
    /// (`language`, `prompt`, `response_format`, `temperature`, `include[]`, ...).
    pub fields: Vec<(String, String)>,
}

impl TranscriptionRequest {
    /// The last value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The audio containers OpenAI's API takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioFormat {
    Wav,
    Flac,
    Mp3,
    Ogg,
    Webm,
    Mp4,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("the file is not audio tokenrelay recognises (WAV, FLAC, MP3, OGG, WebM, MP4/M4A)")]
    Unrecognised,
    #[error("the WAV header cannot be read: {0}")]
    BadWav(String),
    #[error("provider `{0}` transcribes WAV audio only")]
    WavOnly(&'static str),
}

impl AudioFormat {
    /// The container, from the first bytes of the file.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        let at =
            |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
        if at(0, b"RIFF") && at(8, b"WAVE") {
            Some(Self::Wav)
        } else if at(0, b"fLaC") {
            Some(Self::Flac)
        } else if at(0, b"OggS") {
            Some(Self::Ogg)
        } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
            Some(Self::Webm)
        } else if at(4, b"ftyp") {
            Some(Self::Mp4)
        } else if at(0, b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
        {
            Some(Self::Mp3)
        } else {
            None
        }
    }

    /// The file extension upstreams expect (OpenAI tells formats by the file's name).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Flac => "flac",
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
            Self::Webm => "webm",
            Self::Mp4 => "m4a",
        }
    }

    /// `name` if its extension fits this format, else `name` (or `audio`) with one that does.
    pub fn file_name(self, name: &str) -> String {
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let fits = match self {
            Self::Mp4 => {
                ["m4a", "mp4", "mpeg", "mpga"].contains(&ext.to_ascii_lowercase().as_str())
            }
            Self::Mp3 => ["mp3", "mpeg", "mpga"].contains(&ext.to_ascii_lowercase().as_str()),
            Self::Ogg => ["ogg", "oga", "opus"].contains(&ext.to_ascii_lowercase().as_str()),
            _ => ext.eq_ignore_ascii_case(self.extension()),
        };
        if fits {
            return name.to_owned();
        }
        let stem = if stem.is_empty() { "audio" } else { stem };
        format!("{stem}.{}", self.extension())
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Flac => "audio/flac",
            Self::Mp3 => "audio/mpeg",
            Self::Ogg => "audio/ogg",
            Self::Webm => "audio/webm",
            Self::Mp4 => "audio/mp4",
        }
    }
}

/// How long a WAV file plays: its header's format, and the samples actually present (a
/// header may claim any length; streamed WAVs often claim none or the maximum).
pub fn wav_duration(bytes: &[u8]) -> Result<Duration, AudioError> {
    let reader =
        hound::WavReader::new(Cursor::new(bytes)).map_err(|e| AudioError::BadWav(e.to_string()))?;
    let spec = reader.spec();
    if !(1000..=384_000).contains(&spec.sample_rate) || spec.channels == 0 {
        return Err(AudioError::BadWav(format!(
            "{} Hz, {} channels is not a usable format",
            spec.sample_rate, spec.channels
        )));
    }
    let declared = u64::from(reader.len());
    let data_start = reader.into_inner().position();
    let sample_bytes = u64::from(spec.bits_per_sample).div_ceil(8).max(1);
    let present = (bytes.len() as u64).saturating_sub(data_start) / sample_bytes;
    let frames = declared.min(present) / u64::from(spec.channels);
    Ok(Duration::from_secs_f64(
        frames as f64 / f64::from(spec.sample_rate),
    ))
}

/// An upstream's whole answer to a non-streaming request, relayed as it is.
#[derive(Clone, Debug)]
pub struct WholeAnswer {
    pub content_type: String,
    pub body: Bytes,
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A silent 16 kHz mono 16-bit WAV file of `millis` milliseconds.
    pub fn wav(millis: u32) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
        for _ in 0..(16 * millis) {
            writer.write_sample(0i16).unwrap();
        }
        writer.finalize().unwrap();
        out.into_inner()
    }

    #[test]
    fn containers_are_told_by_their_magic_bytes() {
        assert_eq!(AudioFormat::sniff(&wav(10)), Some(AudioFormat::Wav));
        assert_eq!(AudioFormat::sniff(b"fLaC\0\0\0\""), Some(AudioFormat::Flac));
        assert_eq!(AudioFormat::sniff(b"OggS\0\x02"), Some(AudioFormat::Ogg));
        assert_eq!(AudioFormat::sniff(b"ID3\x04\0"), Some(AudioFormat::Mp3));
        assert_eq!(
            AudioFormat::sniff(&[0xFF, 0xFB, 0x90]),
            Some(AudioFormat::Mp3)
        );
        assert_eq!(
            AudioFormat::sniff(b"\0\0\0\x20ftypM4A "),
            Some(AudioFormat::Mp4)
        );
        assert_eq!(AudioFormat::sniff(b"{\"not\": \"audio\"}"), None);
        assert_eq!(AudioFormat::sniff(b"RIFF"), None, "too short to be WAV");
        assert_eq!(AudioFormat::sniff(b""), None);
    }

    #[test]
    fn upstreams_get_a_file_name_that_says_the_format() {
        assert_eq!(AudioFormat::Mp3.file_name("talk.mp3"), "talk.mp3");
        assert_eq!(AudioFormat::Mp3.file_name("talk.wav"), "talk.mp3");
        assert_eq!(AudioFormat::Webm.file_name("audio"), "audio.webm");
        assert_eq!(AudioFormat::Wav.file_name(""), "audio.wav");
        assert_eq!(AudioFormat::Mp4.file_name("memo.MP4"), "memo.MP4");
    }

    #[test]
    fn a_wav_header_gives_the_duration() {
        assert_eq!(wav_duration(&wav(1500)), Ok(Duration::from_millis(1500)));
        let mut broken = wav(100);
        broken.truncate(20);
        assert!(matches!(wav_duration(&broken), Err(AudioError::BadWav(_))));
    }

    #[test]
    fn a_header_that_claims_more_than_the_file_holds_is_not_believed() {
        // 1 s of audio whose header claims 4 GiB of samples.
        let mut forged = wav(1000);
        let data = forged.len() - 32_000;
        forged[data - 4..data].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert_eq!(wav_duration(&forged), Ok(Duration::from_secs(1)));
        let mut slow = wav(10);
        slow[24..28].copy_from_slice(&1u32.to_le_bytes());
        assert!(
            matches!(wav_duration(&slow), Err(AudioError::BadWav(_))),
            "1 Hz"
        );
    }
}
