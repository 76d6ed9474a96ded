//! Live transcription feeds over HTTP: create (`POST /v1/streams {"kind":"transcription"}`),
//! send a segment (`POST /v1/streams/{id}/audio?segment=N`, the WAV bytes as the body), and
//! finish (`POST /v1/streams/{id}/finish`).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Need, StreamAccess};
use super::admission::{idempotency_key, route_for, stream_permit};
use super::streams::{created_answer, default_format, describe, external_body};
use super::transcriptions::transcription_route;
use super::{ApiError, AppState};
use crate::auth::Caller;
use crate::event::token::mint;
use crate::event::{StreamId, StreamKind, unix_millis};
use crate::feed::{FeedError, SegmentOutcome};
use crate::providers::{AudioFormat, TranscriptionRequest, wav_duration};
use crate::store::{FeedMeta, StreamInfo, StreamMeta};

/// The body of `POST /v1/streams` for a live feed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFeed {
    model: String,
    /// Passed with every segment to the upstream.
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    temperature: Option<f64>,
    /// The format viewers get without `?format=`: `native` (default) or `openai`.
    #[serde(default)]
    format: Option<String>,
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Value,
) -> Result<Response, ApiError> {
    let (body, request_hash): (CreateFeed, String) = external_body(state, body)?;
    let route = route_for(state, caller, &body.model)?;
    if !route.candidates.iter().any(|c| c.provider.transcribes()) {
        return Err(ApiError::InvalidField {
            param: "model".into(),
            message: format!(
                "model `{}` does not transcribe audio",
                body.model.chars().take(200).collect::<String>()
            ),
        });
    }
    let format = default_format(body.format.as_deref())?;
    let mut fields = Vec::new();
    if let Some(language) = body.language {
        fields.push(("language".to_owned(), language));
    }
    if let Some(prompt) = body.prompt {
        fields.push(("prompt".to_owned(), prompt));
    }
    if let Some(temperature) = body.temperature {
        fields.push(("temperature".to_owned(), temperature.to_string()));
    }
    let key = idempotency_key(headers, "streams.transcription")?;
    let (read, write) = (mint("rt_"), mint("wt_"));
    let meta = StreamMeta {
        kind: StreamKind::Transcription,
        model: body.model,
        provider: route.primary().provider.name().to_owned(),
        owner: caller.owner().to_owned(),
        created_at: unix_millis() / 1000,
        format,
        include_usage: true,
        choices: 1,
        read_token_hash: read.hash,
        write_token_hash: write.hash,
        request_hash: request_hash.clone(),
        feed: Some(FeedMeta { fields }),
    };
    let id = StreamId::random();
    let permit = stream_permit(state, caller, key.as_deref()).await?;
    let created = state.feeds.create(id.clone(), meta, key, permit).await?;
    let urls = [
        ("events_url", "events"),
        ("audio_url", "audio"),
        ("finish_url", "finish"),
    ];
    let tokens = (read.token, write.token);
    created_answer(state, created, id, tokens, &request_hash, &urls).await
}

#[derive(Deserialize)]
pub struct AudioQuery {
    segment: Option<String>,
    token: Option<String>,
}

/// The feed, if this request may write to it (its owner's key or its write token).
async fn writable_feed(
    state: &AppState,
    caller: Caller,
    id: &str,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(StreamId, StreamInfo), ApiError> {
    let access = StreamAccess::new(caller, headers, token, Need::Write)?;
    let id: StreamId = id.parse().map_err(|_| ApiError::StreamNotFound)?;
    // Checked on the head first: the (heavier) aggregate is read only for who may write.
    access.check(&state.log().head(&id).await?.meta)?;
    let info = state.log().info(&id).await?;
    if info.head.meta.feed.is_none() {
        return Err(ApiError::NotAFeed);
    }
    Ok((id, info))
}

fn feed_error(e: FeedError) -> ApiError {
    match e {
        FeedError::NotFeed => ApiError::NotAFeed,
        FeedError::Finished => ApiError::StreamFinished,
        FeedError::OutOfOrder { expected, got } => ApiError::SegmentOutOfOrder { expected, got },
        FeedError::InProgress => ApiError::SegmentInProgress,
        FeedError::Upstream(e) => ApiError::Upstream(e),
        FeedError::Store(e) => e.into(),
    }
}

pub async fn audio(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<AudioQuery>, QueryRejection>,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let (id, info) = writable_feed(&state, caller, &id, &headers, query.token.as_deref()).await?;
    // The body is read only now: a caller who may not write cannot make the server buffer
    // it, nor learn what is wrong with it.
    let body = Bytes::from_request(request, &state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge {
                limit: state.config.transcription.max_segment_bytes,
            }
        } else {
            ApiError::InvalidJson(e.body_text())
        }
    })?;
    let segment: u64 = query
        .segment
        .as_deref()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ApiError::InvalidQuery(
                "`segment` (0, 1, 2, ...) is required: the segment's number".into(),
            )
        })?;
    let format = AudioFormat::sniff(&body).ok_or_else(|| {
        ApiError::UnsupportedAudio("the segment is not audio tokenrelay recognises".into())
    })?;
    let duration = match format {
        AudioFormat::Wav => {
            Some(wav_duration(&body).map_err(|e| ApiError::UnsupportedAudio(e.to_string()))?)
        }
        _ => None,
    };
    let meta = &info.head.meta;
    let route = transcription_route(&state, &meta.model, format)?;
    let request = TranscriptionRequest {
        audio: body,
        filename: format!("segment-{segment}.{}", format.extension()),
        format,
        duration,
        fields: meta
            .feed
            .as_ref()
            .map(|f| f.fields.clone())
            .unwrap_or_default(),
    };
    let outcome = state
        .feeds
        .segment(&id, segment, &route, request)
        .await
        .map_err(feed_error)?;
    Ok(Json(match outcome {
        SegmentOutcome::Transcribed {
            text,
            last_event_id,
        } => {
            json!({"segment": segment, "status": "transcribed", "text": text, "last_event_id": last_event_id})
        }
        SegmentOutcome::Duplicate { next } => {
            json!({"segment": segment, "status": "duplicate", "next_segment": next})
        }
    }))
}

pub async fn finish(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<AudioQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let (id, _) = writable_feed(&state, caller, &id, &headers, query.token.as_deref()).await?;
    state.feeds.finish(&id).await.map_err(feed_error)?;
    let info = state.log().info(&id).await?;
    Ok(Json(describe(&state, &info)))
}
