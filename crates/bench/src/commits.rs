//! The server's own timing of its group commits, read from `/metrics`.
//!
//! A message is delivered only after its batch is committed, `fsync` included,
//! so on a machine whose disk stalls the tail of a run is the disk's and not the
//! server's. The server times every commit in the histogram
//! `conclave_message_batch_seconds`; reading it just before and just after a
//! run's window puts the commits of exactly that window beside the latencies, so
//! the report itself tells a slow disk from a slow server.

use serde::Serialize;

/// The histogram's name in `/metrics`.
pub const METRIC: &str = "conclave_message_batch_seconds";

/// One reading of a Prometheus histogram: cumulative counts by upper bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// `(upper bound in seconds, observations at or below it)`, ascending; the
    /// last bound is infinite.
    buckets: Vec<(f64, u64)>,
    /// Sum of the observations, seconds.
    sum: f64,
    /// Number of observations.
    count: u64,
}

impl Histogram {
    /// Reads histogram `name` from a `/metrics` text; `None` when it is not there
    /// or a line of it does not parse.
    #[must_use]
    pub fn parse(text: &str, name: &str) -> Option<Self> {
        let bucket = format!("{name}_bucket{{le=\"");
        let sum = format!("{name}_sum ");
        let count = format!("{name}_count ");
        let mut histogram = Self::default();
        let (mut has_sum, mut has_count) = (false, false);
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&bucket) {
                let (bound, value) = rest.split_once("\"}")?;
                let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? };
                histogram.buckets.push((bound, value.trim().parse().ok()?));
            } else if let Some(value) = line.strip_prefix(&sum) {
                histogram.sum = value.trim().parse().ok()?;
                has_sum = true;
            } else if let Some(value) = line.strip_prefix(&count) {
                histogram.count = value.trim().parse().ok()?;
                has_count = true;
            }
        }
        histogram.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        (has_sum && has_count && !histogram.buckets.is_empty()).then_some(histogram)
    }

    /// What was observed after `earlier` up to this reading.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Commits {
        let counts: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .map(|&(bound, n)| {
                let before = earlier.buckets.iter().find(|b| b.0 == bound).map_or(0, |b| b.1);
                (bound, n.saturating_sub(before))
            })
            .collect();
        let commits = self.count.saturating_sub(earlier.count);
        // The smallest bound that holds `share` of the commits; a bound past the
        // last finite bucket is no figure at all.
        let within = |share: f64| {
            #[allow(clippy::cast_precision_loss)] // Counts stay far below 2^52.
            let needed = (commits as f64 * share).ceil();
            #[allow(clippy::cast_precision_loss)]
            let bound = counts.iter().find(|&&(_, n)| n as f64 >= needed).map(|b| b.0)?;
            bound.is_finite().then_some(bound * 1e3)
        };
        #[allow(clippy::cast_precision_loss)]
        let mean_ms =
            if commits == 0 { 0.0 } else { (self.sum - earlier.sum).max(0.0) * 1e3 / commits as f64 };
        Commits {
            commits,
            mean_ms,
            p99_within_ms: if commits == 0 { None } else { within(0.99) },
            all_within_ms: if commits == 0 { None } else { within(1.0) },
        }
    }
}

/// The server's commits of messages over a window, as its histogram saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Commits {
    /// Commits (transactions of one or more messages).
    pub commits: u64,
    /// Mean time of one, from its first statement to its commit, ms.
    pub mean_ms: f64,
    /// 99% of the commits took at most this long (the upper bound of their
    /// bucket), ms; none when they reach past the last finite bucket.
    pub p99_within_ms: Option<f64>,
    /// Every commit took at most this long, ms, read the same way.
    pub all_within_ms: Option<f64>,
}

impl Commits {
    /// The report line.
    #[must_use]
    pub fn line(&self) -> String {
        format!(
            "{} commits, mean {:.2} ms, 99% within {}, all within {}",
            self.commits,
            self.mean_ms,
            bound(self.p99_within_ms),
            self.slowest()
        )
    }

    /// How long the slowest commit took at most, for a one-line summary.
    #[must_use]
    pub fn slowest(&self) -> String {
        bound(self.all_within_ms)
    }
}

/// A bucket's upper bound as text; none is past the last finite bucket.
fn bound(ms: Option<f64>) -> String {
    ms.map_or_else(|| "over 4.1 s".to_owned(), |ms| format!("{ms:.2} ms"))
}

#[cfg(test)]
mod tests {
    use super::{Commits, Histogram, METRIC};

    /// The histogram as the server renders it: `counts` in its first buckets
    /// (0.25, 0.5, 1, 2 ms …), every later finite bucket equal to the last of
    /// them, and `total` in `+Inf`.
    fn rendered(counts: &[u64], total: u64, sum: f64) -> String {
        let mut text = format!("# TYPE {METRIC} histogram\n{METRIC}_sum {sum}\n{METRIC}_count {total}\n");
        let mut bound = 0.000_25;
        for i in 0..15 {
            let n = counts.get(i).or(counts.last()).copied().unwrap_or(0);
            text.push_str(&format!("{METRIC}_bucket{{le=\"{bound}\"}} {n}\n"));
            bound *= 2.0;
        }
        text.push_str(&format!("{METRIC}_bucket{{le=\"+Inf\"}} {total}\n# EOF\n"));
        text
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn a_window_counts_only_the_commits_made_in_it() {
        let before = Histogram::parse(&rendered(&[0, 1, 2], 2, 0.002), METRIC).expect("parses");
        // 100 more commits: 90 within 1 ms, 9 more within 2 ms, 1 within 32 ms.
        let after = Histogram::parse(&rendered(&[0, 1, 92, 101, 101, 101, 101, 102], 102, 0.122), METRIC)
            .expect("parses");
        let commits = after.since(&before);
        assert_eq!(commits.commits, 100);
        assert!((commits.mean_ms - 1.2).abs() < 1e-9, "{commits:?}");
        assert!(close(commits.p99_within_ms, 2.0), "{commits:?}");
        assert!(close(commits.all_within_ms, 32.0), "{commits:?}");
        assert!(
            commits.line().starts_with("100 commits, mean 1.20 ms, 99% within 2.00 ms"),
            "{}",
            commits.line()
        );
    }

    #[test]
    fn commits_past_the_last_bucket_have_no_bound_and_an_idle_window_none() {
        let before = Histogram::parse(&rendered(&[0], 0, 0.0), METRIC).expect("parses");
        // One commit of 5 s: only +Inf holds it.
        let slow = Histogram::parse(&rendered(&[0], 1, 5.0), METRIC).expect("parses");
        let commits = slow.since(&before);
        assert_eq!(commits.commits, 1);
        assert_eq!((commits.p99_within_ms, commits.all_within_ms), (None, None));
        assert!(commits.line().ends_with("all within over 4.1 s"), "{}", commits.line());
        assert_eq!(before.since(&before), Commits::default());
    }

    #[test]
    fn a_text_without_the_histogram_is_no_reading() {
        assert_eq!(Histogram::parse("conclave_messages_total 3\n# EOF\n", METRIC), None);
        assert_eq!(Histogram::parse(&rendered(&[1], 1, 0.001).replace("_count 1", "_count x"), METRIC), None);
    }
}
