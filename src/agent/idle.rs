//! Ends agent streams whose publisher went quiet: no new event for `idle` means the agent is
//! gone, and its watchers get a terminal `stream.failed` (`agent_idle_timeout`) instead of
//! waiting forever.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::event::{EventBody, StreamId};
use crate::store::{EventLog, StoreError};

/// Checks per idle period: the stream ends at most `idle / CHECKS` after its deadline.
const CHECKS: u32 = 8;

/// Watches `id` until it finishes, ends it after `idle` without a new event, or `stop`.
/// Progress is read from the log (any instance's publishes count), timed on this clock.
pub async fn watch_idle(
    log: Arc<dyn EventLog>,
    id: StreamId,
    idle: Duration,
    stop: CancellationToken,
) {
    let tick = idle / CHECKS;
    let mut seen = log.head(&id).await.ok().map(|h| h.last_seq);
    let mut since = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
        let head = match log.head(&id).await {
            Ok(head) => head,
            Err(StoreError::NotFound) => return,
            // An unreachable store is not the agent's silence; look again later.
            Err(_) => continue,
        };
        if head.status.is_finished() {
            return;
        }
        if seen != Some(head.last_seq) {
            seen = Some(head.last_seq);
            since = Instant::now();
            continue;
        }
        if since.elapsed() >= idle {
            let message = format!("no event was published for {} s", idle.as_secs());
            let failed = EventBody::failed("agent_idle_timeout", message, false);
            // Only if nothing was published since the check: a publish that just got its ids
            // must not be followed by the stream failing for silence.
            match log.append_at(&id, vec![failed], head.last_seq).await {
                Ok(_) => tracing::info!(stream_id = %id, "agent stream ended: idle"),
                Err(StoreError::Conflict) => {
                    seen = None;
                    continue;
                }
                Err(StoreError::Finished | StoreError::NotFound) => {}
                Err(e) => {
                    tracing::warn!(stream_id = %id, error = %e, "could not end idle stream; will retry");
                    continue;
                }
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Custom, StreamKind, StreamStatus};
    use crate::store::{MemoryStore, NewStream, Retention, StoreLimits, StreamMeta};

    fn agent(id: &StreamId) -> NewStream {
        NewStream {
            id: id.clone(),
            meta: StreamMeta::test(StreamKind::Agent),
            retention: Retention::Window {
                max_events: 100,
                max_age: Duration::from_secs(600),
            },
            idempotency_key: None,
            leased: false,
        }
    }

    async fn status(log: &Arc<dyn EventLog>, id: &StreamId) -> StreamStatus {
        log.head(id)
            .await
            .map(|h| h.status)
            .unwrap_or(StreamStatus::Running)
    }

    #[tokio::test(start_paused = true)]
    async fn publishing_keeps_a_stream_alive_and_silence_ends_it() {
        let log: Arc<dyn EventLog> = Arc::new(MemoryStore::new(StoreLimits::default()));
        let id = StreamId::random();
        log.create(agent(&id)).await.ok();
        let stop = CancellationToken::new();
        let idle = Duration::from_secs(600);
        let watch = tokio::spawn(watch_idle(Arc::clone(&log), id.clone(), idle, stop));
        tokio::time::sleep(Duration::from_secs(500)).await;
        let tick = EventBody::Custom(Custom {
            name: "tick".into(),
            ..Custom::default()
        });
        log.append(&id, vec![tick]).await.ok();
        // 1000 s after creation, but only 500 s after the last event.
        tokio::time::sleep(Duration::from_secs(500)).await;
        assert_eq!(status(&log, &id).await, StreamStatus::Running);
        // The deadline is 600 s after the event, give or take one check (75 s).
        tokio::time::sleep(Duration::from_secs(200)).await;
        assert_eq!(status(&log, &id).await, StreamStatus::Failed);
        let info = log.info(&id).await.ok().and_then(|i| i.aggregate.error);
        assert_eq!(info.map(|e| e.code).as_deref(), Some("agent_idle_timeout"));
        assert!(watch.is_finished() || watch.await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_watch_ends_at_shutdown_without_ending_the_stream() {
        let log: Arc<dyn EventLog> = Arc::new(MemoryStore::new(StoreLimits::default()));
        let id = StreamId::random();
        log.create(agent(&id)).await.ok();
        let stop = CancellationToken::new();
        let idle = Duration::from_secs(600);
        let watch = tokio::spawn(watch_idle(Arc::clone(&log), id.clone(), idle, stop.clone()));
        tokio::time::sleep(Duration::from_secs(100)).await;
        stop.cancel();
        assert!(watch.await.is_ok());
        tokio::time::sleep(Duration::from_secs(1000)).await;
        assert_eq!(status(&log, &id).await, StreamStatus::Running);
    }
}
