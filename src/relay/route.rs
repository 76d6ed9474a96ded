//! Getting a first event out of a route: each candidate in order (primary, then fallbacks),
//! with retries and backoff for failures that a second try can fix. Nothing here runs once
//! the first event has reached the log: after that a failure is the stream's end, never a
//! silent switch to another model.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::timeout;

use super::producer::Timeouts;
use crate::event::StreamId;
use crate::providers::{
    ChatRequest, ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream, Resolved, Route,
};

/// How a candidate is retried before the next one is tried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries of the same candidate (so `1 + max_retries` attempts).
    pub max_retries: u32,
    /// First backoff; doubled after each retry, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// An upstream `retry-after` longer than this moves on to the next candidate instead.
    pub max_retry_after: Duration,
}

/// The upstream that answered, with its first event.
pub struct Connected {
    pub stream: ProviderStream,
    pub first: ProviderEvent,
    pub provider: &'static str,
}

/// Whether trying the same upstream again can help: it could not be reached, it is busy, or
/// it broke on its side.
fn worth_retrying(e: &ProviderError) -> bool {
    match e.kind {
        ProviderErrorKind::Connect | ProviderErrorKind::Truncated => true,
        ProviderErrorKind::Status(s) => s == 429 || s >= 500,
        ProviderErrorKind::FirstEventTimeout
        | ProviderErrorKind::IdleTimeout
        | ProviderErrorKind::Stream
        | ProviderErrorKind::InvalidResponse => false,
    }
}

pub async fn connect(
    id: &StreamId,
    route: &Route,
    request: &ChatRequest,
    timeouts: &Timeouts,
    retry: &RetryPolicy,
) -> Result<Connected, ProviderError> {
    let mut last = None;
    for (n, candidate) in route.candidates.iter().enumerate() {
        if n > 0 {
            tracing::info!(stream_id = %id, model = %candidate.upstream_model, provider = candidate.provider.name(), "trying the next fallback");
        }
        let mut backoff = retry.backoff;
        for attempt in 0..=retry.max_retries {
            let e = match first_event(candidate, request, timeouts).await {
                Ok((stream, first)) => {
                    return Ok(Connected {
                        stream,
                        first,
                        provider: candidate.provider.name(),
                    });
                }
                Err(e) => e,
            };
            let wait = match e.retry_after {
                Some(after) if after > retry.max_retry_after => None,
                Some(after) => Some(after),
                None => Some(backoff.mul_f64(1.0 + rand::random::<f64>() / 4.0)),
            };
            tracing::info!(stream_id = %id, code = e.code(), attempt, error = %e, "upstream failed before the first event");
            let again = attempt < retry.max_retries && worth_retrying(&e);
            last = Some(e);
            match wait {
                Some(wait) if again => tokio::time::sleep(wait).await,
                _ => break,
            }
            backoff = (backoff * 2).min(retry.max_backoff);
        }
    }
    Err(last
        .unwrap_or_else(|| ProviderError::new(ProviderErrorKind::Connect, "no upstream to try")))
}

/// Calls one upstream and waits for its first event, all within the first-event timeout.
async fn first_event(
    candidate: &Resolved,
    request: &ChatRequest,
    timeouts: &Timeouts,
) -> Result<(ProviderStream, ProviderEvent), ProviderError> {
    let call = async {
        let mut stream = candidate
            .provider
            .chat(&candidate.upstream_model, request)
            .await?;
        match stream.next().await {
            Some(Ok(first)) => Ok((stream, first)),
            Some(Err(e)) => Err(e),
            None => Err(ProviderError::new(
                ProviderErrorKind::Truncated,
                "upstream closed the stream before its first event",
            )),
        }
    };
    timeout(timeouts.first_event, call)
        .await
        .unwrap_or_else(|_| {
            Err(ProviderError::new(
                ProviderErrorKind::FirstEventTimeout,
                format!(
                    "no upstream event within {} s",
                    timeouts.first_event.as_secs_f32()
                ),
            ))
        })
}
