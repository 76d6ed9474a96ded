//! Running streams: creating a stream's log, starting its producer as a tracked task, and the
//! per-instance registry used to cancel producers and count subscribers.

mod external;
mod idle;
mod producer;
mod registry;
mod route;

pub use external::create_external;
pub use idle::{IdleWatch, watch_idle};
pub use producer::Timeouts;
pub use registry::{Registry, SubscriberGuard};
pub use route::{Connected, RetryPolicy, connect};

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::auth::StreamPermit;
use crate::event::{Epoch, EventBody, StreamId};
use crate::providers::{Job, ProviderError, Route};
use crate::store::{Created, EventLog, NewStream, Retention, StoreError, StreamMeta};
use crate::telemetry::Metrics;

use producer::Producer;

/// Starts and stops producers. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    pub log: Arc<dyn EventLog>,
    pub registry: Registry,
    tasks: TaskTracker,
    interrupt: CancellationToken,
    timeouts: Timeouts,
    retry: RetryPolicy,
    metrics: Metrics,
}

/// A generation (chat or transcription) to start.
pub struct Launch {
    pub meta: StreamMeta,
    pub route: Route,
    pub job: Job,
    pub idempotency_key: Option<String>,
    /// Cancel the generation after this long with no subscriber (`/v1/chat/completions`).
    pub detach_grace: Option<Duration>,
    /// Attach a subscriber before the producer starts, so the grace window starts attached.
    pub attach: bool,
    /// The creating key's stream slot, held for as long as the producer runs.
    pub permit: Option<StreamPermit>,
}

/// What [`Relay::start`] did.
pub enum Launched {
    New {
        id: StreamId,
        epoch: Epoch,
        /// Resolves when the upstream has spoken: Ok once events flow, Err if it refused.
        /// A dropped sender means the stream ended before that (e.g. cancelled).
        started: oneshot::Receiver<Result<(), ProviderError>>,
        subscriber: Option<SubscriberGuard>,
    },
    /// The idempotency key named an existing stream; nothing new was started.
    Existing(StreamId),
}

impl Relay {
    pub fn new(
        log: Arc<dyn EventLog>,
        tasks: TaskTracker,
        timeouts: Timeouts,
        retry: RetryPolicy,
        metrics: Metrics,
    ) -> Self {
        Self {
            log,
            registry: Registry::new(),
            tasks,
            interrupt: CancellationToken::new(),
            timeouts,
            retry,
            metrics,
        }
    }

    pub async fn start(&self, launch: Launch) -> Result<Launched, StoreError> {
        // Time to first token counts from here: the request is parsed and valid.
        let begun = std::time::Instant::now();
        let id = StreamId::random();
        let meta = launch.meta;
        let created = self
            .log
            .create(NewStream {
                id: id.clone(),
                meta: meta.clone(),
                retention: Retention::Full,
                idempotency_key: launch.idempotency_key,
                leased: true,
            })
            .await?;
        let epoch = match created {
            Created::New { epoch } => epoch,
            Created::Existing(existing) => return Ok(Launched::Existing(existing)),
        };
        let subscriber = launch.attach.then(|| self.registry.attach(&id));
        let (started_tx, started) = oneshot::channel();
        let producer = Producer {
            log: Arc::clone(&self.log),
            id: id.clone(),
            meta: Arc::new(meta),
            route: launch.route,
            retry: self.retry,
            job: launch.job,
            timeouts: self.timeouts,
            detach_grace: launch.detach_grace,
            slot: self.registry.producer(&id),
            interrupt: self.interrupt.clone(),
            started: Some(started_tx),
            _permit: launch.permit,
            metrics: self.metrics.clone(),
            begun,
        };
        tracing::info!(stream_id = %id, model = %producer.meta.model, "stream started");
        // The producer outlives the request that started it, so its span is a root of its
        // own that only points back at the request. `provider` becomes the one that answered.
        let span = tracing::info_span!(
            parent: None,
            "producer",
            stream_id = %id,
            model = %producer.meta.model,
            provider = %producer.meta.provider,
        );
        span.follows_from(tracing::Span::current());
        let active = self.metrics.stream_started();
        let (log, stream) = (Arc::clone(&self.log), id.clone());
        let run = async move {
            let _active = active;
            // Every stream ends with a terminal event, even if its producer has a bug.
            if AssertUnwindSafe(producer.run())
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!(stream_id = %stream, "producer panicked");
                let failed =
                    EventBody::failed("internal_error", "the stream's producer crashed", true);
                let _ = log.finish(&stream, failed).await;
                log.release(&stream).await;
            }
        };
        self.tasks.spawn(run.instrument(span));
        Ok(Launched::New {
            id,
            epoch,
            started,
            subscriber,
        })
    }

    /// Cancels a stream from any instance: the log gets `stream.cancelled` (unless the stream
    /// already finished) and a producer running here stops at once. Idempotent.
    pub async fn cancel(&self, id: &StreamId, reason: &str) -> Result<bool, StoreError> {
        let appended = self.log.finish(id, EventBody::cancelled(reason)).await?;
        self.registry.cancel(id);
        Ok(appended)
    }

    /// Fired when the drain window is over (work still running ends `interrupted`).
    pub fn interrupted(&self) -> CancellationToken {
        self.interrupt.clone()
    }

    /// Ends every producer still running: their streams end `failed` with `interrupted`.
    pub fn interrupt_all(&self) {
        self.interrupt.cancel();
    }
}
