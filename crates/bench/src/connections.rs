//! `connections`: N registered users connect (TCP, TLS 1.3, WebSocket, `hello`,
//! `authenticate` with their session token) and stay connected, idle.
//!
//! The server's resident memory before and after the connect phase gives its
//! memory per authenticated connection. The connections are plain
//! [`Client`]s without MLS state or device binding, so the bench's own memory per
//! connection stays small (it is reported too).
//!
//! With `--pre-hello`, the connections are a flood instead: TLS and the
//! WebSocket upgrade, then nothing, not even `hello`. The server's memory is
//! read before, while they are held, and `--settle` seconds after they closed,
//! which shows how much of it the allocator gave back. The server must let
//! them be (its hello deadline and caps lifted, as BENCHMARKS.md shows).

use crate::{
    population::{self, CLIENT_NAME, User},
    server::{ProcessSample, Target},
    stats::{Latency, Report, Usage, per_sec},
};
use anyhow::{Context, Result, bail};
use conclave_client::{Client, Connection};
use futures_util::{StreamExt, stream};
use std::time::{Duration, Instant};

/// Flags of `connections`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionsArgs {
    /// Users, each holding one connection.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to hold the idle connections before the final reading.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Open connections that never send `hello` (no users registered), then
    /// close them and read the server's memory once more after `--settle`.
    #[arg(long)]
    pub pre_hello: bool,
    /// With --pre-hello: seconds between closing the connections and the last
    /// reading (jemalloc returns freed pages after a 10 s decay).
    #[arg(long, default_value_t = 20.0)]
    pub settle: f64,
}

/// Runs the scenario.
///
/// # Errors
/// Setup failures or a connection that fails.
pub async fn run(target: &mut Target, args: &ConnectionsArgs) -> Result<Report> {
    if args.users == 0 || args.concurrency == 0 {
        bail!("--users and --concurrency must be at least 1");
    }
    if args.pre_hello {
        return flood(target, args).await;
    }
    let tag = crate::run_tag("c");
    let population = population::register(target, &tag, args.users).await?;
    // Registration leaves argon2 buffers and caches in the server's heap; a
    // restarted server measures connections alone. An external server cannot be
    // restarted: let its memory settle instead.
    let restarted = target.restart()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let target = &*target;

    let server_before = target.sample().await;
    let bench_before = ProcessSample::own();
    let started = Instant::now();
    let results: Vec<Result<(Client, Duration)>> = stream::iter(&population.users)
        .map(|user| connect_one(target, user))
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let server_connected = target.sample().await;
    let bench_connected = ProcessSample::own();

    let mut latency = Latency::new();
    let mut clients = Vec::with_capacity(results.len());
    let mut failures = 0u64;
    for result in results {
        match result {
            Ok((client, took)) => {
                latency.record(took);
                clients.push(client);
            }
            Err(err) => {
                failures += 1;
                tracing::warn!("{err:#}");
            }
        }
    }
    let connected = clients.len() as u64;
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let server_held = target.sample().await;
    let bench_held = ProcessSample::own();
    let server = Usage::maybe(server_before, server_held);
    let bench = Usage::between(bench_before, bench_held);
    drop(clients);

    let per_conn = |before: Option<ProcessSample>, after: Option<ProcessSample>| {
        let (before, after) = (before?, after?);
        #[allow(clippy::cast_precision_loss)] // Memory sizes and counts stay far below 2^52.
        (connected > 0).then(|| (after.rss_kib.saturating_sub(before.rss_kib)) as f64 / connected as f64)
    };
    let server_kib_per_conn = per_conn(server_before, server_held);
    let bench_kib_per_conn = per_conn(Some(bench_before), Some(bench_held));
    let rate = per_sec(connected, elapsed);

    let mut report = Report::new("connections");
    report.line(
        "setup",
        format!(
            "registered {} users in {:.1} s{}",
            args.users,
            population.elapsed.as_secs_f64(),
            if restarted { "; server restarted before connecting" } else { "" }
        ),
    );
    report.line(
        "connected",
        format!(
            "{connected} of {} ({failures} failed) in {:.2} s: {rate:.0} connect+auth/s, {} at once",
            args.users,
            elapsed.as_secs_f64(),
            args.concurrency
        ),
    );
    report.line("connect+auth latency", latency.summary().line());
    if let Some(server) = &server {
        report.line("server", server.line());
    }
    if let Some(kib) = server_kib_per_conn {
        report.line("server memory/conn", format!("{kib:.1} KiB (after holding {:.0} s)", args.hold));
    }
    if let (Some(before), Some(after)) = (server_before, server_held) {
        report.line("server fds", format!("{} -> {}", before.fds, after.fds));
    }
    report.line("bench", bench.line());
    if let Some(kib) = bench_kib_per_conn {
        report.line("bench memory/conn", format!("{kib:.1} KiB"));
    }
    report.field("users", args.users);
    report.field("concurrency", args.concurrency);
    report.field("register_s", population.elapsed.as_secs_f64());
    report.field("server_restarted_after_registration", restarted);
    report.field("connected", connected);
    report.field("failures", failures);
    report.field("connect_s", elapsed.as_secs_f64());
    report.field("connects_per_s", rate);
    report.field("latency", latency.summary());
    report.field("server_before", server_before);
    report.field("server_connected", server_connected);
    report.field("server_held", server_held);
    report.field("server_kib_per_connection", server_kib_per_conn);
    report.field("bench_connected", bench_connected);
    report.field("bench_kib_per_connection", bench_kib_per_conn);
    report.field("server_usage", server);
    report.field("bench_usage", bench);
    Ok(report)
}

/// Opens one authenticated connection; returns it and how long that took.
async fn connect_one(target: &Target, user: &User) -> Result<(Client, Duration)> {
    let started = Instant::now();
    let mut client = Client::connect_to(&target.address, &target.trust, CLIENT_NAME)
        .await
        .with_context(|| format!("connecting {}", user.name))?;
    client.authenticate(&user.token).await.with_context(|| format!("authenticating {}", user.name))?;
    Ok((client, started.elapsed()))
}

/// `--pre-hello`: `--users` connections that never say `hello`, held, then
/// closed; the server's memory before, held and after.
async fn flood(target: &Target, args: &ConnectionsArgs) -> Result<Report> {
    let server_before = target.sample().await;
    let started = Instant::now();
    let results: Vec<Result<Connection>> = stream::iter(0..args.users)
        .map(|_| async {
            Connection::connect(&target.address, &target.trust)
                .await
                .context("opening a pre-hello connection")
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let (connections, failures): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    if let Some(Err(err)) = failures.first() {
        tracing::warn!("{err:#}");
    }
    let connections: Vec<Connection> = connections.into_iter().filter_map(Result::ok).collect();
    let connected = connections.len() as u64;
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let server_held = target.sample().await;
    drop(connections);
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let server_after = target.sample().await;

    let mut report = Report::new("connections --pre-hello");
    report.line(
        "connected",
        format!(
            "{connected} of {} ({} failed) in {:.2} s, never greeted",
            args.users,
            failures.len(),
            elapsed.as_secs_f64()
        ),
    );
    if let (Some(before), Some(held), Some(after)) = (server_before, server_held, server_after) {
        #[allow(clippy::cast_precision_loss)] // Memory sizes and counts stay far below 2^52.
        let per_conn =
            (connected > 0).then(|| held.rss_kib.saturating_sub(before.rss_kib) as f64 / connected as f64);
        report.line(
            "server RSS",
            format!(
                "{} MiB before, {} MiB held ({} KiB/conn), {} MiB {:.0} s after closing (peak {} MiB)",
                before.rss_kib / 1024,
                held.rss_kib / 1024,
                per_conn.map_or_else(|| "-".to_owned(), |k| format!("{k:.1}")),
                after.rss_kib / 1024,
                args.settle,
                after.peak_rss_kib / 1024
            ),
        );
        report.field("server_kib_per_connection", per_conn);
    }
    report.field("users", args.users);
    report.field("concurrency", args.concurrency);
    report.field("connected", connected);
    report.field("failures", failures.len());
    report.field("connect_s", elapsed.as_secs_f64());
    report.field("hold_s", args.hold);
    report.field("settle_s", args.settle);
    report.field("server_before", server_before);
    report.field("server_held", server_held);
    report.field("server_after", server_after);
    Ok(report)
}
