//! `conclave chat`: the terminal UI (crate `conclave-tui`) on this client home.

use crate::{args::ChatArgs, connect};
use anyhow::bail;
use std::io::IsTerminal;

/// Runs the terminal UI until the user quits.
pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("`conclave chat` needs a terminal; for scripts use send, history and listen");
    }
    if args.client.json {
        bail!("`conclave chat` is interactive; --json applies to the other commands");
    }
    let home = connect::open_home(&args.client)?;
    let options = conclave_tui::Options {
        home,
        trust: conclave_tui::TrustOptions {
            ca_file: args.client.ca_file,
            accept_fingerprint: args.client.accept_fingerprint,
        },
        server: args.server,
        user: args.user,
    };
    conclave_tui::run(options).await?;
    Ok(())
}

/// The log file of `conclave chat` (`chat.log` in the client home, owner-only,
/// appended): the screen belongs to the UI, so logs cannot go to stderr.
pub fn log_file(args: &ChatArgs) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let home = connect::open_home(&args.client)?;
    let path = home.path().join("chat.log");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(|err| anyhow::anyhow!("cannot open the log file {}: {err}", path.display()))
}
