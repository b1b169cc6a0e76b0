//! `conclave admin`: operator commands that work on the server's storage directly
//! (run them on the server machine, with the same data directory or database URL
//! as `conclave serve`).

use anyhow::{Context, bail};
use conclave_server::{
    Config, Database, RawConfig,
    audit::{self, Verdict},
    store::Store,
};
use std::path::PathBuf;

mod registration_token;

/// Flags of `conclave admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// Lists the hash-chained audit log, or verifies it with --verify.
    ///
    /// Every account action (registration, logins and failures, logouts, session
    /// revocations, recovery-code use, back-offs) is appended with the hash of the
    /// entry before it. --verify recomputes the chain and exits with status 1,
    /// naming the first bad entry, if any entry was altered, inserted or removed.
    Audit(AuditArgs),
    /// Creates, lists or revokes registration tokens: with `registration =
    /// "invite"`, only someone holding a token can register.
    RegistrationToken(registration_token::RegistrationTokenArgs),
}

#[derive(Debug, clap::Args)]
struct AuditArgs {
    /// The server's data directory (its SQLite database is used).
    #[arg(long, env = "CONCLAVE_DATA_DIR", value_name = "DIR", default_value = "conclave-data")]
    data_dir: PathBuf,
    /// The server's PostgreSQL URL, instead of the data directory's SQLite file.
    #[arg(long, env = "CONCLAVE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Check the hash chain instead of listing.
    #[arg(long)]
    verify: bool,
    /// Show only entries after this sequence number.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    after: i64,
    /// Machine-readable output: one JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Runs an admin command.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    match args.command {
        AdminCommand::Audit(args) => audit_command(args).await,
        AdminCommand::RegistrationToken(args) => registration_token::run(args).await,
    }
}

async fn audit_command(args: AuditArgs) -> anyhow::Result<()> {
    let raw = RawConfig {
        data_dir: Some(args.data_dir.clone()),
        database_url: args.database_url,
        ..RawConfig::default()
    };
    let config = Config::resolve(RawConfig::default(), raw)?;
    if let Database::Sqlite(path) = &config.database
        && !path.exists()
    {
        bail!("no database at {}: is --data-dir the server's data directory?", path.display());
    }
    let store = Store::open(&config.database).await.context("cannot open the database")?;
    if args.verify {
        let verdict = audit::verify(&store).await?;
        store.close().await;
        return match verdict {
            Verdict::Intact { entries } => {
                if args.json {
                    println!("{}", serde_json::json!({ "intact": true, "entries": entries }));
                } else {
                    println!("audit log intact: {entries} entries, hash chain verified");
                }
                Ok(())
            }
            Verdict::Broken { seq, reason } => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({ "intact": false, "first_bad_entry": seq, "reason": reason })
                    );
                }
                bail!("audit log broken at entry {seq}: {reason}")
            }
        };
    }
    let mut after = args.after;
    loop {
        let rows = store.audit_entries(after, 1000).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in &rows {
            if args.json {
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
                let actor = conclave_client::text::sanitize(row.actor.as_deref().unwrap_or("-")).into_owned();
                let detail = conclave_client::text::sanitize(&row.detail).into_owned();
                println!("{:>6}  {at}  {actor:<16} {:<20} {detail}", row.seq, row.action);
            }
        }
    }
    store.close().await;
    Ok(())
}
