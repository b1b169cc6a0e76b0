//! `conclave sessions`: list the user's sessions, or revoke one.

use crate::{
    args::SessionsArgs,
    connect::{self, close},
    output::{Output, table, untrusted, utc_minutes},
};
use anyhow::Context;
use conclave_proto::SessionId;
use serde_json::json;

/// Lists sessions or revokes one.
pub async fn run(args: SessionsArgs) -> anyhow::Result<()> {
    let out = Output::new(args.client.json);
    let (mut client, identity, _session, _server, home) =
        connect::authenticated(&args.client, args.server.as_ref()).await?;

    if let Some(id) = args.revoke {
        let id = SessionId(id);
        client.revoke(&id).await.with_context(|| format!("cannot revoke session {}", untrusted(&id.0)))?;
        close(client).await;
        let current = id == identity.session_id;
        if current {
            // The saved token died with it.
            home.remove_session()?;
        }
        let value = json!({ "revoked": id, "current": current });
        return out.result(&value, || {
            let mut text = format!("Revoked session {}.", untrusted(&id.0));
            if current {
                text.push_str(" It was this client's own session, so you are now logged out here.");
            }
            text
        });
    }

    let sessions = client.sessions().await?;
    close(client).await;
    out.result(&json!(sessions), || {
        let rows: Vec<Vec<String>> = sessions
            .iter()
            .map(|s| {
                vec![
                    if s.current { "*".into() } else { String::new() },
                    untrusted(&s.id.0).into_owned(),
                    utc_minutes(s.created_at),
                    utc_minutes(s.last_seen_at),
                    utc_minutes(s.expires_at),
                    untrusted(&s.client).into_owned(),
                ]
            })
            .collect();
        table(&["", "ID", "CREATED (UTC)", "LAST SEEN", "EXPIRES", "CLIENT"], &rows)
    })
}
