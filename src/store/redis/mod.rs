//! The Redis store (SPEC §8): several instances share one set of logs. Each stream is a Redis
//! Stream (entry id `<seq>-0`) plus a hash for its status; every write is one atomic script
//! that checks the stream is running, checks the producer's fencing token and assigns seqs.
//! Scripts and the key layout are in `scripts.rs`; leases in `lease.rs`; live wake-ups in
//! `notify.rs`.

mod aggregate;
mod lease;
mod notify;
mod recent;
mod scripts;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    Created, EventLog, LogHead, NewStream, Page, Retention, StoreError, StoreLimits, StreamInfo,
    StreamMeta,
};
use crate::event::{Epoch, Event, EventBody, StreamId, StreamStatus, unix_millis};
use aggregate::Checkpoint;
use notify::Hub;
use recent::Recent;
use scripts::{APPEND, CREATE, RECREATE, SET_IF_EXISTS};

/// Every Redis call gives up after this: a stalled Redis must not stall a request.
const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Waiters re-check Redis this often even without a notification (gap repair).
const POLL: Duration = Duration::from_secs(1);
/// Entries per range read when folding a whole log.
const FOLD_PAGE: usize = 1000;

#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key, so several deployments (or tests) can share one Redis.
    pub prefix: String,
    /// How long a producer's lease lasts without renewal; another instance ends the stream
    /// `producer_lost` after that.
    pub lease: Duration,
}

#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    limits: StoreLimits,
    lease: Duration,
    /// Names this process in lease records.
    instance: String,
    /// Streams whose producer runs here, with what a recreate needs.
    leases: Mutex<HashMap<StreamId, Held>>,
    hub: Arc<Hub>,
    /// The store's tracked tasks, once started.
    tasks: OnceLock<TaskTracker>,
}

struct Held {
    fence: String,
    meta_json: String,
    retention: Retention,
    /// The last seq this producer appended: sent with each append, so a retried batch that
    /// Redis had applied after all (a timeout) is never appended twice.
    last: u64,
    recent: Recent,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn store_error(e: &redis::RedisError) -> StoreError {
    // With `maxmemory` and `noeviction`, a full Redis refuses writes with OOM.
    if e.code() == Some("OOM") {
        StoreError::Full
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

fn status_name(status: StreamStatus) -> &'static str {
    match status {
        StreamStatus::Running => "running",
        StreamStatus::Completed => "completed",
        StreamStatus::Failed => "failed",
        StreamStatus::Cancelled => "cancelled",
    }
}

fn parse_status(name: &str) -> Option<StreamStatus> {
    match name {
        "running" => Some(StreamStatus::Running),
        "completed" => Some(StreamStatus::Completed),
        "failed" => Some(StreamStatus::Failed),
        "cancelled" => Some(StreamStatus::Cancelled),
        _ => None,
    }
}

fn retention_args(retention: Retention) -> (&'static str, u64, u64) {
    match retention {
        Retention::Full => ("full", 0, 0),
        Retention::Window {
            max_events,
            max_age,
        } => ("window", max_events as u64, max_age.as_millis() as u64),
    }
}

/// One stream entry (`<seq>-0`, [t, type, d, data, m, time]) back into an event.
fn parse_entry(id: &str, fields: &[String]) -> Option<Event> {
    let seq = id.split('-').next()?.parse().ok()?;
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair.first().map(String::as_str) == Some(name))
            .and_then(|pair| pair.get(1))
    };
    let (kind, data) = (field("t")?, field("d")?);
    let time_ms = field("m").and_then(|m| m.parse().ok()).unwrap_or(0);
    let body = EventBody::from_parts(kind, data).ok()?;
    Some(Event::from_stored(
        seq,
        time_ms,
        body,
        data.clone().into_boxed_str(),
    ))
}

type Entries = Vec<(String, Vec<String>)>;

impl RedisStore {
    /// Connects lazily: the instance starts (not ready) while Redis is down and recovers
    /// by itself when it comes back.
    pub fn new(config: RedisConfig, limits: StoreLimits) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StoreError::Unavailable(format!("invalid redis URL: {e}")))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| store_error(&e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn,
                prefix: config.prefix,
                limits,
                lease: config.lease,
                instance: format!("inst_{:016x}", rand::random::<u64>()),
                leases: Mutex::new(HashMap::new()),
                hub: Arc::new(Hub::default()),
                tasks: OnceLock::new(),
            }),
        })
    }

    fn meta_key(&self, id: &StreamId) -> String {
        format!("{}:{{{id}}}:m", self.inner.prefix)
    }

    fn log_key(&self, id: &StreamId) -> String {
        format!("{}:{{{id}}}:l", self.inner.prefix)
    }

    fn channel(&self, id: &StreamId) -> String {
        format!("{}:n:{{{id}}}", self.inner.prefix)
    }

    fn running_key(&self) -> String {
        format!("{}:running", self.inner.prefix)
    }

    fn fence_key(&self) -> String {
        format!("{}:fence", self.inner.prefix)
    }

    fn idempotency_key(&self, owner: &str, key: &str) -> String {
        let digest = Sha256::digest(format!("{owner}\0{key}").as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:idem:{hex}", self.inner.prefix)
    }

    /// Runs one Redis call with the store's deadline and error mapping.
    async fn call<T, F>(&self, op: impl FnOnce(ConnectionManager) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(OP_TIMEOUT, op(self.inner.conn.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(store_error(&e)),
            Err(_) => Err(StoreError::Unavailable(
                "redis did not answer in time".into(),
            )),
        }
    }

    /// The fence and last seq of a lease held here.
    fn lease_of(&self, id: &StreamId) -> Option<(String, u64)> {
        lock(&self.inner.leases)
            .get(id)
            .map(|h| (h.fence.clone(), h.last))
    }

    /// The fields `head`/`read`/`info` need, read atomically with whether the log exists.
    async fn fields(
        &self,
        id: &StreamId,
        names: &[&str],
    ) -> Result<(Vec<Option<String>>, bool), StoreError> {
        let (meta, log) = (self.meta_key(id), self.log_key(id));
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        self.call(|mut conn| async move {
            redis::pipe()
                .atomic()
                .cmd("HMGET")
                .arg(&meta)
                .arg(&names)
                .cmd("EXISTS")
                .arg(&log)
                .query_async(&mut conn)
                .await
        })
        .await
    }

    fn head_from(fields: &[Option<String>], log_exists: bool) -> Result<LogHead, StoreError> {
        let get = |i: usize| fields.get(i).cloned().flatten();
        let epoch = get(0).ok_or(StoreError::NotFound)?;
        let status = get(3)
            .as_deref()
            .and_then(parse_status)
            .ok_or(StoreError::NotFound)?;
        // A finished stream always has its terminal event: no log means it expired.
        if status.is_finished() && !log_exists {
            return Err(StoreError::NotFound);
        }
        let number = |i: usize| get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        let meta: StreamMeta = serde_json::from_str(&get(4).unwrap_or_default())
            .map_err(|e| StoreError::Unavailable(format!("corrupt stream meta: {e}")))?;
        Ok(LogHead {
            epoch: Epoch::from_stored(epoch),
            first_seq: number(1),
            last_seq: number(2),
            status,
            meta: Arc::new(meta),
        })
    }

    /// Folds the whole retained log (used until the aggregate is stored at finish).
    /// After a stream ends: stop its lease, and keep its aggregate for the status retention.
    /// The fold runs as its own task: the caller (a producer) may be dropped right after.
    async fn finished(&self, id: &StreamId) {
        lock(&self.inner.leases).remove(id);
        let (store, id) = (self.clone(), id.clone());
        drop(self.spawn(async move { store.store_aggregate(&id).await }));
    }

    /// Runs `job` as a task of the store (tracked once the store has started).
    fn spawn<T: Send + 'static>(
        &self,
        job: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        match self.inner.tasks.get() {
            Some(tasks) => tasks.spawn(job),
            None => tokio::spawn(job),
        }
    }

    /// The log vanished under a running producer (flush, restart without persistence):
    /// start it again under a new epoch, so readers holding old ids get `reset`.
    async fn recreate(&self, id: &StreamId) -> Result<(), StoreError> {
        let held = lock(&self.inner.leases)
            .get(id)
            .map(|h| (h.fence.clone(), h.meta_json.clone(), h.retention));
        let Some((fence, meta_json, retention)) = held else {
            return Err(StoreError::Fenced);
        };
        let (ret, wev, wage) = retention_args(retention);
        let (meta, log, running, channel) = (
            self.meta_key(id),
            self.log_key(id),
            self.running_key(),
            self.channel(id),
        );
        let epoch = Epoch::random();
        let epoch_ref = &epoch;
        let lease_ms = self.inner.lease.as_millis() as u64;
        let instance = self.inner.instance.clone();
        let recreated: i64 = self
            .call(|mut conn| async move {
                RECREATE
                    .key(&meta)
                    .key(&log)
                    .key(&running)
                    .arg(id.as_str())
                    .arg(epoch_ref.as_str())
                    .arg(&meta_json)
                    .arg(ret)
                    .arg(wev)
                    .arg(wage)
                    .arg(&fence)
                    .arg(&instance)
                    .arg(lease_ms)
                    .arg(&channel)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        if recreated == 1 {
            tracing::warn!(stream_id = %id, epoch = %epoch, "redis lost the stream; recreated its log");
            if let Some(held) = lock(&self.inner.leases).get_mut(id) {
                held.last = 0;
                held.recent.reset(epoch);
            }
        }
        Ok(())
    }

    /// One append, as [`EventLog::append`] describes it; with `strict`, as `append_at`.
    async fn append_now(
        &self,
        id: &StreamId,
        events: Vec<EventBody>,
        strict: Option<(u64, String)>,
    ) -> Result<u64, StoreError> {
        let limits = &self.inner.limits;
        let too_large = EventBody::failed(
            "stream_too_large",
            format!(
                "stream exceeded its cap of {} events or {} bytes",
                limits.max_stream_events, limits.max_stream_bytes
            ),
            false,
        )
        .data_json();
        let mut encoded = Vec::with_capacity(events.len() * 3);
        for body in &events {
            encoded.push(body.type_name().to_owned());
            encoded.push(body.data_json());
            encoded.push(body.terminal_status().map_or("", status_name).to_owned());
        }
        let (meta, log, running, channel) = (
            self.meta_key(id),
            self.log_key(id),
            self.running_key(),
            self.channel(id),
        );
        let ttl = |d: Duration| d.as_secs().max(1);
        let (log_ttl, status_ttl) = (ttl(limits.log_retention), ttl(limits.status_retention));
        let (max_events, max_bytes) = (limits.max_stream_events, limits.max_stream_bytes);
        // Two tries: a producer whose log was lost recreates it once and appends again.
        for _ in 0..2 {
            let held = self.lease_of(id);
            let fence = held.as_ref().map(|h| h.0.clone()).unwrap_or_default();
            let (expected, checkpoint) = match &strict {
                Some((last, checkpoint)) => (format!("={last}"), checkpoint.as_str()),
                None => (
                    held.as_ref().map(|h| h.1.to_string()).unwrap_or_default(),
                    "",
                ),
            };
            let (meta, log, running, channel) = (&meta, &log, &running, &channel);
            let (encoded, too_large) = (&encoded, &too_large);
            let reply: Vec<String> = self
                .call(|mut conn| async move {
                    let mut call = APPEND.prepare_invoke();
                    call.key(meta).key(log).key(running);
                    call.arg(&fence).arg(max_events).arg(max_bytes);
                    call.arg(log_ttl)
                        .arg(status_ttl)
                        .arg(channel)
                        .arg(id.as_str());
                    call.arg(too_large).arg(&expected).arg(checkpoint);
                    for arg in encoded {
                        call.arg(arg);
                    }
                    call.invoke_async(&mut conn).await
                })
                .await?;
            let last = reply.get(1).and_then(|l| l.parse().ok()).unwrap_or(0);
            let status = reply.get(3).map(String::as_str).unwrap_or("");
            match reply.first().map(String::as_str) {
                Some("OK") => {
                    if let Some(held) = lock(&self.inner.leases).get_mut(id) {
                        held.last = last;
                        if held.retention == Retention::Full {
                            let data: Vec<&str> =
                                encoded.chunks(3).map(|c| c[1].as_str()).collect();
                            held.recent.record(last, &events, &data, unix_millis());
                        }
                    }
                    // Local readers hear it now; the pub/sub echo is for other instances.
                    self.inner.hub.heard(id.as_str(), last, status != "running");
                    if status != "running" {
                        self.finished(id).await;
                    }
                    return Ok(last);
                }
                // Someone else appended to a leased stream: this producer's view is stale.
                Some("CONFLICT") => {
                    lock(&self.inner.leases).remove(id);
                    return Err(StoreError::Fenced);
                }
                Some("STALE") => return Err(StoreError::Conflict),
                Some("TOOLARGE") => {
                    self.finished(id).await;
                    return Err(StoreError::TooLarge);
                }
                Some("FINISHED") => return Err(StoreError::Finished),
                Some("FENCED") => {
                    lock(&self.inner.leases).remove(id);
                    return Err(StoreError::Fenced);
                }
                Some("NOTFOUND") if held.is_some() => self.recreate(id).await?,
                Some("NOTFOUND") => return Err(StoreError::NotFound),
                _ => return Err(StoreError::Unavailable("unexpected append reply".into())),
            }
        }
        Err(StoreError::NotFound)
    }

    /// A terminal append runs to its end even if the caller goes away: a producer stopped
    /// while its terminal event is in flight (the echo of that very event can stop it) must
    /// still record the outcome (lease, aggregate). Other appends skip the task hop.
    async fn append_detached(
        &self,
        id: &StreamId,
        events: Vec<EventBody>,
        strict: Option<(u64, String)>,
    ) -> Result<u64, StoreError> {
        if !events.iter().any(|e| e.terminal_status().is_some()) {
            return self.append_now(id, events, strict).await;
        }
        let (store, id) = (self.clone(), id.clone());
        self.spawn(async move { store.append_now(&id, events, strict).await })
            .await
            .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("append task failed: {e}"))))
    }

    /// Starts the notification listener and the lease renewer and reaper.
    fn spawn_background(&self, tasks: &TaskTracker, stop: CancellationToken) {
        let inner = &self.inner;
        let _ = inner.tasks.set(tasks.clone());
        tasks.spawn(notify::listen(
            inner.client.clone(),
            inner.prefix.clone(),
            Arc::clone(&inner.hub),
            stop.clone(),
        ));
        tasks.spawn(lease::renew(self.clone(), stop.clone()));
        tasks.spawn(lease::reap(self.clone(), stop));
    }
}

#[async_trait]
impl EventLog for RedisStore {
    async fn create(&self, new: NewStream) -> Result<Created, StoreError> {
        let meta_json =
            serde_json::to_string(&new.meta).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let (ret, wev, wage) = retention_args(new.retention);
        let idem = new
            .idempotency_key
            .as_deref()
            .map(|k| self.idempotency_key(&new.meta.owner, k))
            .unwrap_or_default();
        let epoch = Epoch::random();
        let epoch_ref = &epoch;
        let (meta, running, fence) = (self.meta_key(&new.id), self.running_key(), self.fence_key());
        let lease_ms = self.inner.lease.as_millis() as u64;
        let (instance, prefix) = (self.inner.instance.clone(), self.inner.prefix.clone());
        let leased = if new.leased { "1" } else { "0" };
        let id = new.id.clone();
        let json = meta_json.clone();
        let reply: Vec<String> = self
            .call(|mut conn| async move {
                CREATE
                    .key(&meta)
                    .key(&idem)
                    .key(&running)
                    .key(&fence)
                    .arg(id.as_str())
                    .arg(epoch_ref.as_str())
                    .arg(&json)
                    .arg(ret)
                    .arg(wev)
                    .arg(wage)
                    .arg(leased)
                    .arg(&instance)
                    .arg(lease_ms)
                    .arg(&prefix)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        match reply.as_slice() {
            [kind, fence] if kind == "NEW" => {
                if new.leased {
                    let held = Held {
                        fence: fence.clone(),
                        meta_json,
                        retention: new.retention,
                        last: 0,
                        recent: Recent::new(epoch.clone()),
                    };
                    lock(&self.inner.leases).insert(new.id.clone(), held);
                }
                Ok(Created::New { epoch })
            }
            [kind, existing] if kind == "EXISTING" => existing
                .parse()
                .map(Created::Existing)
                .map_err(|_| StoreError::Unavailable("corrupt idempotency record".into())),
            _ => Err(StoreError::Unavailable("unexpected create reply".into())),
        }
    }

    async fn find_idempotent(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<StreamId>, StoreError> {
        let idem = self.idempotency_key(owner, key);
        let found: Option<String> = self
            .call(
                |mut conn| async move { redis::cmd("GET").arg(&idem).query_async(&mut conn).await },
            )
            .await?;
        Ok(found.and_then(|id| id.parse().ok()))
    }

    async fn append(&self, id: &StreamId, events: Vec<EventBody>) -> Result<u64, StoreError> {
        self.append_detached(id, events, None).await
    }

    async fn append_at(
        &self,
        id: &StreamId,
        events: Vec<EventBody>,
        expected_last: u64,
    ) -> Result<u64, StoreError> {
        // The checkpoint is the aggregate at `expected_last` plus this batch; the script
        // stores it only if the log is still at `expected_last`, so it is exact.
        let info = self.info(id).await?;
        if info.head.status.is_finished() {
            return Err(StoreError::Finished);
        }
        if info.head.last_seq != expected_last {
            return Err(StoreError::Conflict);
        }
        let mut aggregate = info.aggregate;
        for body in &events {
            aggregate.apply(body);
        }
        let checkpoint = serde_json::to_string(&aggregate)
            .map_err(|e| StoreError::Unavailable(format!("aggregate not serialisable: {e}")))?;
        self.append_detached(id, events, Some((expected_last, checkpoint)))
            .await
    }

    async fn head(&self, id: &StreamId) -> Result<LogHead, StoreError> {
        let (fields, log_exists) = self
            .fields(id, &["epoch", "first", "last", "status", "meta"])
            .await?;
        Self::head_from(&fields, log_exists)
    }

    async fn info(&self, id: &StreamId) -> Result<StreamInfo, StoreError> {
        let (fields, log_exists) = self
            .fields(
                id,
                &[
                    "epoch", "first", "last", "status", "meta", "updated", "agg", "aggseq",
                ],
            )
            .await?;
        // The head of a finished stream whose log expired is still described.
        let head = Self::head_from(&fields, true)?;
        let log_available = log_exists || !head.status.is_finished();
        let field = |i: usize| fields.get(i).cloned().flatten();
        let checkpoint = Checkpoint::parse(field(6), field(7));
        let aggregate = self
            .current_aggregate(id, checkpoint, log_available, head.last_seq)
            .await?;
        let updated_at_ms = fields
            .get(5)
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(StreamInfo {
            id: id.clone(),
            head,
            updated_at_ms,
            aggregate,
            log_available,
        })
    }

    async fn read(&self, id: &StreamId, after: u64, limit: usize) -> Result<Page, StoreError> {
        let local = lock(&self.inner.leases)
            .get(id)
            .and_then(|h| h.recent.page(after, limit));
        if let Some(page) = local {
            return Ok(page);
        }
        let (meta, log) = (self.meta_key(id), self.log_key(id));
        let start = format!("{}-0", after.saturating_add(1));
        let (fields, entries, log_exists): (Vec<Option<String>>, Entries, bool) = self
            .call(|mut conn| async move {
                redis::pipe()
                    .atomic()
                    .cmd("HMGET")
                    .arg(&meta)
                    .arg(&["epoch", "first", "status"])
                    .cmd("XRANGE")
                    .arg(&log)
                    .arg(&start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit)
                    .cmd("EXISTS")
                    .arg(&log)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let get = |i: usize| fields.get(i).cloned().flatten();
        let epoch = get(0).ok_or(StoreError::NotFound)?;
        let finished = get(2)
            .as_deref()
            .and_then(parse_status)
            .is_some_and(StreamStatus::is_finished);
        if finished && !log_exists {
            return Err(StoreError::NotFound);
        }
        let events = entries
            .iter()
            .filter_map(|(id, fields)| parse_entry(id, fields))
            .map(Arc::new)
            .collect();
        Ok(Page {
            epoch: Epoch::from_stored(epoch),
            first_seq: get(1).and_then(|v| v.parse().ok()).unwrap_or(1),
            events,
        })
    }

    async fn wait(&self, id: &StreamId, after: u64) -> Result<bool, StoreError> {
        // Registered before the check below, so an append in between still wakes us.
        let mut heard = self.inner.hub.watch(id.as_str());
        loop {
            let recorded = lock(&self.inner.leases)
                .get(id)
                .and_then(|h| h.recent.last());
            if recorded.is_some_and(|last| last > after) {
                return Ok(true);
            }
            let (fields, _) = self.fields(id, &["last", "status"]).await?;
            let last: u64 = fields
                .first()
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok())
                .ok_or(StoreError::NotFound)?;
            let finished = fields
                .get(1)
                .cloned()
                .flatten()
                .as_deref()
                .and_then(parse_status)
                .is_some_and(StreamStatus::is_finished);
            // A head behind the reader means the log was replaced: let the reader find out.
            if last != after {
                return Ok(true);
            }
            if finished {
                return Ok(false);
            }
            tokio::select! {
                changed = heard.changed() => {
                    if changed.is_ok() {
                        let h = *heard.borrow_and_update();
                        if h.last > after {
                            return Ok(true);
                        }
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn finished(&self, id: &StreamId) -> Result<(), StoreError> {
        let mut heard = self.inner.hub.watch(id.as_str());
        loop {
            let (fields, _) = self.fields(id, &["status"]).await?;
            let status = fields
                .first()
                .cloned()
                .flatten()
                .as_deref()
                .and_then(parse_status);
            match status {
                None => return Err(StoreError::NotFound),
                Some(s) if s.is_finished() => return Ok(()),
                Some(_) => {}
            }
            tokio::select! {
                changed = heard.changed() => {
                    if changed.is_ok() && heard.borrow_and_update().finished {
                        return Ok(());
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn touch(&self, id: &StreamId) {
        let meta = self.meta_key(id);
        let now = unix_millis();
        let touched: Result<i64, _> = self
            .call(|mut conn| async move {
                SET_IF_EXISTS
                    .key(&meta)
                    .arg("seen")
                    .arg(now)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        if let Err(e) = touched {
            tracing::debug!(stream_id = %id, error = %e, "touch failed");
        }
    }

    async fn last_touched(&self, id: &StreamId) -> Option<u64> {
        let (fields, _) = self.fields(id, &["seen"]).await.ok()?;
        fields.first().cloned().flatten()?.parse().ok()
    }

    async fn release(&self, id: &StreamId) {
        lock(&self.inner.leases).remove(id);
    }

    async fn ready(&self) -> bool {
        let pong: Result<String, _> = self
            .call(|mut conn| async move { redis::cmd("PING").query_async(&mut conn).await })
            .await;
        pong.is_ok()
    }

    /// Redis expires keys itself (TTLs set when a stream finishes).
    async fn sweep(&self) {}

    fn start(&self, tasks: &TaskTracker, stop: CancellationToken) {
        self.spawn_background(tasks, stop);
    }
}
