//! A live captions source: creates a transcription feed on a running tokenrelay and pushes a
//! WAV file to it in one-second segments at real-time pace, as a microphone would. Viewers
//! follow the transcript with the `curl` command it prints, join late, drop and resume.
//!
//! ```sh
//! cargo run --release &                                # the server (mock provider, no key)
//! cargo run --release --example live_captions          # 8 s of generated audio
//! cargo run --release --example live_captions -- talk.wav http://127.0.0.1:8080 mock/default
//! ```
//!
//! Arguments, all optional: a 16-bit PCM WAV file (default: 8 s of a generated tone), the
//! tokenrelay URL, and the model (default `mock/default`; `openai/gpt-4o-mini-transcribe` with
//! `OPENAI_API_KEY` set on the server transcribes real speech).

use std::io::Cursor;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

/// One segment's length; the server takes segments up to `max_segment_bytes` (1 MiB).
const SEGMENT: Duration = Duration::from_secs(1);

/// The samples and format of the audio to stream.
fn load(path: Option<&str>) -> Result<(hound::WavSpec, Vec<i16>), Error> {
    if let Some(path) = path {
        let mut reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
            return Err("this example streams 16-bit PCM WAV files".into());
        }
        let samples = reader.samples::<i16>().collect::<Result<_, _>>()?;
        return Ok((spec, samples));
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let tone = (0..16_000 * 8)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 3000.0) as i16)
        .collect();
    Ok((spec, tone))
}

fn wav(spec: hound::WavSpec, samples: &[i16]) -> Result<Vec<u8>, Error> {
    let mut out = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec)?;
    for sample in samples {
        writer.write_sample(*sample)?;
    }
    writer.finalize()?;
    Ok(out.into_inner())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .filter(|a| a.as_str() != "-")
        .map(String::as_str);
    let base = args.get(1).map_or("http://127.0.0.1:8080", String::as_str);
    let model = args.get(2).map_or("mock/default", String::as_str);
    let (spec, samples) = load(path)?;
    let client = reqwest::Client::new();

    let created: Value = client
        .post(format!("{base}/v1/streams"))
        .json(&json!({"kind": "transcription", "model": model, "language": "en"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let text = |key: &str| created[key].as_str().unwrap_or_default().to_owned();
    let (id, read, write) = (text("id"), text("read_token"), text("write_token"));
    println!("live feed {id}\n");
    println!("follow it:      curl -N '{base}/v1/streams/{id}/events?token={read}'");
    println!("as OpenAI does: curl -N '{base}/v1/streams/{id}/events?format=openai&token={read}'");
    println!("recent text:    curl -s '{base}/v1/streams/{id}?token={read}'");
    println!("in a browser:   {base}/?view=feed&stream={id}&token={read}\n");

    let per_segment =
        (spec.sample_rate as f64 * SEGMENT.as_secs_f64()) as usize * spec.channels as usize;
    let started = Instant::now();
    for (n, chunk) in samples.chunks(per_segment.max(1)).enumerate() {
        // Real time: segment n is sent once it has been "recorded".
        let due = started + SEGMENT * (n as u32 + 1);
        tokio::time::sleep_until(due.into()).await;
        let response = client
            .post(format!("{base}/v1/streams/{id}/audio?segment={n}"))
            .bearer_auth(&write)
            .header("content-type", "audio/wav")
            .body(wav(spec, chunk)?)
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("segment {n} refused ({status}): {answer}").into());
        }
        println!(
            "segment {n}: {}",
            answer["text"].as_str().unwrap_or_default().trim()
        );
    }
    let status: Value = client
        .post(format!("{base}/v1/streams/{id}/finish"))
        .bearer_auth(&write)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "\nstatus: {}, segments: {}",
        status["status"], status["aggregate"]["segments"]
    );
    println!("transcript: {}", status["aggregate"]["transcript"]);
    Ok(())
}
