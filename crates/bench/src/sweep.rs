//! `sweep`: `room` at rising rates on one room until it stops holding, to find
//! the saturation throughput.
//!
//! A rate *holds* when every receiver got every entry exactly once and in order
//! within `--deliver-within-s` of the window's end, the p99 latency is at most
//! `--p99-limit-ms`, and no send was refused. The total rate doubles from
//! `--start-rate` until a step fails, then `--refine` bisection steps narrow the
//! gap. The room is set up once; each step runs on it after a short pause, once
//! the server has settled (see `traffic::settle`).
//!
//! A step that fails only on time (p99, or entries late but none duplicated or
//! reordered) is run again, up to `--retries` times, and holds if any run
//! holds: a stall of a shared machine or its disk fails one run, saturation
//! fails them all. Every run is reported.

use crate::{
    room::{self, CheckArgs, close_all},
    server::Target,
    stats::Report,
    traffic::{self, RunResult},
};
use anyhow::{Result, bail};
use serde::Serialize;
use std::time::Duration;

/// Flags of `sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// Members of the room, the owner included.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Members that send; the total rate is split evenly among them.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Plaintext bytes per message.
    #[arg(long, default_value_t = 140)]
    pub size: usize,
    /// Length of each step's sending window, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Total messages per second of the first step.
    #[arg(long, default_value_t = 10.0)]
    pub start_rate: f64,
    /// Highest total rate tried.
    #[arg(long, default_value_t = 100_000.0)]
    pub max_rate: f64,
    /// A step fails when its p99 latency exceeds this, ms.
    #[arg(long, default_value_t = 50.0)]
    pub p99_limit_ms: f64,
    /// Bisection steps after the first failure.
    #[arg(long, default_value_t = 3)]
    pub refine: u32,
    /// Runs again a step that failed only on time, up to this many times.
    #[arg(long, default_value_t = 1)]
    pub retries: u32,
    #[command(flatten)]
    pub check: CheckArgs,
}

/// One step of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Total messages per second offered.
    pub rate: f64,
    /// Which run of this rate (1 unless an earlier one failed on time).
    pub attempt: u32,
    /// Whether it held.
    pub holds: bool,
    /// Why not, if it did not.
    pub reason: Option<String>,
    /// The run's figures.
    pub result: RunResult,
}

/// Runs the scenario.
///
/// # Errors
/// Setup failures.
pub async fn run(target: &Target, args: &SweepArgs) -> Result<Report> {
    if args.start_rate <= 0.0 || args.max_rate < args.start_rate {
        bail!("--start-rate must be positive and at most --max-rate");
    }
    let tag = crate::run_tag("s");
    let ready = room::prepare(target, &tag, args.members, args.senders, &args.check).await?;
    let rooms = [ready.room.clone()];
    let mut participants = ready.participants;
    let mut steps: Vec<Step> = Vec::new();
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = args.start_rate;
    let mut refinements = 0;
    let mut attempt = 1;
    loop {
        #[allow(clippy::cast_precision_loss)] // Sender counts are small.
        let per_sender = rate / args.senders as f64;
        let plan = room::plan(per_sender, args.size, args.duration, &args.check);
        let (back, result) = traffic::run(target, &rooms, participants, plan).await?;
        participants = back;
        let reason = failure(&result, args.p99_limit_ms);
        let holds = reason.is_none();
        eprintln!(
            "sweep: {rate:.1} msg/s in (run {attempt}), {:.0} deliveries/s, p99 {:.2} ms: {}",
            result.delivered_per_s,
            result.latency.p99_ms,
            reason.as_deref().unwrap_or("holds")
        );
        let again = !holds && attempt <= args.retries && wrong(&result).is_none();
        steps.push(Step { rate, attempt, holds, reason, result });
        if again {
            attempt += 1;
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        attempt = 1;
        if holds {
            good = Some(good.map_or(rate, |g: f64| g.max(rate)));
        } else {
            bad = Some(bad.map_or(rate, |b: f64| b.min(rate)));
        }
        rate = match (good, bad) {
            (_, None) if rate * 2.0 <= args.max_rate => rate * 2.0,
            (_, None) => break,
            (None, Some(_)) => break,
            (Some(g), Some(b)) => {
                if refinements >= args.refine || b - g < 1.0 {
                    break;
                }
                refinements += 1;
                f64::midpoint(g, b)
            }
        };
        // Let queues from a failed step drain before the next.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    close_all(participants).await;

    let holding = steps.iter().filter(|s| s.holds).max_by(|a, b| a.rate.total_cmp(&b.rate));
    let mut report = Report::new("sweep");
    ready.setup.describe(&mut report, args.members);
    report.line(
        "criteria",
        format!(
            "p99 <= {} ms, everything delivered within {} s, no loss, no refused send",
            args.p99_limit_ms, args.check.deliver_within_s
        ),
    );
    for step in &steps {
        let label = match step.attempt {
            1 => format!("{:.1} msg/s", step.rate),
            n => format!("{:.1} msg/s (run {n})", step.rate),
        };
        report.line(
            &label,
            format!(
                "{:>9.0} deliveries/s  p99 {:>8.2} ms  max {:>8.2} ms  server {} µs/delivery  commits within {}  {}",
                step.result.delivered_per_s,
                step.result.latency.p99_ms,
                step.result.latency.max_ms,
                step.result.server_cpu_us_per_delivery.map_or_else(|| "?".to_owned(), |v| format!("{v:.2}")),
                step.result.server_commits.map_or_else(|| "?".to_owned(), |c| c.slowest()),
                step.reason.as_deref().unwrap_or("holds")
            ),
        );
    }
    match holding {
        Some(step) => report.line(
            "saturation",
            format!(
                "{:.1} msg/s in = {:.0} deliveries/s still holds",
                step.rate, step.result.delivered_per_s
            ),
        ),
        None => report.line("saturation", "no step held"),
    }
    report.field("members", args.members);
    report.field("senders", args.senders);
    report.field("p99_limit_ms", args.p99_limit_ms);
    report.field("deliver_within_s", args.check.deliver_within_s);
    report.field("retries", args.retries);
    report.field("setup", ready.setup);
    report.field("holding_rate_msgs_per_s", holding.map(|s| s.rate));
    report.field("holding_deliveries_per_s", holding.map(|s| s.result.delivered_per_s));
    report.field("steps", &steps);
    Ok(report)
}

/// Why a step does not hold, or `None`.
fn failure(result: &RunResult, p99_limit_ms: f64) -> Option<String> {
    wrong(result).or_else(|| late(result, p99_limit_ms))
}

/// What fails a step whenever it happens: entries duplicated or reordered,
/// refused sends, failed connections, wrong content.
fn wrong(result: &RunResult) -> Option<String> {
    if result.loss.duplicated_or_reordered > 0 {
        return Some(format!(
            "lost or reordered: {} missing, {} duplicated/reordered",
            result.loss.missing, result.loss.duplicated_or_reordered
        ));
    }
    let refused: u64 = result.errors.values().sum();
    if refused > 0 || result.connection_failures > 0 {
        return Some(format!("{refused} refused sends, {} failed connections", result.connection_failures));
    }
    if result.content.decrypt_failures + result.content.content_errors > 0 {
        return Some("content check failed".to_owned());
    }
    None
}

/// What fails a step on time alone (entries late, or a p99 over the limit):
/// a run at a calmer moment could hold.
fn late(result: &RunResult, p99_limit_ms: f64) -> Option<String> {
    if !result.loss.exactly_once_in_order {
        return Some(format!("not delivered in time: {} missing", result.loss.missing));
    }
    if result.latency.p99_ms > p99_limit_ms {
        return Some(format!("p99 {:.2} ms over {p99_limit_ms} ms", result.latency.p99_ms));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(p99_ms: f64, missing: u64, reordered: u64) -> RunResult {
        let mut result = RunResult::default();
        result.latency.p99_ms = p99_ms;
        result.loss.missing = missing;
        result.loss.duplicated_or_reordered = reordered;
        result.loss.exactly_once_in_order = missing == 0 && reordered == 0;
        result
    }

    #[test]
    fn a_step_late_on_time_alone_is_run_again_and_a_wrong_one_is_not() {
        let slow = run_with(400.0, 0, 0);
        assert!(failure(&slow, 250.0).is_some_and(|why| why.contains("p99 400.00 ms")));
        assert!(wrong(&slow).is_none(), "a p99 over the limit may be a passing stall");
        let late = run_with(20.0, 12, 0);
        assert!(failure(&late, 250.0).is_some_and(|why| why.contains("12 missing")));
        assert!(wrong(&late).is_none(), "entries late, none out of order");

        let reordered = run_with(20.0, 0, 1);
        assert!(failure(&reordered, 250.0).is_some());
        assert!(wrong(&reordered).is_some(), "a duplicate or reordering is never retried");
        let mut refused = run_with(20.0, 0, 0);
        refused.errors.insert("rate_limited".to_owned(), 1);
        assert!(failure(&refused, 250.0).is_some_and(|why| why.contains("1 refused")));
        assert!(wrong(&refused).is_some());
        let mut wrong_content = run_with(20.0, 0, 0);
        wrong_content.content.content_errors = 1;
        assert!(wrong(&wrong_content).is_some());

        assert!(failure(&run_with(20.0, 0, 0), 250.0).is_none(), "on time and complete holds");
    }
}
