//! Many readers of few streams: idle subscribers and the server's memory per subscriber (c),
//! one stream fanned out to thousands (d), and resume replay of a finished backlog (e).

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use super::client::{
    Tally, Timed, create_stream, http_client, is_terminal, micros_since, native_token, publish,
    read_chat, seq_of, subscribe, wait_finished,
};
use super::report::{Check, Row};
use super::scenarios::{concurrent, target_name};
use super::server::{ChildServer, InProcess, bench_config, open_files_limit, own_rss_kib};
use super::upstream::{MockModel, MockUpstream, now_ns};
use super::{BenchError, Options};

/// Subscriptions being opened at once (a burst of thousands overflows the listen backlog).
const CONNECTING: usize = 200;
/// File descriptors kept free for everything that is not a subscriber.
const SPARE_FILES: u64 = 500;

/// (c) `idle` subscribers spread over agent streams of a child `tokenrelay serve`: the
/// child's resident memory before and after they connect, then the latency of one published
/// event waking all of them, each of which must see it exactly once.
pub async fn idle(options: &Options) -> Result<Vec<Row>, BenchError> {
    let exe = options.server_exe.as_deref().ok_or_else(|| {
        BenchError::Setup("needs the tokenrelay binary to run the server as a child".to_owned())
    })?;
    let wanted: u64 = if options.quick { 1000 } else { 10_000 };
    // Each side of a connection is a file in its own process, so each process needs `subs`.
    let limit = open_files_limit().unwrap_or(1024);
    let subs = usize::try_from(wanted.min(limit.saturating_sub(SPARE_FILES))).unwrap_or(0);
    let streams = if options.quick { 2 } else { 10 };
    let child = ChildServer::start(exe, &child_config()).await?;
    let origin = child.origin();
    let client = http_client(subs)?;
    let mut agents = Vec::new();
    for _ in 0..streams {
        agents.push(create_stream(&client, &origin, None).await?);
    }
    // One subscriber connected and gone first, so lazily built state is in the baseline.
    drop(
        subscribe(&client, &origin, &agents[0].0)
            .await?
            .next()
            .await,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (server_before, client_before) = (child.rss_kib()?, own_rss_kib()?);

    let (ready, mut readied) = mpsc::unbounded_channel();
    let gate = std::sync::Arc::new(Semaphore::new(CONNECTING));
    let tasks: Vec<_> = (0..subs)
        .map(|i| {
            let (client, origin, gate, ready) =
                (client.clone(), origin.clone(), gate.clone(), ready.clone());
            let id = agents[i % streams].0.clone();
            tokio::spawn(async move { idle_subscriber(&client, &origin, &id, &gate, &ready).await })
        })
        .collect();
    for _ in 0..subs {
        if let Some(Err(e)) = readied.recv().await {
            return Err(BenchError::Answer(format!(
                "an idle subscriber could not connect: {e}"
            )));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (server_after, client_after) = (child.rss_kib()?, own_rss_kib()?);

    for (id, token) in &agents {
        let wake =
            json!({"type": "custom", "data": {"name": "wake", "value": now_ns().to_string()}});
        publish(&client, &origin, id, token, &wake).await?;
        let done = json!({"type": "stream.completed", "data": {"finish_reason": "stop"}});
        publish(&client, &origin, id, token, &done).await?;
    }
    let mut latencies = Vec::with_capacity(subs);
    let mut tally = Tally::default();
    for task in tasks {
        let wakes = task
            .await
            .map_err(|e| BenchError::Setup(format!("subscriber task: {e}")))??;
        tally.add(Tally::of(wakes.iter().map(|_| 1), 1));
        latencies.extend(wakes);
    }
    let per = |before: u64, after: u64| after.saturating_sub(before) as f64 / subs.max(1) as f64;
    let mut row = Row::new(
        &format!("c: {subs} idle subscribers on {streams} agent streams, wake-up of all"),
        "tokenrelay (memory, child process)",
        "µs",
        latencies,
    );
    row.note = format!(
        "server RSS {server_before} → {server_after} KiB: {:.1} KiB per idle subscriber; load generator {:.1} KiB per connection; open-file limit {limit}",
        per(server_before, server_after),
        per(client_before, client_after),
    );
    if (subs as u64) < wanted {
        row.note
            .push_str(&format!("; reduced from {wanted} by the open-file limit"));
    }
    row.check = lost(tally);
    Ok(vec![row])
}

/// Connects, reports readiness on the first event, then waits for the wake event; returns
/// the latency of each wake event seen (one, when nothing is lost).
async fn idle_subscriber(
    client: &reqwest::Client,
    origin: &str,
    id: &str,
    gate: &Semaphore,
    ready: &mpsc::UnboundedSender<Result<(), String>>,
) -> Result<Vec<f64>, BenchError> {
    let permit = gate
        .acquire()
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let mut events = match subscribe(client, origin, id).await {
        Ok(events) => events,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return Err(e);
        }
    };
    let first = events.next().await;
    drop(permit);
    let _ = ready.send(match &first {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("closed before its first event".to_owned()),
    });
    let mut wakes = Vec::new();
    while let Some(event) = events.next().await {
        let event = event?;
        if is_terminal(&event) {
            break;
        }
        if event.event == "custom" {
            let data: serde_json::Value = serde_json::from_str(&event.data)
                .map_err(|e| BenchError::Answer(format!("custom event: {e}")))?;
            if let Some(sent) = data["value"].as_str().and_then(|v| v.parse().ok()) {
                wakes.push(micros_since(sent));
            }
        }
    }
    Ok(wakes)
}

/// The child server's config: limits out of the way, everything else default.
fn child_config() -> String {
    "store = \"memory\"\n[limits]\nmax_streams_per_key = 1000000\nrequests_per_minute_per_key = 100000000\nmax_subscribers_per_stream = 1000000\n".to_owned()
}

/// (d) One background chat stream read by `subs` subscribers at once, against one direct
/// reader of the same upstream: every subscriber connects before the mock sends token 1.
pub async fn fan_out(
    upstream: &MockUpstream,
    subs: usize,
    model: MockModel,
) -> Result<Vec<Row>, BenchError> {
    let label = format!(
        "d: 1 stream × {} tokens at {} ms to {subs} subscribers",
        model.tokens,
        model.gap.as_millis()
    );
    let reads = concurrent(&upstream.origin(), &model.name(), model.tokens, 1).await?;
    let check = reads.check(1);
    let mut direct = Row::new(&label, "direct (1 reader)", "µs", values(reads.tokens));
    direct.check = check;

    let server = InProcess::start(bench_config("memory", &upstream.origin())).await?;
    let origin = server.origin();
    let client = http_client(subs)?;
    upstream.close_gate();
    let (id, _) = create_stream(
        &client,
        &origin,
        Some(&format!("openai/{}", model.gated().name())),
    )
    .await?;
    let gate = std::sync::Arc::new(Semaphore::new(CONNECTING));
    let (ready, mut readied) = mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..subs)
        .map(|_| {
            let (client, origin, id, gate, ready) = (
                client.clone(),
                origin.clone(),
                id.clone(),
                gate.clone(),
                ready.clone(),
            );
            tokio::spawn(async move {
                let permit = gate
                    .acquire()
                    .await
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
                let subscribed = subscribe(&client, &origin, &id).await;
                drop(permit);
                let _ = ready.send(());
                read_tokens(subscribed?).await
            })
        })
        .collect();
    for _ in 0..subs {
        readied.recv().await;
    }
    upstream.open_gate();
    let mut tokens = Vec::new();
    let mut tally = Tally::default();
    for task in tasks {
        let (read, _) = task
            .await
            .map_err(|e| BenchError::Setup(format!("subscriber task: {e}")))??;
        tally.add(Tally::of(read.iter().map(|(n, _)| *n), model.tokens));
        tokens.extend(read);
    }
    let mut row = Row::new(&label, "tokenrelay (memory)", "µs", values(tokens)).against(&direct);
    row.check = lost(tally);
    row.note = "latency over all subscribers".to_owned();
    Ok(vec![direct, row])
}

/// Reads native events to the terminal one: the timed tokens, and the sequence numbers.
async fn read_tokens(
    mut events: super::client::Events,
) -> Result<(Vec<Timed>, Vec<u64>), BenchError> {
    let (mut tokens, mut seqs) = (Vec::new(), Vec::new());
    while let Some(event) = events.next().await {
        let event = event?;
        seqs.extend(seq_of(&event));
        tokens.extend(native_token(&event));
        if is_terminal(&event) {
            break;
        }
    }
    Ok((tokens, seqs))
}

/// (e) A finished `backlog`-token stream read from the start `repeats` times: the time from
/// the request to its last event, against reading as many tokens straight from the mock.
pub async fn resume(
    upstream: &MockUpstream,
    store: &str,
    backlog: u64,
    repeats: usize,
) -> Result<Vec<Row>, BenchError> {
    let store_name = if store == "memory" { "" } else { "g/" };
    let label = format!("{store_name}e: replay of a {backlog}-token backlog ×{repeats}");
    let model = MockModel::new(backlog, 0);
    let client = http_client(4)?;
    let mut direct_ms = Vec::with_capacity(repeats);
    let mut direct_tally = Tally::default();
    for _ in 0..repeats {
        let started = Instant::now();
        let read = read_chat(&client, &upstream.origin(), &model.name()).await?;
        direct_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        direct_tally.add(Tally::of(read.iter().map(|(n, _)| *n), backlog));
    }
    let mut direct = Row::new(&label, "direct (mock, no gap)", "ms", direct_ms);
    direct.check = lost(direct_tally);

    let server = InProcess::start(bench_config(store, &upstream.origin())).await?;
    let origin = server.origin();
    let (id, _) =
        create_stream(&client, &origin, Some(&format!("openai/{}", model.name()))).await?;
    let status = wait_finished(&client, &origin, &id).await?;
    let mut replay_ms = Vec::with_capacity(repeats);
    let (mut tally, mut events) = (Tally::default(), 0);
    for _ in 0..repeats {
        let started = Instant::now();
        let (tokens, seqs) = read_tokens(subscribe(&client, &origin, &id).await?).await?;
        replay_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        tally.add(Tally::of(tokens.iter().map(|(n, _)| *n), backlog));
        // The event ids themselves must be dense from 1, too.
        tally.add(Tally::of(seqs.iter().copied(), seqs.len() as u64));
        events = seqs.len();
    }
    let mut row = Row::new(&label, &target_name(store), "ms", replay_ms).against(&direct);
    row.check = lost(tally);
    row.note = format!("{events} events, stream {status}; request to last event");
    Ok(vec![direct, row])
}

fn values(tokens: Vec<Timed>) -> Vec<f64> {
    tokens.into_iter().map(|(_, latency)| latency).collect()
}

fn lost(tally: Tally) -> Check {
    if tally.is_clean() {
        Check::Ok
    } else {
        Check::Lost {
            missing: tally.missing,
            duplicated: tally.duplicated,
        }
    }
}

/// The binary this process runs, for scenarios that start `tokenrelay serve` as a child.
pub fn current_exe() -> Option<std::path::PathBuf> {
    std::env::current_exe()
        .ok()
        .filter(|p| Path::new(p).exists())
}
