//! `conclave room create|join|invite|remove|leave|members`.

use crate::{
    args::RoomCommand,
    connect,
    output::{Output, untrusted},
};
use serde_json::json;

/// Runs one room command.
pub async fn run(command: RoomCommand) -> anyhow::Result<()> {
    let opts = match &command {
        RoomCommand::Create { opts, .. }
        | RoomCommand::Join { opts, .. }
        | RoomCommand::Invite { opts, .. }
        | RoomCommand::Remove { opts, .. }
        | RoomCommand::Leave { opts, .. }
        | RoomCommand::Members { opts, .. } => opts.clone(),
    };
    let out = Output::new(opts.client.json);
    let (mut messenger, _home) = connect::messenger(&opts).await?;
    let result = match command {
        RoomCommand::Create { name, public, .. } => {
            let room = messenger.create_room(&name, public).await?;
            out.result(&json!(room), || {
                format!(
                    "created {} room {}",
                    if public { "public" } else { "private" },
                    untrusted(&room.name)
                )
            })
        }
        RoomCommand::Join { name, .. } => {
            let room = messenger.resolve(&name).await?;
            messenger.join(&room).await?;
            out.result(&json!(room), || format!("you are in {}", untrusted(&room.name)))
        }
        RoomCommand::Invite { name, users, .. } => {
            let room = messenger.resolve(&name).await?;
            let invited = messenger.invite(&room, &users).await?;
            let json = json!({
                "room": room.name,
                "added": invited.added,
                "unavailable": invited.unavailable,
                "already_members": invited.already_members,
            });
            out.result(&json, || {
                let added = (!invited.added.is_empty()).then(|| {
                    format!("added {} to {}", untrusted(&invited.added.join(", ")), untrusted(&room.name))
                });
                let already = invited.already_in(&room.name).map(|text| untrusted(&text).to_string());
                added.into_iter().chain(already).collect::<Vec<_>>().join("\n")
            })?;
            if invited.unavailable.is_empty() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "not added: {} (no device set up yet: they can be added once they have logged in)",
                    untrusted(&invited.unavailable.join(", "))
                ))
            }
        }
        RoomCommand::Remove { name, user, .. } => {
            let room = messenger.resolve(&name).await?;
            messenger.remove(&room, &user).await?;
            out.result(&json!({ "room": room.name, "removed": user }), || {
                format!("removed {} from {}", untrusted(&user), untrusted(&room.name))
            })
        }
        RoomCommand::Leave { name, .. } => {
            let room = messenger.resolve(&name).await?;
            messenger.leave(&room).await?;
            out.result(&json!({ "left": room.name }), || format!("you left {}", untrusted(&room.name)))
        }
        RoomCommand::Members { name, .. } => {
            let room = messenger.resolve(&name).await?;
            let members = messenger.members(&room).await?;
            out.result(&json!(members), || {
                members
                    .iter()
                    .map(|m| {
                        let devices: Vec<String> = m.devices.iter().map(ToString::to_string).collect();
                        format!(
                            "{}{}  devices: {}\n",
                            untrusted(&m.username),
                            if m.owner { " (owner)" } else { "" },
                            devices.join(", ")
                        )
                    })
                    .collect()
            })
        }
    };
    messenger.close().await.ok();
    result
}
