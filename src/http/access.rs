//! Stream capabilities on requests: the `read_token` or `write_token` a client shows, with
//! `?token=` (EventSource cannot set headers) or `Authorization: Bearer rt_…` / `wt_…`.
//! Only their hashes are stored; they are compared in constant time.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::ApiError;
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
/// (they will be API keys).
pub fn shown_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(token) = query.filter(|t| !t.is_empty()) {
        return Some(token.to_owned());
    }
    let bearer = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    (bearer.starts_with("rt_") || bearer.starts_with("wt_")).then(|| bearer.to_owned())
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

/// Reading: a shown token must be this stream's (a write token also reads); a wrong one
/// gets 404, exactly like a stream that does not exist. Without a token, reading is open
/// until API keys exist.
pub fn check_read(meta: &StreamMeta, token: Option<&str>) -> Result<(), ApiError> {
    match token {
        Some(token) if access(meta, token).is_none() => Err(ApiError::StreamNotFound),
        _ => Ok(()),
    }
}

/// Writing (publish, and cancel when a token is shown) needs this stream's write token.
pub fn check_write(meta: &StreamMeta, token: Option<&str>) -> Result<(), ApiError> {
    match token.map(|t| access(meta, t)) {
        None => Err(ApiError::MissingToken),
        Some(Some(Access::Write)) => Ok(()),
        Some(Some(Access::Read)) => Err(ApiError::WriteTokenRequired),
        Some(None) => Err(ApiError::StreamNotFound),
    }
}
