//! Each room's totally ordered log, every write that appends to it, and the
//! Welcomes stored with commits.
//!
//! Every append is one transaction that starts with
//! `UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING …`. That
//! takes the room's row lock (PostgreSQL) or the write lock (SQLite) before
//! anything is read, so appends to one room queue there, from any number of
//! connections or server nodes; the policy decision made inside the transaction
//! sees exactly the state the append changes; and sequence numbers have no gaps
//! (a refused append rolls its increment back). Commits are in seq order, so a
//! reader never sees entry `n + 1` without entry `n`. Callers reply only after
//! these functions return: what is acknowledged is on disk.

use sqlx::QueryBuilder;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{
    NewAuditEntry, Result, Store, StoreError, Writer,
    audit::{Chained, insert_audit},
    rooms::{epoch_of, parse_kind},
    with_pool, with_writer,
};
use crate::policy::{CommitFacts, Membership, Refusal, RoomFacts};
use conclave_proto::{
    Bytes, Change, DeviceId, EntryBody, LogEntry, MessageId, RoomId, RoomKind, Seq, UserId,
};

/// Why an append did not happen. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    /// No such room, or no such message in it.
    #[error("not found")]
    NotFound,
    /// Room policy or the epoch check refused it.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// The device used this nonce for a message in another room.
    #[error("nonce reused in another room")]
    NonceReused,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The batch this message was part of failed to store (the cause is logged
    /// once); nothing of it was stored, and sending again is safe.
    #[error("the batch could not be stored")]
    Unstored,
}

impl From<sqlx::Error> for AppendError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

/// Where an entry landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Its position in the room's log.
    pub seq: Seq,
}

/// A message as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredMessage {
    /// Message id.
    pub id: MessageId,
    /// Position in the log.
    pub seq: Seq,
    /// Unix milliseconds when it was stored.
    pub at_ms: i64,
    /// `false` when this is the earlier send of the same nonce.
    pub fresh: bool,
}

/// A commit to append.
#[derive(Debug)]
pub(crate) struct NewCommit<'a> {
    /// The room.
    pub room: RoomId,
    /// Committing user and device.
    pub user: UserId,
    /// Committing device.
    pub device: DeviceId,
    /// The epoch the commit was made in.
    pub epoch: u64,
    /// The declared change.
    pub change: &'a Change,
    /// The declared change as stored (JSON).
    pub change_json: &'a str,
    /// MLS commit.
    pub commit: &'a [u8],
    /// GroupInfo after the commit.
    pub group_info: &'a [u8],
    /// Ratchet tree after the commit.
    pub ratchet_tree: &'a [u8],
    /// The group's public MLS state after the commit.
    pub public_group: &'a [u8],
    /// Welcome for `devices`.
    pub welcome: Option<&'a [u8]>,
    /// `add`/`remove`: the users named, resolved.
    pub targets: &'a [UserId],
    /// `add`: the devices added.
    pub devices: &'a [DeviceId],
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// A message to append.
#[derive(Debug)]
pub(crate) struct NewMessage<'a> {
    /// The room.
    pub room: RoomId,
    /// Sender.
    pub user: UserId,
    /// The sender's username, for the audit log.
    pub username: &'a str,
    /// Sending device.
    pub device: DeviceId,
    /// MLS ciphertext.
    pub ciphertext: &'a [u8],
    /// The sender's idempotency nonce.
    pub nonce: u64,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// A pending Welcome for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WelcomeRecord {
    /// The room.
    pub room: RoomId,
    /// The commit that added the device.
    pub seq: Seq,
    /// MLS Welcome.
    pub welcome: Vec<u8>,
    /// Ratchet tree after that commit.
    pub ratchet_tree: Vec<u8>,
}

/// Message ids are `room << 32 | seq`: unique on the server without a global
/// counter that every send in every room would have to lock. `None` past 2³¹
/// rooms or 2³² entries in one room.
#[must_use]
pub(crate) fn message_id(room: RoomId, seq: Seq) -> Option<MessageId> {
    let room = u32::try_from(room.0).ok().filter(|r| *r < 1 << 31)?;
    let seq = u32::try_from(seq.0).ok()?;
    Some(MessageId((i64::from(room) << 32) | i64::from(seq)))
}

/// Takes the room's lock and the next sequence number; returns the room's state.
pub(super) const LOCK_ROOM: &str = "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 \
                         RETURNING last_seq, epoch, kind, owner_id, direct_low, direct_high";
pub(super) type LockRow = (i64, Option<i64>, String, Option<i64>, Option<i64>, Option<i64>);

const MEMBERSHIP: &str =
    "SELECT role, left_at IS NOT NULL FROM room_members WHERE room_id = $1 AND user_id = $2";
const RETIRED: &str = "SELECT retired_at IS NOT NULL FROM devices WHERE id = $1";
const IN_GROUP: &str = "SELECT joined_seq FROM member_devices WHERE room_id = $1 AND device_id = $2";
const UPSERT_MEMBER: &str = "INSERT INTO room_members (room_id, user_id, role, joined_seq) VALUES ($1, $2, 'member', $3) \
     ON CONFLICT (room_id, user_id) DO UPDATE SET \
       joined_seq = CASE WHEN room_members.left_at IS NULL THEN room_members.joined_seq ELSE excluded.joined_seq END, \
       left_at = NULL";
const UPSERT_DEVICE: &str = "INSERT INTO member_devices (room_id, device_id, joined_seq) VALUES ($1, $2, $3) \
     ON CONFLICT (room_id, device_id) DO UPDATE SET joined_seq = excluded.joined_seq";
/// Marks `$user` as gone from `$room` at `$at` (Unix seconds): no longer a
/// member, their devices out of the delivery list and their Welcomes dropped.
macro_rules! member_gone {
    ($tx:expr, $room:expr, $user:expr, $at:expr) => {{
        sqlx::query("UPDATE room_members SET left_at = $3 WHERE room_id = $1 AND user_id = $2 AND left_at IS NULL")
            .bind($room)
            .bind($user)
            .bind($at)
            .execute(&mut *$tx)
            .await?;
        for statement in [
            "DELETE FROM member_devices WHERE room_id = $1 AND device_id IN (SELECT id FROM devices WHERE user_id = $2)",
            "DELETE FROM welcomes WHERE room_id = $1 AND device_id IN (SELECT id FROM devices WHERE user_id = $2)",
        ] {
            sqlx::query(statement).bind($room).bind($user).execute(&mut *$tx).await?;
        }
    }};
}
/// `prefix` then `(first = ? AND second = ?) OR …`, one term per pair: an index
/// lookup per pair on both databases, where SQLite would scan the whole table
/// for `(first, second) IN (VALUES …)`.
fn any_pair<DB>(
    prefix: &str,
    first: &str,
    second: &str,
    pairs: impl IntoIterator<Item = (i64, i64)>,
) -> QueryBuilder<DB>
where
    DB: sqlx::Database,
    DB::Arguments: Default,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = QueryBuilder::new(prefix);
    let mut terms = query.separated(" OR ");
    for (a, b) in padded(pairs) {
        terms.push(format_args!("({first} = "));
        terms.push_bind_unseparated(a);
        terms.push_unseparated(format_args!(" AND {second} = "));
        terms.push_bind_unseparated(b);
        terms.push_unseparated(")");
    }
    query
}

/// The items with the last one repeated up to the next power of two. A
/// statement built over a batch's keys then has one of a few texts (nine for
/// batches of up to 256) rather than one per batch size, so the connection's
/// cache of prepared statements serves it instead of the database parsing and
/// planning it again; a repeated key in `IN (…)`, `OR` or `CASE` terms changes
/// nothing.
fn padded<T: Copy>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.into_iter().collect();
    if let Some(&last) = items.last() {
        items.resize(items.len().next_power_of_two(), last);
    }
    items
}

/// Appends `(id, id, …)` to `query`: the rooms a statement is about.
fn push_ids<DB>(query: &mut QueryBuilder<DB>, ids: impl IntoIterator<Item = i64>)
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query.push("(");
    let mut list = query.separated(", ");
    for id in padded(ids) {
        list.push_bind(id);
    }
    query.push(")");
}

/// A device's earlier send with a nonce: room, seq, message id, time.
type EarlierSend = (i64, i64, Option<i64>, i64);

/// What a retried send (same device and nonce) returns: the first send.
fn earlier_send(room: RoomId, (found, seq, id, at_ms): EarlierSend) -> Result<StoredMessage, AppendError> {
    match id {
        Some(id) if found == room.0 => {
            Ok(StoredMessage { id: MessageId(id), seq: Seq(seq), at_ms, fresh: false })
        }
        _ => Err(AppendError::NonceReused),
    }
}

/// The device acted in the room, so it has joined: its Welcome is spent.
const WELCOME_SPENT: &str = "DELETE FROM welcomes WHERE device_id = $1 AND room_id = $2";
/// A sender's standing from its `room_members` row (role, whether they left),
/// `None` for a non-member.
fn membership(row: Option<(String, bool)>) -> Membership {
    Membership::from_row(row.as_ref().map(|(role, left)| (role.as_str(), *left)))
}

/// The facts a commit is decided on, read with `$conn` (inside the commit's
/// transaction, or before it for the pre-check): the caller's and targets'
/// standing, whether the calling device is in the group; `$kind`, `$epoch`,
/// `$low`, `$high` are the room's row.
macro_rules! commit_facts {
    ($conn:expr, $commit:expr, $kind:expr, $epoch:expr, $low:expr, $high:expr) => {{
        let room = $commit.room.0;
        let caller: Option<(String, bool)> =
            sqlx::query_as(MEMBERSHIP).bind(room).bind($commit.user.0).fetch_optional(&mut *$conn).await?;
        let in_group: Option<i64> = sqlx::query_scalar(IN_GROUP)
            .bind(room)
            .bind($commit.device.0)
            .fetch_optional(&mut *$conn)
            .await?;
        let mut targets = Vec::with_capacity($commit.targets.len());
        for user in $commit.targets {
            let row: Option<(String, bool)> =
                sqlx::query_as(MEMBERSHIP).bind(room).bind(user.0).fetch_optional(&mut *$conn).await?;
            targets.push(membership(row));
        }
        let mut retired = Vec::with_capacity($commit.devices.len());
        for device in $commit.devices {
            let row: Option<bool> =
                sqlx::query_scalar(RETIRED).bind(device.0).fetch_optional(&mut *$conn).await?;
            retired.push(row.unwrap_or(true));
        }
        CommitFacts {
            room: RoomFacts { kind: parse_kind(&$kind)?, epoch: epoch_of($epoch) },
            caller: membership(caller),
            device_in_group: in_group.is_some(),
            targets,
            devices_retired: retired,
            targets_are_participants: $commit.targets.iter().all(|u| [$low, $high].contains(&Some(u.0))),
        }
    }};
}

impl Store {
    /// The facts `commit` would be decided on now, read without taking the
    /// room's lock: for refusing a caller without permission before its commit's
    /// MLS content is checked (which tells about the group). The decision that
    /// counts is [`append_commit`](Self::append_commit)'s, under the lock.
    ///
    /// # Errors
    /// [`AppendError::NotFound`] for no room; storage errors.
    pub(crate) async fn commit_facts(&self, commit: &NewCommit<'_>) -> Result<CommitFacts, AppendError> {
        type RoomRow = (Option<i64>, String, Option<i64>, Option<i64>);
        with_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            let Some((current, kind, low, high)) = sqlx::query_as::<_, RoomRow>(
                "SELECT epoch, kind, direct_low, direct_high FROM rooms WHERE id = $1",
            )
            .bind(commit.room.0)
            .fetch_optional(&mut *conn)
            .await?
            else {
                return Err(AppendError::NotFound);
            };
            Ok(commit_facts!(conn, commit, kind, current, low, high))
        })
    }

    /// Appends a commit if `decide` allows it given the facts read under the
    /// room's lock, and moves the room's epoch by compare-and-set: a `create`
    /// only while the room has no epoch (none → 0), anything else only while the
    /// epoch is still `commit.epoch` (→ `epoch + 1`). Membership, group devices
    /// and Welcomes change in the same transaction, so they exist only if the
    /// commit won its epoch.
    ///
    /// # Errors
    /// [`AppendError::Refused`] with [`Refusal::StaleEpoch`] when another commit
    /// won, or with the policy's reason; [`AppendError::NotFound`] for no room.
    pub(crate) async fn append_commit(
        &self,
        commit: &NewCommit<'_>,
        decide: impl FnOnce(&CommitFacts) -> Result<(), Refusal>,
    ) -> Result<Appended, AppendError> {
        let stale = AppendError::Refused(Refusal::StaleEpoch);
        let epoch = i64::try_from(commit.epoch).map_err(|_| AppendError::Refused(Refusal::StaleEpoch))?;
        let room = commit.room.0;
        let create = matches!(commit.change, Change::Create {});
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let Some((seq, current, kind, _owner, low, high)) =
                sqlx::query_as::<_, LockRow>(LOCK_ROOM).bind(room).fetch_optional(&mut *tx).await?
            else {
                return Err(AppendError::NotFound);
            };
            let facts = commit_facts!(tx, commit, kind, current, low, high);
            if let Err(refusal) = decide(&facts) {
                tx.rollback().await?;
                return Err(AppendError::Refused(refusal));
            }

            // Compare-and-set on the epoch: of two commits for one epoch, one wins.
            let moved = if create {
                sqlx::query(
                    "UPDATE rooms SET epoch = 0, group_info = $2, ratchet_tree = $3, public_group = $4 \
                     WHERE id = $1 AND epoch IS NULL",
                )
                .bind(room)
                .bind(commit.group_info)
                .bind(commit.ratchet_tree)
                .bind(commit.public_group)
                .execute(&mut *tx)
                .await?
            } else {
                sqlx::query(
                    "UPDATE rooms SET epoch = epoch + 1, group_info = $2, ratchet_tree = $3, public_group = $5 \
                     WHERE id = $1 AND epoch = $4",
                )
                .bind(room)
                .bind(commit.group_info)
                .bind(commit.ratchet_tree)
                .bind(epoch)
                .bind(commit.public_group)
                .execute(&mut *tx)
                .await?
            };
            if moved.rows_affected() != 1 {
                tx.rollback().await?;
                return Err(stale);
            }

            sqlx::query(
                "INSERT INTO room_log (room_id, seq, kind, sender_id, device_id, epoch, change, data, at_ms) \
                 VALUES ($1, $2, 'commit', $3, $4, $5, $6, $7, $8)",
            )
            .bind(room)
            .bind(seq)
            .bind(commit.user.0)
            .bind(commit.device.0)
            .bind(epoch)
            .bind(commit.change_json)
            .bind(commit.commit)
            .bind(commit.at_ms)
            .execute(&mut *tx)
            .await?;

            match commit.change {
                Change::Create {} | Change::Join {} => {
                    sqlx::query(UPSERT_MEMBER).bind(room).bind(commit.user.0).bind(seq).execute(&mut *tx).await?;
                    sqlx::query(UPSERT_DEVICE).bind(room).bind(commit.device.0).bind(seq).execute(&mut *tx).await?;
                }
                Change::Add { .. } => {
                    for user in commit.targets {
                        sqlx::query(UPSERT_MEMBER).bind(room).bind(user.0).bind(seq).execute(&mut *tx).await?;
                    }
                    for device in commit.devices {
                        sqlx::query(UPSERT_DEVICE).bind(room).bind(device.0).bind(seq).execute(&mut *tx).await?;
                        if let Some(welcome) = commit.welcome {
                            sqlx::query(
                                "INSERT INTO welcomes (device_id, room_id, seq, data, ratchet_tree, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6)",
                            )
                            .bind(device.0)
                            .bind(room)
                            .bind(seq)
                            .bind(welcome)
                            .bind(commit.ratchet_tree)
                            .bind(commit.at_ms / 1000)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                Change::Remove { .. } => {
                    for user in commit.targets {
                        member_gone!(tx, room, user.0, commit.at_ms / 1000);
                    }
                }
                Change::RemoveDevices { .. } => {
                    for device in commit.devices {
                        for statement in [
                            "DELETE FROM member_devices WHERE room_id = $1 AND device_id = $2",
                            "DELETE FROM welcomes WHERE room_id = $1 AND device_id = $2",
                        ] {
                            sqlx::query(statement).bind(room).bind(device.0).execute(&mut *tx).await?;
                        }
                    }
                }
                Change::Update {} => {}
            }
            sqlx::query(WELCOME_SPENT).bind(commit.device.0).bind(room).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Appended { seq: Seq(seq) })
        })
    }
}

impl Writer {
    /// Appends a batch of messages in one transaction — one fsync for all of
    /// them (group commit) — together with their `message_sent` audit entries.
    ///
    /// Each message is decided on its own: a retried nonce returns the earlier
    /// send (`fresh == false`), and a message `decide` refuses (given the room's
    /// kind, the sender's standing and whether the device is in the group) gets
    /// its refusal, without
    /// affecting the rest; sequence numbers are taken only by stored messages
    /// (under the rooms' row locks), so refusals leave no gaps. `audit` gives
    /// each stored message's audit entry (actor, detail); `link` chains it (see
    /// [`Store::append_audit`]).
    ///
    /// # Errors
    /// A storage failure fails the whole batch (nothing is stored); a nonce
    /// raced in from another connection fails it with [`StoreError::Conflict`].
    pub(crate) async fn append_messages(
        &mut self,
        messages: &[NewMessage<'_>],
        decide: impl Fn(RoomKind, Membership, bool) -> Result<(), Refusal>,
        audit: impl Fn(&NewMessage<'_>, &StoredMessage) -> (String, String),
        link: impl Fn(&[u8], i64, &NewAuditEntry<'_>) -> [u8; 32],
    ) -> Result<Vec<Result<StoredMessage, AppendError>>> {
        with_writer!(self, conn => {
            if messages.is_empty() {
                return Ok(Vec::new());
            }
            let mut tx = sqlx::Connection::begin(&mut **conn).await?;
            // Write first: this takes SQLite's write lock (waiting its busy
            // timeout) or the chain head's row lock (PostgreSQL) before anything
            // is read, so the transaction can never fail to upgrade from reader
            // to writer (SQLITE_BUSY_SNAPSHOT) under concurrent writes.
            let (head, mut prev): (i64, Vec<u8>) =
                sqlx::query_as("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
                    .fetch_one(&mut *tx)
                    .await?;
            // Each statement is a round trip to the database (for SQLite, a hop to
            // its worker thread and back), so the batch's earlier sends are looked
            // up at once, and what can wait for the end of the loop does: the log
            // rows, their audit entries and the spent Welcomes are written by one
            // statement each for the whole batch.
            let mut outcomes: Vec<Result<StoredMessage, AppendError>> = Vec::with_capacity(messages.len());
            // Stored messages with their room's epoch, for the rows written at the end.
            let mut rows: Vec<(&NewMessage<'_>, StoredMessage, Option<i64>)> = Vec::new();
            // (room, device) pairs already allowed in this transaction: under the
            // room's row lock nothing can change their standing before commit.
            let mut allowed: Vec<(RoomId, DeviceId)> = Vec::new();
            // Messages stored by this batch, by (device, nonce): a retry within
            // the batch finds its first send here, not yet in the table.
            let mut stored: HashMap<(DeviceId, u64), usize> = HashMap::new();
            // Earlier sends of the batch's nonces (retries), looked up at once.
            let earlier: HashMap<(i64, i64), EarlierSend> = any_pair(
                "SELECT device_id, nonce, room_id, seq, message_id, at_ms FROM room_log WHERE ",
                "device_id",
                "nonce",
                messages.iter().map(|m| (m.device.0, m.nonce.cast_signed())),
            )
            .build_query_as::<(i64, i64, i64, i64, Option<i64>, i64)>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(device, nonce, room, seq, id, at_ms)| ((device, nonce), (room, seq, id, at_ms)))
            .collect();
            // Every room of the batch, locked (its row lock on PostgreSQL, held to
            // commit) before anything about it is read, with its last sequence
            // number and epoch. Sequence numbers are counted here and written
            // back once at the end.
            let rooms: BTreeSet<i64> = messages.iter().map(|m| m.room.0).collect();
            let mut lock = QueryBuilder::new("UPDATE rooms SET last_seq = last_seq WHERE id IN ");
            push_ids(&mut lock, rooms);
            lock.push(" RETURNING id, last_seq, epoch, kind");
            let mut last_seqs: HashMap<i64, (i64, Option<i64>)> = HashMap::new();
            let mut kinds: HashMap<i64, RoomKind> = HashMap::new();
            for (room, last, epoch, kind) in
                lock.build_query_as::<(i64, i64, Option<i64>, String)>().fetch_all(&mut *tx).await?
            {
                last_seqs.insert(room, (last, epoch));
                kinds.insert(room, parse_kind(&kind)?);
            }
            // The senders' standing, read for the whole batch under the rooms'
            // locks (nothing can change it before commit): two round trips per
            // batch instead of one per sender.
            let members: HashMap<(i64, i64), (String, bool)> = any_pair(
                "SELECT room_id, user_id, role, left_at IS NOT NULL FROM room_members WHERE ",
                "room_id",
                "user_id",
                messages.iter().map(|m| (m.room.0, m.user.0)).collect::<BTreeSet<_>>(),
            )
            .build_query_as::<(i64, i64, String, bool)>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(room, user, role, left)| ((room, user), (role, left)))
            .collect();
            let in_group: HashSet<(i64, i64)> = any_pair(
                "SELECT room_id, device_id FROM member_devices WHERE ",
                "room_id",
                "device_id",
                messages.iter().map(|m| (m.room.0, m.device.0)).collect::<BTreeSet<_>>(),
            )
            .build_query_as::<(i64, i64)>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            for (index, message) in messages.iter().enumerate() {
                let room = message.room.0;
                let nonce = message.nonce.cast_signed();
                if let Some(&first) = stored.get(&(message.device, message.nonce)) {
                    outcomes.push(match outcomes[first] {
                        Ok(earlier) if messages[first].room == message.room => {
                            Ok(StoredMessage { fresh: false, ..earlier })
                        }
                        _ => Err(AppendError::NonceReused),
                    });
                    continue;
                }
                if let Some(&earlier) = earlier.get(&(message.device.0, nonce)) {
                    outcomes.push(earlier_send(message.room, earlier));
                    continue;
                }
                let Some(&(last, epoch)) = last_seqs.get(&room) else {
                    outcomes.push(Err(AppendError::NotFound));
                    continue;
                };
                if !allowed.contains(&(message.room, message.device)) {
                    let sender = members.get(&(room, message.user.0)).cloned();
                    let in_group = in_group.contains(&(room, message.device.0));
                    let kind = kinds.get(&room).copied().unwrap_or(RoomKind::Private);
                    if let Err(refusal) = decide(kind, membership(sender), in_group) {
                        outcomes.push(Err(AppendError::Refused(refusal)));
                        continue;
                    }
                    allowed.push((message.room, message.device));
                }
                // Numbers are taken only by stored messages: no gaps.
                let seq = last + 1;
                last_seqs.insert(room, (seq, epoch));
                let Some(id) = message_id(message.room, Seq(seq)) else {
                    return Err(StoreError::Database(sqlx::Error::Protocol("room log is full".into())));
                };
                let new = StoredMessage { id, seq: Seq(seq), at_ms: message.at_ms, fresh: true };
                rows.push((message, new, epoch));
                stored.insert((message.device, message.nonce), index);
                outcomes.push(Ok(new));
            }
            if !rows.is_empty() {
                // Each room's new last number: its last stored message's.
                let advanced: BTreeMap<i64, i64> = rows.iter().map(|(message, new, _)| (message.room.0, new.seq.0)).collect();
                let mut advance = QueryBuilder::new("UPDATE rooms SET last_seq = CASE id");
                for (room, last) in padded(&advanced) {
                    advance.push(" WHEN ").push_bind(*room).push(" THEN ").push_bind(*last);
                }
                advance.push(" END WHERE id IN ");
                push_ids(&mut advance, advanced.keys().copied());
                advance.build().execute(&mut *tx).await?;
                let mut insert = QueryBuilder::new(
                    "INSERT INTO room_log (room_id, seq, kind, sender_id, device_id, message_id, epoch, data, nonce, at_ms) ",
                );
                insert.push_values(&rows, |mut row, (message, new, epoch)| {
                    row.push_bind(message.room.0)
                        .push_bind(new.seq.0)
                        .push_bind("message")
                        .push_bind(message.user.0)
                        .push_bind(message.device.0)
                        .push_bind(new.id.0)
                        .push_bind(*epoch)
                        .push_bind(message.ciphertext)
                        .push_bind(message.nonce.cast_signed())
                        .push_bind(message.at_ms);
                });
                insert.build().execute(&mut *tx).await?;
                // The devices have acted in their rooms, so they have joined:
                // their Welcomes are spent.
                any_pair("DELETE FROM welcomes WHERE ", "device_id", "room_id", allowed.iter().map(|(room, device)| (device.0, room.0)))
                    .build()
                    .execute(&mut *tx)
                    .await?;
                let details: Vec<(String, String)> = rows
                    .iter()
                    .map(|(message, new, _)| audit(message, new))
                    .collect();
                let mut chain = Vec::with_capacity(rows.len());
                for ((seq, (message, ..)), (actor, detail)) in (head + 1..).zip(&rows).zip(&details) {
                    let entry = NewAuditEntry { at_ms: message.at_ms, actor: Some(actor), action: "message_sent", detail };
                    let hash = link(&prev, seq, &entry);
                    chain.push(Chained { seq, entry, prev: std::mem::replace(&mut prev, hash.to_vec()), hash });
                }
                insert_audit(&chain).build().execute(&mut *tx).await?;
                sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(head + i64::try_from(chain.len()).unwrap_or(i64::MAX))
                    .bind(&prev)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }
}

impl Store {
    /// Deletes a message for everyone if `decide` (given the caller's standing,
    /// the message's sender and the room's owner) allows it: its ciphertext is
    /// erased and a `deleted` entry appended. Deleting it again returns the
    /// first deletion's entry (`fresh == false`).
    ///
    /// # Errors
    /// [`AppendError::NotFound`] when the room has no such message.
    pub(crate) async fn delete_message(
        &self,
        room: RoomId,
        user: UserId,
        device: DeviceId,
        message: MessageId,
        at_ms: i64,
        decide: impl FnOnce(Membership, UserId, Option<UserId>) -> Result<(), Refusal>,
    ) -> Result<(Appended, bool), AppendError> {
        let room_id = room.0;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let Some((seq, _, _, owner, ..)) =
                sqlx::query_as::<_, LockRow>(LOCK_ROOM).bind(room_id).fetch_optional(&mut *tx).await?
            else {
                return Err(AppendError::NotFound);
            };
            let target: Option<(i64, bool)> = sqlx::query_as(
                "SELECT sender_id, data IS NULL FROM room_log \
                 WHERE room_id = $1 AND message_id = $2 AND kind = 'message'",
            )
            .bind(room_id)
            .bind(message.0)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((sender, erased)) = target else {
                tx.rollback().await?;
                return Err(AppendError::NotFound);
            };
            let standing: Option<(String, bool)> =
                sqlx::query_as(MEMBERSHIP).bind(room_id).bind(user.0).fetch_optional(&mut *tx).await?;
            if let Err(refusal) = decide(membership(standing), UserId(sender), owner.map(UserId)) {
                tx.rollback().await?;
                return Err(AppendError::Refused(refusal));
            }
            if erased {
                let earlier: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM room_log WHERE room_id = $1 AND kind = 'deleted' AND target_message_id = $2",
                )
                .bind(room_id)
                .bind(message.0)
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                return earlier.map(|seq| (Appended { seq: Seq(seq) }, false)).ok_or(AppendError::NotFound);
            }
            sqlx::query("UPDATE room_log SET data = NULL WHERE room_id = $1 AND message_id = $2")
                .bind(room_id)
                .bind(message.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO room_log (room_id, seq, kind, sender_id, device_id, target_message_id, at_ms) \
                 VALUES ($1, $2, 'deleted', $3, $4, $5, $6)",
            )
            .bind(room_id)
            .bind(seq)
            .bind(user.0)
            .bind(device.0)
            .bind(message.0)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok((Appended { seq: Seq(seq) }, true))
        })
    }

    /// Takes `user` out of the room if `decide` (given the room's kind and the
    /// user's standing) allows it: they stop being a member, their devices leave
    /// the delivery list at once, and a `left` entry is appended.
    ///
    /// # Errors
    /// As [`Store::append_commit`].
    pub(crate) async fn leave_room(
        &self,
        room: RoomId,
        user: UserId,
        device: DeviceId,
        at_ms: i64,
        decide: impl FnOnce(RoomKind, Membership) -> Result<(), Refusal>,
    ) -> Result<Appended, AppendError> {
        let room_id = room.0;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let Some((seq, _, kind, ..)) =
                sqlx::query_as::<_, LockRow>(LOCK_ROOM).bind(room_id).fetch_optional(&mut *tx).await?
            else {
                return Err(AppendError::NotFound);
            };
            let standing: Option<(String, bool)> =
                sqlx::query_as(MEMBERSHIP).bind(room_id).bind(user.0).fetch_optional(&mut *tx).await?;
            if let Err(refusal) = decide(parse_kind(&kind)?, membership(standing)) {
                tx.rollback().await?;
                return Err(AppendError::Refused(refusal));
            }
            member_gone!(tx, room_id, user.0, at_ms / 1000);
            sqlx::query(
                "INSERT INTO room_log (room_id, seq, kind, sender_id, device_id, at_ms) \
                 VALUES ($1, $2, 'left', $3, $4, $5)",
            )
            .bind(room_id)
            .bind(seq)
            .bind(user.0)
            .bind(device.0)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Appended { seq: Seq(seq) })
        })
    }

    /// Log entries with `seq > after`, oldest first, at most `limit`.
    pub(crate) async fn log_entries(&self, room: RoomId, after: Seq, limit: i64) -> Result<Vec<LogEntry>> {
        type Row = (
            i64,
            i64,
            String,
            i64,
            String,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<Vec<u8>>,
            Option<i64>,
        );
        let rows: Vec<Row> = with_pool!(self, pool => sqlx::query_as(
            "SELECT l.seq, l.at_ms, u.username, l.device_id, l.kind, l.message_id, l.epoch, l.change, l.data, \
                    l.target_message_id \
             FROM room_log l JOIN users u ON u.id = l.sender_id \
             WHERE l.room_id = $1 AND l.seq > $2 ORDER BY l.seq LIMIT $3",
        )
        .bind(room.0)
        .bind(after.0)
        .bind(limit)
        .fetch_all(pool)
        .await?);
        rows.into_iter()
            .map(|(seq, at_ms, sender, device, kind, message_id, epoch, change, data, target)| {
                let corrupt = |what: &str| {
                    StoreError::Database(sqlx::Error::Decode(format!("room log entry {seq}: {what}").into()))
                };
                let body = match kind.as_str() {
                    "message" => EntryBody::Message {
                        id: MessageId(message_id.ok_or_else(|| corrupt("message without id"))?),
                        ciphertext: data.map(Bytes),
                    },
                    "commit" => EntryBody::Commit {
                        epoch: epoch_of(epoch).ok_or_else(|| corrupt("commit without epoch"))?,
                        change: serde_json::from_str(change.as_deref().unwrap_or_default())
                            .map_err(|_| corrupt("unreadable change"))?,
                        commit: Bytes(data.unwrap_or_default()),
                    },
                    "deleted" => EntryBody::Deleted {
                        message: MessageId(target.ok_or_else(|| corrupt("deletion without target"))?),
                    },
                    "left" => EntryBody::Left { user: sender.clone() },
                    "device_left" => EntryBody::DeviceLeft { user: sender.clone(), device: DeviceId(device) },
                    other => return Err(corrupt(&format!("unknown kind {other:?}"))),
                };
                Ok(LogEntry { seq: Seq(seq), at_ms, sender, device: DeviceId(device), body })
            })
            .collect()
    }

    /// The Welcomes waiting for `device`, oldest first.
    pub(crate) async fn welcomes_for(&self, device: DeviceId) -> Result<Vec<WelcomeRecord>> {
        let rows: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT room_id, seq, data, ratchet_tree FROM welcomes WHERE device_id = $1 ORDER BY id",
        )
        .bind(device.0)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(room, seq, welcome, ratchet_tree)| WelcomeRecord {
                room: RoomId(room),
                seq: Seq(seq),
                welcome,
                ratchet_tree,
            })
            .collect())
    }

    /// Forgets `device`'s Welcome into `room`: the device acted there, so it has
    /// joined.
    /// Reads first, so the usual case (nothing pending) takes no write lock.
    pub(crate) async fn spend_welcome(&self, device: DeviceId, room: RoomId) -> Result<()> {
        with_pool!(self, pool => {
            let pending: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM welcomes WHERE device_id = $1 AND room_id = $2 LIMIT 1",
            )
            .bind(device.0)
            .bind(room.0)
            .fetch_optional(pool)
            .await?;
            if pending.is_some() {
                sqlx::query(WELCOME_SPENT).bind(device.0).bind(room.0).execute(pool).await?;
            }
        });
        Ok(())
    }

    /// Deletes Welcomes stored before `before` (Unix seconds).
    pub(crate) async fn prune_welcomes(&self, before: i64) -> Result<u64> {
        Ok(with_pool!(self, pool => sqlx::query("DELETE FROM welcomes WHERE created_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Makes erased data unrecoverable from the database files. SQLite runs with
    /// `secure_delete`, so freed space is zeroed; this also checkpoints and
    /// truncates the write-ahead log, which still holds the pages as they were.
    /// PostgreSQL keeps the old row version until (auto)vacuum reclaims it.
    pub(crate) async fn scrub(&self) -> Result<()> {
        if let super::Pool::Sqlite(pool) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        audit::{self, Verdict},
        bench::StoreRig,
    };

    #[test]
    fn message_ids_are_unique_per_room_and_seq_and_bounded() {
        assert_eq!(message_id(RoomId(1), Seq(1)), Some(MessageId((1 << 32) | 1)));
        assert_ne!(message_id(RoomId(1), Seq(2)), message_id(RoomId(2), Seq(1)));
        assert_eq!(
            message_id(RoomId(i64::from(i32::MAX)), Seq(i64::from(u32::MAX))),
            Some(MessageId(i64::MAX))
        );
        assert_eq!(message_id(RoomId(1 << 31), Seq(1)), None);
        assert_eq!(message_id(RoomId(1), Seq(1 << 32)), None);
        assert_eq!(message_id(RoomId(-1), Seq(1)), None);
    }

    /// One batch: a retry of a nonce within the batch returns its first send, a
    /// message refused by policy takes no sequence number, and the audit chain
    /// the batch wrote in one statement checks out. A later batch finds the
    /// earlier send in the table.
    #[tokio::test]
    async fn a_batch_stores_once_per_nonce_without_gaps_and_chains_its_audit() {
        let dir = tempfile::tempdir().unwrap();
        let rig = StoreRig::new(dir.path()).await.unwrap();
        let (store, room, user, device) = rig.parts();
        let message = |nonce, user| NewMessage {
            room,
            user,
            username: "alice",
            device,
            ciphertext: b"ciphertext",
            nonce,
            at_ms: 1,
        };
        let append = |batch: Vec<NewMessage<'static>>| {
            let rig = &rig;
            async move { rig.append(&batch).await.unwrap() }
        };
        // Not a member (the device is the owner's: the check is per room and
        // device, so the refusal comes first in the batch).
        let stranger = UserId(user.0 + 1000);
        let nowhere = NewMessage { room: RoomId(room.0 + 1000), ..message(4, user) };
        let outcomes =
            append(vec![message(2, stranger), message(1, user), message(1, user), message(3, user), nowhere])
                .await;
        let seqs: Vec<_> = outcomes.iter().map(|o| o.as_ref().ok().map(|s| (s.seq, s.fresh))).collect();
        assert!(matches!(outcomes[0], Err(AppendError::Refused(_))), "{:?}", outcomes[0]);
        let Ok(first) = outcomes[1] else { panic!("{outcomes:?}") };
        assert_eq!(first.seq, Seq(2), "the refusal took no number (the creation is seq 1)");
        assert_eq!(seqs[2], Some((first.seq, false)), "the retry is the first send");
        assert_eq!(outcomes[2].as_ref().ok().map(|s| s.id), Some(first.id));
        assert_eq!(seqs[3], Some((Seq(3), true)));
        assert!(matches!(outcomes[4], Err(AppendError::NotFound)), "{:?}", outcomes[4]);
        let again = append(vec![message(3, user)]).await;
        assert_eq!(
            again[0].as_ref().ok(),
            Some(&StoredMessage { fresh: false, ..*outcomes[3].as_ref().unwrap() })
        );
        let next = append(vec![message(5, user)]).await;
        assert_eq!(next[0].as_ref().ok().map(|s| s.seq), Some(Seq(4)), "the room's last number was stored");
        let verdict = audit::verify(store, Some(rig.key()), &[]).await.unwrap();
        assert!(matches!(verdict, Verdict::Intact { keyed_from: Some(1), .. }), "{verdict:?}");
    }
}
