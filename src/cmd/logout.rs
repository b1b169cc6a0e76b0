//! `conclave logout`: ends the saved session on the server and forgets it.

use crate::{
    args::LogoutArgs,
    connect::{self, close},
    output::{Output, untrusted},
};
use serde_json::json;

/// Logs out.
pub async fn run(args: LogoutArgs) -> anyhow::Result<()> {
    let out = Output::new(args.client.json);
    let home = connect::open_home(&args.client)?;
    let session = connect::saved_session(&home)?;
    let server = connect::session_server(&session, args.server.as_ref())?;

    let mut client = connect::connect(&home, &server, &args.client).await?;
    let was_valid = match client.authenticate(&session.token).await {
        Ok(_) => {
            client.logout().await?;
            true
        }
        // Already over on the server: only the local copy is left to delete.
        Err(err) if err.is_session_gone() => false,
        Err(err) => return Err(err.into()),
    };
    close(client).await;
    home.remove_session()?;

    let value = json!({
        "logged_out": true,
        "server": server.to_string(),
        "username": session.username,
        "session_id": session.session_id,
        "session_was_valid": was_valid,
    });
    out.result(&value, || {
        let user = untrusted(&session.username);
        if was_valid {
            format!("Logged out {user} from {server}.")
        } else {
            format!(
                "The saved session of {user} on {server} was no longer valid on the server \
                 (logged out, revoked or expired); removed it locally."
            )
        }
    })
}
