//! `conclave whoami`: who the saved session is, as the server sees it.

use crate::{
    args::WhoamiArgs,
    connect::{self, close},
    output::{Output, untrusted},
};
use serde_json::json;

/// Shows the logged-in user.
pub async fn run(args: WhoamiArgs) -> anyhow::Result<()> {
    let out = Output::new(args.client.json);
    let (client, identity, _session, server, _home) =
        connect::authenticated(&args.client, args.server.as_ref()).await?;
    close(client).await;

    let value = json!({
        "user": identity.user,
        "server": server.to_string(),
        "session_id": identity.session_id,
    });
    out.result(&value, || {
        format!(
            "{} (user id {}) on {server}, session {}",
            untrusted(&identity.user.username),
            identity.user.id,
            untrusted(&identity.session_id.0)
        )
    })
}
