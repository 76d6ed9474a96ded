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
    Job, ProviderError, ProviderErrorKind, ProviderEvent, ProviderStream, Resolved, Route,
};
use crate::telemetry::Metrics;

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
        // An in-stream error before any content (Anthropic's `overloaded_error` after its
        // `message_start`) is the upstream failing on its side, like a 5xx.
        ProviderErrorKind::Connect | ProviderErrorKind::Truncated | ProviderErrorKind::Stream => {
            true
        }
        ProviderErrorKind::Status(s) => s == 408 || s == 429 || s >= 500,
        ProviderErrorKind::FirstEventTimeout
        | ProviderErrorKind::IdleTimeout
        | ProviderErrorKind::InvalidResponse => false,
    }
}

pub async fn connect(
    id: &StreamId,
    route: &Route,
    job: &Job,
    timeouts: &Timeouts,
    retry: &RetryPolicy,
    metrics: &Metrics,
) -> Result<Connected, ProviderError> {
    let mut last = None;
    for (n, candidate) in route.candidates.iter().enumerate() {
        if n > 0 {
            tracing::info!(stream_id = %id, model = %candidate.upstream_model, provider = candidate.provider.name(), "trying the next fallback");
        }
        let mut backoff = retry.backoff;
        for attempt in 0..=retry.max_retries {
            let e = match first_event(candidate, job, timeouts).await {
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
            metrics.upstream_error(candidate.provider.name(), e.code());
            let again = attempt < retry.max_retries && worth_retrying(&e);
            // Report a retryable failure over a later permanent one (e.g. the primary's 503
            // over a fallback's 400): it tells the client that trying later can work.
            if last
                .as_ref()
                .is_none_or(|l: &ProviderError| !l.retryable() || e.retryable())
            {
                last = Some(e);
            }
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

/// Calls one upstream and waits for its first event that carries something (a delta, or
/// the end): until then nothing is committed, so an error that follows a role chunk or
/// `message_start` can still be retried or sent to a fallback. The first upstream sign of
/// life must come within the first-event timeout; after it, the gaps between heartbeats are
/// held to the idle timeout instead (a model may think silently for a while).
async fn first_event(
    candidate: &Resolved,
    job: &Job,
    timeouts: &Timeouts,
) -> Result<(ProviderStream, ProviderEvent), ProviderError> {
    let (provider, model) = (&candidate.provider, candidate.upstream_model.as_str());
    let started = async {
        let mut stream = match job {
            Job::Chat(request) => provider.chat(model, request).await?,
            Job::Transcription(request) => provider.transcribe(model, request).await?,
        };
        let first = stream.next().await;
        Ok::<_, ProviderError>((stream, first))
    };
    let (mut stream, mut next) = timeout(timeouts.first_event, started).await.map_err(|_| {
        ProviderError::new(
            ProviderErrorKind::FirstEventTimeout,
            format!(
                "no upstream event within {} s",
                timeouts.first_event.as_secs_f32()
            ),
        )
    })??;
    loop {
        match next {
            Some(Ok(ProviderEvent::Heartbeat)) => {}
            Some(Ok(first)) => return Ok((stream, first)),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(ProviderError::new(
                    ProviderErrorKind::Truncated,
                    "upstream closed the stream before its first event",
                ));
            }
        }
        next = timeout(timeouts.idle, stream.next()).await.map_err(|_| {
            ProviderError::new(
                ProviderErrorKind::FirstEventTimeout,
                format!(
                    "no upstream event for {} s before the first token",
                    timeouts.idle.as_secs_f32()
                ),
            )
        })?;
    }
}
