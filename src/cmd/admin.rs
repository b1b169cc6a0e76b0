//! `conclave admin`: operator commands that work on the server's storage directly
//! (run them on the server machine, with the same data directory or database URL
//! as `conclave serve`).

use anyhow::{Context, bail};
use conclave_server::{
    Config, Database, RawConfig,
    audit::{self, Audit, AuditAction, Verdict},
    store::Store,
};
use std::path::PathBuf;

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
    /// Resets a room's end-to-end encryption group that members can no longer use.
    ///
    /// For a room whose group is broken on the server (`group_broken`, or members
    /// who cannot decrypt or rejoin it): the room gets a new MLS group and no
    /// device is in it; members, history and the room's log stay. The first member
    /// whose client acts in the room creates the new group and the others' clients
    /// rejoin it by themselves; messages sent before the reset stay readable where
    /// they were read. Safe while the server runs. Appended to the audit log.
    RepairRoom(RepairArgs),
}

/// Where the server's data is: the same as `conclave serve`'s.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// The server's data directory (its SQLite database is used).
    #[arg(long, env = "CONCLAVE_DATA_DIR", value_name = "DIR", default_value = "conclave-data")]
    data_dir: PathBuf,
    /// The server's PostgreSQL URL, instead of the data directory's SQLite file.
    #[arg(long, env = "CONCLAVE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
}

impl StoreArgs {
    /// Opens the server's database (never creating an SQLite file that is not there).
    async fn open(&self) -> anyhow::Result<Store> {
        let raw = RawConfig {
            data_dir: Some(self.data_dir.clone()),
            database_url: self.database_url.clone(),
            ..RawConfig::default()
        };
        let config = Config::resolve(RawConfig::default(), raw)?;
        if let Database::Sqlite(path) = &config.database
            && !path.exists()
        {
            bail!("no database at {}: is --data-dir the server's data directory?", path.display());
        }
        Store::open(&config.database).await.context("cannot open the database")
    }
}

#[derive(Debug, clap::Args)]
struct RepairArgs {
    /// The room: its name (`team`, `#team`, `lobby`) or numeric id.
    room: String,
    #[command(flatten)]
    storage: StoreArgs,
    /// Machine-readable output: one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct AuditArgs {
    #[command(flatten)]
    storage: StoreArgs,
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
        AdminCommand::RepairRoom(args) => repair_command(args).await,
    }
}

async fn repair_command(args: RepairArgs) -> anyhow::Result<()> {
    let store = args.storage.open().await?;
    let rooms = store.rooms_named(&args.room).await?;
    let room = match rooms.as_slice() {
        [] => bail!("no room named {:?}", args.room),
        [room] => room.clone(),
        several => {
            let ids: Vec<String> = several.iter().map(|r| r.id.0.to_string()).collect();
            bail!("{:?} names several rooms (ids {}): give the id", args.room, ids.join(", "))
        }
    };
    let group_id: [u8; 16] = rand::random();
    let reset = store.reset_group(room.id, &group_id).await?.context("the room disappeared")?;
    let detail = serde_json::json!({
        "room": room.id.0,
        "previous_epoch": reset.room.epoch,
        "devices_removed": reset.devices_removed,
    });
    Audit::new(store.clone()).record(None, AuditAction::RoomRepaired, detail).await?;
    store.close().await;
    let name = conclave_client::text::sanitize(&room.name).into_owned();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "room": room.id.0, "name": room.name, "previous_epoch": reset.room.epoch,
                "devices_removed": reset.devices_removed, "welcomes_dropped": reset.welcomes_dropped,
            })
        );
    } else {
        println!(
            "reset the encryption group of {name} (room {}): {} device(s) taken out; \
             members' clients rejoin at their next use",
            room.id.0, reset.devices_removed
        );
    }
    Ok(())
}

async fn audit_command(args: AuditArgs) -> anyhow::Result<()> {
    let store = args.storage.open().await?;
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
