//! Producer leases: this instance renews the leases of the producers it runs, and every
//! instance ends streams whose lease expired (their producer's instance died) with
//! `stream.failed` / `producer_lost`, taking the fence so a zombie can never append again.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::scripts::{REAP, RENEW};
use super::{RedisStore, lock};
use crate::event::{EventBody, StreamId, unix_millis};

/// How many leases one renewal call extends.
const RENEW_BATCH: usize = 200;

/// Renews every lease held here, three times per lease period, in batches.
pub(super) async fn renew(store: RedisStore, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(store.inner.lease / 3) => {}
        }
        let held: Vec<_> = lock(&store.inner.leases)
            .iter()
            .map(|(id, h)| (id.clone(), h.fence.clone()))
            .collect();
        for batch in held.chunks(RENEW_BATCH) {
            renew_batch(&store, batch).await;
        }
    }
}

async fn renew_batch(store: &RedisStore, batch: &[(StreamId, String)]) {
    let lease_ms = store.inner.lease.as_millis() as u64;
    let running = store.running_key();
    let metas: Vec<String> = batch.iter().map(|(id, _)| store.meta_key(id)).collect();
    let renewed: Result<Vec<i64>, _> = store
        .call(|mut conn| async move {
            let mut call = RENEW.key(&running);
            for meta in &metas {
                call.key(meta);
            }
            call.arg(lease_ms);
            for (id, fence) in batch {
                call.arg(fence).arg(id.as_str());
            }
            call.invoke_async(&mut conn).await
        })
        .await;
    match renewed {
        Ok(results) => {
            for ((id, fence), ok) in batch.iter().zip(results) {
                if ok == 1 {
                    continue;
                }
                // Only the lease that was sent: the stream may have ended here since (its
                // lease is gone already) or been taken back under a new fence.
                let mut leases = lock(&store.inner.leases);
                if leases.get(id).is_some_and(|held| held.fence == *fence) {
                    leases.remove(id);
                    tracing::warn!(stream_id = %id, "lease lost: the stream ended or was taken over");
                }
            }
        }
        Err(e) => tracing::warn!(leases = batch.len(), error = %e, "lease renewal failed"),
    }
}

/// Ends streams whose producer stopped renewing.
pub(super) async fn reap(store: RedisStore, stop: CancellationToken) {
    let failed = EventBody::failed(
        "producer_lost",
        "the instance producing this stream stopped; retry the request",
        true,
    )
    .data_json();
    loop {
        // Often enough that a dead producer's streams end within about a second of its
        // lease expiring; jitter spreads the instances' scans apart.
        let every = (store.inner.lease / 4).min(Duration::from_secs(1));
        let jitter = Duration::from_millis(rand::random::<u64>() % 100);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every + jitter) => {}
        }
        let running = store.running_key();
        let now = unix_millis();
        let due: Result<Vec<String>, _> = store
            .call(|mut conn| async move {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&running)
                    .arg("-inf")
                    .arg(now)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(100)
                    .query_async(&mut conn)
                    .await
            })
            .await;
        let due = match due {
            Ok(due) => due,
            Err(e) => {
                tracing::debug!(error = %e, "lease scan failed");
                continue;
            }
        };
        for raw in due {
            let Ok(id) = raw.parse::<StreamId>() else {
                continue;
            };
            if reap_one(&store, &id, &failed).await {
                tracing::warn!(stream_id = %id, "producer lost: ended the stream");
                store.finished(&id).await;
            }
        }
    }
}

async fn reap_one(store: &RedisStore, id: &StreamId, failed: &str) -> bool {
    let limits = &store.inner.limits;
    let (meta, log, running, fence) = (
        store.meta_key(id),
        store.log_key(id),
        store.running_key(),
        store.fence_key(),
    );
    let channel = store.channel(id);
    let log_ttl = limits.log_retention.as_secs().max(1);
    let status_ttl = limits.status_retention.as_secs().max(1);
    let reaped: Result<i64, _> = store
        .call(|mut conn| async move {
            REAP.key(&meta)
                .key(&log)
                .key(&running)
                .key(&fence)
                .arg(id.as_str())
                .arg(&channel)
                .arg(failed)
                .arg(log_ttl)
                .arg(status_ttl)
                .invoke_async(&mut conn)
                .await
        })
        .await;
    matches!(reaped, Ok(1))
}
