//! `conclave admin repair-room`: resets a room's end-to-end encryption group
//! that its members can no longer use. Like the other admin commands it works on
//! the server's storage directly, and it is safe while the server runs.

use super::storage::StorageArgs;
use anyhow::{Context, bail};
use conclave_server::audit::AuditAction;

/// Flags of `conclave admin repair-room`.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// The room: its name (`team`, `#team`, `lobby`) or numeric id.
    room: String,
    #[command(flatten)]
    storage: StorageArgs,
    /// Machine-readable output: one JSON object.
    #[arg(long)]
    json: bool,
}

/// Resets the room's group: a new MLS group id, no epoch, no device in it;
/// membership, history and the log stay. Appended to the audit log.
pub async fn run(args: RepairArgs) -> anyhow::Result<()> {
    let (store, audit) = args.storage.open_with_audit().await?;
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
        "via": "admin",
    });
    audit.record(None, AuditAction::RoomRepaired, detail).await?;
    store.close().await;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "room": room.id.0, "name": room.name, "previous_epoch": reset.room.epoch,
                "devices_removed": reset.devices_removed, "welcomes_dropped": reset.welcomes_dropped,
            })
        );
    } else {
        let name = conclave_client::text::sanitize(&room.name).into_owned();
        println!(
            "reset the encryption group of {name} (room {}): {} device(s) taken out; \
             members' clients rejoin at their next use",
            room.id.0, reset.devices_removed
        );
    }
    Ok(())
}
