//! The event-log seam: one numbered, append-only log per stream, shared by every subscriber.
//!
//! Callers see only [`EventLog`]; the memory store lives here, the Redis store comes with
//! several instances. The contract is in [`EventLog`]'s docs and in `tests/api/store_contract.rs`.

mod memory;
mod redis;
mod subscribe;

pub use memory::MemoryStore;
pub use redis::{RedisConfig, RedisStore};
pub use subscribe::{LogItem, read_from};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::event::{
    Aggregate, Epoch, Event, EventBody, Format, StreamId, StreamKind, StreamStatus,
};

/// Immutable facts about a stream, fixed when it is created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub kind: StreamKind,
    /// The model as the client named it.
    pub model: String,
    pub provider: String,
    /// Who created the stream (an API key's id; `anonymous` without keys).
    pub owner: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The format a subscriber gets when it does not ask for one.
    pub format: Format,
    /// Whether OpenAI-format readers get the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// How many choices the request asked for (`n`); each gets its own finish.
    #[serde(default = "one")]
    pub choices: u32,
    /// SHA-256 (hex) of the stream's read and write capabilities; the tokens are never stored.
    pub read_token_hash: String,
    pub write_token_hash: String,
    /// SHA-256 (hex) of the creating request, so a reused idempotency key with a different
    /// request is recognised.
    pub request_hash: String,
    /// Live transcription feeds: what each segment's upstream call carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<FeedMeta>,
}

/// A live feed's settings, fixed when it is created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedMeta {
    /// Form fields for every segment's transcription call (`language`, `prompt`, ...).
    #[serde(default)]
    pub fields: Vec<(String, String)>,
}

fn one() -> u32 {
    1
}

#[cfg(test)]
impl StreamMeta {
    /// A stream of `kind` with placeholder names and no tokens, for unit tests.
    pub fn test(kind: StreamKind) -> Self {
        Self {
            kind,
            model: "m".into(),
            provider: "p".into(),
            owner: "o".into(),
            created_at: 0,
            format: Format::Native,
            include_usage: false,
            choices: 1,
            read_token_hash: String::new(),
            write_token_hash: String::new(),
            request_hash: String::new(),
            feed: None,
        }
    }
}

/// How much of a running stream's log is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Every event, up to the per-stream caps; going over ends the stream `stream_too_large`.
    Full,
    /// A sliding window (live feeds): older events are dropped, resume before it gets `reset`.
    Window {
        max_events: usize,
        max_age: Duration,
    },
}

/// Limits and retention shared by every store.
#[derive(Clone, Debug)]
pub struct StoreLimits {
    pub max_stream_bytes: usize,
    pub max_stream_events: usize,
    /// Memory store only: the bytes all logs together may hold before new streams get 503.
    pub memory_budget_bytes: usize,
    /// How long a finished stream's log stays readable.
    pub log_retention: Duration,
    /// How long a finished stream's status and aggregate stay readable.
    pub status_retention: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_stream_bytes: 16 * 1024 * 1024,
            max_stream_events: 100_000,
            memory_budget_bytes: 512 * 1024 * 1024,
            log_retention: Duration::from_secs(15 * 60),
            status_retention: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What [`EventLog::create`] needs to start a log.
#[derive(Clone, Debug)]
pub struct NewStream {
    pub id: StreamId,
    pub meta: StreamMeta,
    pub retention: Retention,
    /// Scoped by the caller; with `meta.owner` it names at most one stream.
    pub idempotency_key: Option<String>,
    /// A producer on this instance will append to it: the store holds a lease for it (renewed
    /// while it runs, fencing appends), so another instance can end it `producer_lost` if this
    /// one dies. Streams fed through the API (agents) have no lease.
    pub leased: bool,
}

/// The outcome of [`EventLog::create`].
#[derive(Clone, Debug, PartialEq)]
pub enum Created {
    New {
        epoch: Epoch,
    },
    /// The idempotency key already named this stream; nothing was created.
    Existing(StreamId),
}

/// The cheap facts a subscriber needs before reading.
#[derive(Clone, Debug)]
pub struct LogHead {
    pub epoch: Epoch,
    /// The oldest retained seq; `last_seq + 1` when nothing is retained.
    pub first_seq: u64,
    pub last_seq: u64,
    pub status: StreamStatus,
    pub meta: Arc<StreamMeta>,
}

/// Everything `GET /v1/streams/{id}` shows.
#[derive(Clone, Debug)]
pub struct StreamInfo {
    pub id: StreamId,
    pub head: LogHead,
    /// Unix milliseconds of the last append.
    pub updated_at_ms: u64,
    pub aggregate: Aggregate,
    /// False once the log expired or was evicted while the status is still kept.
    pub log_available: bool,
}

/// A batch of events read from a position.
#[derive(Clone, Debug)]
pub struct Page {
    pub epoch: Epoch,
    /// The oldest retained seq when the page was read: above `after + 1` means events were lost
    /// to the window before this reader got to them.
    pub first_seq: u64,
    pub events: Vec<Arc<Event>>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("stream not found or expired")]
    NotFound,
    #[error("stream already finished")]
    Finished,
    /// The append went over the per-stream cap; the store has ended the stream `stream_too_large`.
    #[error("stream exceeded its size cap")]
    TooLarge,
    #[error("event store is full")]
    Full,
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The store lost the log and it was recreated under a new epoch: positions in the old
    /// one mean nothing now (readers end; clients resuming get `reset`).
    #[error("the stream's log was lost and recreated")]
    Replaced,
    /// This instance's lease on the stream was taken over: its producer must stop.
    #[error("the producer's lease was taken over")]
    Fenced,
    /// `append_at` found the log moved on since the writer read it.
    #[error("the stream changed since it was read")]
    Conflict,
}

/// The event-log store. Object-safe; chosen from config at startup.
///
/// Contract: seqs are dense from 1; a terminal event is the last one ever appended; readers
/// see events in seq order and never the same seq twice; `wait` wakes every waiter on append.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Creates the log with a fresh epoch. With an idempotency key already used by `owner`,
    /// returns that stream instead. Fails with `Full` when the store cannot take a new stream.
    async fn create(&self, new: NewStream) -> Result<Created, StoreError>;

    /// The live stream `owner` created with idempotency `key`, if any (nothing is created).
    async fn find_idempotent(&self, owner: &str, key: &str)
    -> Result<Option<StreamId>, StoreError>;

    /// Appends events in order and returns the last assigned seq. A terminal event finishes the
    /// stream; anything after it is refused with `Finished`.
    async fn append(&self, id: &StreamId, events: Vec<EventBody>) -> Result<u64, StoreError>;

    /// Appends only if the log's last seq is still `expected_last`, else `Conflict`: lets a
    /// writer check events against the state it read (agent state patches) without a lock.
    async fn append_at(
        &self,
        id: &StreamId,
        events: Vec<EventBody>,
        expected_last: u64,
    ) -> Result<u64, StoreError>;

    /// Appends `terminal` unless the stream already finished. Returns whether it was appended.
    async fn finish(&self, id: &StreamId, terminal: EventBody) -> Result<bool, StoreError> {
        match self.append(id, vec![terminal]).await {
            Ok(_) => Ok(true),
            Err(StoreError::Finished) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The log's epoch, bounds and status. `NotFound` once the log is gone.
    async fn head(&self, id: &StreamId) -> Result<LogHead, StoreError>;

    /// Status and aggregate; available for longer than the log.
    async fn info(&self, id: &StreamId) -> Result<StreamInfo, StoreError>;

    /// Up to `limit` events with seq greater than `after`, with the epoch they belong to.
    async fn read(&self, id: &StreamId, after: u64, limit: usize) -> Result<Page, StoreError>;

    /// Resolves once the log may hold an event after `after` (true; callers read again, and a
    /// store may wake spuriously) or the stream has finished with nothing after `after`
    /// (false). `wait(id, u64::MAX)` therefore resolves when the stream finishes.
    async fn wait(&self, id: &StreamId, after: u64) -> Result<bool, StoreError>;

    /// Resolves when the stream has finished (a producer watches for a cancel from anywhere).
    async fn finished(&self, id: &StreamId) -> Result<(), StoreError> {
        while self.wait(id, u64::MAX).await? {}
        Ok(())
    }

    /// Records that a subscriber is attached to `id` (on any instance), so that a producer on
    /// another instance does not abandon the stream. Stores with one instance need nothing.
    async fn touch(&self, _id: &StreamId) {}

    /// Unix milliseconds when a subscriber last touched `id` anywhere, if the store tracks it.
    async fn last_touched(&self, _id: &StreamId) -> Option<u64> {
        None
    }

    /// The producer of `id` on this instance has stopped: stop renewing its lease.
    async fn release(&self, _id: &StreamId) {}

    /// Whether the store can serve requests (for `/readyz`).
    async fn ready(&self) -> bool;

    /// Drops what retention says is gone. Called periodically by a tracked task.
    async fn sweep(&self);

    /// Starts the store's own background work (leases, notifications) on `tasks`, ending
    /// when `stop` fires, which happens after every producer has ended.
    fn start(&self, _tasks: &TaskTracker, _stop: CancellationToken) {}
}
