//! Prometheus metrics, served at `/metrics` on the metrics listener
//! (`metrics_listen`, never the public port) in the text exposition format.
//!
//! The server's own metrics are named `conclave_*`; the process's use of the
//! machine is read from the kernel at each scrape and exported under the usual
//! `process_*` names ([`crate::process`]).

use crate::process::{self, ProcessSample};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, text::encode},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

type Labels = Vec<(&'static str, &'static str)>;

/// The server's metrics. Counters are atomics: updating one takes no lock.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_total: Counter,
    /// Connections admitted that have not logged in yet (TLS, HTTP and
    /// WebSocket before login), bounded by `max_unauthenticated_connections`.
    pub connections_unauthenticated: Gauge,
    /// Connections closed at accept by a cap, by `reason` (`address_limit`,
    /// `unauthenticated_limit`).
    connections_refused: Family<Labels, Counter>,
    /// WebSocket connections closed for missing a deadline, by `phase`
    /// (`hello`, `authentication`).
    connections_timed_out: Family<Labels, Counter>,
    /// Logins by `result` (`ok`, `failed`, `rate_limited`).
    logins: Family<Labels, Counter>,
    /// Accounts registered.
    pub registrations: Counter,
    /// argon2 hashes computed (registrations and login checks).
    pub password_hashes: Counter,
    /// Protocol frames received.
    pub frames_in: Counter,
    /// Protocol frames sent.
    pub frames_out: Counter,
    /// Frames refused as malformed or oversized.
    pub frame_errors: Counter,
    /// Application messages stored.
    pub messages: Counter,
    /// Transactions that stored messages (group commits): `messages` divided by
    /// this is the average batch.
    pub message_batches: Counter,
    /// Seconds each transaction storing messages took, from its first
    /// statement to its commit (the `fsync` included). Every message waits
    /// for its batch before it is delivered or acknowledged, so a slow disk
    /// shows here first.
    pub message_batch_seconds: Histogram,
    /// Commits accepted.
    pub commits: Counter,
    /// Frames the fan-out wrote to a connection (or left pending for it).
    pub deliveries: Counter,
    /// Frames the fan-out dropped for a lagging connection (which then gets `resync`).
    pub deliveries_dropped: Counter,
    /// Requests refused by a per-account bound, by `kind` (`rooms`,
    /// `rooms_created`, `devices`, `key_packages`, `key_package_bytes`,
    /// `messages`, `message_bytes`), and claims over a user's one-time
    /// KeyPackage budget (`contact_key_package_claims`,
    /// `stranger_key_package_claims`), which got a last-resort package.
    quota_refusals: Family<Labels, Counter>,
    /// Claims answered with a device's last-resort KeyPackage.
    pub last_resort_claims: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    #[must_use]
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("conclave");
        let metrics = Self {
            connections: Gauge::default(),
            connections_total: Counter::default(),
            connections_unauthenticated: Gauge::default(),
            connections_refused: Family::default(),
            connections_timed_out: Family::default(),
            logins: Family::default(),
            registrations: Counter::default(),
            password_hashes: Counter::default(),
            frames_in: Counter::default(),
            frames_out: Counter::default(),
            frame_errors: Counter::default(),
            messages: Counter::default(),
            message_batches: Counter::default(),
            // 0.25 ms to about 4 s, doubling.
            message_batch_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
            commits: Counter::default(),
            deliveries: Counter::default(),
            deliveries_dropped: Counter::default(),
            quota_refusals: Family::default(),
            last_resort_claims: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Open WebSocket connections", metrics.connections.clone());
        registry.register("connections_accepted", "Connections accepted", metrics.connections_total.clone());
        registry.register(
            "connections_unauthenticated",
            "Connections not logged in yet, from TCP accept to login",
            metrics.connections_unauthenticated.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept because a cap was reached, by reason",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "connections_timed_out",
            "WebSocket connections closed for missing the hello or login deadline, by phase",
            metrics.connections_timed_out.clone(),
        );
        registry.register("logins", "Login attempts by result", metrics.logins.clone());
        registry.register("registrations", "Accounts registered", metrics.registrations.clone());
        registry.register(
            "password_hashes",
            "argon2 password hashes computed (registrations and login checks)",
            metrics.password_hashes.clone(),
        );
        registry.register("frames_in", "Protocol frames received", metrics.frames_in.clone());
        registry.register("frames_out", "Protocol frames sent", metrics.frames_out.clone());
        registry.register(
            "frame_errors",
            "Frames refused as malformed or oversized",
            metrics.frame_errors.clone(),
        );
        registry.register("messages", "Application messages stored", metrics.messages.clone());
        registry.register(
            "message_batches",
            "Transactions that stored messages (group commit)",
            metrics.message_batches.clone(),
        );
        registry.register(
            "message_batch_seconds",
            "Time to store one batch of messages, commit and fsync included",
            metrics.message_batch_seconds.clone(),
        );
        registry.register("commits", "MLS commits accepted", metrics.commits.clone());
        registry.register(
            "deliveries",
            "Frames written to connections by the fan-out",
            metrics.deliveries.clone(),
        );
        registry.register(
            "deliveries_dropped",
            "Frames dropped for lagging connections (each later gets one resync)",
            metrics.deliveries_dropped.clone(),
        );
        registry.register(
            "quota_refusals",
            "Requests refused by a per-account bound, and KeyPackage claims over a user's budget, by kind",
            metrics.quota_refusals.clone(),
        );
        registry.register(
            "last_resort_claims",
            "KeyPackage claims answered with a last-resort package",
            metrics.last_resort_claims.clone(),
        );
        Self { registry: root, ..metrics }
    }

    /// Counts one request refused by a per-account bound of `kind`.
    pub fn quota_refused(&self, kind: &'static str) {
        self.quota_refusals.get_or_create(&vec![("kind", kind)]).inc();
    }

    /// Counts one login attempt.
    pub fn login(&self, result: &'static str) {
        self.logins.get_or_create(&vec![("result", result)]).inc();
    }

    /// Counts one connection refused at accept, by the cap's `reason`.
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused.get_or_create(&vec![("reason", reason)]).inc();
    }

    /// Counts one connection closed for missing its `phase`'s deadline.
    pub fn connection_timed_out(&self, phase: &'static str) {
        self.connections_timed_out.get_or_create(&vec![("phase", phase)]).inc();
    }

    /// The text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        encode(&mut out, &self.registry).ok();
        out
    }
}

/// Reads this process's figures from `/proc` at each scrape. Where that cannot
/// be read (not Linux), the `process_*` metrics are left out rather than shown
/// as zero.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(sample) = ProcessSample::read("self") else { return Ok(()) };
        let cpu = ConstCounter::new(sample.cpu_secs);
        cpu.encode(encoder.encode_descriptor(
            process::CPU_SECONDS,
            "User and system CPU time spent, in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (process::RESIDENT_BYTES, "Resident memory, in bytes", sample.rss_kib * 1024),
            (
                process::PEAK_RESIDENT_BYTES,
                "Peak resident memory so far, in bytes",
                sample.peak_rss_kib * 1024,
            ),
            (process::OPEN_FDS, "Open file descriptors", sample.fds),
            (process::THREADS, "Threads", sample.threads),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_carries_the_process_figures_under_their_usual_names() {
        let metrics = Metrics::new();
        metrics.messages.inc();
        let text = metrics.render();
        assert!(text.contains("\nconclave_messages_total 1\n"), "{text}");
        assert!(!text.contains("conclave_process_"), "{text}");
        let sample = ProcessSample::parse(&text).expect("process figures in /metrics");
        assert!(sample.rss_kib > 0 && sample.fds >= 3 && sample.threads >= 1, "{sample:?}");
    }
}
