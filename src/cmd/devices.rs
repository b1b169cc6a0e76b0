//! `conclave devices`: list the user's devices, or remove one.

use crate::{
    args::DevicesArgs,
    connect::{self, close},
    output::{Output, table, untrusted, utc_minutes},
};
use anyhow::Context;
use conclave_proto::DeviceId;
use serde_json::json;

/// Lists devices or removes one.
pub async fn run(args: DevicesArgs) -> anyhow::Result<()> {
    let out = Output::new(args.client.json);
    let (mut client, _identity, _session, _server, _home) =
        connect::authenticated(&args.client, args.server.as_ref()).await?;

    if let Some(id) = args.remove {
        let device = DeviceId(id);
        let removed = client.remove_device(device).await;
        close(client).await;
        removed.with_context(|| format!("cannot remove device {device}"))?;
        let value = json!({ "removed": device });
        return out.result(&value, || {
            format!(
                "Removed device {device}: its session ended, and the members of its rooms remove it \
                 from the rooms' encryption with their next change."
            )
        });
    }

    let devices = client.devices().await?;
    close(client).await;
    out.result(&json!(devices), || {
        let rows: Vec<Vec<String>> = devices
            .iter()
            .map(|d| {
                vec![
                    if d.current { "*".into() } else { String::new() },
                    d.id.to_string(),
                    utc_minutes(d.created_at),
                    utc_minutes(d.last_bound_at),
                    untrusted(&d.client).into_owned(),
                ]
            })
            .collect();
        table(&["", "ID", "ADDED (UTC)", "LAST USED", "CLIENT"], &rows)
    })
}
