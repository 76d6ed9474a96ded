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
            match log.finish(&id, failed).await {
                Ok(true) => tracing::info!(stream_id = %id, "agent stream ended: idle"),
                Ok(false) => {}
                Err(e) => tracing::warn!(stream_id = %id, error = %e, "could not end idle stream"),
            }
            return;
        }
    }
}
