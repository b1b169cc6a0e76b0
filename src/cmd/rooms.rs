//! `conclave rooms`.

use crate::{
    args::MessagingOpts,
    connect,
    output::{Output, table, untrusted},
};
use conclave_proto::RoomKind;
use serde_json::json;

/// Lists the user's rooms and the public ones.
pub async fn run(opts: MessagingOpts) -> anyhow::Result<()> {
    let out = Output::new(opts.client.json);
    let (mut messenger, _home) = connect::messenger(&opts).await?;
    let rooms = messenger.rooms().await?;
    messenger.close().await.ok();
    out.result(&json!(rooms), || {
        let rows: Vec<Vec<String>> = rooms
            .iter()
            .map(|r| {
                let kind = match r.kind {
                    RoomKind::Lobby => "lobby",
                    RoomKind::Public => "public",
                    RoomKind::Private => "private",
                    RoomKind::Direct => "direct",
                };
                vec![
                    untrusted(&r.name).into_owned(),
                    kind.to_owned(),
                    r.owner.as_deref().map_or_else(String::new, |o| untrusted(o).into_owned()),
                    if r.member { "yes".into() } else { "no".into() },
                    r.last_seq.to_string(),
                ]
            })
            .collect();
        table(&["ROOM", "KIND", "OWNER", "MEMBER", "MESSAGES"], &rows)
    })
}
