//! Live transcription feeds: segments in order and once, many viewers joining late and
//! reconnecting, the sliding window, an upstream failure mid-feed, limits.

use std::time::Duration;

use axum::body::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::support::{
    FakeUpstream, Reply, SseEvent, SseReader, TestApp, spawn_app_with, test_config,
};
use crate::transcriptions::wav;

struct Feed {
    id: String,
    read: String,
    write: String,
}

async fn create_feed(app: &TestApp, model: &str) -> Feed {
    let response = app
        .post(
            "/v1/streams",
            &json!({"kind": "transcription", "model": model, "language": "en"}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    let field = |name: &str| body[name].as_str().unwrap().to_owned();
    Feed {
        id: field("id"),
        read: field("read_token"),
        write: field("write_token"),
    }
}

async fn send(app: &TestApp, feed: &Feed, segment: u64, audio: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/streams/{}/audio?segment={segment}", feed.id)))
        .bearer_auth(&feed.write)
        .header("content-type", "audio/wav")
        .body(audio)
        .send()
        .await
        .unwrap()
}

async fn send_ok(app: &TestApp, feed: &Feed, segment: u64) -> Value {
    let response = send(app, feed, segment, wav(400)).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "segment {segment}: {body}");
    body
}

async fn finish(app: &TestApp, feed: &Feed) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/v1/streams/{}/finish", feed.id)))
        .bearer_auth(&feed.write)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

fn config() -> tokenrelay::config::Config {
    let mut config = test_config();
    config.transcription.mock_speedup = 50.0;
    config
}

/// The (segment, text) of every transcript delta in a native read.
fn deltas(events: &[SseEvent]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e.event == "transcript.delta")
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            (
                data["segment"].as_u64().unwrap(),
                data["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn segments_are_transcribed_in_order_and_the_feed_finishes_with_their_text() {
    let app = spawn_app_with(config(), None).await;
    let feed = create_feed(&app, "mock/3t-0ms").await;
    let mut texts = String::new();
    for n in 0..4 {
        let answer = send_ok(&app, &feed, n).await;
        assert_eq!(answer["status"], "transcribed");
        texts.push_str(answer["text"].as_str().unwrap());
    }
    let status = finish(&app, &feed).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["aggregate"]["segments"], 4);
    assert_eq!(status["aggregate"]["transcript"], texts);
    assert_eq!(
        status["usage"]["output_tokens"], 12,
        "usage adds up over segments"
    );
    let events = SseReader::new(app.events(&feed.id, None, "").await)
        .collect()
        .await;
    let got = deltas(&events);
    assert_eq!(got.len(), 12);
    assert!(
        got.windows(2).all(|w| w[0].0 <= w[1].0),
        "segment order kept"
    );
    // OpenAI's transcription format: the deltas, then one done with all the text.
    let openai = SseReader::new(app.events(&feed.id, None, "?format=openai").await)
        .collect()
        .await;
    let done: Value = serde_json::from_str(&openai.last().unwrap().data).unwrap();
    assert_eq!(done["type"], "transcript.text.done");
    assert_eq!(done["text"], texts);
}

#[tokio::test]
async fn a_repeated_segment_is_acknowledged_once_and_one_that_came_early_waits_its_turn() {
    let mut config = config();
    config.transcription.segment_wait_secs = 0.3;
    let app = spawn_app_with(config, None).await;
    let feed = create_feed(&app, "mock/3t-0ms").await;
    send_ok(&app, &feed, 0).await;
    let count = app.status(&feed.id).await["event_count"].clone();
    let again = send_ok(&app, &feed, 0).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(
        app.status(&feed.id).await["event_count"],
        count,
        "nothing appended twice"
    );
    // Segment 2 without segment 1: it waits, then is refused naming what is missing.
    let (status, error) = error_of(send(&app, &feed, 2, wav(400)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("segment_out_of_order"))
    );
    assert!(
        error["message"].as_str().unwrap().contains("segment 1"),
        "{error}"
    );

    // Sent together, 3 early and 1 late, they are still transcribed 1 then 2 then 3.
    let feed = create_feed(&app, "mock/3t-20ms").await;
    send_ok(&app, &feed, 0).await;
    let (two, one) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            send(&app, &feed, 2, wav(400)).await.status()
        },
        async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            send(&app, &feed, 1, wav(400)).await.status()
        },
    );
    assert_eq!(
        (one, two),
        (reqwest::StatusCode::OK, reqwest::StatusCode::OK)
    );
    // The same segment twice at once: transcribed once.
    let (a, b) = tokio::join!(
        send(&app, &feed, 3, wav(400)),
        send(&app, &feed, 3, wav(400))
    );
    let outcomes = [
        a.json::<Value>().await.unwrap(),
        b.json::<Value>().await.unwrap(),
    ];
    let transcribed = outcomes
        .iter()
        .filter(|o| o["status"] == "transcribed")
        .count();
    assert_eq!(transcribed, 1, "{outcomes:?}");
    finish(&app, &feed).await;
    let events = SseReader::new(app.events(&feed.id, None, "").await)
        .collect()
        .await;
    let segments: Vec<u64> = deltas(&events).iter().map(|d| d.0).collect();
    assert_eq!(segments, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
}

#[tokio::test]
async fn fifty_viewers_joining_late_and_reconnecting_all_read_the_same_transcript() {
    let app = spawn_app_with(config(), None).await;
    let feed = create_feed(&app, "mock/4t-5ms").await;
    let source = {
        let (client, url, write) = (
            app.client.clone(),
            app.url(&format!("/v1/streams/{}/audio", feed.id)),
            feed.write.clone(),
        );
        tokio::spawn(async move {
            for n in 0..20 {
                let response = client
                    .post(format!("{url}?segment={n}"))
                    .bearer_auth(&write)
                    .body(wav(400))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let mut viewers = Vec::new();
    for v in 0..50u64 {
        let (client, url, read) = (
            app.client.clone(),
            app.url(&format!(
                "/v1/streams/{}/events?token={}",
                feed.id, feed.read
            )),
            feed.read.clone(),
        );
        let _ = read;
        viewers.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(v);
            if v >= 20 {
                // Late joiners.
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
            }
            let mut seen: Vec<SseEvent> = Vec::new();
            let mut drops = if v >= 35 { rng.random_range(1..=3) } else { 0 };
            loop {
                let mut request = client.get(&url);
                if let Some(last) = seen.last() {
                    request = request.header("last-event-id", &last.id);
                }
                let response = request.send().await.unwrap();
                if response.status() == 204 {
                    break;
                }
                let mut reader = SseReader::new(response);
                let cut_after = if drops > 0 {
                    rng.random_range(1..30)
                } else {
                    usize::MAX
                };
                let mut read = 0;
                let mut ended = true;
                while let Some(event) = reader.next().await {
                    seen.push(event);
                    read += 1;
                    if read == cut_after {
                        drops -= 1;
                        ended = false;
                        break;
                    }
                }
                if ended {
                    break;
                }
            }
            seen
        }));
    }
    source.await.unwrap();
    finish(&app, &feed).await;
    let reference = SseReader::new(app.events(&feed.id, None, "").await)
        .collect()
        .await;
    assert_eq!(deltas(&reference).len(), 80);
    for (v, viewer) in viewers.into_iter().enumerate() {
        let seen = viewer.await.unwrap();
        let mut ids: Vec<&str> = seen.iter().map(|e| e.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), seen.len(), "viewer {v}: no duplicate ids");
        assert_eq!(
            seen, reference,
            "viewer {v}: the same transcript as everyone"
        );
    }
}

#[tokio::test]
async fn a_viewer_whose_position_left_the_window_gets_reset_and_the_status_shows_recent_text() {
    let mut config = config();
    config.transcription.window_events = 10;
    config.transcription.recent_transcript_chars = 20;
    let app = spawn_app_with(config, None).await;
    let feed = create_feed(&app, "mock/3t-0ms").await;
    send_ok(&app, &feed, 0).await;
    let early = SseReader::new(app.events(&feed.id, None, "").await)
        .next()
        .await
        .unwrap();
    for n in 1..8 {
        send_ok(&app, &feed, n).await;
    }
    let mut reader = SseReader::new(app.events(&feed.id, Some(&early.id), "").await);
    let reset = reader.next().await.unwrap();
    assert_eq!(reset.event, "reset");
    assert!(reset.data.contains("before_window"));
    let status = app.status(&feed.id).await;
    let transcript = status["aggregate"]["transcript"].as_str().unwrap();
    assert_eq!(transcript.chars().count(), 20);
    assert!(
        "tok1 tok2 tok3 tok1 tok2 tok3 ".ends_with(transcript),
        "{transcript}"
    );
    assert_eq!(status["aggregate"]["segments"], 8);
}

#[tokio::test]
async fn an_upstream_failure_on_a_segment_ends_the_feed_failed_with_the_text_before_it() {
    let fixture = std::fs::read(format!(
        "{}/tests/fixtures/openai_transcription/with_done_marker.sse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let ok = Reply::Stream {
        chunks: vec![Bytes::from(fixture)],
        gap: Duration::ZERO,
        hang: false,
    };
    let refused = Reply::Status {
        status: 400,
        body: r#"{"error":{"message":"Audio file might be corrupted or unsupported"}}"#.into(),
        retry_after: None,
    };
    let upstream = FakeUpstream::start_sequence(vec![ok, refused]).await;
    let app = spawn_app_with(config(), Some(&upstream)).await;
    let feed = create_feed(&app, "openai/gpt-4o-transcribe").await;
    send_ok(&app, &feed, 0).await;
    let (status, error) = error_of(send(&app, &feed, 1, wav(400)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("upstream_bad_request"))
    );
    let status = app.status(&feed.id).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["aggregate"]["error"]["code"], "upstream_bad_request");
    assert_eq!(status["aggregate"]["transcript"], "The quick brown fox.");
    // The upstream got `language` with every segment, and from the second on the transcript
    // so far as the `prompt` (OpenAI's way to continue a previous audio segment).
    let requests = upstream.requests();
    let (first, second) = (
        requests[0].1.as_str().unwrap(),
        requests[1].1.as_str().unwrap(),
    );
    assert!(second.contains("name=\"language\"\r\n\r\nen"));
    assert!(!first.contains("name=\"prompt\""), "{first}");
    assert!(
        second.contains("name=\"prompt\"\r\n\r\nThe quick brown fox.\r\n"),
        "{second}"
    );
    let (status, error) = error_of(send(&app, &feed, 2, wav(400)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("stream_finished"))
    );
}

#[tokio::test]
async fn segments_are_checked_before_anything_is_transcribed() {
    let mut config = config();
    config.transcription.max_segment_bytes = 16 * 1024;
    let app = spawn_app_with(config, None).await;
    let feed = create_feed(&app, "mock/3t-0ms").await;
    let (status, error) = error_of(send(&app, &feed, 0, wav(2000)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let (status, error) = error_of(send(&app, &feed, 0, b"not audio at all".to_vec()).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("unsupported_audio"))
    );
    let no_number = app
        .client
        .post(app.url(&format!("/v1/streams/{}/audio", feed.id)))
        .bearer_auth(&feed.write)
        .body(wav(100))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(no_number).await.0, 400);
    let as_reader = app
        .client
        .post(app.url(&format!(
            "/v1/streams/{}/audio?segment=0&token={}",
            feed.id, feed.read
        )))
        .body(wav(100))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(as_reader).await.1["code"], "write_token_required");
    let anonymous = app
        .client
        .post(app.url(&format!("/v1/streams/{}/audio?segment=0", feed.id)))
        .body(wav(100))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await.0, 401);
    assert_eq!(
        app.status(&feed.id).await["event_count"],
        1,
        "only stream.started"
    );
    let (status, error) = error_of(
        app.post(
            "/v1/streams",
            &json!({"kind": "transcription", "model": "anthropic/claude-sonnet-4-5"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("model")));
}

#[tokio::test]
async fn a_feed_whose_source_went_quiet_ends_with_feed_idle_timeout() {
    let mut config = config();
    config.transcription.idle_timeout_secs = 0.4;
    let app = spawn_app_with(config, None).await;
    let feed = create_feed(&app, "mock/3t-0ms").await;
    let reader = SseReader::new(app.events(&feed.id, None, "").await);
    for n in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send_ok(&app, &feed, n).await;
    }
    assert_eq!(
        app.status(&feed.id).await["status"],
        "running",
        "segments keep it alive"
    );
    let events = reader.collect().await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "stream.failed");
    assert!(last.data.contains("feed_idle_timeout"), "{}", last.data);
    assert_eq!(deltas(&events).len(), 9, "the text before it stays");
}

#[tokio::test]
async fn a_model_that_cannot_stream_still_gives_each_segment_its_text() {
    let upstream = FakeUpstream::start(Reply::Json(r#"{"text":"Whisper says hi."}"#.into())).await;
    let app = spawn_app_with(config(), Some(&upstream)).await;
    let feed = create_feed(&app, "openai/whisper-1").await;
    let answer = send_ok(&app, &feed, 0).await;
    assert_eq!(answer["text"], "Whisper says hi.");
    finish(&app, &feed).await;
    let status = app.status(&feed.id).await;
    assert_eq!(status["aggregate"]["transcript"], "Whisper says hi.");
    let openai = SseReader::new(app.events(&feed.id, None, "?format=openai").await)
        .collect()
        .await;
    let done: Value = serde_json::from_str(&openai.last().unwrap().data).unwrap();
    assert_eq!(done["text"], "Whisper says hi.");
    // Segments go upstream named for what they are.
    let body = upstream.requests()[0].1.as_str().unwrap().to_owned();
    assert!(body.contains("filename=\"segment-0.wav\""), "{body}");
}

#[tokio::test]
async fn a_source_that_hangs_up_mid_segment_does_not_leave_the_feed_stuck() {
    let app = spawn_app_with(config(), None).await;
    let feed = create_feed(&app, "mock/10t-30ms").await;
    let hung_up = app
        .client
        .post(app.url(&format!("/v1/streams/{}/audio?segment=0", feed.id)))
        .bearer_auth(&feed.write)
        .body(wav(400))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(
        hung_up.is_err(),
        "the client gave up before the segment was done"
    );
    // The segment finishes anyway; its retry is a duplicate and the next one goes through.
    let again = send_ok(&app, &feed, 0).await;
    assert_eq!(again["status"], "duplicate");
    send_ok(&app, &feed, 1).await;
    let status = finish(&app, &feed).await;
    assert_eq!(status["aggregate"]["segments"], 2);
}

#[tokio::test]
async fn an_openai_reader_resuming_after_the_window_moved_gets_the_whole_kept_text() {
    let mut config = config();
    config.transcription.window_events = 10;
    let app = spawn_app_with(config, None).await;
    let feed = create_feed(&app, "mock/3t-0ms").await;
    send_ok(&app, &feed, 0).await;
    let mut reader = SseReader::new(app.events(&feed.id, None, "?format=openai").await);
    let first = reader.next().await.unwrap();
    drop(reader);
    for n in 1..6 {
        send_ok(&app, &feed, n).await;
    }
    finish(&app, &feed).await;
    // Its position is gone: OpenAI's format cannot say `reset`, so 410 with the window.
    let (status, _) = error_of(
        app.events(&feed.id, Some(&first.id), "?format=openai")
            .await,
    )
    .await;
    assert_eq!(status, 410);
    // Read again from where it can: the done has the whole transcript, not the window's.
    let events = SseReader::new(app.events(&feed.id, None, "?format=openai").await)
        .collect()
        .await;
    let done: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(done["type"], "transcript.text.done");
    assert_eq!(done["text"], "tok1 tok2 tok3 ".repeat(6));
}

#[tokio::test]
async fn a_forged_wav_header_cannot_make_the_mock_talk_for_hours() {
    let app = spawn_app_with(config(), None).await;
    // 0.1 s of audio whose header claims 4 GiB of samples.
    let mut forged = wav(100);
    let data = forged.len() - 3200;
    forged[data - 4..data].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let response =
        crate::transcriptions::upload(&app, forged, "a.wav", &[("model", "mock/default")]).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["text"], "the ", "0.1 s of audio: one word");
}

#[tokio::test]
async fn the_mocks_segments_read_as_one_text_because_each_hears_the_transcript_before_it() {
    let app = spawn_app_with(config(), None).await;
    let feed = create_feed(&app, "mock/default").await;
    for n in 0..3 {
        // 1.2 s of audio: three words each.
        let response = send(&app, &feed, n, wav(1200)).await;
        assert_eq!(response.status(), 200);
    }
    let status = app.status(&feed.id).await;
    assert_eq!(
        status["aggregate"]["transcript"],
        "the quick brown fox jumps over the lazy dog "
    );
}
