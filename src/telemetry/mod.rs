//! Prometheus metrics (SPEC §11): the handles the hot paths record through, their labels,
//! and the text `GET /metrics` answers (`names` holds the catalogue of names and buckets).
//! Log lines and spans are `tracing`'s business (set up in `cli`), not this module's.
//!
//! Each [`crate::app::AppState`] owns its own registry instead of installing the process-wide
//! `metrics` recorder. A global recorder can be set once per process, and
//! `metrics::with_local_recorder` does not reach spawned tasks (producers, subscriptions),
//! so with either one several instances in one process (the integration tests start many)
//! would count into one another. Handles registered on our own recorder and passed
//! explicitly have no such problem, and they are cheaper too: the per-event handles are
//! looked up once, not on every event. The cost: a `metrics::counter!` macro elsewhere in
//! the process records nowhere, so every metric is recorded through [`Metrics`].

mod http;
mod log;
mod names;

pub use http::{observe, record_stream_id};
pub use log::MeteredLog;
pub use names::{
    ACTIVE_STREAMS, ACTIVE_SUBSCRIBERS, EVENT_ADDED_LATENCY, EVENTS, HTTP_REQUESTS, RESUMES,
    TIME_TO_FIRST_TOKEN, TOKENS, UPSTREAM_ERRORS,
};

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

use crate::event::{EventBody, Usage};
use crate::sse::ResumePlan;
use names::{EVENT_TYPES, MAX_MODEL_LABELS};

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// One instance's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Registry>);

struct Registry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    active_streams: Gauge,
    active_subscribers: Gauge,
    added_latency: Histogram,
    events: Vec<Counter>,
    models: Mutex<HashSet<String>>,
}

/// Counts an open thing in a gauge for as long as it is held.
pub struct Active(Gauge);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Events per type in one append, tallied before the store takes them and counted once it
/// accepted them.
pub struct Tally {
    known: [u32; EVENT_TYPES.len()],
    /// Types not in [`EVENT_TYPES`]; empty (and unallocated) in practice.
    other: Vec<&'static str>,
}

impl Tally {
    pub fn of<'a>(events: impl IntoIterator<Item = &'a EventBody>) -> Self {
        let mut tally = Self {
            known: [0; EVENT_TYPES.len()],
            other: Vec::new(),
        };
        for event in events {
            let name = event.type_name();
            match EVENT_TYPES.iter().position(|t| *t == name) {
                Some(i) => tally.known[i] += 1,
                None => tally.other.push(name),
            }
        }
        tally
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = names::recorder();
        let plain = |name: &'static str| Key::from_static_name(name);
        let events = EVENT_TYPES
            .iter()
            .map(|t| recorder.register_counter(&typed(t), &METADATA))
            .collect();
        Self(Arc::new(Registry {
            handle: recorder.handle(),
            active_streams: recorder.register_gauge(&plain(ACTIVE_STREAMS), &METADATA),
            active_subscribers: recorder.register_gauge(&plain(ACTIVE_SUBSCRIBERS), &METADATA),
            added_latency: recorder.register_histogram(&plain(EVENT_ADDED_LATENCY), &METADATA),
            events,
            models: Mutex::new(HashSet::new()),
            recorder,
        }))
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        self.0.handle.render()
    }

    /// Folds recorded histogram samples into their buckets. Rendering does it too, but
    /// without a scraper the samples would pile up, so a tracked task calls this regularly.
    pub fn upkeep(&self) {
        self.0.handle.run_upkeep();
    }

    /// A running producer on this instance, until the guard drops.
    pub fn stream_started(&self) -> Active {
        self.0.active_streams.increment(1.0);
        Active(self.0.active_streams.clone())
    }

    /// An open SSE subscriber connection, until the guard drops.
    pub fn subscriber_opened(&self) -> Active {
        self.0.active_subscribers.increment(1.0);
        Active(self.0.active_subscribers.clone())
    }

    pub fn first_token(&self, model: &str, provider: &'static str, elapsed: Duration) {
        let key = Key::from_parts(
            TIME_TO_FIRST_TOKEN,
            vec![
                Label::new("model", self.model_label(model)),
                Label::new("provider", provider),
            ],
        );
        let histogram = self.0.recorder.register_histogram(&key, &METADATA);
        histogram.record(elapsed.as_secs_f64());
    }

    /// A subscriber handed the bytes of events received at `received` to its connection.
    /// Drains `received` (the caller reuses the buffer).
    pub fn delivered(&self, received: &mut Vec<Instant>) {
        if received.is_empty() {
            return;
        }
        let now = Instant::now();
        for at in received.drain(..) {
            self.0
                .added_latency
                .record(now.saturating_duration_since(at).as_secs_f64());
        }
    }

    pub fn events_appended(&self, tally: &Tally) {
        for (counter, n) in self.0.events.iter().zip(tally.known) {
            if n > 0 {
                counter.increment(u64::from(n));
            }
        }
        for name in &tally.other {
            self.0
                .recorder
                .register_counter(&typed(name), &METADATA)
                .increment(1);
        }
    }

    /// A subscriber that sent a position (`Last-Event-ID`) was answered according to `plan`;
    /// `refused` when a reset had to be a 410 (strict, or a format without `reset`).
    pub fn resume(&self, plan: &ResumePlan, refused: bool) {
        let outcome = match plan {
            ResumePlan::From(_) => "resumed",
            ResumePlan::Finished => "finished",
            ResumePlan::Reset { .. } if refused => "gone",
            ResumePlan::Reset { .. } => "reset",
        };
        self.resume_outcome(outcome);
    }

    /// A subscriber sent a position for a stream that is unknown or expired (404).
    pub fn resume_not_found(&self) {
        self.resume_outcome("not_found");
    }

    fn resume_outcome(&self, outcome: &'static str) {
        let key = Key::from_parts(RESUMES, vec![Label::new("outcome", outcome)]);
        self.0
            .recorder
            .register_counter(&key, &METADATA)
            .increment(1);
    }

    /// One failed upstream attempt (every retry and fallback counts) or a failure after the
    /// stream started.
    pub fn upstream_error(&self, provider: &'static str, code: &'static str) {
        let labels = vec![Label::new("provider", provider), Label::new("code", code)];
        let key = Key::from_parts(UPSTREAM_ERRORS, labels);
        self.0
            .recorder
            .register_counter(&key, &METADATA)
            .increment(1);
    }

    /// Tokens an upstream reported for a stream. `key` is the owning API key's name, never
    /// the key itself.
    pub fn tokens(&self, model: &str, key: &str, usage: &Usage) {
        let model = self.model_label(model);
        for (kind, n) in [
            ("prompt", usage.input_tokens),
            ("completion", usage.output_tokens),
        ] {
            let labels = vec![
                Label::new("model", model.clone()),
                Label::new("key", key.to_owned()),
                Label::new("kind", kind),
            ];
            let key = Key::from_parts(TOKENS, labels);
            self.0
                .recorder
                .register_counter(&key, &METADATA)
                .increment(n);
        }
    }

    pub fn http_request(&self, method: &'static str, route: &str, status: u16) {
        let labels = vec![
            Label::new("method", method),
            Label::new("route", route.to_owned()),
            Label::new("status", status.to_string()),
        ];
        let key = Key::from_parts(HTTP_REQUESTS, labels);
        self.0
            .recorder
            .register_counter(&key, &METADATA)
            .increment(1);
    }

    fn model_label(&self, model: &str) -> String {
        let mut seen = self.0.models.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(model) {
            return model.to_owned();
        }
        if seen.len() < MAX_MODEL_LABELS {
            seen.insert(model.to_owned());
            return model.to_owned();
        }
        "other".to_owned()
    }
}

/// Whether an upstream event is the model saying something (what time to first token waits
/// for), as opposed to bookkeeping such as usage.
pub fn carries_content(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::MessageDelta(_)
            | EventBody::RefusalDelta(_)
            | EventBody::ReasoningDelta(_)
            | EventBody::ToolCallDelta(_)
            | EventBody::TranscriptDelta(_)
            | EventBody::TranscriptDone(_)
    )
}

fn typed(name: &'static str) -> Key {
    Key::from_parts(EVENTS, vec![Label::new("type", name)])
}

#[cfg(test)]
mod tests;
