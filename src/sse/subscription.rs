//! One subscriber's SSE body: an optional `reset`, the replay, the live tail, keepalives,
//! and the end (after the terminal event, or at shutdown so the client resumes elsewhere).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;

use super::frame::{FrameWriter, KEEPALIVE};
use super::render::Renderer;
use super::resume::{Reset, ResetReason};
use crate::event::{Epoch, EventId, StreamId, StreamStatus};
use crate::relay::SubscriberGuard;
use crate::store::{EventLog, LogItem, StoreError, read_from};
use crate::telemetry::Metrics;

/// Frames gathered into one write while more events are ready (replay, bursts).
const MAX_WRITE_BYTES: usize = 64 * 1024;

pub struct Subscription {
    pub log: Arc<dyn EventLog>,
    pub id: StreamId,
    pub epoch: Epoch,
    /// Replay starts after this seq.
    pub after: u64,
    pub renderer: Renderer,
    /// Sent first when the client's position could not be used.
    pub reset: Option<Reset>,
    pub keepalive: Duration,
    pub retry_ms: Option<u64>,
    /// Ends the body without a terminal event; the client resumes by id.
    pub shutdown: CancellationToken,
    pub guard: SubscriberGuard,
    /// The subscriber count to report in `presence` events (`?presence=true`).
    pub presence: Option<watch::Receiver<usize>>,
    pub metrics: Metrics,
}

/// Feeds the events up to `after` through the renderer, discarding the output.
async fn catch_up(
    log: &Arc<dyn EventLog>,
    id: &StreamId,
    epoch: &Epoch,
    after: u64,
    renderer: &mut Renderer,
) -> Result<(), StoreError> {
    let mut sink = FrameWriter::new(None);
    let mut at = 0;
    while at < after {
        let page = log.read(id, at, (after - at).min(1024) as usize).await?;
        if page.epoch != *epoch {
            return Err(StoreError::Replaced);
        }
        let Some(last) = page.events.last().map(|e| e.seq) else {
            break;
        };
        for event in page.events.iter().take_while(|e| e.seq <= after) {
            renderer.event(epoch, event, &mut sink);
        }
        sink.take();
        at = last;
    }
    Ok(())
}

/// The next subscriber count; `None` once the count can no longer change. Never resolves
/// without presence.
async fn changed(presence: &mut Option<watch::Receiver<usize>>) -> Option<usize> {
    match presence {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(*rx.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

impl Subscription {
    pub fn into_response(self) -> Response {
        let mut response = Response::new(Body::from_stream(self.into_body()));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-transform"),
        );
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }

    fn into_body(self) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        let Subscription {
            log,
            id,
            epoch,
            after,
            mut renderer,
            reset,
            keepalive,
            retry_ms,
            shutdown,
            guard,
            mut presence,
            metrics,
        } = self;
        async_stream::stream! {
            let _guard = guard;
            let _open = metrics.subscriber_opened();
            // Only events appended after this moment are live; older ones are replay, whose
            // wait says nothing about the relay's latency.
            let opened = std::time::Instant::now();
            // Receive instants of the events in `out`, reused from write to write.
            let mut pending = Vec::new();
            // Another instance's producer must know the stream is watched (grace window); the
            // relay's presence task repeats this while the subscriber stays.
            log.touch(&id).await;
            let mut out = FrameWriter::new(retry_ms);
            if renderer.needs_history() && after > 0 {
                // Rebuild the renderer's state (open blocks, messages) from what the client
                // already received, so the continuation opens nothing twice.
                if catch_up(&log, &id, &epoch, after, &mut renderer).await.is_err() {
                    return;
                }
            }
            if let Some(reset) = reset {
                renderer.reset(&EventId::new(&epoch, after).to_string(), &reset, &mut out);
                yield Ok(out.take());
            }
            if let Some(count) = presence.as_mut().map(|p| *p.borrow_and_update()) {
                renderer.presence(count, &mut out);
                if !out.is_empty() {
                    yield Ok(out.take());
                }
            }
            let events = read_from(Arc::clone(&log), id.clone(), epoch.clone(), after);
            futures::pin_mut!(events);
            let mut ticker = interval_at(Instant::now() + keepalive, keepalive);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let item = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return,
                    item = events.next() => item,
                    changed = changed(&mut presence) => {
                        match changed {
                            Some(count) => renderer.presence(count, &mut out),
                            None => presence = None,
                        }
                        if !out.is_empty() {
                            yield Ok(out.take());
                            ticker.reset();
                        }
                        continue;
                    }
                    _ = ticker.tick() => {
                        yield Ok(Bytes::from_static(KEEPALIVE));
                        continue;
                    }
                };
                let Some(item) = item else { return };
                let mut next = Some(item);
                let mut stop = false;
                while let Some(item) = next.take() {
                    match item {
                        Ok(LogItem::Event(event)) => {
                            let before = out.len();
                            renderer.event(&epoch, &event, &mut out);
                            // An event rendered as nothing (an empty delta) is never written.
                            let written = out.len() > before;
                            if let Some(at) = event.received.filter(|at| written && *at >= opened) {
                                pending.push(at);
                            }
                        }
                        Ok(LogItem::Skipped { first_seq }) => {
                            // A sliding window moved past this reader mid-stream.
                            if !renderer.carries_reset() {
                                stop = true;
                                break;
                            }
                            let reset = Reset {
                                reason: ResetReason::BeforeWindow,
                                first: EventId::new(&epoch, first_seq).to_string(),
                                last: EventId::new(&epoch, first_seq).to_string(),
                                status: StreamStatus::Running,
                            };
                            let at = EventId::new(&epoch, first_seq - 1).to_string();
                            renderer.reset(&at, &reset, &mut out);
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "subscription ended by the store");
                            stop = true;
                            break;
                        }
                    }
                    if out.len() >= MAX_WRITE_BYTES {
                        break;
                    }
                    match events.next().now_or_never() {
                        Some(Some(item)) => next = Some(item),
                        Some(None) => stop = true,
                        None => {}
                    }
                }
                if !out.is_empty() {
                    metrics.delivered(&mut pending);
                    yield Ok(out.take());
                    ticker.reset();
                }
                if stop {
                    return;
                }
            }
        }
    }
}
