//! Live transcription feeds: one audio source sends numbered segments, each is transcribed
//! upstream in order and its words appended as they come, and any number of viewers follow
//! the transcript with resume. `segment` owns the order (a segment runs only after the one
//! before it, once, on any instance), `context` what each segment is told of the ones before;
//! this file creates and finishes feeds.

mod context;
mod segment;

pub use segment::{FeedError, SegmentOutcome};

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, json};

use crate::auth::StreamPermit;
use crate::event::{Completed, EventBody, StreamId, Text};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::relay::{IdleWatch, RetryPolicy, Timeouts, create_external};
use crate::store::{Created, EventLog, StoreError, StreamMeta};
use crate::telemetry::Metrics;

/// How feeds behave (`[transcription]` in the config).
#[derive(Clone, Debug)]
pub struct FeedSettings {
    pub window_events: usize,
    pub window_age: Duration,
    /// A feed with no new segment for this long ends `feed_idle_timeout`.
    pub idle_timeout: Duration,
    /// How long a segment that came early waits for the ones before it.
    pub segment_wait: Duration,
}

pub struct Feeds {
    log: Arc<dyn EventLog>,
    idle: Arc<IdleWatch>,
    timeouts: Timeouts,
    retry: RetryPolicy,
    /// Runs segments apart from their requests; `interrupt` ends them at shutdown.
    tasks: TaskTracker,
    interrupt: CancellationToken,
    turns: segment::Turns,
    pub settings: FeedSettings,
    metrics: Metrics,
}

impl Feeds {
    pub fn new(
        log: Arc<dyn EventLog>,
        idle: Arc<IdleWatch>,
        (timeouts, retry): (Timeouts, RetryPolicy),
        (tasks, interrupt): (TaskTracker, CancellationToken),
        settings: FeedSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            log,
            idle,
            timeouts,
            retry,
            tasks,
            interrupt,
            turns: segment::Turns::default(),
            settings,
            metrics,
        }
    }

    /// Starts (or continues) the idle watch of a feed on this instance.
    pub fn watch(&self, id: &StreamId) {
        self.idle
            .watch(id, self.settings.idle_timeout, "feed_idle_timeout", None);
    }

    /// Creates the feed (or finds the one `key` names) and appends `stream.started`.
    pub async fn create(
        &self,
        id: StreamId,
        meta: StreamMeta,
        key: Option<String>,
        permit: Option<StreamPermit>,
    ) -> Result<Created, StoreError> {
        let window = (self.settings.window_events, self.settings.window_age);
        let created =
            create_external(&*self.log, id.clone(), meta, key, window, Vec::new()).await?;
        if matches!(created, Created::New { .. }) {
            self.idle
                .watch(&id, self.settings.idle_timeout, "feed_idle_timeout", permit);
            tracing::info!(stream_id = %id, "live feed created");
        }
        Ok(created)
    }

    /// Ends the feed `completed` once the segment in progress (if any) is done. Idempotent.
    pub async fn finish(&self, id: &StreamId) -> Result<(), FeedError> {
        let _turn = self.turn(id).await?;
        let deadline = tokio::time::Instant::now() + self.settings.segment_wait;
        loop {
            let at = self.position(id).await?;
            if at.finished {
                return Ok(());
            }
            if at.in_progress {
                if !self.wait_for_change(id, at.last_seq, deadline).await? {
                    return Err(FeedError::InProgress);
                }
                continue;
            }
            // The whole transcript as far as it is kept, for readers of OpenAI's format (a
            // `transcript.text.done`), the same for every reader however it joined.
            let info = self.log.info(id).await?;
            let transcript = EventBody::TranscriptDone(Text {
                text: info.aggregate.transcript,
                extra: Map::from_iter([("segments".to_owned(), json!(at.next))]),
            });
            let done = EventBody::Completed(Completed {
                finish_reason: None,
                usage: at.usage,
                ..Completed::default()
            });
            match self
                .log
                .append_at(id, vec![transcript, done], at.last_seq)
                .await
            {
                Ok(_) | Err(StoreError::Finished) => return Ok(()),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
