//! One audio segment of a live feed, exactly once and in order. A segment starts only when
//! every earlier one has its closing marker in the log and none is in progress; its events
//! are compare-and-appended one after the other, so a second instance that took the same
//! segment loses at its first append and stops. A segment that came early waits for the ones
//! before it (up to `segment_wait`); one that was already transcribed is acknowledged again
//! and appends nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::StreamExt;
use serde_json::{Map, json};
use tokio::sync::OwnedMutexGuard;
use tokio::time::{Instant, timeout, timeout_at};

use super::Feeds;
use crate::event::{Custom, Epoch, EventBody, EventId, SEGMENT_MARKER, StreamId, Text, Usage};
use crate::providers::{
    Job, ProviderError, ProviderErrorKind, ProviderEvent, Route, TranscriptionRequest,
};
use crate::relay::{Connected, connect};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("stream is not a live transcription feed")]
    NotFeed,
    #[error("the feed already finished")]
    Finished,
    #[error("segment {got} came before segment {expected}, which has not arrived")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("this segment is being transcribed by another request")]
    InProgress,
    /// The upstream failed on this segment: the feed has ended `failed` with its code.
    #[error(transparent)]
    Upstream(ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug)]
pub enum SegmentOutcome {
    Transcribed {
        text: String,
        last_event_id: String,
    },
    /// Already transcribed (a retry): nothing was appended.
    Duplicate {
        next: u64,
    },
}

/// Where a feed stands.
pub(super) struct Position {
    pub epoch: Epoch,
    pub last_seq: u64,
    pub finished: bool,
    /// The number of the next segment to transcribe.
    pub next: u64,
    /// A segment has events in the log but not yet its closing marker.
    pub in_progress: bool,
    pub usage: Option<Usage>,
    /// The end of the transcript so far (what the aggregate keeps).
    pub transcript: String,
}

/// The `custom` event that claims a segment before its upstream call.
pub const SEGMENT_STARTED: &str = "transcription.segment.started";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Per-feed turns on this instance: one segment (or finish) at a time, the others queue.
#[derive(Default)]
pub(super) struct Turns(Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<()>>>>);

fn sum(a: Option<Usage>, b: Option<Usage>) -> Option<Usage> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Usage {
            input_tokens: a.input_tokens + b.input_tokens,
            output_tokens: a.output_tokens + b.output_tokens,
            total_tokens: a.total_tokens + b.total_tokens,
        }),
        (a, b) => a.or(b),
    }
}

impl Feeds {
    /// This instance's turn on the feed, waiting up to `segment_wait` for it.
    pub(super) async fn turn(&self, id: &StreamId) -> Result<OwnedMutexGuard<()>, FeedError> {
        let turn = {
            let mut turns = lock(&self.turns.0);
            // Forget feeds nobody is using or waiting for.
            turns.retain(|_, t| Arc::strong_count(t) > 1);
            Arc::clone(turns.entry(id.clone()).or_default())
        };
        timeout(self.settings.segment_wait, turn.lock_owned())
            .await
            .map_err(|_| FeedError::InProgress)
    }

    pub(super) async fn position(&self, id: &StreamId) -> Result<Position, FeedError> {
        let info = self.log.info(id).await?;
        if info.head.meta.feed.is_none() {
            return Err(FeedError::NotFeed);
        }
        let last_seq = info.head.last_seq;
        // The newest event is always retained: it says whether a segment is open.
        let last = self.log.read(id, last_seq.saturating_sub(1), 1).await?;
        let closed = last.events.first().is_some_and(|e| match &e.body {
            EventBody::Started(_) => true,
            // A claimed segment (`transcription.segment.started`) is open until its marker.
            EventBody::Custom(c) => c.name == SEGMENT_MARKER,
            _ => false,
        });
        Ok(Position {
            epoch: info.head.epoch,
            last_seq,
            finished: info.head.status.is_finished(),
            next: info.aggregate.segments,
            in_progress: !closed,
            usage: info.aggregate.usage,
            transcript: info.aggregate.transcript,
        })
    }

    /// Waits until the log moves past `after`; false once `deadline` has passed.
    pub(super) async fn wait_for_change(
        &self,
        id: &StreamId,
        after: u64,
        deadline: Instant,
    ) -> Result<bool, FeedError> {
        match timeout_at(deadline, self.log.wait(id, after)).await {
            Ok(waited) => waited.map(|_| true).map_err(FeedError::from),
            Err(_) => Ok(false),
        }
    }

    /// Transcribes segment `n` of feed `id` and appends its words as they come.
    pub async fn segment(
        self: &Arc<Self>,
        id: &StreamId,
        n: u64,
        route: &Route,
        request: TranscriptionRequest,
    ) -> Result<SegmentOutcome, FeedError> {
        let deadline = Instant::now() + self.settings.segment_wait;
        let (at, turn) = loop {
            // The turn is held only to start: a segment waiting for an earlier one must let
            // that one run.
            let turn = self.turn(id).await?;
            let at = self.position(id).await?;
            if at.finished {
                return Err(FeedError::Finished);
            }
            if n < at.next {
                return Ok(SegmentOutcome::Duplicate { next: at.next });
            }
            if n == at.next && !at.in_progress {
                break (at, turn);
            }
            drop(turn);
            if !self.wait_for_change(id, at.last_seq, deadline).await? {
                return Err(if n > at.next {
                    FeedError::OutOfOrder {
                        expected: at.next,
                        got: n,
                    }
                } else {
                    FeedError::InProgress
                });
            }
        };
        // Claimed in the log before any upstream call: a second request for it, on any
        // instance, finds it open and neither calls the upstream nor touches the feed.
        let claim = EventBody::Custom(Custom {
            name: SEGMENT_STARTED.into(),
            value: json!({ "segment": n }),
            ..Custom::default()
        });
        let expected = match self.log.append_at(id, vec![claim], at.last_seq).await {
            Ok(last) => last,
            Err(StoreError::Conflict) => return Err(FeedError::InProgress),
            Err(StoreError::Finished) => return Err(FeedError::Finished),
            Err(e) => return Err(e.into()),
        };
        self.watch(id);
        // The rest runs apart from the request: a client that hangs up mid-segment must not
        // leave the segment open.
        let (feeds, id, route) = (Arc::clone(self), id.clone(), route.clone());
        let work = self.tasks.spawn(async move {
            let _turn = turn;
            let interrupt = feeds.interrupt.clone();
            let writer = Writer { expected };
            tokio::select! {
                done = feeds.transcribe(&id, n, &route, request, &at, writer) => done,
                () = interrupt.cancelled() => {
                    let e = ProviderError::new(ProviderErrorKind::Connect, "interrupted");
                    let failed = EventBody::failed(
                        "interrupted",
                        "the instance shut down during a segment; the feed cannot go on",
                        true,
                    );
                    let _ = feeds.log.finish(&id, failed).await;
                    Err(FeedError::Upstream(e))
                }
            }
        });
        work.await.unwrap_or_else(|e| {
            Err(FeedError::Store(StoreError::Unavailable(format!(
                "segment task failed: {e}"
            ))))
        })
    }

    /// Calls the upstream for a claimed segment and appends what it says, then the marker
    /// that closes the segment. Any failure ends the feed, so no segment stays open.
    async fn transcribe(
        &self,
        id: &StreamId,
        n: u64,
        route: &Route,
        mut request: TranscriptionRequest,
        at: &Position,
        mut writer: Writer,
    ) -> Result<SegmentOutcome, FeedError> {
        super::context::carry_over(&mut request, &at.transcript);
        let duration_ms = request.duration.map(|d| d.as_millis() as u64);
        let job = Job::Transcription(request);
        let Connected {
            mut stream,
            first,
            provider,
        } = match connect(id, route, &job, &self.timeouts, &self.retry, &self.metrics).await {
            Ok(connected) => connected,
            Err(e) => return Err(self.fail(id, writer.expected, e).await),
        };
        let (mut text, mut usage) = (String::new(), None);
        let mut item: Result<ProviderEvent, ProviderError> = Ok(first);
        loop {
            let mut events = Vec::new();
            match item {
                Ok(ProviderEvent::Event(EventBody::TranscriptDelta(mut delta))) => {
                    delta.extra.insert("segment".into(), json!(n));
                    text.push_str(&delta.text);
                    events.push(EventBody::TranscriptDelta(delta));
                }
                Ok(ProviderEvent::Event(EventBody::Usage(u))) => usage = Some(u),
                // A model that cannot stream says it all in its `done`: that is the segment's
                // text. Otherwise the `done` repeats the deltas and the marker closes instead.
                Ok(ProviderEvent::Event(EventBody::TranscriptDone(done))) => {
                    if text.is_empty() && !done.text.is_empty() {
                        text.clone_from(&done.text);
                        let delta = Text {
                            text: done.text,
                            extra: Map::from_iter([("segment".to_owned(), json!(n))]),
                        };
                        events.push(EventBody::TranscriptDelta(delta));
                    }
                }
                Ok(ProviderEvent::Heartbeat) => {}
                Ok(ProviderEvent::Event(other)) => events.push(other),
                Ok(ProviderEvent::Done { .. }) => {
                    if let Some(total) = sum(at.usage, usage).filter(|_| usage.is_some()) {
                        events.push(EventBody::Usage(total));
                    }
                    events.push(EventBody::Custom(Custom {
                        name: SEGMENT_MARKER.into(),
                        value: json!({"segment": n, "text": text, "duration_ms": duration_ms, "usage": usage}),
                        ..Custom::default()
                    }));
                    let last = self.append_or_fail(id, &mut writer, events).await?;
                    let last_event_id = EventId::new(&at.epoch, last).to_string();
                    return Ok(SegmentOutcome::Transcribed {
                        text,
                        last_event_id,
                    });
                }
                Err(e) => {
                    self.metrics.upstream_error(provider, e.code());
                    return Err(self.fail(id, writer.expected, e).await);
                }
            }
            if !events.is_empty() {
                self.append_or_fail(id, &mut writer, events).await?;
            }
            item = match timeout(self.timeouts.idle, stream.next()).await {
                Ok(Some(item)) => item,
                Ok(None) => Err(ProviderError::new(
                    ProviderErrorKind::Truncated,
                    "upstream stream ended without finishing",
                )),
                Err(_) => Err(ProviderError::new(
                    ProviderErrorKind::IdleTimeout,
                    format!(
                        "no upstream event for {} s",
                        self.timeouts.idle.as_secs_f32()
                    ),
                )),
            };
        }
    }

    /// Appends for the segment; if that fails (the store went away), the feed is ended
    /// `failed` where possible rather than left with a segment open forever.
    async fn append_or_fail(
        &self,
        id: &StreamId,
        writer: &mut Writer,
        events: Vec<EventBody>,
    ) -> Result<u64, FeedError> {
        match writer.append(self, id, events).await {
            Ok(last) => Ok(last),
            Err(e @ FeedError::Store(StoreError::Unavailable(_))) => {
                let failed = EventBody::failed(
                    "store_unavailable",
                    "the event store failed during a segment",
                    true,
                );
                let _ = self.log.append_at(id, vec![failed], writer.expected).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Ends the feed `failed` with the upstream's error; the text before it stays. Only at
    /// the segment's own position: if anything else was appended since, the feed is not this
    /// segment's to end.
    async fn fail(&self, id: &StreamId, expected: u64, e: ProviderError) -> FeedError {
        tracing::info!(stream_id = %id, code = e.code(), error = %e, "feed segment failed upstream");
        let failed = EventBody::failed(e.code(), e.message.clone(), e.retryable());
        if let Err(err) = self.log.append_at(id, vec![failed], expected).await {
            tracing::warn!(stream_id = %id, error = %err, "could not end the feed after a failed segment");
        }
        FeedError::Upstream(e)
    }
}

/// Appends a claimed segment's events one batch after another, each only if nothing else
/// was appended since the one before (a cancel, an idle timeout).
struct Writer {
    expected: u64,
}

impl Writer {
    async fn append(
        &mut self,
        feeds: &Feeds,
        id: &StreamId,
        events: Vec<EventBody>,
    ) -> Result<u64, FeedError> {
        match feeds.log.append_at(id, events, self.expected).await {
            Ok(last) => {
                self.expected = last;
                Ok(last)
            }
            Err(StoreError::Finished) => Err(FeedError::Finished),
            Err(StoreError::Conflict) => {
                let finished = feeds.log.head(id).await.map(|h| h.status.is_finished());
                Err(if finished.unwrap_or(false) {
                    FeedError::Finished
                } else {
                    FeedError::Store(StoreError::Conflict)
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}
