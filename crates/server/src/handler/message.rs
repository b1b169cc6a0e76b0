//! Application messages: sending, reading the log, deleting for everyone.

use super::{Caller, Ctx};
use crate::{
    appender::Outgoing,
    audit::AuditAction,
    clock,
    error::{NO_SUCH_MESSAGE, NO_SUCH_ROOM, RequestError},
    fanout::{self, Delta},
    policy,
};
use conclave_proto::{
    Bytes, EntryBody, Event, LogEntry, MessageId, Reply, RoomId, Seq,
    limits::{MAX_FETCH, MAX_MESSAGE_BYTES, MAX_SIGNAL_BYTES},
};
use serde_json::json;

/// # `send`
///
/// Stores an MLS application message in the room's log (with other messages
/// in one transaction: see [`crate::appender`]) and answers `sent` only once it
/// is durably stored; every member device's connections receive it in seq
/// order. Only devices in the room's group may send. A retried send with
/// the same nonce gets the first one's id and seq and stores nothing. Each
/// account sends at most `messages_per_minute` messages and
/// `message_bytes_per_minute` bytes, checked in memory before the message
/// joins a batch.
pub(crate) async fn send(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    room: RoomId,
    ciphertext: Bytes,
    nonce: u64,
) -> Result<Reply, RequestError> {
    check_size(&ciphertext, MAX_MESSAGE_BYTES, "a message is at most 64 KiB")?;
    ctx.shared.quotas.send(me.user.id, ciphertext.0.len())?;
    let outgoing = Outgoing {
        room,
        user: me.user.id,
        username: me.user.username.clone(),
        device: me.device,
        ciphertext,
        nonce,
        at_ms: clock::now_ms(),
    };
    let stored = ctx.shared.appender.append(outgoing).await?;
    Ok(Reply::Sent { id: stored.id, seq: stored.seq })
}

/// # `signal`
///
/// Relays an ephemeral MLS application message (a typing indicator) to the
/// online connections of the room's other member devices. Nothing is stored or
/// audited: a signal nobody is online to see is simply gone. The relayed event
/// carries the room's last sequence number, so receivers that are behind drop it
/// instead of decrypting it ahead of stored messages.
pub(crate) async fn signal(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    room: RoomId,
    ciphertext: Bytes,
) -> Result<Reply, RequestError> {
    check_size(&ciphertext, MAX_SIGNAL_BYTES, "a signal is at most 4 KiB")?;
    let shared = ctx.shared;
    if !shared.signal_limiter.allow(&me.user.id) {
        return Err(RequestError::TooFast("signals"));
    }
    let record = shared.store.room(me.user.id, room).await?.ok_or(RequestError::NotFound(NO_SUCH_ROOM))?;
    let joined = shared.store.device_joined(room, me.device).await?;
    policy::may_use(record.kind, record.viewer, joined.is_some())?;
    let event = Event::Signal {
        room,
        sender: me.user.username.clone(),
        device: me.device,
        after: record.last_seq,
        ciphertext,
    };
    shared.fanout.relay(room, me.device, &fanout::encode(event));
    Ok(Reply::Done)
}

/// # `fetch`
///
/// Log entries after `after`, oldest first: for members only, and for each
/// device only from where it joined the group (it could not decrypt anything
/// older). Catching up after a disconnect is `fetch` from the last processed
/// seq until `last_seq` is reached.
pub(crate) async fn fetch(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    room: RoomId,
    after: Seq,
    limit: u32,
) -> Result<Reply, RequestError> {
    if limit > MAX_FETCH {
        return Err(RequestError::Invalid("fetch returns at most 500 entries at a time"));
    }
    let store = &ctx.shared.store;
    let record = store.room(me.user.id, room).await?.ok_or(RequestError::NotFound(NO_SUCH_ROOM))?;
    let joined = store.device_joined(room, me.device).await?;
    policy::may_use(record.kind, record.viewer, joined.is_some())?;
    let first_readable = joined.map_or(0, |seq| seq.0.saturating_sub(1));
    let from = Seq(after.0.max(first_readable));
    let mut entries = store.log_entries(room, from, i64::from(limit)).await?;
    truncate_to_budget(&mut entries);
    store.spend_welcome(me.device, room).await?;
    let last_seq = entries.last().map_or(record.last_seq, |e| e.seq.max(record.last_seq));
    Ok(Reply::Log { room, entries, last_seq })
}

/// # `delete`
///
/// Deletes a message for everyone (its sender or the room's owner may): the
/// server erases the ciphertext from its database and appends a `deleted`
/// entry. Deleting it again returns the first deletion. A non-member is told
/// "no such message" whether the room or the message exists or not, so
/// nobody outside a room learns which of its seqs are messages.
pub(crate) async fn delete(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    room: RoomId,
    message: MessageId,
) -> Result<Reply, RequestError> {
    let shared = ctx.shared;
    let at_ms = clock::now_ms();
    let caller = me.user.id;
    let turn = shared.fanout.turn(room).await;
    let (appended, fresh) = shared
        .store
        .delete_message(room, caller, me.device, message, at_ms, |standing, sender, owner| {
            policy::may_delete(caller, standing, sender, owner)
        })
        .await
        .map_err(|err| match RequestError::from(err) {
            RequestError::NotFound(_) => RequestError::NotFound(NO_SUCH_MESSAGE),
            other => other,
        })?;
    if fresh {
        let entry = LogEntry {
            seq: appended.seq,
            at_ms,
            sender: me.user.username.clone(),
            device: me.device,
            body: EntryBody::Deleted { message },
        };
        shared.fanout.publish(room, &fanout::encode(Event::Entry { room, entry }), Delta::default());
    }
    drop(turn);
    if fresh {
        if let Err(err) = shared.store.scrub().await {
            tracing::warn!(error = %err, "could not scrub the database after a deletion");
        }
        ctx.audit(
            Some(&me.user.username),
            AuditAction::MessageDeleted,
            json!({ "room": room.0, "id": message.0, "seq": appended.seq.0 }),
        )
        .await?;
    }
    Ok(Reply::Sent { id: message, seq: appended.seq })
}

/// Refuses an empty ciphertext or one over `max` bytes (`too_large` says `limit`).
fn check_size(ciphertext: &Bytes, max: usize, limit: &'static str) -> Result<(), RequestError> {
    if ciphertext.0.is_empty() {
        Err(RequestError::Invalid("the ciphertext is empty"))
    } else if ciphertext.0.len() > max {
        Err(RequestError::TooLarge(limit))
    } else {
        Ok(())
    }
}

/// Keeps the first entries whose encoded size (base64 grows data by a third,
/// plus the JSON around it) fits the reply budget, and always at least one, so a
/// `fetch` reply stays far below the clients' frame limit. The client fetches
/// again from the last entry it got.
fn truncate_to_budget(entries: &mut Vec<conclave_proto::LogEntry>) {
    use conclave_proto::{EntryBody, limits::FETCH_REPLY_BUDGET_BYTES};
    let mut used = 0usize;
    let keep = entries
        .iter()
        .take_while(|entry| {
            let data = match &entry.body {
                EntryBody::Message { ciphertext, .. } => ciphertext.as_ref().map_or(0, |c| c.0.len()),
                EntryBody::Commit { commit, .. } => commit.0.len(),
                EntryBody::Deleted { .. } | EntryBody::Left { .. } | EntryBody::DeviceLeft { .. } => 0,
            };
            used = used.saturating_add(data.saturating_mul(4) / 3 + 256);
            used <= FETCH_REPLY_BUDGET_BYTES
        })
        .count()
        .max(1);
    entries.truncate(keep);
}
