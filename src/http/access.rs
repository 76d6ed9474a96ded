//! Stream capabilities on requests: the `read_token` or `write_token` a client shows, with
//! `?token=` (EventSource cannot set headers) or `Authorization: Bearer rt_…` / `wt_…`.
//! Only their hashes are stored; they are compared in constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::auth::{Caller, bearer, is_stream_token, shown_key};
use crate::event::Format;
use crate::event::token::hash;
use crate::store::StreamMeta;

/// `?token=` on routes that take a stream token.
#[derive(serde::Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

/// What a token lets its holder do with one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The stream token a request shows, if any. Other bearer values are not stream tokens
/// (they are API keys).
pub fn shown_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(token) = query.filter(|t| !t.is_empty()) {
        return Some(token.to_owned());
    }
    let bearer = bearer(headers)?;
    is_stream_token(bearer).then(|| bearer.to_owned())
}

/// What `token` grants on the stream `meta` describes; `None` if it is not one of its tokens.
pub fn access(meta: &StreamMeta, token: &str) -> Option<Access> {
    let shown = hash(token);
    let matches = |stored: &str| bool::from(shown.as_bytes().ct_eq(stored.as_bytes()));
    // Both are compared every time, so the timing says nothing about which one matched.
    let (write, read) = (
        matches(&meta.write_token_hash),
        matches(&meta.read_token_hash),
    );
    if write {
        Some(Access::Write)
    } else if read {
        Some(Access::Read)
    } else {
        None
    }
}

/// What a request wants to do with a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Read,
    /// Publish, send audio, finish: the owner's key or the write token.
    Write,
    /// Like `Write`, but open to anyone while no keys are configured (loopback only).
    Cancel,
}

/// Who may touch a stream on this request: the caller and the stream token it shows.
pub struct StreamAccess {
    caller: Caller,
    token: Option<String>,
    need: Need,
}

impl StreamAccess {
    /// Refuses, before anything is looked up (so the answer says nothing about the stream),
    /// a request that shows no credential that could grant `need`.
    pub fn new(
        caller: Caller,
        headers: &HeaderMap,
        query_token: Option<&str>,
        need: Need,
    ) -> Result<Self, ApiError> {
        let token = shown_token(headers, query_token);
        if token.is_none() {
            match (&caller, need) {
                (Caller::Nobody, _) => return Err(ApiError::MissingApiKey),
                (Caller::Open, Need::Write) => return Err(ApiError::MissingToken),
                _ => {}
            }
        }
        Ok(Self {
            caller,
            token,
            need,
        })
    }

    /// Whether this request may do what it wants with the stream `meta` describes. A stream
    /// it may not see answers 404, exactly like one that does not exist.
    pub fn check(&self, meta: &StreamMeta) -> Result<(), ApiError> {
        if let Caller::Key(key) = &self.caller {
            if key.name == meta.owner {
                return Ok(());
            }
        }
        match (&self.token, &self.caller) {
            (Some(token), _) => match access(meta, token) {
                None => Err(ApiError::StreamNotFound),
                Some(Access::Read) if self.need != Need::Read => Err(ApiError::WriteTokenRequired),
                Some(_) => Ok(()),
            },
            (None, Caller::Open) => Ok(()),
            (None, _) => Err(ApiError::StreamNotFound),
        }
    }
}

/// Middleware on every route but health, readiness and metrics: finds the [`Caller`],
/// refuses unknown keys (401) and keys over their request rate (429), and hands the caller
/// to the handler as a request extension.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let format = error_format(&request);
    match caller_of(&state, request.headers()) {
        Ok(caller) => {
            if let Caller::Key(key) = &caller {
                tracing::Span::current().record("key", key.name.as_str());
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response_as(format),
    }
}

/// Middleware on the routes that need a key, inside [`authenticate`]: a request without one
/// is refused before its body is read, so nothing about the body (is it JSON, does the prompt
/// it names exist) is told to a caller who may not use the API.
pub async fn key_required(request: Request, next: Next) -> Response {
    if let Some(Caller::Nobody) = request.extensions().get::<Caller>() {
        return ApiError::MissingApiKey.into_response_as(error_format(&request));
    }
    next.run(request).await
}

/// Errors on `/v1/messages` are in Anthropic's shape, elsewhere in OpenAI's.
fn error_format(request: &Request) -> Format {
    if request.uri().path() == "/v1/messages" {
        Format::Anthropic
    } else {
        Format::OpenAi
    }
}

fn caller_of(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let keys = &state.keys;
    if !keys.enabled() {
        if !state.config.allow_unauthenticated {
            loopback_only(headers, &state.config.cors_allowed_origins)?;
        }
        return Ok(Caller::Open);
    }
    let Some(shown) = shown_key(headers) else {
        return Ok(Caller::Nobody);
    };
    let key = keys.find(shown).ok_or(ApiError::InvalidApiKey)?;
    key.check_rate()
        .map_err(|retry_after| ApiError::RateLimited {
            per_minute: key.per_minute(),
            retry_after,
        })?;
    Ok(Caller::Key(key))
}

/// Without keys the server is for this machine only, and a web page must not use it behind
/// its user's back: the `Host` must name a loopback address (a DNS-rebinding page names its
/// own), and a browser's `Origin` must be loopback or allowed (a cross-site form or fetch
/// names its own).
fn loopback_only(headers: &HeaderMap, allowed_origins: &[String]) -> Result<(), ApiError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(host) = text(header::HOST) {
        if !is_loopback_host(host) {
            return Err(ApiError::HostNotAllowed);
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let allowed = allowed_origins.iter().any(|o| o == "*" || o == origin);
        let host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if !allowed && !is_loopback_host(host) {
            return Err(ApiError::OriginNotAllowed);
        }
    }
    Ok(())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Routes that need a client key when keys are configured (creating streams, models,
/// prompts); streams' own routes also take their tokens (see [`StreamAccess`]).
pub fn require_key(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Nobody => Err(ApiError::MissingApiKey),
        Caller::Open | Caller::Key(_) => Ok(()),
    }
}
