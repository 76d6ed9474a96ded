//! `POST /v1/audio/transcriptions`: OpenAI's streamed transcription format (with resume ids),
//! the upstream's whole answer without `stream`, relaying an OpenAI-compatible upstream, and
//! what is refused (size, audio that is not audio).

use std::io::Cursor;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::Value;

use crate::support::{
    FakeUpstream, Reply, SseEvent, SseReader, TestApp, spawn_app, spawn_app_with, test_config,
};

/// A silent 16 kHz mono WAV file of `millis` milliseconds.
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

pub async fn upload(
    app: &TestApp,
    audio: Vec<u8>,
    filename: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(audio).file_name(filename.to_owned()),
    );
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    app.client
        .post(app.url("/v1/audio/transcriptions"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

fn data(event: &SseEvent) -> Value {
    serde_json::from_str(&event.data).unwrap()
}

/// The concatenated deltas and the done event's text must agree.
fn check_openai_format(events: &[SseEvent]) -> String {
    assert!(!events.is_empty());
    let mut deltas = String::new();
    for event in events {
        let payload = data(event);
        assert!(
            payload.is_object(),
            "every frame a JSON object: {}",
            event.data
        );
        assert_eq!(
            payload["type"], event.event,
            "`type` matches the event name"
        );
        assert!(!event.id.is_empty(), "every frame has a resume id");
        if event.event == "transcript.text.delta" {
            deltas.push_str(payload["delta"].as_str().unwrap());
        }
    }
    let done = events.last().unwrap();
    assert_eq!(done.event, "transcript.text.done");
    assert_eq!(data(done)["text"], deltas);
    deltas
}

#[tokio::test]
async fn a_streamed_upload_is_openai_transcription_events_with_resume_ids() {
    let mut config = test_config();
    config.transcription.mock_speedup = 20.0;
    let app = spawn_app_with(config, None).await;
    let response = upload(
        &app,
        wav(4000),
        "talk.wav",
        &[("model", "mock/default"), ("stream", "true")],
    )
    .await;
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let events = SseReader::new(response).collect().await;
    let text = check_openai_format(&events);
    assert_eq!(
        text.split_whitespace().count(),
        10,
        "2.5 words per second of audio"
    );
    let usage = &data(events.last().unwrap())["usage"];
    assert_eq!(usage["type"], "tokens");
    assert_eq!(usage["output_tokens"], 10);

    // Resuming in the middle continues: the rest, then the same done.
    let middle = &events[4];
    let resumed = app.events(&id, Some(&middle.id), "").await;
    let rest = SseReader::new(resumed).collect().await;
    assert_eq!(rest, events[5..].to_vec());
    let status = app.status(&id).await;
    assert_eq!(status["kind"], "transcription");
    assert_eq!(status["aggregate"]["transcript"], text);
    // The native log has the same transcript.
    let native = SseReader::new(app.events(&id, None, "?format=native").await)
        .collect()
        .await;
    let kinds: Vec<&str> = native.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"stream.started"));
    assert_eq!(kinds.last(), Some(&"stream.completed"));
    assert!(kinds.contains(&"transcript.done"));
}

#[tokio::test]
async fn without_stream_the_answer_is_the_upstreams_json_or_text() {
    let app = spawn_app().await;
    let json: Value = upload(&app, wav(1000), "a.wav", &[("model", "mock/3t-0ms")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["text"], "tok1 tok2 tok3 ");
    let text = upload(
        &app,
        wav(1000),
        "a.wav",
        &[("model", "mock/3t-0ms"), ("response_format", "text")],
    )
    .await;
    assert!(
        text.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(text.text().await.unwrap(), "tok1 tok2 tok3 ");
    let verbose: Value = upload(
        &app,
        wav(2000),
        "a.wav",
        &[
            ("model", "mock/default"),
            ("response_format", "verbose_json"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(verbose["duration"], 2.0);
    // Uploads have their own limit (25 MiB), above the 1 MiB of JSON bodies.
    let long: Value = upload(&app, wav(70_000), "long.wav", &[("model", "mock/3t-0ms")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(long["usage"]["input_tokens"], 700);
}

fn fixture(name: &str) -> Vec<Bytes> {
    let path = format!(
        "{}/tests/fixtures/openai_transcription/{name}.sse",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(path).unwrap();
    // Odd-sized pieces, so frames arrive split.
    bytes.chunks(7).map(Bytes::copy_from_slice).collect()
}

#[tokio::test]
async fn an_openai_compatible_upstream_is_relayed_with_and_without_done() {
    let cases = [
        ("with_done_marker", "The quick brown fox."),
        ("without_done_marker", "The quick brown fox."),
        ("data_only_crlf", "Hola señor"),
    ];
    for (name, expected) in cases {
        let upstream = FakeUpstream::start(Reply::Stream {
            chunks: fixture(name),
            gap: Duration::from_millis(1),
            hang: false,
        })
        .await;
        let app = spawn_app_with(test_config(), Some(&upstream)).await;
        let response = upload(
            &app,
            wav(500),
            "a.wav",
            &[
                ("model", "openai/gpt-4o-mini-transcribe"),
                ("stream", "true"),
                ("language", "en"),
            ],
        )
        .await;
        let events = SseReader::new(response).collect().await;
        let text = check_openai_format(&events);
        assert_eq!(text, expected, "{name}");
        let done = data(events.last().unwrap());
        assert!(
            done["usage"]["total_tokens"].as_u64().unwrap() > 0,
            "{name}"
        );
        // The upstream got the audio, the model, stream=true and the other fields.
        let (auth, body) = &upstream.requests()[0];
        assert_eq!(auth.as_deref(), Some("Bearer sk-test-secret-key"));
        let body = body.as_str().unwrap();
        for part in [
            "name=\"model\"\r\n\r\ngpt-4o-mini-transcribe",
            "name=\"stream\"\r\n\r\ntrue",
            "name=\"language\"\r\n\r\nen",
            "RIFF",
        ] {
            assert!(body.contains(part), "{name}: upstream body lacks {part}");
        }
        assert_eq!(upstream.paths()[0], "/v1/audio/transcriptions");
    }
    // A first-delta logprob survives the relay.
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks: fixture("with_done_marker"),
        gap: Duration::ZERO,
        hang: false,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let response = upload(
        &app,
        wav(500),
        "a.wav",
        &[("model", "openai/gpt-4o-transcribe"), ("stream", "true")],
    )
    .await;
    let events = SseReader::new(response).collect().await;
    assert_eq!(data(&events[0])["logprobs"][0]["token"], "The");
}

#[tokio::test]
async fn a_model_that_cannot_stream_gives_one_done_and_upstream_errors_keep_their_status() {
    let upstream = FakeUpstream::start(Reply::Json(
        r#"{"text":"Whisper says hi.","usage":{"type":"duration","seconds":1}}"#.into(),
    ))
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let response = upload(
        &app,
        wav(500),
        "a.wav",
        &[("model", "openai/whisper-1"), ("stream", "true")],
    )
    .await;
    let events = SseReader::new(response).collect().await;
    assert_eq!(events.len(), 1);
    assert_eq!(data(&events[0])["text"], "Whisper says hi.");

    upstream.set_reply(Reply::Status {
        status: 429,
        body: r#"{"error":{"message":"Rate limit reached"}}"#.into(),
        retry_after: Some(7),
    });
    let (status, error) = error_of(
        upload(
            &app,
            wav(500),
            "a.wav",
            &[("model", "openai/whisper-1"), ("stream", "true")],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("upstream_rate_limited"))
    );
    let (status, _) =
        error_of(upload(&app, wav(500), "a.wav", &[("model", "openai/whisper-1")]).await).await;
    assert_eq!(status, 429, "the non-streaming relay too");
}

#[tokio::test]
async fn an_upstream_error_mid_stream_keeps_the_text_and_ends_with_an_error_frame() {
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks: fixture("error_midstream"),
        gap: Duration::ZERO,
        hang: false,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let response = upload(
        &app,
        wav(500),
        "a.wav",
        &[("model", "openai/gpt-4o-transcribe"), ("stream", "true")],
    )
    .await;
    let id = response.headers()["x-stream-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let events = SseReader::new(response).collect().await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["transcript.text.delta", "transcript.text.delta", "error"]
    );
    assert_eq!(data(&events[2])["error"]["code"], "upstream_error");
    let status = app.status(&id).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["aggregate"]["transcript"], "Partial text");
}

#[tokio::test]
async fn oversized_uploads_and_audio_that_is_not_audio_are_refused_clearly() {
    let mut config = test_config();
    config.transcription.max_upload_bytes = 64 * 1024;
    let app = spawn_app_with(config, None).await;
    let stream = [("model", "mock/default"), ("stream", "true")];
    // 3 s of 16 kHz 16-bit audio is about 96 KiB.
    let (status, error) = error_of(upload(&app, wav(3000), "big.wav", &stream).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let (status, error) =
        error_of(upload(&app, b"{\"hello\": 1}".to_vec(), "a.wav", &stream).await).await;
    assert_eq!(
        (status, error["code"].as_str(), error["param"].as_str()),
        (400, Some("unsupported_audio"), Some("file"))
    );
    let mut broken = wav(100);
    broken.truncate(30);
    let (status, error) = error_of(upload(&app, broken, "a.wav", &stream).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("unsupported_audio"))
    );
    // An MP3 is audio, but the mock paces by the WAV header.
    let mp3 = [b"ID3\x04\x00\x00\x00\x00\x00\x00".as_slice(), &[0u8; 64]].concat();
    let (status, error) = error_of(upload(&app, mp3, "a.mp3", &stream).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("unsupported_audio"))
    );
    let (status, error) = error_of(
        upload(
            &app,
            wav(100),
            "a.wav",
            &[("model", "anthropic/claude-sonnet-4-5")],
        )
        .await,
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("model")));
    let (status, error) =
        error_of(upload(&app, wav(100), "a.wav", &[("stream", "true")]).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("missing_field"))
    );
    let not_multipart = app
        .client
        .post(app.url("/v1/audio/transcriptions"))
        .json(&serde_json::json!({"model": "mock/default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status(), 400);
}
