//! The `conclave` binary: parses the command line, sets up logging, and runs one
//! subcommand. The server lives in `conclave-server` and the client in
//! `conclave-client`; this crate only wires them to a terminal.
//!
//! Errors are printed once, as `error: ...` with their chain of causes, and turn
//! into exit status 1; clap's usage errors keep status 2.

mod args;
mod cmd;
mod connect;
mod output;
mod prompt;

use anyhow::{Context, anyhow};
use args::{Cli, Command};
use clap::Parser;
use conclave_client::text::continued;
use std::{io::IsTerminal, process::ExitCode};
use tracing::Level;
use tracing_subscriber::{EnvFilter, filter::filter_fn, fmt, fmt::writer::BoxMakeWriter, prelude::*};

/// jemalloc, with background threads that return freed pages to the kernel
/// after its decay time. With glibc's malloc, a flood of 15,000 idle
/// connections raised the server's resident memory from 163 to 540 MB, and it
/// stayed there once they had closed: freed chunks scattered over many arenas
/// are rarely at the top of one, the only place glibc gives memory back from.
/// BENCHMARKS.md ("Memory after a flood") has the measurement.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Before parsing, so `.env` can supply CONCLAVE_* values for env-backed flags.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Err(err) = init_tracing(&cli) {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    match dotenv {
        Ok(path) => tracing::debug!(path = %path.display(), "read .env"),
        Err(err) if err.not_found() => {}
        Err(err) => tracing::warn!(%err, "ignoring the .env file"),
    }

    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Error texts can quote the server, so they are untrusted (and
            // any further line of one is marked as its continuation).
            eprintln!("error: {}", continued(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => cmd::serve::run(*args).await,
        Command::Admin(args) => cmd::admin::run(args).await,
        Command::Register(args) => cmd::register::run(args).await,
        Command::Login(args) => cmd::login::run(args).await,
        Command::Logout(args) => cmd::logout::run(args).await,
        Command::Whoami(args) => cmd::whoami::run(args).await,
        Command::Sessions(args) => cmd::sessions::run(args).await,
        Command::Devices(args) => cmd::devices::run(args).await,
        Command::Send(args) => cmd::send::run(args).await,
        Command::History(args) => cmd::history::run(args).await,
        Command::Delete(args) => cmd::delete::run(args).await,
        Command::Typing(args) => cmd::typing::run(args).await,
        Command::Listen(args) => cmd::listen::run(args).await,
        Command::Users(args) => cmd::users::run(args).await,
        Command::Rooms(args) => cmd::rooms::run(args).await,
        Command::Room(command) => cmd::room::run(command).await,
        Command::Chat(args) => cmd::chat::run(args).await,
    }
}

/// Logs to stderr, as text or JSON lines. The filter is `--log-level` /
/// `CONCLAVE_LOG_LEVEL`, else `RUST_LOG`, else `info` for the server and `warn`
/// for client commands (whose stderr is for the user, not for operations).
fn init_tracing(cli: &Cli) -> anyhow::Result<()> {
    let default = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    let filter = match (&cli.log_level, std::env::var("RUST_LOG")) {
        (Some(directives), _) => {
            EnvFilter::try_new(directives).with_context(|| format!("invalid --log-level {directives:?}"))?
        }
        (None, Ok(directives)) if !directives.is_empty() => {
            EnvFilter::try_new(&directives).with_context(|| format!("invalid RUST_LOG {directives:?}"))?
        }
        _ => EnvFilter::new(default),
    };
    // tungstenite logs whole frames at trace level, and frames carry passwords and
    // session tokens: those records are dropped whatever filter the user chose.
    let no_frame_dumps = filter_fn(|meta| {
        *meta.level() != Level::TRACE
            || !(meta.target().starts_with("tungstenite") || meta.target().starts_with("tokio_tungstenite"))
    });
    let registry = tracing_subscriber::registry().with(filter).with(no_frame_dumps);
    // `chat` owns the whole screen: its logs go to a file in the client home.
    let chat_log = match &cli.command {
        Command::Chat(args) => Some(cmd::chat::log_file(args)?),
        _ => None,
    };
    let ansi = chat_log.is_none() && std::io::stderr().is_terminal();
    let writer = match chat_log {
        Some(file) => BoxMakeWriter::new(std::sync::Mutex::new(file)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let text = fmt::layer().with_writer(writer);
    let installed = if cli.log_json {
        registry.with(text.json()).try_init()
    } else {
        registry.with(text.with_ansi(ansi)).try_init()
    };
    installed.map_err(|err| anyhow!("cannot set up logging: {err}"))
}
