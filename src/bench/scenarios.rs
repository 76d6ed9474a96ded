//! The scenarios by letter, their sizes (full and `--quick`) and time limits, and the
//! streaming ones: many concurrent chat streams read directly from the mock and through
//! tokenrelay, one row per target, ratios against the direct row of the same run.

use std::time::{Duration, Instant};

use super::client::{Tally, Timed, http_client, read_chat};
use super::report::{Check, Row};
use super::server::{InProcess, bench_config};
use super::upstream::{MockModel, MockUpstream};
use super::{BenchError, Options, subscribers};

/// The limit of one part of scenario g.
const PART_LIMIT: Duration = Duration::from_secs(150);

/// One scenario of the suite (see `docs/benchmarks.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// 1 stream, 100 tokens at 10 ms.
    A,
    /// 1,000 concurrent streams, 100 tokens at 20 ms.
    B,
    /// 10,000 idle subscribers: server memory per subscriber.
    C,
    /// Fan-out: one stream to 5,000 subscribers.
    D,
    /// Resume: replay of a 2,000-event backlog.
    E,
    /// Throughput: 50 streams as fast as possible.
    F,
    /// a, b and e with the Redis store.
    G,
}

impl Scenario {
    pub const ALL: [Self; 7] = [
        Self::A,
        Self::B,
        Self::C,
        Self::D,
        Self::E,
        Self::F,
        Self::G,
    ];

    pub fn letter(self) -> char {
        match self {
            Self::A => 'a',
            Self::B => 'b',
            Self::C => 'c',
            Self::D => 'd',
            Self::E => 'e',
            Self::F => 'f',
            Self::G => 'g',
        }
    }

    pub fn from_letter(letter: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| letter.len() == 1 && letter.starts_with(s.letter()))
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::A => "a: 1 stream",
            Self::B => "b: concurrent streams",
            Self::C => "c: idle subscribers",
            Self::D => "d: fan-out",
            Self::E => "e: resume replay",
            Self::F => "f: throughput",
            Self::G => "g: Redis store",
        }
    }

    /// Past this, the scenario is reported as timed out.
    pub fn time_limit(self) -> Duration {
        Duration::from_secs(match self {
            Self::A => 60,
            Self::B | Self::D | Self::E | Self::F => 240,
            Self::C => 300,
            Self::G => 3 * 150 + 30,
        })
    }

    pub async fn run(
        self,
        upstream: &MockUpstream,
        options: &Options,
    ) -> Result<Vec<Row>, BenchError> {
        let quick = options.quick;
        let memory = ["memory"];
        match self {
            Self::A => {
                streaming(
                    upstream,
                    "a: 1 stream × 100 tokens at 10 ms",
                    MockModel::new(100, 10),
                    1,
                    &memory,
                )
                .await
            }
            Self::B => {
                let streams = pick(quick, 1000, 100);
                let label = format!("b: {streams} streams × 100 tokens at 20 ms");
                streaming(upstream, &label, MockModel::new(100, 20), streams, &memory).await
            }
            Self::C => subscribers::idle(options).await,
            Self::D => {
                subscribers::fan_out(
                    upstream,
                    pick(quick, 5000, 500),
                    MockModel::new(pick(quick, 50, 20), 100),
                )
                .await
            }
            Self::E => {
                subscribers::resume(
                    upstream,
                    "memory",
                    pick(quick, 2000, 2000),
                    pick(quick, 200, 20),
                )
                .await
            }
            Self::F => {
                let (streams, tokens) = pick(quick, (50, 2000), (10, 500));
                let label = format!("f: {streams} streams × {tokens} tokens, no gap");
                streaming(
                    upstream,
                    &label,
                    MockModel::new(tokens, 0),
                    streams,
                    &memory,
                )
                .await
            }
            Self::G => {
                let url = options.redis.as_deref().unwrap_or_default();
                let redis = [url];
                let streams = pick(quick, 1000, 100);
                let label_b = format!("g/b: {streams} streams × 100 tokens at 20 ms");
                // Each part in its own limit, so one failing part keeps the others' rows.
                let mut rows = part(
                    "g/a: 1 stream × 100 tokens at 10 ms",
                    streaming(
                        upstream,
                        "g/a: 1 stream × 100 tokens at 10 ms",
                        MockModel::new(100, 10),
                        1,
                        &redis,
                    ),
                )
                .await;
                let b = streaming(upstream, &label_b, MockModel::new(100, 20), streams, &redis);
                rows.extend(part(&label_b, b).await);
                let e = subscribers::resume(upstream, url, 2000, pick(quick, 200, 20));
                rows.extend(part("g/e: resume replay", e).await);
                Ok(rows)
            }
        }
    }
}

/// Runs one part of a scenario within [`PART_LIMIT`]; a failure is a row saying so.
async fn part(label: &str, rows: impl Future<Output = Result<Vec<Row>, BenchError>>) -> Vec<Row> {
    match tokio::time::timeout(PART_LIMIT, rows).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => vec![Row::failed(label, "-", Check::Error(e.to_string()))],
        Err(_) => vec![Row::failed(label, "-", Check::TimedOut(PART_LIMIT))],
    }
}

/// The name of a store for a row's target.
pub fn target_name(store: &str) -> String {
    if store == "memory" {
        "tokenrelay (memory)".to_owned()
    } else {
        "tokenrelay (redis)".to_owned()
    }
}

/// `streams` concurrent chat streams of `model`, direct first, then through tokenrelay with
/// each store: per-token latency, tokens/s, and the tally of every stream.
pub async fn streaming(
    upstream: &MockUpstream,
    label: &str,
    model: MockModel,
    streams: usize,
    stores: &[&str],
) -> Result<Vec<Row>, BenchError> {
    let mut targets = vec![("direct".to_owned(), upstream.origin(), String::new(), None)];
    for store in stores {
        let server = InProcess::start(bench_config(store, &upstream.origin())).await?;
        targets.push((
            target_name(store),
            server.origin(),
            "openai/".to_owned(),
            Some(server),
        ));
    }
    let mut rows: Vec<Row> = Vec::new();
    for (target, origin, prefix, _server) in &targets {
        // Warm up connections and code paths.
        let warm = MockModel::new(5, 0).name();
        concurrent(origin, &format!("{prefix}{warm}"), 5, 2).await?;
        let started = Instant::now();
        let reads = concurrent(
            origin,
            &format!("{prefix}{}", model.name()),
            model.tokens,
            streams,
        )
        .await?;
        let elapsed = started.elapsed().as_secs_f64();
        let count = reads.tokens.len();
        let slowest = reads
            .tokens
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|t| t.0);
        let check = reads.check(streams);
        let mut row = Row::new(
            label,
            target,
            "µs",
            reads.tokens.into_iter().map(|(_, l)| l).collect(),
        );
        row.tokens_per_sec = Some(count as f64 / elapsed);
        row.check = check;
        if let Some(direct) = rows.first() {
            let rate = |r: &Row| r.tokens_per_sec.unwrap_or(0.0);
            row.note = format!(
                "tokens/s × direct: {:.2}; ",
                rate(&row) / rate(direct).max(f64::MIN_POSITIVE)
            );
            row = row.against(direct);
        }
        if let Some(n) = slowest {
            row.note.push_str(&format!("slowest: token #{n}"));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// What concurrent readers saw: every token, the tally of the streams that ended, and the
/// streams that failed.
#[derive(Debug, Default)]
pub struct Reads {
    pub tokens: Vec<Timed>,
    pub tally: Tally,
    pub failed: usize,
    pub first_error: Option<String>,
}

impl Reads {
    /// Failed streams first, then lost or repeated tokens.
    pub fn check(&self, streams: usize) -> Check {
        match &self.first_error {
            Some(e) => Check::Error(format!(
                "{} of {streams} streams failed, the first with: {e}",
                self.failed
            )),
            None if self.tally.is_clean() => Check::Ok,
            None => Check::Lost {
                missing: self.tally.missing,
                duplicated: self.tally.duplicated,
            },
        }
    }
}

/// Reads `streams` chat streams of `model` from `origin` at once; every token, and the
/// tally of every stream against `1..=tokens`. A stream that fails is counted, not fatal.
pub async fn concurrent(
    origin: &str,
    model: &str,
    tokens: u64,
    streams: usize,
) -> Result<Reads, BenchError> {
    let client = http_client(streams)?;
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (client, origin, model) = (client.clone(), origin.to_owned(), model.to_owned());
            tokio::spawn(async move { read_chat(&client, &origin, &model).await })
        })
        .collect();
    let mut reads = Reads {
        tokens: Vec::with_capacity(streams * usize::try_from(tokens).unwrap_or(0)),
        ..Reads::default()
    };
    for task in tasks {
        match task
            .await
            .map_err(|e| BenchError::Setup(format!("reader task: {e}")))?
        {
            Ok(read) => {
                reads
                    .tally
                    .add(Tally::of(read.iter().map(|(n, _)| *n), tokens));
                reads.tokens.extend(read);
            }
            Err(e) => {
                reads.failed += 1;
                reads.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(reads)
}

/// The full size, or the small one under `--quick`.
fn pick<T>(quick: bool, full: T, small: T) -> T {
    if quick { small } else { full }
}
