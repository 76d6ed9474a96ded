//! Ends streams fed from outside (agents' publishes, live feeds' audio) whose writer went
//! quiet: no new event for `idle` means it is gone, and the watchers get a terminal
//! `stream.failed` instead of waiting forever.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio_util::task::TaskTracker;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::StreamPermit;
use crate::event::{EventBody, StreamId};
use crate::store::{EventLog, StoreError};

/// Checks per idle period: the stream ends at most `idle / CHECKS` after its deadline.
const CHECKS: u32 = 8;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The idle watches this instance runs, one per stream at most.
pub struct IdleWatch {
    log: Arc<dyn EventLog>,
    tasks: TaskTracker,
    stop: CancellationToken,
    watching: Arc<Mutex<HashSet<StreamId>>>,
}

impl IdleWatch {
    /// `tasks` runs the watches; `stop` ends them (at shutdown) without ending the streams.
    pub fn new(log: Arc<dyn EventLog>, tasks: TaskTracker, stop: CancellationToken) -> Self {
        Self {
            log,
            tasks,
            stop,
            watching: Arc::default(),
        }
    }

    /// Starts watching `id` here unless this instance already does. Called on every write
    /// and subscription, so a stream whose creating instance restarted is watched again as
    /// soon as anyone uses it.
    /// `permit` (the creating key's stream slot) is held until the stream ends.
    pub fn watch(
        &self,
        id: &StreamId,
        idle: Duration,
        code: &'static str,
        permit: Option<StreamPermit>,
    ) {
        if self.stop.is_cancelled() || !lock(&self.watching).insert(id.clone()) {
            return;
        }
        let (log, stop) = (Arc::clone(&self.log), self.stop.clone());
        let (watching, id) = (Arc::clone(&self.watching), id.clone());
        self.tasks.spawn(async move {
            watch_idle(log, id.clone(), idle, code, stop).await;
            lock(&watching).remove(&id);
            drop(permit);
        });
    }
}

/// Watches `id` until it finishes, ends it `failed` with `code` after `idle` without a new
/// event, or `stop`. Progress is read from the log (any instance's writes count), timed on
/// this clock.
pub async fn watch_idle(
    log: Arc<dyn EventLog>,
    id: StreamId,
    idle: Duration,
    code: &'static str,
    stop: CancellationToken,
) {
    let tick = idle / CHECKS;
    let mut seen = log.head(&id).await.ok().map(|h| h.last_seq);
    let mut since = Instant::now();
    // The watch, and the key's stream slot it holds, ends when the stream does, not at the
    // next check (up to `idle / CHECKS` later: minutes with the default idle timeout).
    let ended = ended(&*log, &id);
    tokio::pin!(ended);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = &mut ended => return,
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
            let message = format!("nothing new was written for {} s", idle.as_secs());
            let failed = EventBody::failed(code, message, false);
            // Only if nothing was published since the check: a publish that just got its ids
            // must not be followed by the stream failing for silence.
            match log.append_at(&id, vec![failed], head.last_seq).await {
                Ok(_) => tracing::info!(stream_id = %id, code, "stream ended: idle"),
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

/// Resolves once `id` has finished or is gone. A store that cannot answer now is asked again
/// later: its outage is not the stream's end.
async fn ended(log: &dyn EventLog, id: &StreamId) {
    loop {
        match log.finished(id).await {
            Ok(()) | Err(StoreError::NotFound) => return,
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
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
        let code = "agent_idle_timeout";
        let watch = tokio::spawn(watch_idle(Arc::clone(&log), id.clone(), idle, code, stop));
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
        let code = "agent_idle_timeout";
        let watch = tokio::spawn(watch_idle(
            Arc::clone(&log),
            id.clone(),
            idle,
            code,
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(100)).await;
        stop.cancel();
        assert!(watch.await.is_ok());
        tokio::time::sleep(Duration::from_secs(1000)).await;
        assert_eq!(status(&log, &id).await, StreamStatus::Running);
    }
}
