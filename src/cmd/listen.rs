//! `conclave listen`: prints events as they arrive, reconnecting with back-off
//! and resuming every room from its cursor, so nothing is missed or shown twice.

use crate::{
    args::ListenArgs,
    connect,
    output::{Output, message, untrusted, utc_minutes},
};
use conclave_client::{Update, reconnect::Backoff};
use serde_json::json;

/// Runs until interrupted.
pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let out = Output::new(args.opts.client.json);
    let mut backoff = Backoff::default();
    loop {
        let attempt = async {
            let (mut messenger, _home) = connect::messenger(&args.opts).await?;
            backoff.reset();
            out.info("connected");
            for update in messenger.sync_all().await? {
                print(out, &update)?;
            }
            loop {
                for update in messenger.next_updates().await? {
                    print(out, &update)?;
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), anyhow::Error>(())
        };
        tokio::select! {
            result = attempt => {
                if let Err(err) = result {
                    if err.downcast_ref::<conclave_client::ClientError>().is_some_and(|e| e.is_session_gone()) {
                        return Err(err);
                    }
                    let delay = backoff.next_delay(rand::random::<f64>());
                    out.info(format_args!("disconnected ({err:#}); reconnecting in {:.1} s", delay.as_secs_f64()));
                    tokio::time::sleep(delay).await;
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn print(out: Output, update: &Update) -> anyhow::Result<()> {
    let (value, text) = match update {
        Update::Message(m) => (
            json!({ "event": "message", "id": m.id, "seq": m.seq, "room": m.room, "sender": m.sender, "text": m.text, "sent_at": m.sent_at_ms / 1000 }),
            message(
                &format!(
                    "[{}] {} {}: ",
                    utc_minutes(m.sent_at_ms / 1000),
                    untrusted(&m.room),
                    untrusted(&m.sender)
                ),
                m.text.as_deref().unwrap_or("[not readable on this device]"),
            ),
        ),
        Update::Deleted { room, id } => (
            json!({ "event": "deleted", "room": room, "id": id }),
            format!("{}: message {id} was deleted", untrusted(room)),
        ),
        Update::Membership { room, text } => (
            json!({ "event": "membership", "room": room, "text": text }),
            format!("{}: {}", untrusted(room), untrusted(text)),
        ),
        Update::Joined { room } => {
            (json!({ "event": "joined", "room": room }), format!("you joined {}", untrusted(room)))
        }
        Update::Removed { room } => (
            json!({ "event": "removed", "room": room }),
            format!("you were removed from {}", untrusted(room)),
        ),
        Update::Presence(p) => (
            json!({ "event": "presence", "user": p.username, "online": p.online }),
            format!("{} is {}", untrusted(&p.username), if p.online { "online" } else { "offline" }),
        ),
        Update::Typing { room, user } => (
            json!({ "event": "typing", "room": room, "user": user }),
            format!("{}: {} is typing…", untrusted(room), untrusted(user)),
        ),
    };
    out.result(&value, || text)
}
