//! The server under load and what it costs.
//!
//! [`Target`] is either a `conclave serve` this process starts — a fresh data
//! directory on 127.0.0.1:0, with the per-address and per-connection rate limits
//! raised so that the load generator is not mistaken for an attacker — or a
//! running server given by address. [`Target::sample`] reads the server's
//! memory, CPU time and open files from `/proc` when its process is on this
//! machine, so figures come from the kernel and not from the server's own
//! accounting, and otherwise from the same kernel figures as the server exports
//! them on `/metrics` (its plain-HTTP metrics listener), so the load can come
//! from another machine;
//! [`Target::reading`] adds the one figure only the server has, how long its
//! commits take.

use crate::commits::{self, Histogram};
use anyhow::{Context, Result, bail};
use conclave_client::{Fingerprint, ServerAddress, Trust};
pub use conclave_server::process::ProcessSample;
use conclave_testkit::{Backend, ServerProcess};
use serde::Serialize;
use std::path::PathBuf;

/// Flags the bench always passes to a server it starts. Load comes from one
/// address — thousands of connections, a few hundred requests per second per
/// connection — which the defaults (256 connections, 30 logins a minute and 20
/// registrations an hour per address, 1,000 connections not yet logged in, 50
/// requests a second per connection) rightly refuse, one owner filling rooms
/// larger than the default allows a minute (1,000 users claimed), and senders
/// offering thousands of messages a second each (a sweep's top rates), far past
/// the 600 messages and 16 MiB a minute an account may send by default.
/// Everything else — argon2, SQLite `synchronous=FULL`, TLS, the frame limit
/// that a 1,000-member room's commits must fit, the hello and login deadlines —
/// stays at its default.
pub const LOAD_FLAGS: [&str; 16] = [
    "--auth-attempts-per-minute",
    "1000000",
    "--registrations-per-hour",
    "1000000",
    "--requests-per-second",
    "100000",
    "--key-package-claims-per-minute",
    "1000000",
    "--messages-per-minute",
    "4000000000",
    "--message-bytes-per-minute",
    "4000000000",
    "--max-connections-per-address",
    "1000000",
    "--max-unauthenticated-connections",
    "1000000",
];

/// Where the server comes from, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Load a running server at HOST:PORT instead of starting one.
    #[arg(long, value_name = "HOST:PORT", requires = "fingerprint", global = true)]
    pub server: Option<String>,
    /// SHA-256 public key fingerprint of --server, as `conclave serve` printed it.
    #[arg(long, value_name = "HEX", global = true)]
    pub fingerprint: Option<String>,
    /// Process id of --server when it runs on this machine, to read its memory
    /// and CPU time from /proc [default: read them from its /metrics].
    #[arg(long, value_name = "PID", global = true)]
    pub server_pid: Option<u32>,
    /// The metrics address of --server (its --metrics-listen, plain HTTP), where
    /// its commit times, and without --server-pid its memory and CPU time, are
    /// read [default: none, and those figures are left out].
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub metrics: Option<String>,
    /// The `conclave` binary to start [default: the one next to this executable].
    #[arg(long, value_name = "PATH", global = true)]
    pub conclave_bin: Option<PathBuf>,
    /// A further flag for the `conclave serve` the bench starts (repeat for each
    /// word, e.g. `--serve-arg=--hash-concurrency --serve-arg=4`).
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true, global = true)]
    pub serve_args: Vec<String>,
    /// Copy the log of the server the bench started to this file at the end
    /// (its data directory, log included, is deleted).
    #[arg(long, value_name = "FILE", global = true)]
    pub server_log: Option<PathBuf>,
}

/// The server being loaded.
#[derive(Debug)]
pub struct Target {
    /// Where to connect.
    pub address: ServerAddress,
    /// How its certificate is checked: pinned to the printed fingerprint.
    pub trust: Trust,
    /// How it was started and its process, when known (for `/proc` figures).
    pub info: TargetInfo,
    /// Its metrics listener (plain HTTP), when known.
    metrics: Option<std::net::SocketAddr>,
    /// Keeps a server this process started alive; dropping it kills the server
    /// and removes its data directory.
    process: Option<ServerProcess>,
}

/// How the server was started, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    /// `HOST:PORT`.
    pub address: String,
    /// Whether the bench started it with a fresh data directory.
    pub started_by_bench: bool,
    /// The `conclave serve` command line (without the temporary paths).
    pub command: Option<String>,
    /// Its process id, if known.
    pub pid: Option<u32>,
    /// Where its memory and CPU figures are read: `/proc/PID`, or `/metrics`
    /// when the process is not known here (another machine).
    pub figures_from: String,
}

impl TargetInfo {
    /// A server at `address` whose process is `pid`, if known here.
    fn new(
        address: &ServerAddress,
        started_by_bench: bool,
        command: Option<String>,
        pid: Option<u32>,
    ) -> Self {
        let mut info = Self {
            address: address.to_string(),
            started_by_bench,
            command,
            pid: None,
            figures_from: String::new(),
        };
        info.set_pid(pid);
        info
    }

    /// Records the server's process id, and so where its figures come from.
    fn set_pid(&mut self, pid: Option<u32>) {
        self.pid = pid;
        self.figures_from = pid.map_or_else(|| "/metrics".to_owned(), |pid| format!("/proc/{pid}"));
    }

    /// For scenarios that run without a server.
    #[must_use]
    pub fn none() -> Self {
        Self {
            address: "none".to_owned(),
            started_by_bench: false,
            command: None,
            pid: None,
            figures_from: "none".to_owned(),
        }
    }
}

impl Target {
    /// Starts a server or connects to the given one, as `args` say.
    ///
    /// # Errors
    /// When the `conclave` binary cannot be found or the address or fingerprint
    /// does not parse.
    pub async fn open(args: &ServerArgs) -> Result<Self> {
        if let Some(server) = &args.server {
            let address: ServerAddress = server.parse().context("--server")?;
            let fingerprint = args.fingerprint.as_deref().unwrap_or_default();
            let pin: Fingerprint = fingerprint.parse().context("--fingerprint")?;
            let metrics = match &args.metrics {
                Some(metrics) => Some(
                    tokio::net::lookup_host(metrics.as_str())
                        .await
                        .ok()
                        .and_then(|mut found| found.next())
                        .with_context(|| format!("--metrics {metrics}: not an address"))?,
                ),
                None => None,
            };
            return Ok(Self {
                info: TargetInfo::new(&address, false, None, args.server_pid),
                address,
                trust: Trust::Pinned(pin),
                metrics,
                process: None,
            });
        }
        let bin = match &args.conclave_bin {
            Some(bin) => bin.clone(),
            None => sibling_binary()?,
        };
        let mut flags: Vec<&str> = LOAD_FLAGS.to_vec();
        flags.extend(args.serve_args.iter().map(String::as_str));
        let process = ServerProcess::start(&bin, Backend::Sqlite, &flags).await;
        let address: ServerAddress = process.address().parse().context("server address")?;
        let pin: Fingerprint = process.fingerprint.parse().context("server fingerprint")?;
        let command = format!("conclave serve --data-dir <fresh> --listen 127.0.0.1:0 {}", flags.join(" "));
        Ok(Self {
            info: TargetInfo::new(&address, true, Some(command), process.pid()),
            address,
            trust: Trust::Pinned(pin),
            metrics: Some(process.metrics_addr),
            process: Some(process),
        })
    }

    /// Restarts a server this process started, on the same address and data
    /// directory, so that later readings start from a fresh process (what setup
    /// allocated and the allocator kept is gone). A no-op for an external server.
    ///
    /// # Errors
    /// When the server does not stop cleanly.
    pub fn restart(&mut self) -> Result<bool> {
        let Some(process) = &mut self.process else { return Ok(false) };
        if !process.stop() {
            bail!("the server did not stop cleanly; see its log");
        }
        process.restart();
        self.info.set_pid(process.pid());
        Ok(true)
    }

    /// Copies the log of a server this process started to `path`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save_log(&self, path: &std::path::Path) -> Result<()> {
        if let Some(process) = &self.process {
            std::fs::write(path, process.log_text())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// The server's `/metrics` text now; `None` when it cannot be read within
    /// a few seconds (the run goes on without the figures it holds).
    async fn metrics_text(&self) -> Option<String> {
        let addr = self.metrics?;
        let read = async {
            let (status, body) = conclave_testkit::try_http_get(addr, "/metrics").await.ok()?;
            (status == 200).then_some(body)
        };
        tokio::time::timeout(METRICS_TIMEOUT, read).await.ok().flatten()
    }

    /// The server's figures and its histogram of commit times now, for the
    /// two edges of a measured window: one read of `/metrics` serves both.
    /// Either part is `None` when it cannot be read (the run goes on without
    /// it, with a warning).
    pub async fn reading(&self) -> Reading {
        let text = self.metrics_text().await;
        let commits = text.as_deref().and_then(|text| Histogram::parse(text, commits::METRIC));
        if commits.is_none() {
            tracing::warn!("could not read {} from the server's /metrics", commits::METRIC);
        }
        Reading { process: self.process(text.as_deref()), commits }
    }

    /// The server's memory, CPU time, open files and threads now: from
    /// `/proc` when its process id is known, else from its `/metrics`; `None`
    /// when neither can be read.
    pub async fn sample(&self) -> Option<ProcessSample> {
        let text = if self.info.pid.is_some() { None } else { self.metrics_text().await };
        self.process(text.as_deref())
    }

    /// The server's process figures from `/proc`, or else from `metrics`, its
    /// `/metrics` text (warning when they are not there).
    fn process(&self, metrics: Option<&str>) -> Option<ProcessSample> {
        if let Some(pid) = self.info.pid {
            return ProcessSample::read(&pid.to_string()).ok();
        }
        let sample = metrics.and_then(ProcessSample::parse);
        if sample.is_none() {
            tracing::warn!("could not read the server's process figures from its /metrics");
        }
        sample
    }
}

/// What [`Target::reading`] read off the server.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// Its memory, CPU time, open files and threads.
    pub process: Option<ProcessSample>,
    /// Its histogram of commit times.
    pub commits: Option<Histogram>,
}

/// How long reading `/metrics` may take before the run goes on without it.
const METRICS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `conclave` in the directory of this executable (`cargo build --release --bin
/// conclave --bin conclave-bench` puts both there).
fn sibling_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate this executable")?;
    let candidate = me.with_file_name("conclave");
    if !candidate.is_file() {
        bail!(
            "no `conclave` binary next to {}: build it (cargo build --release --bin conclave) or pass \
             --conclave-bin PATH or --server HOST:PORT",
            me.display()
        );
    }
    Ok(candidate)
}

/// The machine, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// CPUs available to this process.
    pub cpus: usize,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// Soft limit on open files after raising it.
    pub open_files_limit: u64,
}

impl Machine {
    /// Reads the machine's description.
    #[must_use]
    pub fn describe(open_files_limit: u64) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            memory_mib: memory_kib / 1024,
            open_files_limit,
        }
    }
}
