//! The catalogue: every metric's name and help text, the histogram buckets, and the
//! recorder built with them. README's "Metrics" section lists the same, for operators.

use metrics::{KeyName, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

pub const ACTIVE_STREAMS: &str = "tokenrelay_active_streams";
pub const ACTIVE_SUBSCRIBERS: &str = "tokenrelay_active_subscribers";
pub const TIME_TO_FIRST_TOKEN: &str = "tokenrelay_time_to_first_token_seconds";
pub const EVENT_ADDED_LATENCY: &str = "tokenrelay_event_added_latency_seconds";
pub const EVENTS: &str = "tokenrelay_events_total";
pub const RESUMES: &str = "tokenrelay_resumes_total";
pub const UPSTREAM_ERRORS: &str = "tokenrelay_upstream_errors_total";
pub const TOKENS: &str = "tokenrelay_tokens_total";
pub const HTTP_REQUESTS: &str = "tokenrelay_http_requests_total";

/// Relay latency is sub-millisecond when healthy; the top buckets catch stalls.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// A model's first token takes from tens of milliseconds to a minute (long prompts, thinking).
const FIRST_TOKEN_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Distinct `model` label values kept per instance. A model name is whatever a client sent
/// (capped in length, but not in variety), so past this many the rest count as `other`.
pub(super) const MAX_MODEL_LABELS: usize = 200;

/// Native event types, counted through handles registered up front. A type missing here is
/// still counted (through a lookup per event), so the list is a fast path, not a contract.
pub(super) use crate::event::TYPE_NAMES as EVENT_TYPES;

/// A recorder with our buckets and help texts, not installed anywhere.
pub(super) fn recorder() -> PrometheusRecorder {
    let builder = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(TIME_TO_FIRST_TOKEN.to_owned()),
                FIRST_TOKEN_BUCKETS,
            )
        });
    let recorder = match builder {
        Ok(builder) => builder.build_recorder(),
        // Only empty bucket lists fail, and ours are constants; summaries would still serve.
        Err(e) => {
            tracing::warn!(error = %e, "histogram buckets refused; exporting summaries");
            PrometheusBuilder::new().build_recorder()
        }
    };
    describe(&recorder);
    recorder
}

const GAUGES: [(&str, &str); 2] = [
    (
        ACTIVE_STREAMS,
        "Producers running on this instance (chat and transcription generations).",
    ),
    (
        ACTIVE_SUBSCRIBERS,
        "Open SSE subscriber connections on this instance.",
    ),
];
const HISTOGRAMS: [(&str, &str); 2] = [
    (
        TIME_TO_FIRST_TOKEN,
        "From the start of a stream to the first content event from its upstream.",
    ),
    (
        EVENT_ADDED_LATENCY,
        "From an event's append on this instance to a live subscriber handing its bytes to the connection.",
    ),
];
const COUNTERS: [(&str, &str); 5] = [
    (
        EVENTS,
        "Events appended to stream logs through this instance, by native type.",
    ),
    (
        RESUMES,
        "Subscriptions that sent a resume position, by outcome.",
    ),
    (
        UPSTREAM_ERRORS,
        "Failed upstream attempts and failures after the first event, by provider and code.",
    ),
    (
        TOKENS,
        "Tokens reported by upstreams, by model, owning API key name and kind.",
    ),
    (
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status.",
    ),
];

/// The `# HELP` lines.
fn describe(recorder: &PrometheusRecorder) {
    let name = KeyName::from_const_str;
    for (metric, help) in GAUGES {
        recorder.describe_gauge(name(metric), None, help.into());
    }
    for (metric, help) in HISTOGRAMS {
        recorder.describe_histogram(name(metric), Some(Unit::Seconds), help.into());
    }
    for (metric, help) in COUNTERS {
        recorder.describe_counter(name(metric), None, help.into());
    }
}
