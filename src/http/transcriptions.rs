//! `POST /v1/audio/transcriptions`: OpenAI-compatible multipart upload. With `stream=true`
//! the transcription is a stream like any other (SSE in OpenAI's transcription events, resume
//! ids, `x-stream-id`); without it the upstream's answer is relayed as it is.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::access::require_key;
use super::admission::{check_model_name, idempotency_key, stream_permit};
use super::chat::upstream_spoke;
use super::events::{ReadOptions, last_event_id, open, with_stream_id};
use super::{ApiError, AppState};
use crate::auth::Caller;
use crate::event::token::mint;
use crate::event::{Format, StreamId, StreamKind, unix_millis};
use crate::providers::{AudioFormat, Job, Route, TranscriptionRequest, wav_duration};
use crate::relay::{Launch, Launched};
use crate::store::StreamMeta;

/// Form fields beyond `file`, `model` and `stream` that one upload may carry.
const MAX_FIELDS: usize = 64;

/// A checked upload.
pub struct Upload {
    pub model: String,
    pub stream: bool,
    pub request: TranscriptionRequest,
}

fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge { limit }
    } else {
        ApiError::InvalidField {
            param: "body".into(),
            message: format!("invalid multipart body: {}", e.body_text()),
        }
    }
}

fn missing(param: &str) -> ApiError {
    ApiError::MissingField {
        param: param.into(),
        message: format!("missing required form field `{param}`"),
    }
}

/// Reads the form: the audio (checked: a known container, a readable WAV header), the model,
/// `stream`, and the other fields as sent.
pub async fn read_upload(mut form: Multipart, limit: usize) -> Result<Upload, ApiError> {
    let (mut audio, mut model, mut stream, mut fields) = (None, None, false, Vec::new());
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let filename = field.file_name().unwrap_or("audio").to_owned();
            let bytes = field.bytes().await.map_err(|e| multipart_error(e, limit))?;
            audio = Some((filename, bytes));
            continue;
        }
        let value = field.text().await.map_err(|e| multipart_error(e, limit))?;
        match name.as_str() {
            "model" => model = Some(value),
            "stream" => {
                stream = match value.trim() {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    _ => {
                        return Err(ApiError::InvalidField {
                            param: "stream".into(),
                            message: "`stream` must be true or false".into(),
                        });
                    }
                }
            }
            _ if fields.len() >= MAX_FIELDS => {
                return Err(ApiError::InvalidField {
                    param: name,
                    message: format!("at most {MAX_FIELDS} form fields"),
                });
            }
            _ => fields.push((name, value)),
        }
    }
    let (filename, audio) = audio.ok_or_else(|| missing("file"))?;
    let model = model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| missing("model"))?;
    let format = AudioFormat::sniff(&audio).ok_or_else(|| {
        ApiError::UnsupportedAudio(
            "the file is not audio tokenrelay recognises (WAV, FLAC, MP3, OGG, WebM, MP4/M4A)"
                .into(),
        )
    })?;
    let duration = match format {
        AudioFormat::Wav => {
            Some(wav_duration(&audio).map_err(|e| ApiError::UnsupportedAudio(e.to_string()))?)
        }
        _ => None,
    };
    Ok(Upload {
        model,
        stream,
        request: TranscriptionRequest {
            audio,
            filename: format.file_name(&filename),
            format,
            duration,
            fields,
        },
    })
}

/// The route for `model`, keeping only candidates that transcribe this audio.
pub fn transcription_route(
    state: &AppState,
    model: &str,
    format: AudioFormat,
) -> Result<Route, ApiError> {
    check_model_name(model)?;
    let mut route = state.providers.route(model)?;
    route.candidates.retain(|c| c.provider.transcribes());
    if route.candidates.is_empty() {
        return Err(ApiError::InvalidField {
            param: "model".into(),
            message: format!(
                "model `{}` does not transcribe audio",
                model.chars().take(200).collect::<String>()
            ),
        });
    }
    route
        .candidates
        .retain(|c| c.provider.accepts_audio(format));
    if route.candidates.is_empty() {
        return Err(ApiError::UnsupportedAudio(format!(
            "model `{}` takes WAV audio only",
            model.chars().take(200).collect::<String>()
        )));
    }
    Ok(route)
}

/// What makes two uploads the same request (for `Idempotency-Key`).
fn request_hash(upload: &Upload) -> String {
    let mut hasher = Sha256::new();
    hasher.update(upload.model.as_bytes());
    for (name, value) in &upload.request.fields {
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
    }
    hasher.update([1]);
    hasher.update(&upload.request.audio);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let (result, id) = answer(&state, &caller, &headers, form).await;
    let response = result.unwrap_or_else(IntoResponse::into_response);
    match id {
        Some(id) => with_stream_id(response, &id),
        None => response,
    }
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> (Result<Response, ApiError>, Option<StreamId>) {
    let checked = async {
        require_key(caller)?;
        let upload = read(state, form).await?;
        if !caller.allows_model(&upload.model) {
            let model = upload.model.chars().take(100).collect();
            return Err(ApiError::ModelNotAllowed(model));
        }
        let route = transcription_route(state, &upload.model, upload.request.format)?;
        let key = idempotency_key(headers, "audio.transcriptions")?;
        let permit = stream_permit(state, caller, key.as_deref()).await?;
        Ok((upload, route, key, permit))
    };
    let (upload, route, key, permit) = match checked.await {
        Ok(checked) => checked,
        Err(e) => return (Err(e), None),
    };
    if !upload.stream {
        let answer = whole(&route, &upload).await;
        drop(permit);
        return (answer, None);
    }
    if state.shutdown.is_cancelled() {
        return (Err(ApiError::ShuttingDown), None);
    }

    let (read_token, write_token) = (mint("rt_"), mint("wt_"));
    let request_hash = request_hash(&upload);
    let meta = StreamMeta {
        kind: StreamKind::Transcription,
        model: upload.model.clone(),
        provider: route.primary().provider.name().to_owned(),
        owner: caller.owner().to_owned(),
        created_at: unix_millis() / 1000,
        format: Format::OpenAi,
        include_usage: true,
        choices: 1,
        read_token_hash: read_token.hash,
        write_token_hash: write_token.hash,
        request_hash: request_hash.clone(),
        feed: None,
    };
    let launched = state
        .relay
        .start(Launch {
            meta,
            route,
            job: Job::Transcription(upload.request),
            idempotency_key: key,
            detach_grace: Some(Duration::from_secs(state.config.detach_grace_secs)),
            attach: true,
            permit,
        })
        .await;
    let (id, guard, position) = match launched {
        Err(e) => return (Err(e.into()), None),
        Ok(Launched::New {
            id,
            started,
            subscriber,
            ..
        }) => {
            if let Err(e) = upstream_spoke(state, started).await {
                return (Err(e), Some(id));
            }
            (id, subscriber, None)
        }
        Ok(Launched::Existing(id)) => {
            match state.log().info(&id).await {
                Ok(info) if info.head.meta.request_hash != request_hash => {
                    return (Err(ApiError::IdempotencyKeyReused), Some(id));
                }
                Ok(_) => {}
                Err(e) => return (Err(e.into()), Some(id)),
            }
            (id, None, last_event_id(headers))
        }
    };
    let result = match state.log().head(&id).await {
        Ok(head) => {
            let options = ReadOptions {
                format: Format::OpenAi,
                position: position.as_deref(),
                strict: false,
                presence: false,
            };
            open(state, id.clone(), head, options, guard)
        }
        Err(e) => Err(e.into()),
    };
    (result, Some(id))
}

async fn read(
    state: &AppState,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Upload, ApiError> {
    let form = form.map_err(|e| ApiError::InvalidField {
        param: "body".into(),
        message: format!("expected a multipart/form-data body: {}", e.body_text()),
    })?;
    read_upload(form, state.config.transcription.max_upload_bytes).await
}

/// A non-streaming upload: the first candidate's answer, relayed as it is.
async fn whole(route: &Route, upload: &Upload) -> Result<Response, ApiError> {
    let candidate = route.primary();
    let answer = candidate
        .provider
        .transcribe_whole(&candidate.upstream_model, &upload.request)
        .await
        .map_err(ApiError::Upstream)?;
    let content_type = HeaderValue::from_str(&answer.content_type)
        .unwrap_or(HeaderValue::from_static("application/json"));
    Ok(([(header::CONTENT_TYPE, content_type)], answer.body).into_response())
}
