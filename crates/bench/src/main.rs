//! `conclave-bench`: the load generator that measures Conclave against the
//! performance targets (SPEC section 6). It speaks the real protocol through the
//! client library — TLS 1.3 with a pinned certificate, WebSocket frames, real MLS
//! groups — against a `conclave serve` it starts with a fresh data directory, or
//! one given with `--server`. BENCHMARKS.md has the standard workloads, the exact
//! command lines and the results.
//!
//! # Layout
//! * `server` — the server under load ([`server::Target`]) and its figures, from
//!   `/proc` or its `/metrics`.
//! * `population` — accounts, registered with bounded concurrency.
//! * `peer` — one member's connection: pipelined requests, frames as they come.
//! * `group` — members with devices and KeyPackages; building MLS groups.
//! * `traffic` — the measured phase of the messaging scenarios and its checks.
//! * `stats` — latency histograms, resource deltas, the report.
//! * One module per scenario: `connections`, `room`, `dm`, `login`, `catchup`,
//!   `sweep`, and `floor` (the kernel's cost of a fan-out, without a server).

mod catchup;
mod commits;
mod connections;
mod dm;
mod floor;
mod group;
mod login;
mod peer;
mod population;
mod probe;
mod room;
mod server;
mod stats;
mod sweep;
mod traffic;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Load generator for Conclave: throughput, latency and memory over real TLS and MLS.
#[derive(Debug, Parser)]
#[command(name = "conclave-bench", version)]
struct Cli {
    /// Print one JSON object instead of the human summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    server: server::ServerArgs,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    #[command(flatten)]
    Loaded(Loaded),
    /// No server: the kernel's CPU per write when one thread writes to N loopback
    /// connections in turn, the floor under the server's CPU per delivery.
    Floor(floor::FloorArgs),
}

/// The scenarios that load a server.
#[derive(Debug, Subcommand)]
enum Loaded {
    /// N users log in and stay connected, idle: connect rate, memory per connection.
    Connections(connections::ConnectionsArgs),
    /// M members in one MLS room, K of them sending: throughput, latency, loss, CPU.
    Room(room::RoomArgs),
    /// P pairs exchanging direct messages.
    Dm(dm::DmArgs),
    /// Login throughput and latency (argon2-bound).
    Login(login::LoginArgs),
    /// A member offline during N messages reconnects: time to process them all.
    Catchup(catchup::CatchupArgs),
    /// `room` at rising rates until it stops holding: saturation throughput.
    Sweep(sweep::SweepArgs),
}

impl Loaded {
    async fn run(&self, target: &mut server::Target, serve_args: &[String]) -> Result<stats::Report> {
        match self {
            Self::Connections(args) => connections::run(target, args).await,
            Self::Room(args) => room::run(target, args).await,
            Self::Dm(args) => dm::run(target, args).await,
            Self::Login(args) => login::run(target, args, serve_args).await,
            Self::Catchup(args) => catchup::run(target, args).await,
            Self::Sweep(args) => sweep::run(target, args).await,
        }
    }
}

/// A prefix for this run's usernames and room names, unique enough that runs
/// against one external server never collide.
fn run_tag(scenario: &str) -> String {
    format!("{scenario}{:06x}u", rand::random::<u32>() & 0xff_ffff)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // One runtime for every connection: tasks, not threads, per member.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("conclave-bench: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("conclave-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    // Before the server starts, so that it inherits the raised limit (it would
    // raise its own, but the bench's thousands of connections need it too).
    let open_files =
        conclave_server::process::raise_open_files_limit().context("cannot raise RLIMIT_NOFILE")?;
    let machine = server::Machine::describe(open_files);
    let (report, info) = match &cli.scenario {
        Scenario::Floor(args) => (floor::run(args).await?, server::TargetInfo::none()),
        Scenario::Loaded(scenario) => {
            let mut target = server::Target::open(&cli.server).await?;
            let report = scenario.run(&mut target, &cli.server.serve_args).await;
            if let Some(path) = &cli.server.server_log {
                target.save_log(path)?;
            }
            (report?, target.info)
        }
    };
    if cli.json {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        println!("{}", report.to_json(&machine, &info, &command));
    } else {
        print!("{}", report.to_text(&machine, &info));
    }
    Ok(())
}
