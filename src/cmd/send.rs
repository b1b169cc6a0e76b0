//! `conclave send TARGET TEXT`.

use crate::{args::SendArgs, connect, output::Output};
use serde_json::json;

/// Sends one message and prints its id once the server stored it.
pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let out = Output::new(args.opts.client.json);
    let (mut messenger, _home) = connect::messenger(&args.opts).await?;
    let room = messenger.resolve(&args.target).await?;
    let (message, _) = messenger.send_text(&room, &args.text).await?;
    messenger.close().await.ok();
    out.result(&json!({ "id": message.id, "seq": message.seq }), || {
        format!("sent message {} to {} (#{} in the room)", message.id, args.target, message.seq)
    })
}
