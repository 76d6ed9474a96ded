//! The producer: one tracked task per stream that calls the upstream and appends what it
//! sends. It never waits for a client; clients read the log at their own pace.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::auth::StreamPermit;
use crate::event::{Completed, EventBody, Started, StreamId, Usage, unix_millis};
use crate::providers::{Job, ProviderError, ProviderErrorKind, ProviderEvent, Route};
use crate::store::{EventLog, StoreError, StreamMeta};
use crate::telemetry::{Metrics, carries_content};

use super::registry::ProducerSlot;
use super::route::{self, Connected, RetryPolicy};

/// Timeouts that apply to every upstream call.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From sending the request to the first upstream event.
    pub first_event: Duration,
    /// Between two upstream events once the stream runs.
    pub idle: Duration,
    /// How long a producer retries appends while the store is unreachable.
    pub store_retry: Duration,
}

/// Appended events are batched when the upstream has several ready at once.
const MAX_BATCH: usize = 64;

pub(super) struct Producer {
    pub log: Arc<dyn EventLog>,
    pub id: StreamId,
    pub meta: Arc<StreamMeta>,
    pub route: Route,
    pub retry: RetryPolicy,
    pub job: Job,
    pub timeouts: Timeouts,
    /// With a grace window, the stream is cancelled `abandoned` when no subscriber has been
    /// attached (on this instance) for that long.
    pub detach_grace: Option<Duration>,
    pub slot: ProducerSlot,
    /// Fired when the instance's drain window is over: the stream ends `interrupted`.
    pub interrupt: CancellationToken,
    /// Told whether the upstream accepted the request, once it has spoken.
    pub started: Option<oneshot::Sender<Result<(), ProviderError>>>,
    /// The creating key's stream slot, freed when the producer ends.
    pub _permit: Option<StreamPermit>,
    pub metrics: Metrics,
    /// When the stream was started, for time to first token.
    pub begun: std::time::Instant,
}

/// Why the producer stopped before its upstream finished.
enum Stop {
    Cancelled,
    Abandoned,
    Interrupted,
}

impl Producer {
    pub async fn run(mut self) {
        let log = Arc::clone(&self.log);
        let id = self.id.clone();
        self.run_until_stopped().await;
        log.release(&id).await;
    }

    async fn run_until_stopped(&mut self) {
        let cancel = self.slot.cancel.clone();
        let interrupt = self.interrupt.clone();
        let log = Arc::clone(&self.log);
        let id = self.id.clone();
        let abandoned = abandoned(
            self.slot.subscribers.clone(),
            self.detach_grace,
            Arc::clone(&log),
            id.clone(),
        );
        let stop = tokio::select! {
            () = self.pump() => return,
            () = cancel.cancelled() => Stop::Cancelled,
            () = finished_elsewhere(&log, &id) => Stop::Cancelled,
            () = abandoned => Stop::Abandoned,
            () = interrupt.cancelled() => Stop::Interrupted,
        };
        // The upstream call was dropped with `pump`, which closes its connection.
        let terminal = match stop {
            // Whoever cancelled (here or on another instance) already appended the terminal event.
            Stop::Cancelled => return,
            Stop::Abandoned => EventBody::cancelled("abandoned"),
            Stop::Interrupted => EventBody::failed(
                "interrupted",
                "the instance shut down before the stream finished; retry the request",
                true,
            ),
        };
        if let Err(e) = log.finish(&id, terminal).await {
            tracing::warn!(stream_id = %id, error = %e, "could not end the stream");
        }
    }

    async fn pump(&mut self) {
        let connected = route::connect(
            &self.id,
            &self.route,
            &self.job,
            &self.timeouts,
            &self.retry,
            &self.metrics,
        )
        .await;
        let upstream = match connected {
            Ok(upstream) => upstream,
            Err(e) => {
                tracing::info!(stream_id = %self.id, code = e.code(), error = %e, "upstream failed before the first event");
                self.fail(&e, None).await;
                if let Some(started) = self.started.take() {
                    let _ = started.send(Err(e));
                }
                return;
            }
        };
        let Connected {
            mut stream,
            first,
            provider,
        } = upstream;
        tracing::Span::current().record("provider", provider);
        let mut awaiting_first_token = true;
        let started = EventBody::Started(Started {
            stream_id: self.id.to_string(),
            kind: self.meta.kind,
            model: self.meta.model.clone(),
            provider: provider.to_owned(),
            created_at: self.meta.created_at,
        });
        let mut usage = None;
        let mut batch = vec![started];
        let mut next: Option<Result<ProviderEvent, ProviderError>> = Some(Ok(first));
        loop {
            let mut done = None;
            while let Some(item) = next.take() {
                match item {
                    Ok(ProviderEvent::Event(body)) => {
                        if let EventBody::Usage(u) = &body {
                            usage = Some(*u);
                        }
                        if awaiting_first_token && carries_content(&body) {
                            awaiting_first_token = false;
                            let elapsed = self.begun.elapsed();
                            self.metrics
                                .first_token(&self.meta.model, provider, elapsed);
                        }
                        batch.push(body);
                    }
                    Ok(ProviderEvent::Done { finish_reason }) => {
                        done = Some(Ok(finish_reason));
                        break;
                    }
                    Ok(ProviderEvent::Heartbeat) => {}
                    Err(e) => {
                        self.metrics.upstream_error(provider, e.code());
                        done = Some(Err(e));
                        break;
                    }
                }
                if batch.len() >= MAX_BATCH {
                    break;
                }
                next = stream
                    .next()
                    .now_or_never()
                    .map(|i| i.unwrap_or_else(|| Err(truncated())));
            }
            if !batch.is_empty() && !self.append(std::mem::take(&mut batch)).await {
                return;
            }
            if let Some(started) = self.started.take() {
                let _ = started.send(Ok(()));
            }
            match done {
                Some(Ok(finish_reason)) => return self.complete(finish_reason, usage).await,
                // What the upstream had counted so far still goes on the record.
                Some(Err(e)) => return self.fail(&e, usage).await,
                None => {}
            }
            next = match timeout(self.timeouts.idle, stream.next()).await {
                Ok(Some(item)) => Some(item),
                Ok(None) => Some(Err(truncated())),
                Err(_) => Some(Err(ProviderError::new(
                    ProviderErrorKind::IdleTimeout,
                    format!(
                        "no upstream event for {} s",
                        self.timeouts.idle.as_secs_f32()
                    ),
                ))),
            };
        }
    }

    /// Returns false when the stream cannot take more events (finished elsewhere, too large,
    /// store gone): the producer stops and drops the upstream.
    /// While the store is unreachable, the same batch is retried (the upstream waits, held
    /// back by TCP) for up to `store_retry`; a store that lost the log recreates it.
    async fn append(&self, events: Vec<EventBody>) -> bool {
        let deadline = tokio::time::Instant::now() + self.timeouts.store_retry;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.log.append(&self.id, events.clone()).await {
                Ok(_) => return true,
                Err(StoreError::Unavailable(e)) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(stream_id = %self.id, error = %e, "store unavailable; retrying the append");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                // Finished elsewhere (cancel) or fenced: someone else owns the end now.
                Err(StoreError::Finished | StoreError::Fenced) => return false,
                Err(e) => {
                    tracing::warn!(stream_id = %self.id, error = %e, "append failed; stopping the producer");
                    return false;
                }
            }
        }
    }

    async fn complete(&self, finish_reason: Option<String>, usage: Option<Usage>) {
        self.count_tokens(usage.as_ref());
        let done = EventBody::Completed(Completed {
            finish_reason,
            usage,
            ..Default::default()
        });
        self.append(vec![done]).await;
    }

    async fn fail(&self, e: &ProviderError, usage: Option<Usage>) {
        self.count_tokens(usage.as_ref());
        let mut failed = EventBody::failed(e.code(), e.message.clone(), e.retryable());
        if let EventBody::Failed(f) = &mut failed {
            f.usage = usage;
        }
        self.append(vec![failed]).await;
    }

    /// The stream's owner is the API key's name (`anonymous` without keys), never the key.
    fn count_tokens(&self, usage: Option<&Usage>) {
        if let Some(usage) = usage {
            self.metrics
                .tokens(&self.meta.model, &self.meta.owner, usage);
        }
    }
}

fn truncated() -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Truncated,
        "upstream stream ended without finishing",
    )
}

/// Resolves once nobody has been attached for `grace`, here or (as the store tells) on another
/// instance; never without a grace window.
async fn abandoned(
    mut subscribers: watch::Receiver<usize>,
    grace: Option<Duration>,
    log: Arc<dyn EventLog>,
    id: StreamId,
) {
    let Some(grace) = grace else {
        return std::future::pending().await;
    };
    loop {
        let alone = subscribers.wait_for(|n| *n == 0).await.is_ok();
        if !alone {
            return std::future::pending().await;
        }
        let mut window = grace;
        loop {
            let rejoined = tokio::select! {
                () = tokio::time::sleep(window) => false,
                changed = subscribers.wait_for(|n| *n > 0) => changed.is_ok(),
            };
            if rejoined {
                break;
            }
            let seen_ago = log
                .last_touched(&id)
                .await
                .map(|at| Duration::from_millis(unix_millis().saturating_sub(at)));
            match seen_ago {
                Some(ago) if ago < grace => window = grace - ago,
                _ => return,
            }
        }
    }
}

/// Resolves when the stream was finished by someone else (a cancel on any instance).
async fn finished_elsewhere(log: &Arc<dyn EventLog>, id: &StreamId) {
    while log.finished(id).await.is_err() {
        // The store is unreachable: the producer's own appends decide what happens.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::sync::Arc;

    use tokio::sync::watch;

    use super::abandoned;
    use crate::event::StreamId;
    use crate::store::{EventLog, MemoryStore, StoreLimits};

    fn log() -> Arc<dyn EventLog> {
        Arc::new(MemoryStore::new(StoreLimits::default()))
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_window_runs_only_while_nobody_is_attached() {
        let (tx, rx) = watch::channel(1usize);
        let grace = Duration::from_secs(30);
        let watch = tokio::spawn(abandoned(rx, Some(grace), log(), StreamId::random()));
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!watch.is_finished(), "attached: never abandoned");
        tx.send_replace(0);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(!watch.is_finished(), "inside the window");
        tx.send_replace(1);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!watch.is_finished(), "a subscriber came back in time");
        tx.send_replace(0);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(!watch.is_finished(), "the window restarted");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(watch.is_finished(), "alone for the whole window");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_grace_window_a_stream_is_never_abandoned() {
        let (_tx, rx) = watch::channel(0usize);
        let watch = tokio::spawn(abandoned(rx, None, log(), StreamId::random()));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!watch.is_finished());
    }
}
