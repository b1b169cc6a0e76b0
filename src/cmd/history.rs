//! `conclave history TARGET`.

use crate::{
    args::HistoryArgs,
    connect,
    output::{Output, message, untrusted, utc_minutes},
};
use serde_json::json;

/// Catches up with the server, then prints from the local store in room order.
pub async fn run(args: HistoryArgs) -> anyhow::Result<()> {
    let out = Output::new(args.opts.client.json);
    let (mut messenger, _home) = connect::messenger(&args.opts).await?;
    let room = messenger.resolve(&args.target).await?;
    let conclave_client::History { messages, joined, notes } = messenger.history(&room, args.limit).await?;
    for note in &notes {
        out.info(format_args!("note: {}", untrusted(note)));
    }
    messenger.close().await.ok();
    if args.opts.client.json {
        for m in &messages {
            let line = json!({
                "id": m.id, "seq": m.seq, "room": m.room, "sender": m.sender,
                "text": m.text, "sent_at": m.sent_at_ms / 1000,
            });
            out.result(&line, String::new)?;
        }
        return Ok(());
    }
    let mut text = String::new();
    if joined.0 > 1 && messages.first().is_none_or(|m| m.seq.0 > joined.0) {
        text.push_str(
            "(this device joined the conversation here: anything sent earlier is not readable on it)\n",
        );
    }
    for m in &messages {
        let header = format!(
            "[{}] {} (#{}) {}: ",
            utc_minutes(m.sent_at_ms / 1000),
            m.id,
            m.seq,
            untrusted(&m.sender)
        );
        let body = m
            .text
            .as_deref()
            .unwrap_or("[not readable on this device: sent before it joined, or undecryptable]");
        text.push_str(&message(&header, body));
        text.push('\n');
    }
    if text.is_empty() {
        text = format!("no messages in {}", untrusted(&room.name));
    }
    out.result(&json!(null), || text)
}
