//! The load generator behind `tokenrelay bench`: per-token added latency, fan-out, resume
//! replay, throughput and memory per idle subscriber, each against a direct read of the same
//! timed mock upstream measured in the same run, and each checked for lost or repeated tokens.
//!
//! - [`upstream`]: the timed mock upstream (every token carries its send time).
//! - [`server`]: tokenrelay under test, in this process or as a child `tokenrelay serve`.
//! - [`client`]: SSE readers that time tokens and count missing or duplicated ones.
//! - [`scenarios`]: the streaming scenarios (a, b, f, g); [`subscribers`]: many readers of
//!   few streams (c, d, e).
//! - [`report`]: percentiles, rows and the Markdown table.

pub mod client;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod subscribers;
pub mod upstream;

use std::path::PathBuf;
use std::time::Duration;

pub use report::{Check, Report, Row};
pub use scenarios::Scenario;

/// What went wrong in a scenario's setup or transport (lost tokens are a [`Check`] instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("setup: {0}")]
    Setup(String),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("unexpected answer: {0}")]
    Answer(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// What to run and how big.
#[derive(Clone, Debug)]
pub struct Options {
    pub scenarios: Vec<Scenario>,
    /// A Redis URL: rows a, b and e run again with the Redis store (scenario g).
    pub redis: Option<String>,
    /// Smaller sizes, for a quick look or CI.
    pub quick: bool,
    /// The `tokenrelay` binary, for the scenarios that run the server as a child process
    /// (its memory measured apart from the load generator's).
    pub server_exe: Option<PathBuf>,
}

impl Options {
    /// Every scenario at full size.
    pub fn all(server_exe: Option<PathBuf>) -> Self {
        Self {
            scenarios: Scenario::ALL.to_vec(),
            redis: None,
            quick: false,
            server_exe,
        }
    }
}

/// Runs the chosen scenarios one after the other, each within its own time limit; a
/// scenario that fails or times out is a row saying so, and the run goes on.
pub async fn run(options: &Options) -> Report {
    let mut report = Report::default();
    let upstream = match upstream::MockUpstream::start().await {
        Ok(upstream) => upstream,
        Err(e) => {
            report.push(Row::failed(
                "setup",
                "mock upstream",
                Check::Error(e.to_string()),
            ));
            return report;
        }
    };
    for &scenario in &options.scenarios {
        if scenario == Scenario::G && options.redis.is_none() {
            report.note("g: skipped, no --redis URL given");
            continue;
        }
        let limit = scenario.time_limit();
        eprintln!(
            "tokenrelay bench: scenario {} ({})",
            scenario.letter(),
            scenario.title()
        );
        let started = std::time::Instant::now();
        match tokio::time::timeout(limit, scenario.run(&upstream, options)).await {
            Ok(Ok(rows)) => rows.into_iter().for_each(|row| report.push(row)),
            Ok(Err(e)) => report.push(Row::failed(
                scenario.title(),
                "-",
                Check::Error(e.to_string()),
            )),
            Err(_) => report.push(Row::failed(scenario.title(), "-", Check::TimedOut(limit))),
        }
        eprintln!(
            "tokenrelay bench: scenario {} took {:.1} s",
            scenario.letter(),
            started.elapsed().as_secs_f64()
        );
        // Let sockets of the last scenario close before the next one opens thousands.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report
}

/// `tokenrelay bench`: runs the suite, prints the Markdown table, writes it to `--output`,
/// and exits non-zero when a token was lost or repeated, or a scenario failed or timed out.
pub async fn main(args: &crate::cli::BenchArgs) -> std::process::ExitCode {
    let options = match args.options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("tokenrelay bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let report = run(&options).await;
    let table = report.markdown();
    println!("{table}");
    if let Some(path) = &args.output {
        if let Err(e) = std::fs::write(path, &table) {
            eprintln!("tokenrelay bench: cannot write {}: {e}", path.display());
            return std::process::ExitCode::from(1);
        }
    }
    if report.passed() {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("tokenrelay bench: FAILED (see the check column)");
        std::process::ExitCode::from(1)
    }
}
