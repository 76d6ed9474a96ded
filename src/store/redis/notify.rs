//! Live delivery: one pub/sub connection per instance hears every append (`P:n:*`) and wakes
//! the local waiters of that stream. Pub/sub can lose messages (reconnects), so waiters also
//! re-check Redis on a short poll: notifications are a fast path, never the only path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The last notification heard for a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heard {
    pub last: u64,
    pub finished: bool,
    /// Bumped on every message (and on reconnects), so a waiter always sees a change.
    pub tick: u64,
}

/// Local waiters by stream id (the raw id string from the channel name).
#[derive(Default)]
pub struct Hub {
    waiters: Mutex<HashMap<String, watch::Sender<Heard>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    pub fn watch(&self, id: &str) -> watch::Receiver<Heard> {
        lock(&self.waiters)
            .entry(id.to_owned())
            .or_insert_with(|| watch::Sender::new(Heard::default()))
            .subscribe()
    }

    pub fn heard(&self, id: &str, last: u64, finished: bool) {
        let mut waiters = lock(&self.waiters);
        if let Some(tx) = waiters.get(id) {
            if tx.receiver_count() == 0 {
                waiters.remove(id);
                return;
            }
            tx.send_modify(|h| {
                h.last = last;
                h.finished = finished;
                h.tick += 1;
            });
        }
    }

    /// Wakes everyone (after a reconnect, messages may have been missed) and forgets streams
    /// nobody waits on.
    fn wake_all(&self) {
        lock(&self.waiters).retain(|_, tx| {
            tx.send_modify(|h| h.tick += 1);
            tx.receiver_count() > 0
        });
    }
}

/// Parses `<last> <status>`.
fn parse(payload: &str) -> Option<(u64, bool)> {
    let (last, status) = payload.split_once(' ')?;
    Some((last.parse().ok()?, status != "running"))
}

/// Keeps a pattern subscription open until `stop`, reconnecting with backoff.
pub async fn listen(client: redis::Client, prefix: String, hub: Arc<Hub>, stop: CancellationToken) {
    let pattern = format!("{prefix}:n:*");
    let channel_prefix = format!("{prefix}:n:");
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = stop.cancelled() => return,
            connected = tokio::time::timeout(Duration::from_secs(2), connected) => connected,
        };
        match pubsub {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                hub.wake_all();
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        () = stop.cancelled() => return,
                        message = messages.next() => message,
                    };
                    let Some(message) = message else { break };
                    let channel = message.get_channel_name();
                    let Some(id) = channel.strip_prefix(&channel_prefix) else {
                        continue;
                    };
                    let id = id.trim_start_matches('{').trim_end_matches('}');
                    let payload: String = message.get_payload().unwrap_or_default();
                    if let Some((last, finished)) = parse(&payload) {
                        hub.heard(id, last, finished);
                    }
                }
                tracing::warn!("redis notifications disconnected; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "redis notifications unavailable"),
            Err(_) => tracing::warn!("redis notifications: connect timed out"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_the_head_and_whether_the_stream_ended() {
        assert_eq!(parse("57 running"), Some((57, false)));
        assert_eq!(parse("58 completed"), Some((58, true)));
        assert_eq!(parse("x running"), None);
    }

    #[tokio::test]
    async fn waiters_are_woken_and_forgotten_when_gone() {
        let hub = Hub::default();
        let mut rx = hub.watch("st_a");
        hub.heard("st_a", 3, false);
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow().last, 3);
        drop(rx);
        hub.heard("st_a", 4, false);
        assert!(lock(&hub.waiters).is_empty());
    }
}
