//! Assembly: the shared state built from config, and `serve`, which runs the HTTP server on
//! an already-bound listener until a shutdown future resolves, then drains.

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::agent::Agents;
use crate::auth::Keys;
use crate::config::{Config, Secrets, secs};
use crate::feed::Feeds;
use crate::prompts::Prompts;
use crate::providers::{
    AnthropicProvider, GeminiProvider, MockProvider, OpenAiProvider, Providers, UpstreamConfig,
};
use crate::relay::{IdleWatch, Relay, RetryPolicy, Timeouts};
use crate::store::{EventLog, MemoryStore, RedisConfig, RedisStore};
use crate::telemetry::{MeteredLog, Metrics};

/// How often finished streams are checked for expiry.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How often the store hears which streams have subscribers here; well under the shortest
/// sensible grace window, so another instance's producer never abandons a watched stream.
const PRESENCE_EVERY: Duration = Duration::from_secs(5);
/// After the drain window, connections still open get this long before they are dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Memory store: how long subscribers get to write the last terminal events at shutdown.
const LET_GO_GRACE: Duration = Duration::from_millis(250);
/// How often recorded latency samples are folded into their histogram buckets.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub relay: Relay,
    pub agents: Agents,
    pub feeds: Arc<Feeds>,
    pub providers: Providers,
    pub prompts: Prompts,
    /// Client API keys and their limits; empty when the server runs without keys.
    pub keys: Keys,
    /// This instance's own metrics registry (see `telemetry` for why not a global one).
    pub metrics: Metrics,
    /// Fired when shutdown begins: readiness fails, new streams and subscriptions are refused,
    /// open SSE responses end so their clients resume elsewhere.
    pub shutdown: CancellationToken,
    /// Fired when open SSE responses and waiting clients should let go of their streams: at
    /// the signal with a shared store (they resume on another instance), at the end of the
    /// drain with the memory store (no other instance has their streams, so they stay for
    /// the terminal event).
    pub let_go: CancellationToken,
    /// Producers, agent idle watches, the sweeper and the presence task.
    pub tasks: TaskTracker,
    /// The store's own background work, stopped only after every producer has ended (their
    /// leases must be renewed while they drain).
    store_tasks: TaskTracker,
    store_stop: CancellationToken,
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot use the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Alias(#[from] crate::providers::AliasError),
    #[error(transparent)]
    Prompts(#[from] crate::prompts::PromptError),
}

impl AppState {
    /// The state for `config`: the configured store and every provider.
    pub fn new(config: Config, secrets: Secrets) -> Result<Self, StartupError> {
        config.validate()?;
        let limits = config.limits.store_limits();
        let log: Arc<dyn EventLog> = if config.store.starts_with("redis://") {
            Arc::new(RedisStore::new(
                RedisConfig {
                    url: config.store.clone(),
                    prefix: config.redis.key_prefix.clone(),
                    lease: secs(config.redis.lease_secs),
                },
                limits,
            )?)
        } else {
            Arc::new(MemoryStore::new(limits))
        };
        let upstream = &config.upstream;
        let (connect_timeout, max_line_bytes) =
            (secs(upstream.connect_timeout_secs), upstream.max_line_bytes);
        let openai = OpenAiProvider::new(UpstreamConfig {
            base_url: upstream.openai_base_url.clone(),
            api_key: secrets.openai_api_key,
            connect_timeout,
            max_line_bytes,
        })?;
        let anthropic = AnthropicProvider::new(UpstreamConfig {
            base_url: upstream.anthropic_base_url.clone(),
            api_key: secrets.anthropic_api_key,
            connect_timeout,
            max_line_bytes,
        })?;
        let gemini = GeminiProvider::new(UpstreamConfig {
            base_url: upstream.gemini_base_url.clone(),
            api_key: secrets.gemini_api_key,
            connect_timeout,
            max_line_bytes,
        })?;
        let mut providers = Providers::new()
            .with(Arc::new(MockProvider::with_transcription_speedup(
                config.transcription.mock_speedup,
            )))
            .with(Arc::new(openai))
            .with(Arc::new(anthropic))
            .with(Arc::new(gemini));
        if let Some(name) = &config.default_provider {
            providers = providers.with_default(name);
        }
        let providers = providers.with_aliases(&config.models)?;
        // A template that does not load is a startup error, not a surprise at request time.
        Prompts::load(&config.prompts_dir)?;
        Ok(Self::from_parts(config, log, providers))
    }

    /// The state around a given store and providers (tests use this to inject fakes).
    pub fn from_parts(config: Config, log: Arc<dyn EventLog>, providers: Providers) -> Self {
        let metrics = Metrics::new();
        let log: Arc<dyn EventLog> = Arc::new(MeteredLog::new(log, metrics.clone()));
        let tasks = TaskTracker::new();
        let timeouts = Timeouts {
            first_event: secs(config.upstream.first_event_timeout_secs),
            idle: secs(config.upstream.idle_timeout_secs),
            store_retry: Duration::from_secs(config.store_retry_secs),
        };
        let (store_tasks, store_stop) = (TaskTracker::new(), CancellationToken::new());
        log.start(&store_tasks, store_stop.clone());
        let routing = &config.routing;
        let retry = RetryPolicy {
            max_retries: routing.max_retries,
            backoff: Duration::from_millis(routing.backoff_ms),
            max_backoff: Duration::from_millis(routing.max_backoff_ms),
            max_retry_after: Duration::from_secs(routing.max_retry_after_secs),
        };
        let shutdown = CancellationToken::new();
        let idle = Arc::new(IdleWatch::new(
            Arc::clone(&log),
            tasks.clone(),
            shutdown.clone(),
        ));
        let agents = Agents::new(
            Arc::clone(&log),
            config.agents.settings(),
            Arc::clone(&idle),
        );
        let relay = Relay::new(
            Arc::clone(&log),
            tasks.clone(),
            timeouts,
            retry,
            metrics.clone(),
        );
        let feeds = Arc::new(Feeds::new(
            log,
            idle,
            (timeouts, retry),
            (tasks.clone(), relay.interrupted()),
            config.transcription.feed_settings(),
            metrics.clone(),
        ));
        let prompts = Prompts::load(&config.prompts_dir).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no prompt templates");
            Prompts::empty(&config.prompts_dir)
        });
        let limits = &config.limits;
        let keys = Keys::new(
            &config.keys,
            (
                limits.max_streams_per_key,
                limits.requests_per_minute_per_key,
            ),
        );
        Self(Arc::new(Inner {
            keys,
            config,
            relay,
            agents,
            feeds,
            providers,
            prompts,
            metrics,
            shutdown,
            let_go: CancellationToken::new(),
            tasks,
            store_tasks,
            store_stop,
        }))
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.relay.log
    }
}

/// Serves until `shutdown` resolves, then: fails readiness and refuses new streams, ends SSE
/// responses (clients resume elsewhere), gives running producers `shutdown_drain_secs` to
/// finish, ends the rest `failed` with code `interrupted`, and only then stops accepting
/// connections. Returns when every task has ended.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = state.clone();
    state.tasks.spawn(async move {
        loop {
            tokio::select! {
                () = sweeper.shutdown.cancelled() => return,
                () = tokio::time::sleep(SWEEP_EVERY) => sweeper.log().sweep().await,
            }
        }
    });
    let upkeep = state.clone();
    state.tasks.spawn(async move {
        loop {
            tokio::select! {
                () = upkeep.shutdown.cancelled() => return,
                () = tokio::time::sleep(METRICS_UPKEEP_EVERY) => upkeep.metrics.upkeep(),
            }
        }
    });
    let presence = state.clone();
    state.tasks.spawn(async move {
        loop {
            tokio::select! {
                () = presence.shutdown.cancelled() => return,
                () = tokio::time::sleep(PRESENCE_EVERY) => {
                    for id in presence.relay.registry.watched() {
                        presence.log().touch(&id).await;
                    }
                }
            }
        }
    });
    #[cfg(unix)]
    spawn_reload_on_hangup(&state);
    let router = crate::http::router(state.clone());
    // The listener keeps answering through the drain: `/readyz` says 503 (so load balancers
    // stop sending traffic), new streams get 503 `shutting_down`. It closes once the drain ends.
    let stop_accepting = CancellationToken::new();
    let graceful = crate::http::serve_connections(
        listener,
        router,
        stop_accepting.clone(),
        crate::http::HEAD_TIMEOUT,
    );
    let mut server = tokio::spawn(graceful);
    let died = tokio::select! {
        () = shutdown => None,
        served = &mut server => Some(served),
    };
    tracing::info!("shutting down: draining");
    state.shutdown.cancel();
    let shared = state.config.store.starts_with("redis://");
    if shared {
        state.let_go.cancel();
    }
    // The drain window counts from the signal, whatever the connections do: a client that
    // stops reading must not hold the shutdown hostage.
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(state.config.shutdown_drain_secs);
    state.tasks.close();
    if tokio::time::timeout_at(deadline, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("drain window over: interrupting running streams");
        state.relay.interrupt_all();
        state.tasks.wait().await;
    }
    if !shared {
        // Subscribers still write the terminal events the drain appended before they go.
        tokio::time::sleep(LET_GO_GRACE).await;
        state.let_go.cancel();
    }
    stop_accepting.cancel();
    let served = match died {
        Some(served) => served,
        None => match tokio::time::timeout_at(deadline + CLOSE_GRACE, &mut server).await {
            Ok(served) => served,
            Err(_) => {
                tracing::warn!("closing connections that did not finish in the drain window");
                server.abort();
                Ok(())
            }
        },
    };
    state.store_stop.cancel();
    state.store_tasks.close();
    state.store_tasks.wait().await;
    served.map_err(std::io::Error::other)
}

/// SIGHUP reloads the prompt templates; running streams are not touched.
#[cfg(unix)]
fn spawn_reload_on_hangup(state: &AppState) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: prompt templates will not reload");
        return;
    };
    let state = state.clone();
    state.tasks.clone().spawn(async move {
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => return,
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    match state.prompts.reload() {
                        Ok(count) => tracing::info!(count, "prompt templates reloaded"),
                        Err(e) => tracing::error!(error = %e, "prompt reload failed; keeping the previous templates"),
                    }
                }
            }
        }
    });
}
