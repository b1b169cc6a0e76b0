//! `conclave admin`: operator commands that work on the server's storage directly
//! (run them on the server machine, with the same data directory or database URL
//! as `conclave serve`).

use anyhow::{Context, bail};
use conclave_server::{
    Config, Database, RawConfig,
    audit::{self, ChainKey, Checkpoint, Verdict},
    store::Store,
};
use std::path::{Path, PathBuf};

mod registration_token;
mod repair;
mod storage;

/// Flags of `conclave admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// Lists the audit log, verifies it with --verify, or prints a checkpoint.
    ///
    /// Every account and room action (registration, logins and failures, logouts,
    /// session revocations, recovery-code use, back-offs, rooms, members, messages
    /// as metadata) is appended to a chain: each entry carries a MAC
    /// (HMAC-SHA-256 under the audit key file, which is not in the database) over
    /// itself and the entry before it. --verify recomputes the chain and exits
    /// with status 1, naming the first bad entry, if any entry was altered,
    /// inserted or removed. Checkpoints exported earlier (`audit checkpoint`,
    /// kept on another machine) also catch a rewrite by someone holding the key.
    /// See docs/audit.md.
    Audit(AuditArgs),
    /// Creates, lists or revokes registration tokens: with `registration =
    /// "invite"`, only someone holding a token can register.
    RegistrationToken(registration_token::RegistrationTokenArgs),
    /// Resets a room's end-to-end encryption group that members can no longer use.
    ///
    /// For a room whose group is broken on the server (`group_broken`, or members
    /// who cannot decrypt or rejoin it): the room gets a new MLS group and no
    /// device is in it; members, history and the room's log stay. The first member
    /// whose client acts in the room creates the new group and adds the others
    /// back; messages sent before the reset stay readable where they were read.
    /// Safe while the server runs. Appended to the audit log.
    RepairRoom(repair::RepairArgs),
}

#[derive(Debug, clap::Args)]
struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// The server's data directory (its SQLite database and audit key are used).
    #[arg(
        long,
        global = true,
        env = "CONCLAVE_DATA_DIR",
        value_name = "DIR",
        default_value = "conclave-data"
    )]
    data_dir: PathBuf,
    /// The server's PostgreSQL URL, instead of the data directory's SQLite file.
    #[arg(long, global = true, env = "CONCLAVE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The audit key file [default: DATA_DIR/audit.key].
    #[arg(long, global = true, env = "CONCLAVE_AUDIT_KEY_FILE", value_name = "FILE")]
    audit_key_file: Option<PathBuf>,
    /// Check the chain instead of listing.
    #[arg(long)]
    verify: bool,
    /// With --verify: a checkpoint printed earlier by `audit checkpoint`, or a file
    /// of them (one per line, as a cron job appends them). Repeatable.
    #[arg(long, value_name = "FILE|CHECKPOINT", requires = "verify")]
    checkpoint: Vec<String>,
    /// Show only entries after this sequence number.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    after: i64,
    /// Machine-readable output: one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Prints the newest entry's number and MAC as one line (`SEQ:MAC`) to keep
    /// elsewhere, e.g. appended to a file on another machine by cron; give it to
    /// `audit --verify --checkpoint` later.
    Checkpoint,
}

/// Runs an admin command.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    match args.command {
        AdminCommand::Audit(args) => audit_command(args).await,
        AdminCommand::RegistrationToken(args) => registration_token::run(args).await,
        AdminCommand::RepairRoom(args) => repair::run(args).await,
    }
}

async fn audit_command(args: AuditArgs) -> anyhow::Result<()> {
    if args.verify && args.command.is_some() {
        bail!("--verify lists nothing and takes no subcommand: use `audit --verify` or `audit checkpoint`");
    }
    let checkpoints = read_checkpoints(&args.checkpoint)?;
    let raw = RawConfig {
        data_dir: Some(args.data_dir.clone()),
        database_url: args.database_url.clone(),
        audit_key_file: args.audit_key_file.clone(),
        ..RawConfig::default()
    };
    let config = Config::resolve(RawConfig::default(), raw)?;
    if let Database::Sqlite(path) = &config.database
        && !path.exists()
    {
        bail!("no database at {}: is --data-dir the server's data directory?", path.display());
    }
    let key = ChainKey::load(&config.audit_key_file)
        .with_context(|| format!("cannot read the audit key {}", config.audit_key_file.display()))?;
    let store = Store::open(&config.database).await.context("cannot open the database")?;
    let result = match args.command {
        Some(AuditCommand::Checkpoint) => checkpoint(&store, key.as_ref(), args.json).await,
        None if args.verify => {
            verify(&store, key.as_ref(), &config.audit_key_file, &checkpoints, args.json).await
        }
        None => list(&store, args.after, args.json).await,
    };
    store.close().await;
    result
}

/// The checkpoints named by `--checkpoint`: each a checkpoint itself or a file
/// of them.
fn read_checkpoints(given: &[String]) -> anyhow::Result<Vec<Checkpoint>> {
    let mut checkpoints = Vec::new();
    for item in given {
        if let Ok(checkpoint) = item.parse::<Checkpoint>() {
            checkpoints.push(checkpoint);
            continue;
        }
        let text = std::fs::read_to_string(item).with_context(|| {
            format!("--checkpoint {item}: neither a checkpoint (SEQ:MAC) nor a readable file")
        })?;
        let read = Checkpoint::parse_lines(&text).with_context(|| format!("--checkpoint {item}"))?;
        if read.is_empty() {
            bail!("--checkpoint {item}: the file holds no checkpoint");
        }
        checkpoints.extend(read);
    }
    Ok(checkpoints)
}

async fn verify(
    store: &Store,
    key: Option<&ChainKey>,
    key_path: &Path,
    checkpoints: &[Checkpoint],
    json: bool,
) -> anyhow::Result<()> {
    let verdict = audit::verify(store, key, checkpoints)
        .await
        .with_context(|| format!("cannot verify the audit log with the key file {}", key_path.display()))?;
    match verdict {
        Verdict::Intact { entries, keyed_from, checkpoints } => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "intact": true, "entries": entries, "keyed_from": keyed_from, "checkpoints": checkpoints,
                    })
                );
                return Ok(());
            }
            let matched = match checkpoints {
                0 => String::new(),
                1 => ", 1 checkpoint matched".to_owned(),
                n => format!(", {n} checkpoints matched"),
            };
            match keyed_from {
                Some(first) => {
                    println!(
                        "audit log intact: {entries} entries, keyed chain verified from entry {first}{matched}"
                    );
                }
                None => {
                    println!("audit log intact: {entries} entries, hash chain verified{matched}");
                    if entries > 0 {
                        eprintln!(
                            "warning: the log is not keyed yet (there is no audit key at {}), so this proves only \
                             that it is consistent; `conclave serve` keys it when it next starts",
                            key_path.display()
                        );
                    }
                }
            }
            Ok(())
        }
        Verdict::Broken { seq, reason } => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "intact": false, "first_bad_entry": seq, "reason": reason })
                );
            }
            bail!("audit log broken at entry {seq}: {reason}")
        }
    }
}

async fn checkpoint(store: &Store, key: Option<&ChainKey>, json: bool) -> anyhow::Result<()> {
    let Some((checkpoint, at_ms)) = audit::latest(store, key).await.context("cannot take a checkpoint")?
    else {
        bail!("the audit log is empty: there is nothing to take a checkpoint of");
    };
    if json {
        println!("{}", checkpoint.to_json(at_ms));
    } else {
        println!("{checkpoint}");
    }
    Ok(())
}

async fn list(store: &Store, mut after: i64, json: bool) -> anyhow::Result<()> {
    loop {
        let rows = store.audit_entries(after, 1000).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in &rows {
            if json {
                let detail: serde_json::Value =
                    serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::Null);
                println!(
                    "{}",
                    serde_json::json!({
                        "seq": row.seq, "at_ms": row.at_ms, "actor": row.actor, "action": row.action,
                        "detail": detail, "hash": hex::encode(&row.hash),
                    })
                );
            } else {
                let at = humantime::format_rfc3339_millis(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(row.at_ms.unsigned_abs()),
                );
                let actor =
                    conclave_client::text::single_line(row.actor.as_deref().unwrap_or("-")).into_owned();
                let detail = conclave_client::text::single_line(&row.detail).into_owned();
                println!("{:>6}  {at}  {actor:<16} {:<20} {detail}", row.seq, row.action);
            }
        }
    }
    Ok(())
}
