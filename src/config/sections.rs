//! The sections of the config file (`[limits]`, `[upstream]`, `[routing]`, `[redis]`,
//! `[agents]`, `[transcription]`): their keys, defaults, and the settings they become.

use std::time::Duration;

use serde::Deserialize;

use super::secs;
use crate::agent::AgentSettings;
use crate::feed::FeedSettings;
use crate::store::StoreLimits;

/// Retries before the first event (after it, a failure ends the stream).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Routing {
    /// Retries of the same upstream on connect errors, 429 and 5xx.
    pub max_retries: u32,
    /// First backoff in milliseconds, doubled per retry up to `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A `retry-after` longer than this skips to the next fallback instead of waiting.
    pub max_retry_after_secs: u64,
}

/// Transcription: uploads (`/v1/audio/transcriptions`) and live feeds.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Transcription {
    /// Largest upload (the whole multipart body), as OpenAI's API allows.
    pub max_upload_bytes: usize,
    /// How much faster than the audio plays `mock/default` transcribes (1 = real time).
    pub mock_speedup: f64,
    /// Live feeds: the largest audio segment (`POST /v1/streams/{id}/audio`).
    pub max_segment_bytes: usize,
    /// Live feeds: the sliding window of events kept for resume.
    pub window_events: usize,
    pub window_secs: u64,
    /// Live feeds: how much of the transcript `GET /v1/streams/{id}` shows (the last chars).
    pub recent_transcript_chars: usize,
    /// Live feeds: a feed with no new segment for this long ends `failed` (`feed_idle_timeout`).
    pub idle_timeout_secs: f64,
    /// Live feeds: how long a segment sent early waits for the ones before it.
    pub segment_wait_secs: f64,
}

impl Transcription {
    pub fn feed_settings(&self) -> FeedSettings {
        FeedSettings {
            window_events: self.window_events,
            window_age: Duration::from_secs(self.window_secs),
            idle_timeout: secs(self.idle_timeout_secs),
            segment_wait: secs(self.segment_wait_secs),
        }
    }
}

impl Default for Transcription {
    fn default() -> Self {
        Self {
            max_upload_bytes: 25 * 1024 * 1024,
            mock_speedup: 1.0,
            max_segment_bytes: 1024 * 1024,
            window_events: 10_000,
            window_secs: 600,
            recent_transcript_chars: 4000,
            idle_timeout_secs: 600.0,
            segment_wait_secs: 30.0,
        }
    }
}

/// Agent streams (`POST /v1/streams {"kind":"agent"}`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Agents {
    /// An agent stream with no new event for this long ends `failed` (`agent_idle_timeout`).
    pub idle_timeout_secs: f64,
    /// The sliding window of events kept for resume (the state is always kept whole).
    pub window_events: usize,
    pub window_secs: u64,
    /// Events accepted in one `POST /v1/streams/{id}/events`.
    pub max_batch_events: usize,
}

impl Default for Agents {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 600.0,
            window_events: 10_000,
            window_secs: 600,
            max_batch_events: 1000,
        }
    }
}

impl Agents {
    pub fn settings(&self) -> AgentSettings {
        AgentSettings {
            idle_timeout: secs(self.idle_timeout_secs),
            window_events: self.window_events,
            window_age: Duration::from_secs(self.window_secs),
            max_batch: self.max_batch_events,
        }
    }
}

impl Default for Routing {
    fn default() -> Self {
        Self {
            max_retries: 2,
            backoff_ms: 200,
            max_backoff_ms: 2000,
            max_retry_after_secs: 10,
        }
    }
}

/// Settings of the Redis store (used when `store` is a `redis://` URL).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Redis {
    /// Prefix of every key: deployments sharing one Redis use different prefixes.
    pub key_prefix: String,
    /// Seconds a producer's lease lasts without renewal. When an instance dies, its streams
    /// end `producer_lost` within about this long.
    pub lease_secs: f64,
}

impl Default for Redis {
    fn default() -> Self {
        Self {
            key_prefix: "tokenrelay".to_owned(),
            lease_secs: 15.0,
        }
    }
}

/// Per-stream caps, memory budget and retention.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_stream_bytes: usize,
    pub max_stream_events: usize,
    pub memory_budget_bytes: usize,
    pub log_retention_secs: u64,
    pub status_retention_secs: u64,
    /// Streams one API key may run at once on this instance (a `[[keys]]` entry may override).
    pub max_streams_per_key: usize,
    /// Requests one API key may make per minute on this instance (bursts up to this many).
    pub requests_per_minute_per_key: u32,
    /// Subscribers one stream may have at once on this instance.
    pub max_subscribers_per_stream: usize,
}

/// Timeouts and limits for every upstream call.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Upstream {
    pub connect_timeout_secs: f64,
    pub first_event_timeout_secs: f64,
    pub idle_timeout_secs: f64,
    pub max_line_bytes: usize,
    /// OpenAI-compatible base URL, overridden by `OPENAI_BASE_URL`.
    pub openai_base_url: String,
    /// Anthropic Messages API base URL, overridden by `ANTHROPIC_BASE_URL`.
    pub anthropic_base_url: String,
    /// Gemini API base URL, overridden by `GEMINI_BASE_URL`.
    pub gemini_base_url: String,
}

impl Default for Limits {
    fn default() -> Self {
        let store = StoreLimits::default();
        Self {
            max_stream_bytes: store.max_stream_bytes,
            max_stream_events: store.max_stream_events,
            memory_budget_bytes: store.memory_budget_bytes,
            log_retention_secs: store.log_retention.as_secs(),
            status_retention_secs: store.status_retention.as_secs(),
            max_streams_per_key: 100,
            requests_per_minute_per_key: 600,
            max_subscribers_per_stream: 10_000,
        }
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 10.0,
            first_event_timeout_secs: 60.0,
            idle_timeout_secs: 120.0,
            max_line_bytes: 16 * 1024 * 1024,
            openai_base_url: "https://api.openai.com/v1".to_owned(),
            anthropic_base_url: "https://api.anthropic.com/v1".to_owned(),
            gemini_base_url: "https://generativelanguage.googleapis.com/v1beta".to_owned(),
        }
    }
}

impl Limits {
    pub fn store_limits(&self) -> StoreLimits {
        StoreLimits {
            max_stream_bytes: self.max_stream_bytes,
            max_stream_events: self.max_stream_events,
            memory_budget_bytes: self.memory_budget_bytes,
            log_retention: Duration::from_secs(self.log_retention_secs),
            status_retention: Duration::from_secs(self.status_retention_secs),
        }
    }
}
