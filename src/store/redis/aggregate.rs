//! Aggregates in Redis: a checkpoint (`agg` at `aggseq`) in the stream's hash plus the events
//! after it. Sliding-window logs (agent feeds) drop old events, so the aggregate cannot be
//! folded from the log alone; `append_at` writes a checkpoint with every batch it appends, and
//! the end of a stream stores the final aggregate (`aggseq` empty).

use super::scripts::SET_IF_EXISTS;
use super::{Entries, FOLD_PAGE, RedisStore, parse_entry};
use crate::event::{Aggregate, StreamId};
use crate::store::StoreError;

/// An aggregate and the last seq it covers; `None` seq means final (the stream ended).
pub(super) struct Checkpoint {
    pub aggregate: Aggregate,
    pub seq: Option<u64>,
}

impl Checkpoint {
    /// From the `agg` and `aggseq` fields; a stored aggregate without a seq is final.
    pub fn parse(agg: Option<String>, seq: Option<String>) -> Option<Self> {
        let aggregate = serde_json::from_str(&agg?).ok()?;
        let seq = seq.and_then(|s| s.parse().ok());
        Some(Self { aggregate, seq })
    }
}

impl RedisStore {
    /// `aggregate` with the events after `after` up to `last` applied. Bounded by `last` (read
    /// with the checkpoint), so the result matches the head read with it even while
    /// appends go on: a late joiner tails from that head without seeing anything twice.
    pub(super) async fn fold_from(
        &self,
        id: &StreamId,
        mut aggregate: Aggregate,
        mut after: u64,
        last: u64,
    ) -> Result<Aggregate, StoreError> {
        let log = self.log_key(id);
        while after < last {
            let (start, end) = (format!("{}-0", after + 1), format!("{last}-0"));
            let log = log.clone();
            let entries: Entries = self
                .call(|mut conn| async move {
                    redis::cmd("XRANGE")
                        .arg(&log)
                        .arg(&start)
                        .arg(&end)
                        .arg("COUNT")
                        .arg(FOLD_PAGE)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            for event in entries.iter().filter_map(|(id, f)| parse_entry(id, f)) {
                after = event.seq;
                aggregate.apply(&event.body);
            }
            if entries.len() < FOLD_PAGE {
                break;
            }
        }
        Ok(aggregate)
    }

    /// The aggregate at `last`: the checkpoint (if any) plus the events after it.
    pub(super) async fn current_aggregate(
        &self,
        id: &StreamId,
        checkpoint: Option<Checkpoint>,
        log_available: bool,
        last: u64,
    ) -> Result<Aggregate, StoreError> {
        match checkpoint {
            Some(Checkpoint {
                aggregate,
                seq: None,
            }) => Ok(aggregate),
            Some(Checkpoint {
                aggregate,
                seq: Some(seq),
            }) if log_available => self.fold_from(id, aggregate, seq, last).await,
            Some(Checkpoint { aggregate, .. }) => Ok(aggregate),
            None if log_available => self.fold_from(id, Aggregate::default(), 0, last).await,
            None => Ok(Aggregate::default()),
        }
    }

    /// After a stream ends: keep its final aggregate for the status retention.
    pub(super) async fn store_aggregate(&self, id: &StreamId) {
        let stored = async {
            // Finished: `last` no longer moves.
            let (fields, log_exists) = self.fields(id, &["agg", "aggseq", "last"]).await?;
            let mut fields = fields.into_iter();
            let checkpoint = Checkpoint::parse(fields.next().flatten(), fields.next().flatten());
            let last = fields
                .next()
                .flatten()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let aggregate = self
                .current_aggregate(id, checkpoint, log_exists, last)
                .await?;
            let json = serde_json::to_string(&aggregate).unwrap_or_default();
            let meta = self.meta_key(id);
            self.call(|mut conn| async move {
                SET_IF_EXISTS
                    .key(&meta)
                    .arg("agg")
                    .arg(&json)
                    .arg("aggseq")
                    .arg("")
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await
        };
        if let Err(e) = stored.await {
            tracing::warn!(stream_id = %id, error = %e, "could not store the aggregate");
        }
    }
}
