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
    let home = connect::open_home(&args.client)?;
    let session = connect::saved_session(&home)?;
    let server = connect::session_server(&session, args.server.as_ref())?;

    let mut client = connect::connect(&home, &server, &args.client).await?;
    let identity = match client.authenticate(&session.token).await {
        Ok(identity) => identity,
        Err(err) if err.is_session_gone() => return Err(connect::session_gone(&session, &server)),
        Err(err) => return Err(err.into()),
    };
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
