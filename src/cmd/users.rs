//! `conclave users [--online]`.

use crate::{
    args::UsersArgs,
    connect,
    output::{Output, untrusted},
};
use serde_json::json;

/// Lists users with their presence.
pub async fn run(args: UsersArgs) -> anyhow::Result<()> {
    let out = Output::new(args.opts.client.json);
    let (mut messenger, _home) = connect::messenger(&args.opts).await?;
    let users: Vec<_> = messenger.users().await?.into_iter().filter(|u| !args.online || u.online).collect();
    messenger.close().await.ok();
    out.result(&json!(users), || {
        users
            .iter()
            .map(|u| format!("{} {}\n", if u.online { "●" } else { "○" }, untrusted(&u.username)))
            .collect()
    })
}
