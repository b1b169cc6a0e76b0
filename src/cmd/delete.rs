//! `conclave delete TARGET MSGID`.

use crate::{args::DeleteArgs, connect, output::Output};
use conclave_proto::MessageId;
use serde_json::json;

/// Deletes a message for everyone.
pub async fn run(args: DeleteArgs) -> anyhow::Result<()> {
    let out = Output::new(args.opts.client.json);
    let (mut messenger, _home) = connect::messenger(&args.opts).await?;
    let room = messenger.resolve(&args.target).await?;
    messenger.delete(&room, MessageId(args.message)).await?;
    messenger.close().await.ok();
    out.result(&json!({ "deleted": args.message }), || format!("deleted message {}", args.message))
}
