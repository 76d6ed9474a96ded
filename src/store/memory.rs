//! The in-process store: logs in memory, bounded by per-stream caps and a global budget.
//!
//! A cheap-clone handle around shared state. Std mutexes are never held across `.await`;
//! each stream's head is a `watch` channel, so any number of readers wait on one value and
//! the producer never fills a per-reader queue.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{
    Created, EventLog, LogHead, NewStream, Page, Retention, StoreError, StoreLimits, StreamInfo,
    StreamMeta,
};
use crate::event::{Aggregate, Epoch, Event, EventBody, StreamId, StreamStatus, unix_millis};

#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    limits: StoreLimits,
    /// Bytes held by all logs together, checked against the budget when a stream is created.
    bytes: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    streams: HashMap<StreamId, Arc<Entry>>,
    idempotency: HashMap<(String, String), StreamId>,
}

struct Entry {
    epoch: Epoch,
    meta: Arc<StreamMeta>,
    retention: Retention,
    idempotency: Option<(String, String)>,
    log: Mutex<Log>,
    head: watch::Sender<Head>,
}

#[derive(Clone, Copy, Default)]
struct Head {
    last_seq: u64,
    finished: bool,
}

struct Log {
    events: VecDeque<Arc<Event>>,
    first_seq: u64,
    last_seq: u64,
    /// Memory held, counted against the global budget.
    bytes: usize,
    /// Event JSON held, counted against the per-stream cap (what a client would download).
    data_bytes: usize,
    status: StreamStatus,
    aggregate: Aggregate,
    updated_at_ms: u64,
    finished_at: Option<Instant>,
    /// The events were dropped (retention or eviction); status and aggregate remain.
    dropped: bool,
}

/// A poisoned lock only means another thread panicked mid-update of plain data; keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits,
                bytes: AtomicUsize::new(0),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Bytes currently held by all logs.
    pub fn bytes_used(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// The entry whose status is still retained.
    fn entry(&self, id: &StreamId) -> Result<Arc<Entry>, StoreError> {
        let entry = lock(&self.shared.state).streams.get(id).cloned();
        let entry = entry.ok_or(StoreError::NotFound)?;
        let finished_at = lock(&entry.log).finished_at;
        match finished_at {
            Some(at) if at + self.shared.limits.status_retention <= Instant::now() => {
                Err(StoreError::NotFound)
            }
            _ => Ok(entry),
        }
    }

    fn log_gone(&self, log: &Log) -> bool {
        log.dropped
            || log
                .finished_at
                .is_some_and(|at| at + self.shared.limits.log_retention <= Instant::now())
    }

    fn drop_events(&self, log: &mut Log) {
        log.events.clear();
        log.first_seq = log.last_seq + 1;
        self.shared.bytes.fetch_sub(log.bytes, Ordering::Relaxed);
        log.bytes = 0;
        log.data_bytes = 0;
        log.dropped = true;
    }

    fn append_checked(
        &self,
        id: &StreamId,
        events: Vec<EventBody>,
        expected_last: Option<u64>,
    ) -> Result<u64, StoreError> {
        let entry = self.entry(id)?;
        let limits = &self.shared.limits;
        let now_ms = unix_millis();
        let mut log = lock(&entry.log);
        if self.log_gone(&log) {
            return Err(StoreError::NotFound);
        }
        if log.status.is_finished() {
            return Err(StoreError::Finished);
        }
        if expected_last.is_some_and(|expected| expected != log.last_seq) {
            return Err(StoreError::Conflict);
        }
        let mut result = Ok(log.last_seq);
        let mut added = 0;
        for body in events {
            if log.status.is_finished() {
                result = Err(StoreError::Finished);
                break;
            }
            let event = Event::new(log.last_seq + 1, now_ms, body);
            let over_cap = entry.retention == Retention::Full
                && event.body.terminal_status().is_none()
                // One slot and its bytes stay free for the terminal event.
                && (log.events.len() + 2 > limits.max_stream_events
                    || log.data_bytes + event.data.len() > limits.max_stream_bytes);
            if over_cap {
                let message = format!(
                    "stream exceeded its cap of {} events or {} bytes",
                    limits.max_stream_events, limits.max_stream_bytes
                );
                let failed = Event::new(
                    log.last_seq + 1,
                    now_ms,
                    EventBody::failed("stream_too_large", message, false),
                );
                added += log.push(failed);
                result = Err(StoreError::TooLarge);
                break;
            }
            added += log.push(event);
            result = Ok(log.last_seq);
        }
        self.shared.bytes.fetch_add(added, Ordering::Relaxed);
        if let Retention::Window {
            max_events,
            max_age,
        } = entry.retention
        {
            let freed = log.trim(max_events, max_age.as_millis() as u64, now_ms);
            self.shared.bytes.fetch_sub(freed, Ordering::Relaxed);
        }
        let head = Head {
            last_seq: log.last_seq,
            finished: log.status.is_finished(),
        };
        drop(log);
        entry.head.send_replace(head);
        result
    }

    fn head_now(&self, id: &StreamId) -> Result<LogHead, StoreError> {
        let entry = self.entry(id)?;
        let log = lock(&entry.log);
        if self.log_gone(&log) {
            return Err(StoreError::NotFound);
        }
        Ok(LogHead {
            epoch: entry.epoch.clone(),
            first_seq: log.first_seq,
            last_seq: log.last_seq,
            status: log.status,
            meta: Arc::clone(&entry.meta),
        })
    }

    /// Every stream, cloned out under a brief hold of the global lock.
    fn snapshot(&self) -> Vec<(StreamId, Arc<Entry>)> {
        lock(&self.shared.state)
            .streams
            .iter()
            .map(|(id, e)| (id.clone(), Arc::clone(e)))
            .collect()
    }

    /// Frees finished streams' logs, oldest first, until the store is under budget.
    fn evict_finished(&self) {
        let budget = self.shared.limits.memory_budget_bytes;
        let mut finished: Vec<(Instant, Arc<Entry>)> = self
            .snapshot()
            .into_iter()
            .filter_map(|(_, e)| {
                let at = {
                    let log = lock(&e.log);
                    log.finished_at.filter(|_| !log.dropped)?
                };
                Some((at, e))
            })
            .collect();
        finished.sort_by_key(|(at, _)| *at);
        for (_, entry) in finished {
            if self.bytes_used() < budget {
                break;
            }
            self.drop_events(&mut lock(&entry.log));
        }
    }
}

impl Log {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            first_seq: 1,
            last_seq: 0,
            bytes: 0,
            data_bytes: 0,
            status: StreamStatus::Running,
            aggregate: Aggregate::default(),
            updated_at_ms: unix_millis(),
            finished_at: None,
            dropped: false,
        }
    }

    fn push(&mut self, event: Event) -> usize {
        let size = event.size();
        self.aggregate.apply(&event.body);
        if let Some(status) = event.body.terminal_status() {
            self.status = status;
            self.finished_at = Some(Instant::now());
        }
        self.last_seq = event.seq;
        self.updated_at_ms = event.time_ms;
        self.bytes += size;
        self.data_bytes += event.data.len();
        self.events.push_back(Arc::new(event));
        size
    }

    /// Drops events outside a sliding window; returns the bytes freed.
    fn trim(&mut self, max_events: usize, max_age_ms: u64, now_ms: u64) -> usize {
        let mut freed = 0;
        while let Some(front) = self.events.front() {
            let too_many = self.events.len() > max_events;
            let too_old = front.time_ms + max_age_ms < now_ms;
            // The terminal event always stays: it is what tells a reader the stream ended.
            if !(too_many || too_old) || self.events.len() == 1 {
                break;
            }
            freed += front.size();
            self.data_bytes -= front.data.len();
            self.events.pop_front();
            self.first_seq += 1;
        }
        self.bytes -= freed;
        freed
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn find_idempotent(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<StreamId>, StoreError> {
        let state = lock(&self.shared.state);
        let Some(id) = state.idempotency.get(&(owner.to_owned(), key.to_owned())) else {
            return Ok(None);
        };
        let alive = state.streams.get(id).is_some_and(|e| {
            lock(&e.log)
                .finished_at
                .is_none_or(|at| at + self.shared.limits.status_retention > Instant::now())
        });
        Ok(alive.then(|| id.clone()))
    }

    async fn create(&self, new: NewStream) -> Result<Created, StoreError> {
        let NewStream {
            id,
            meta,
            retention,
            idempotency_key,
            leased: _,
        } = new;
        let id = &id;
        if self.bytes_used() >= self.shared.limits.memory_budget_bytes {
            self.evict_finished();
            if self.bytes_used() >= self.shared.limits.memory_budget_bytes {
                return Err(StoreError::Full);
            }
        }
        let idempotency = idempotency_key.map(|k| (meta.owner.clone(), k));
        let mut state = lock(&self.shared.state);
        if let Some(existing) = idempotency.as_ref().and_then(|k| state.idempotency.get(k)) {
            // A key whose stream's status expired (but was not swept yet) is free again.
            let alive = state.streams.get(existing).is_some_and(|e| {
                lock(&e.log)
                    .finished_at
                    .is_none_or(|at| at + self.shared.limits.status_retention > Instant::now())
            });
            if alive {
                return Ok(Created::Existing(existing.clone()));
            }
        }
        let epoch = Epoch::random();
        let entry = Entry {
            epoch: epoch.clone(),
            meta: Arc::new(meta),
            retention,
            idempotency: idempotency.clone(),
            log: Mutex::new(Log::new()),
            head: watch::Sender::new(Head::default()),
        };
        state.streams.insert(id.clone(), Arc::new(entry));
        if let Some(key) = idempotency {
            state.idempotency.insert(key, id.clone());
        }
        Ok(Created::New { epoch })
    }

    async fn append(&self, id: &StreamId, events: Vec<EventBody>) -> Result<u64, StoreError> {
        self.append_checked(id, events, None)
    }

    async fn append_at(
        &self,
        id: &StreamId,
        events: Vec<EventBody>,
        expected_last: u64,
    ) -> Result<u64, StoreError> {
        self.append_checked(id, events, Some(expected_last))
    }

    async fn head(&self, id: &StreamId) -> Result<LogHead, StoreError> {
        self.head_now(id)
    }

    async fn info(&self, id: &StreamId) -> Result<StreamInfo, StoreError> {
        let entry = self.entry(id)?;
        let log = lock(&entry.log);
        Ok(StreamInfo {
            id: id.clone(),
            head: LogHead {
                epoch: entry.epoch.clone(),
                first_seq: log.first_seq,
                last_seq: log.last_seq,
                status: log.status,
                meta: Arc::clone(&entry.meta),
            },
            updated_at_ms: log.updated_at_ms,
            aggregate: log.aggregate.clone(),
            log_available: !self.log_gone(&log),
        })
    }

    async fn read(&self, id: &StreamId, after: u64, limit: usize) -> Result<Page, StoreError> {
        let entry = self.entry(id)?;
        let log = lock(&entry.log);
        if self.log_gone(&log) {
            return Err(StoreError::NotFound);
        }
        let skip = (after + 1).saturating_sub(log.first_seq) as usize;
        let events = log.events.iter().skip(skip).take(limit).cloned().collect();
        Ok(Page {
            epoch: entry.epoch.clone(),
            first_seq: log.first_seq,
            events,
        })
    }

    async fn wait(&self, id: &StreamId, after: u64) -> Result<bool, StoreError> {
        let mut rx = self.entry(id)?.head.subscribe();
        let head = rx
            .wait_for(|h| h.last_seq > after || h.finished)
            .await
            .map_err(|_| StoreError::NotFound)?;
        Ok(head.last_seq > after)
    }

    async fn ready(&self) -> bool {
        true
    }

    async fn sweep(&self) {
        let now = Instant::now();
        let limits = &self.shared.limits;
        let mut expired = Vec::new();
        // Streams' own locks are taken outside the global one, so appends never wait on a sweep.
        for (id, entry) in self.snapshot() {
            let mut log = lock(&entry.log);
            let Some(at) = log.finished_at else { continue };
            if at + limits.status_retention <= now {
                expired.push(id.clone());
            }
            if at + limits.log_retention <= now && !log.dropped {
                self.drop_events(&mut log);
            }
        }
        if expired.is_empty() {
            return;
        }
        let mut state = lock(&self.shared.state);
        for id in expired {
            if let Some(entry) = state.streams.remove(&id) {
                self.drop_events(&mut lock(&entry.log));
                if let Some(key) = &entry.idempotency {
                    state.idempotency.remove(key);
                }
            }
        }
    }
}
