//! Figures and their presentation: latency histograms, resource deltas, and the
//! one report every scenario prints (`--json`: one JSON object; otherwise
//! aligned `name  value` lines).

use crate::server::{Machine, ProcessSample, TargetInfo};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// A latency histogram in microseconds, from 1 µs to one hour, 3 significant
/// digits.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        // Bounds are constants that hdrhistogram accepts; it cannot fail.
        Self(Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| unreachable!()))
    }

    /// Records one latency in microseconds (clamped into the histogram's range).
    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.max(1));
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// How many values were recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The percentiles reported, in milliseconds.
    #[must_use]
    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us_to_ms(us);
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            p999_ms: ms(self.0.value_at_quantile(0.999)),
            max_ms: ms(self.0.max()),
            mean_ms: self.0.mean() / 1000.0,
        }
    }
}

#[allow(clippy::cast_precision_loss)] // Microseconds stay far below 2^52.
fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Latency percentiles.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
}

impl LatencySummary {
    /// `p50 … max` on one line.
    #[must_use]
    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.count
        )
    }
}

/// What a process used between two samples.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    /// CPU seconds (user + system) in the window.
    pub cpu_secs: f64,
    /// Resident memory at the start, KiB.
    pub rss_before_kib: u64,
    /// Resident memory at the end, KiB.
    pub rss_after_kib: u64,
    /// Peak resident memory at the end, KiB.
    pub peak_rss_kib: u64,
    /// Open file descriptors at the end.
    pub fds: u64,
    /// Threads at the end.
    pub threads: u64,
}

impl Usage {
    /// The difference between two samples.
    #[must_use]
    pub fn between(before: ProcessSample, after: ProcessSample) -> Self {
        Self {
            cpu_secs: (after.cpu_secs - before.cpu_secs).max(0.0),
            rss_before_kib: before.rss_kib,
            rss_after_kib: after.rss_kib,
            peak_rss_kib: after.peak_rss_kib,
            fds: after.fds,
            threads: after.threads,
        }
    }

    /// The difference, when both samples exist.
    #[must_use]
    pub fn maybe(before: Option<ProcessSample>, after: Option<ProcessSample>) -> Option<Self> {
        Some(Self::between(before?, after?))
    }

    /// `cpu … rss …` on one line.
    #[must_use]
    pub fn line(&self) -> String {
        format!(
            "cpu {:.2} s  rss {} -> {} MiB (peak {} MiB)  fds {}  threads {}",
            self.cpu_secs,
            self.rss_before_kib / 1024,
            self.rss_after_kib / 1024,
            self.peak_rss_kib / 1024,
            self.fds,
            self.threads
        )
    }
}

/// Per-second rate, 0 for an empty window.
#[must_use]
pub fn per_sec(count: u64, window: Duration) -> f64 {
    let secs = window.as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // Counts stay far below 2^52.
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Microseconds of CPU per unit of work, `None` without work or without a figure.
#[must_use]
pub fn cpu_us_per(usage: Option<&Usage>, count: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)] // Counts stay far below 2^52.
    usage.filter(|_| count > 0).map(|u| u.cpu_secs * 1e6 / count as f64)
}

/// A scenario's result: a JSON object (scenario fields plus the common header)
/// and the human summary built from it.
#[derive(Debug)]
pub struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// Human-readable lines, in order.
    pub lines: Vec<(String, String)>,
    /// The JSON fields of the scenario.
    pub json: Map<String, Value>,
}

impl Report {
    /// An empty report for `scenario`.
    #[must_use]
    pub fn new(scenario: &'static str) -> Self {
        Self { scenario, lines: Vec::new(), json: Map::new() }
    }

    /// Adds a JSON field.
    pub fn field(&mut self, key: &str, value: impl Serialize) {
        self.json.insert(key.to_owned(), serde_json::to_value(value).unwrap_or(Value::Null));
    }

    /// Adds a human line.
    pub fn line(&mut self, name: &str, value: impl Into<String>) {
        self.lines.push((name.to_owned(), value.into()));
    }

    /// The full JSON object, with the machine, server and command line.
    #[must_use]
    pub fn to_json(&self, machine: &Machine, server: &TargetInfo, command: &str) -> Value {
        let mut object = Map::new();
        object.insert("scenario".into(), Value::from(self.scenario));
        object.insert("command".into(), Value::from(command));
        object.insert("machine".into(), serde_json::to_value(machine).unwrap_or(Value::Null));
        object.insert("server".into(), serde_json::to_value(server).unwrap_or(Value::Null));
        object.extend(self.json.clone());
        Value::Object(object)
    }

    /// The human summary.
    #[must_use]
    pub fn to_text(&self, machine: &Machine, server: &TargetInfo) -> String {
        let mut lines = vec![
            (String::from("scenario"), self.scenario.to_owned()),
            (
                String::from("machine"),
                format!("{} x {}, {} MiB", machine.cpus, machine.cpu, machine.memory_mib),
            ),
            (
                String::from("server"),
                format!(
                    "{}{}  (figures from {})",
                    server.address,
                    server.command.as_deref().map(|c| format!("  ({c})")).unwrap_or_default(),
                    server.figures_from
                ),
            ),
        ];
        lines.extend(self.lines.iter().cloned());
        let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        lines.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
    }
}
