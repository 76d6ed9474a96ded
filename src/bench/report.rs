//! Results: percentiles of samples, one row per scenario and target, and the Markdown table.
//! A row's [`Check`] says whether every token arrived exactly once.

use std::fmt::Write as _;
use std::time::Duration;

/// Nearest-rank percentiles and maximum of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    /// None for no samples.
    pub fn of(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let rank = (p * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Some(Self {
            count: samples.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        })
    }
}

/// Whether a row's tokens all arrived exactly once, and whether it ran at all.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    Ok,
    Lost { missing: u64, duplicated: u64 },
    TimedOut(Duration),
    Error(String),
}

impl Check {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok)
    }

    fn describe(&self) -> String {
        match self {
            Self::Ok => "ok".to_owned(),
            Self::Lost {
                missing,
                duplicated,
            } => format!("FAILED: {missing} missing, {duplicated} duplicated"),
            Self::TimedOut(limit) => format!("FAILED: timed out after {} s", limit.as_secs()),
            Self::Error(message) => format!("FAILED: {}", message.replace('|', "/")),
        }
    }
}

/// One measured line: a scenario against one target (direct, memory store, Redis store).
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    pub target: String,
    /// The unit of the percentiles: `µs`, `ms`.
    pub unit: &'static str,
    pub stats: Option<Stats>,
    pub tokens_per_sec: Option<f64>,
    /// p50 and p99 of this row divided by those of the direct row of the same run.
    pub ratio: Option<(f64, f64)>,
    pub check: Check,
    pub note: String,
}

impl Row {
    pub fn new(scenario: &str, target: &str, unit: &'static str, samples: Vec<f64>) -> Self {
        Self {
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            unit,
            stats: Stats::of(samples),
            tokens_per_sec: None,
            ratio: None,
            check: Check::Ok,
            note: String::new(),
        }
    }

    pub fn failed(scenario: &str, target: &str, check: Check) -> Self {
        Self {
            check,
            ..Self::new(scenario, target, "", Vec::new())
        }
    }

    /// Sets the ratio of this row's p50 and p99 to the direct row's.
    pub fn against(mut self, direct: &Row) -> Self {
        if let (Some(own), Some(base)) = (self.stats, direct.stats) {
            self.ratio = Some((
                own.p50 / base.p50.max(f64::MIN_POSITIVE),
                own.p99 / base.p99.max(f64::MIN_POSITIVE),
            ));
        }
        self
    }
}

/// Every row of a run, plus free-form notes (skipped scenarios).
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn push(&mut self, row: Row) {
        if !row.check.is_ok() {
            eprintln!(
                "tokenrelay bench: {} / {}: {}",
                row.scenario,
                row.target,
                row.check.describe()
            );
        }
        self.rows.push(row);
    }

    pub fn note(&mut self, note: &str) {
        self.notes.push(note.to_owned());
    }

    /// True when every row ran and lost nothing.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|row| row.check.is_ok())
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| scenario | target | samples | p50 | p90 | p99 | max | tokens/s | p50 × direct | p99 × direct | check | note |\n\
             | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
        );
        let dash = || "-".to_owned();
        for row in &self.rows {
            let figure = |value: f64| format_figure(value, row.unit);
            let (count, p50, p90, p99, max) = row.stats.map_or_else(
                || (dash(), dash(), dash(), dash(), dash()),
                |s| {
                    (
                        s.count.to_string(),
                        figure(s.p50),
                        figure(s.p90),
                        figure(s.p99),
                        figure(s.max),
                    )
                },
            );
            let rate = row.tokens_per_sec.map_or_else(dash, |r| format!("{r:.0}"));
            let (r50, r99) = row.ratio.map_or_else(
                || (dash(), dash()),
                |(a, b)| (format!("{a:.2}"), format!("{b:.2}")),
            );
            let _ = writeln!(
                out,
                "| {} | {} | {count} | {p50} | {p90} | {p99} | {max} | {rate} | {r50} | {r99} | {} | {} |",
                row.scenario,
                row.target,
                row.check.describe(),
                row.note,
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }
}

fn format_figure(value: f64, unit: &str) -> String {
    if value >= 100.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let stats = Stats::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(
            (stats.p50, stats.p90, stats.p99, stats.max),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Stats::of(vec![7.0]).unwrap().p99, 7.0);
        assert!(Stats::of(Vec::new()).is_none());
    }

    #[test]
    fn a_lost_token_fails_the_report() {
        let mut report = Report::default();
        report.push(Row::new("a", "direct", "µs", vec![1.0]));
        assert!(report.passed());
        report.push(Row::failed(
            "a",
            "memory",
            Check::Lost {
                missing: 1,
                duplicated: 0,
            },
        ));
        assert!(!report.passed());
        assert!(report.markdown().contains("1 missing, 0 duplicated"));
    }
}
