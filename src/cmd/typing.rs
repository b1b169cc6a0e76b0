//! `conclave typing TARGET`: for bots and scripts that want to show activity.

use crate::{args::TypingArgs, connect, output::Output};
use serde_json::json;

/// Sends one typing indicator to the conversation's online members.
pub async fn run(args: TypingArgs) -> anyhow::Result<()> {
    let out = Output::new(args.opts.client.json);
    let (mut messenger, _home) = connect::messenger(&args.opts).await?;
    let room = messenger.resolve(&args.target).await?;
    messenger.join(&room).await?;
    messenger.send_typing(&room).await?;
    messenger.close().await.ok();
    out.result(&json!({ "typing": room.name }), || format!("told {} you are typing", room.name))
}
