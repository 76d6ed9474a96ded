//! Counting events at the one door they all pass: a store wrapper that counts what each
//! append put in the log, whoever wrote it (producers, agents' publishes, feeds, cancels).
//! Everything else is passed through untouched.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Metrics, Tally};
use crate::event::{EventBody, StreamId};
use crate::store::{Created, EventLog, LogHead, NewStream, Page, StoreError, StreamInfo};

/// An [`EventLog`] that counts appended events in `tokenrelay_events_total`. Terminal events
/// a store appends on its own (a lease that expired, a stream over its cap) do not pass
/// through here and are not counted.
pub struct MeteredLog {
    inner: Arc<dyn EventLog>,
    metrics: Metrics,
}

impl MeteredLog {
    pub fn new(inner: Arc<dyn EventLog>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl EventLog for MeteredLog {
    async fn create(&self, new: NewStream) -> Result<Created, StoreError> {
        self.inner.create(new).await
    }

    async fn find_idempotent(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<StreamId>, StoreError> {
        self.inner.find_idempotent(owner, key).await
    }

    async fn append(&self, id: &StreamId, events: Vec<EventBody>) -> Result<u64, StoreError> {
        let tally = Tally::of(&events);
        let appended = self.inner.append(id, events).await;
        if appended.is_ok() {
            self.metrics.events_appended(&tally);
        }
        appended
    }

    async fn append_at(
        &self,
        id: &StreamId,
        events: Vec<EventBody>,
        expected_last: u64,
    ) -> Result<u64, StoreError> {
        let tally = Tally::of(&events);
        let appended = self.inner.append_at(id, events, expected_last).await;
        if appended.is_ok() {
            self.metrics.events_appended(&tally);
        }
        appended
    }

    // The inner store's own `finish` (not the default, which would call our `append`), so a
    // store that finishes differently keeps doing so.
    async fn finish(&self, id: &StreamId, terminal: EventBody) -> Result<bool, StoreError> {
        let tally = Tally::of([&terminal]);
        let finished = self.inner.finish(id, terminal).await;
        if finished == Ok(true) {
            self.metrics.events_appended(&tally);
        }
        finished
    }

    async fn head(&self, id: &StreamId) -> Result<LogHead, StoreError> {
        self.inner.head(id).await
    }

    async fn info(&self, id: &StreamId) -> Result<StreamInfo, StoreError> {
        self.inner.info(id).await
    }

    async fn read(&self, id: &StreamId, after: u64, limit: usize) -> Result<Page, StoreError> {
        self.inner.read(id, after, limit).await
    }

    async fn wait(&self, id: &StreamId, after: u64) -> Result<bool, StoreError> {
        self.inner.wait(id, after).await
    }

    async fn finished(&self, id: &StreamId) -> Result<(), StoreError> {
        self.inner.finished(id).await
    }

    async fn touch(&self, id: &StreamId) {
        self.inner.touch(id).await;
    }

    async fn last_touched(&self, id: &StreamId) -> Option<u64> {
        self.inner.last_touched(id).await
    }

    async fn release(&self, id: &StreamId) {
        self.inner.release(id).await;
    }

    async fn ready(&self) -> bool {
        self.inner.ready().await
    }

    async fn sweep(&self) {
        self.inner.sweep().await;
    }

    fn start(&self, tasks: &TaskTracker, stop: CancellationToken) {
        self.inner.start(tasks, stop);
    }
}
