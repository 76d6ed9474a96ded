//! Upstream failures, classified by who failed and whether a retry could help.

use std::time::Duration;

use axum::http::StatusCode;

use crate::event::ErrorInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// No connection could be made (refused, DNS, TLS, connect timeout).
    Connect,
    /// The upstream answered an HTTP error status before any event.
    Status(u16),
    /// Nothing arrived within the first-event timeout.
    FirstEventTimeout,
    /// Nothing arrived within the idle timeout after the stream started.
    IdleTimeout,
    /// The upstream reported an error inside its stream.
    Stream,
    /// The connection ended before the upstream's terminator.
    Truncated,
    /// The upstream sent something that is not its documented format.
    InvalidResponse,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    /// Client-safe: never contains upstream credentials.
    pub message: String,
    /// From the upstream's `retry-after`, for 429s.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The stable code clients see.
    /// The error with every one of `secrets` cut out of its message.
    pub fn redacted(mut self, secrets: &[String]) -> Self {
        for secret in secrets {
            if self.message.contains(secret.as_str()) {
                self.message = self.message.replace(secret.as_str(), "***");
            }
        }
        self
    }

    pub fn code(&self) -> &'static str {
        match self.kind {
            ProviderErrorKind::Connect => "upstream_unreachable",
            ProviderErrorKind::Status(401 | 403) => "upstream_unauthorized",
            ProviderErrorKind::Status(429) => "upstream_rate_limited",
            ProviderErrorKind::Status(s) if s >= 500 => "upstream_unavailable",
            ProviderErrorKind::Status(_) => "upstream_bad_request",
            ProviderErrorKind::FirstEventTimeout => "upstream_first_event_timeout",
            ProviderErrorKind::IdleTimeout => "upstream_idle_timeout",
            ProviderErrorKind::Stream => "upstream_error",
            ProviderErrorKind::Truncated => "upstream_truncated",
            ProviderErrorKind::InvalidResponse => "upstream_invalid_response",
        }
    }

    /// Whether the same request could succeed if sent again.
    pub fn retryable(&self) -> bool {
        match self.kind {
            ProviderErrorKind::Status(s) => s == 408 || s == 429 || s >= 500,
            ProviderErrorKind::Connect
            | ProviderErrorKind::FirstEventTimeout
            | ProviderErrorKind::IdleTimeout
            | ProviderErrorKind::Stream
            | ProviderErrorKind::Truncated => true,
            ProviderErrorKind::InvalidResponse => false,
        }
    }

    /// The HTTP status a client gets when this happens before its stream started.
    pub fn http_status(&self) -> StatusCode {
        match self.kind {
            ProviderErrorKind::Status(s) => {
                StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            ProviderErrorKind::FirstEventTimeout | ProviderErrorKind::IdleTimeout => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProviderErrorKind::Connect
            | ProviderErrorKind::Stream
            | ProviderErrorKind::Truncated
            | ProviderErrorKind::InvalidResponse => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn info(&self) -> ErrorInfo {
        ErrorInfo {
            code: self.code().to_owned(),
            message: self.message.clone(),
            retryable: self.retryable(),
        }
    }
}
