//! `floor`: what the kernel alone charges for a room's fan-out, with no server,
//! no TLS and no WebSocket. One thread writes `size` bytes to each of N loopback
//! TCP connections in turn, `rate` times a second — the pattern of workload B,
//! where the server writes each message once to each of 1,000 members — while
//! this process's runtime reads every connection as the bench's receivers do.
//!
//! The writing thread's CPU per write is the floor under the server's CPU per
//! delivery on this machine: on loopback the sender's system call also runs the
//! receiving socket's side of TCP and wakes its reader. Writing to many sockets
//! costs more per write than writing to one (each write touches a different
//! socket's state), so the floor is measured for the connection count asked for.
//!
//! Then it measures the disk: a delivered message has waited for its batch's
//! commit, and with `synchronous=FULL` a commit waits for one `fdatasync` of
//! SQLite's write-ahead log. So the latency of appending a page and syncing it,
//! in the directory where the bench puts the server's data, is the floor under
//! every message's latency; its tail shows in the messaging scenarios' p99.

use crate::stats::{Latency, Report, per_sec};
use anyhow::{Context, Result, bail};
use std::{
    io::Write,
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::io::AsyncReadExt;

/// Flags of `floor`.
#[derive(Debug, Clone, clap::Args)]
pub struct FloorArgs {
    /// Loopback TCP connections written in turn (a room's members).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Bytes per write (one delivery).
    #[arg(long, default_value_t = 200)]
    pub size: usize,
    /// Rounds per second: one write to every connection each round (messages per second in a room).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds of writing, and then of syncing.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Syncs per second in the disk part (a busy server commits a batch every
    /// few milliseconds; workload B, 20 a second).
    #[arg(long, default_value_t = 50.0)]
    pub sync_rate: f64,
    /// Where the disk part appends and syncs: by default the temporary
    /// directory, where the bench puts the server's data directory.
    #[arg(long)]
    pub sync_dir: Option<std::path::PathBuf>,
}

/// Highest `--rate` and longest `--duration`: the round times are kept in memory.
const MAX_RATE: f64 = 10_000.0;
const MAX_DURATION: u64 = 3600;

/// Longest wait for the readers to receive everything after the last round.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// CPU time of the calling thread so far.
#[derive(Debug, Clone, Copy)]
struct ThreadCpu {
    /// Time on a CPU, from the scheduler (`schedstat`, nanosecond precision).
    on_cpu_ns: u64,
    /// User and system time in clock ticks (`stat`; coarse, for the split).
    user_ticks: u64,
    system_ticks: u64,
}

impl ThreadCpu {
    fn now() -> Result<Self> {
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
        let on_cpu_ns = schedstat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .context("malformed /proc/thread-self/schedstat")?;
        let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
        // Fields after the name: utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc/thread-self/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(Self { on_cpu_ns, user_ticks: ticks(11), system_ticks: ticks(12) })
    }
}

/// What the writing thread measured.
#[derive(Debug)]
struct Written {
    writes: u64,
    window: Duration,
    cpu: (ThreadCpu, ThreadCpu),
    /// Wall time of each round (writing to every connection once), µs.
    rounds_us: Vec<u64>,
}

/// Runs the scenario.
///
/// # Errors
/// Socket failures, or readers that do not receive everything.
pub async fn run(args: &FloorArgs) -> Result<Report> {
    let rate_ok = |rate: f64| rate.is_finite() && rate > 0.0 && rate <= MAX_RATE;
    if args.connections == 0
        || args.size == 0
        || args.duration == 0
        || args.duration > MAX_DURATION
        || !rate_ok(args.rate)
        || !rate_ok(args.sync_rate)
    {
        bail!(
            "need at least one connection and one byte, 1 to {MAX_DURATION} seconds, and rates above 0 and at most {MAX_RATE}"
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::with_capacity(args.connections);
    let mut readers = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (connected, accepted) = tokio::join!(tokio::net::TcpStream::connect(address), listener.accept());
        let reader = connected.context("connect")?;
        let (writer, _) = accepted.context("accept")?;
        writer.set_nodelay(true)?;
        let writer = writer.into_std()?;
        writer.set_nonblocking(false)?;
        writers.push(writer);
        let received = received.clone();
        readers.push(tokio::spawn(read_all(reader, received)));
    }

    let plan = args.clone();
    let written = tokio::task::spawn_blocking(move || write_rounds(&mut writers, &plan)).await??;

    let expected = written.writes * args.size as u64;
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while received.load(Ordering::Acquire) < expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    for reader in &readers {
        reader.abort();
    }
    if drained.is_err() {
        bail!("readers received {} of {expected} bytes", received.load(Ordering::Acquire));
    }
    let plan = args.clone();
    let synced = tokio::task::spawn_blocking(move || sync_pages(&plan)).await??;
    Ok(report(args, &written, &synced))
}

/// Reads and counts until the connection closes.
async fn read_all(mut stream: tokio::net::TcpStream, received: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        received.fetch_add(n as u64, Ordering::AcqRel);
    }
}

/// The writing thread: rounds at the given rate, each writing once to every connection.
fn write_rounds(writers: &mut [TcpStream], args: &FloorArgs) -> Result<Written> {
    let payload = vec![b'x'; args.size];
    let period = Duration::from_secs_f64(1.0 / args.rate);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // Small, positive.
    let rounds = (args.rate * args.duration as f64).ceil() as usize;
    let mut rounds_us = Vec::with_capacity(rounds);
    let start = Instant::now();
    let before = ThreadCpu::now()?;
    for round in 0..rounds {
        let due = start + period.mul_f64(round as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let began = Instant::now();
        for writer in writers.iter_mut() {
            writer.write_all(&payload)?;
        }
        rounds_us.push(u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    let after = ThreadCpu::now()?;
    Ok(Written {
        writes: (rounds * writers.len()) as u64,
        window: start.elapsed(),
        cpu: (before, after),
        rounds_us,
    })
}

/// Appends one 4 KiB page (a write-ahead log frame's size) and waits for
/// `fdatasync`, `sync_rate` times a second for `duration`, as a commit does;
/// returns the latency of each append and sync.
fn sync_pages(args: &FloorArgs) -> Result<Latency> {
    let dir = args.sync_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut file = tempfile::tempfile_in(&dir).with_context(|| format!("a file in {}", dir.display()))?;
    let page = vec![0x5a_u8; PAGE];
    let period = Duration::from_secs_f64(1.0 / args.sync_rate);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // Small, positive.
    let syncs = (args.sync_rate * args.duration as f64).ceil() as usize;
    let mut latency = Latency::new();
    let start = Instant::now();
    for sync in 0..syncs {
        let due = start + period.mul_f64(sync as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let began = Instant::now();
        file.write_all(&page)?;
        file.sync_data()?;
        latency.record(began.elapsed());
    }
    Ok(latency)
}

/// Bytes appended before each sync.
const PAGE: usize = 4096;

fn report(args: &FloorArgs, written: &Written, synced: &Latency) -> Report {
    let (before, after) = written.cpu;
    #[allow(clippy::cast_precision_loss)] // Counts and nanoseconds stay far below 2^52.
    let per_write_us = (after.on_cpu_ns - before.on_cpu_ns) as f64 / 1000.0 / written.writes as f64;
    let user = after.user_ticks - before.user_ticks;
    let system = after.system_ticks - before.system_ticks;
    #[allow(clippy::cast_precision_loss)] // Tick counts are small.
    let system_share = if user + system > 0 { system as f64 / (user + system) as f64 } else { 0.0 };
    let mut rounds = written.rounds_us.clone();
    rounds.sort_unstable();
    let at = |q: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let index = ((rounds.len() as f64 * q).ceil() as usize).clamp(1, rounds.len().max(1)) - 1;
        rounds.get(index).copied().unwrap_or(0)
    };
    #[allow(clippy::cast_precision_loss)] // Microseconds stay far below 2^52.
    let (p50_ms, max_ms) = (at(0.5) as f64 / 1000.0, at(1.0) as f64 / 1000.0);

    let mut report = Report::new("floor");
    report.line(
        "pattern",
        format!(
            "{} B to each of {} loopback TCP connections in turn, {:.1} rounds/s for {} s (no TLS, no server)",
            args.size, args.connections, args.rate, args.duration
        ),
    );
    report.line(
        "written",
        format!(
            "{} writes, {:.0} writes/s, all received",
            written.writes,
            per_sec(written.writes, written.window)
        ),
    );
    report.line("writer cpu/write", format!("{per_write_us:.2} µs  ({:.0}% system)", system_share * 100.0));
    report.line("round (all connections)", format!("p50 {p50_ms:.2} ms  max {max_ms:.2} ms"));
    let sync = synced.summary();
    report.line(
        "append+fdatasync",
        format!("{}  ({:.0}/s, {} KiB each)", sync.line(), args.sync_rate, PAGE / 1024),
    );
    report.field("connections", args.connections);
    report.field("size", args.size);
    report.field("rate", args.rate);
    report.field("duration_s", args.duration);
    report.field("writes", written.writes);
    report.field("writer_cpu_us_per_write", per_write_us);
    report.field("writer_system_share", system_share);
    report.field("round_p50_ms", p50_ms);
    report.field("round_max_ms", max_ms);
    report.field("sync_rate", args.sync_rate);
    report.field("sync", sync);
    report
}
