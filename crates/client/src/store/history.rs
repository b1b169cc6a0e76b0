//! The local history: every message this device decrypted, per room, in room
//! order, and the cursor (last processed sequence number) of each room.
//!
//! A message is recorded together with its room's cursor in one transaction, so
//! after a crash or reconnect the client resumes exactly after the last entry it
//! processed: nothing is shown twice and nothing is skipped. Entries are keyed by
//! `(room, seq)`; recording the same entry again is a no-op.

use crate::error::{ClientError, Result};
use conclave_proto::{DeviceId, MessageId, RoomId, RoomInfo, RoomKind, Seq};
use rusqlite::{Connection, OptionalExtension, params};
use std::{os::unix::fs::OpenOptionsExt, path::Path};

/// A message as stored locally.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredMessage {
    /// Server message id.
    pub id: MessageId,
    /// Position in the room log.
    pub seq: Seq,
    /// Room name as shown (`lobby`, a group name, `@user`).
    pub room: String,
    /// Sending user.
    pub sender: String,
    /// Sending device.
    pub device: DeviceId,
    /// The text; `None` when this device cannot read it.
    pub text: Option<String>,
    /// When the server stored it, Unix milliseconds.
    pub sent_at_ms: i64,
}

/// What the client remembers about a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRoom {
    /// Server id.
    pub id: RoomId,
    /// Name as shown.
    pub name: String,
    /// Kind.
    pub kind: RoomKind,
    /// The MLS group id.
    pub group_id: Vec<u8>,
    /// Last processed sequence number.
    pub cursor: Seq,
    /// Where this device (last) joined the group: entries before it are not
    /// readable here.
    pub joined: Seq,
}

/// The history database (`history.db` in the client home).
#[derive(Debug)]
pub struct History {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rooms (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    group_id  BLOB    NOT NULL,
    cursor    INTEGER NOT NULL DEFAULT 0,
    joined    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    room_id     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    id          INTEGER NOT NULL UNIQUE,
    sender      TEXT    NOT NULL,
    device      INTEGER NOT NULL,
    text        TEXT,
    sent_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
);
";

fn local_room(r: &rusqlite::Row<'_>) -> rusqlite::Result<LocalRoom> {
    Ok(LocalRoom {
        id: RoomId(r.get(0)?),
        name: r.get(1)?,
        kind: kind_from(&r.get::<_, String>(2)?),
        group_id: r.get(3)?,
        cursor: Seq(r.get(4)?),
        joined: Seq(r.get(5)?),
    })
}

/// Reads `m.id, m.seq, r.name, m.sender, m.device, m.text, m.sent_at_ms`.
fn stored_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        id: MessageId(r.get(0)?),
        seq: Seq(r.get(1)?),
        room: r.get(2)?,
        sender: r.get(3)?,
        device: DeviceId(r.get(4)?),
        text: r.get(5)?,
        sent_at_ms: r.get(6)?,
    })
}

fn db_err(err: rusqlite::Error) -> ClientError {
    ClientError::Protocol(format!("local history: {err}"))
}

fn kind_name(kind: RoomKind) -> &'static str {
    match kind {
        RoomKind::Lobby => "lobby",
        RoomKind::Public => "public",
        RoomKind::Private => "private",
        RoomKind::Direct => "direct",
    }
}

fn kind_from(name: &str) -> RoomKind {
    match name {
        "lobby" => RoomKind::Lobby,
        "public" => RoomKind::Public,
        "direct" => RoomKind::Direct,
        _ => RoomKind::Private,
    }
}

impl History {
    /// Opens (creating, mode 0600) the history database.
    ///
    /// # Errors
    /// If the file cannot be created or opened.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|source| ClientError::File { path: path.to_owned(), source })?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(Self { conn })
    }

    /// Records (or refreshes) a room; keeps its cursor.
    ///
    /// # Errors
    /// Database errors.
    pub fn upsert_room(&self, room: &RoomInfo) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO rooms (id, name, kind, group_id) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, group_id = excluded.group_id",
                params![room.id.0, room.name, kind_name(room.kind), room.group_id.0],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// A room by id.
    ///
    /// # Errors
    /// Database errors.
    pub fn room(&self, id: RoomId) -> Result<Option<LocalRoom>> {
        self.conn
            .query_row(
                "SELECT id, name, kind, group_id, cursor, joined FROM rooms WHERE id = ?1",
                [id.0],
                local_room,
            )
            .optional()
            .map_err(db_err)
    }

    /// Every room this device knows.
    ///
    /// # Errors
    /// Database errors.
    pub fn rooms(&self) -> Result<Vec<LocalRoom>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, kind, group_id, cursor, joined FROM rooms ORDER BY id")
            .map_err(db_err)?;
        let rows = stmt.query_map([], local_room).map_err(db_err)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Marks `seq` processed in `room`, recording `message` with it if given, in
    /// one transaction. Returns `false` if the entry was processed before.
    ///
    /// # Errors
    /// Database errors.
    pub fn record(&mut self, room: RoomId, seq: Seq, message: Option<&StoredMessage>) -> Result<bool> {
        let tx = self.conn.transaction().map_err(db_err)?;
        let moved = tx
            .execute("UPDATE rooms SET cursor = ?2 WHERE id = ?1 AND cursor < ?2", params![room.0, seq.0])
            .map_err(db_err)?;
        if moved == 0 {
            return Ok(false);
        }
        if let Some(m) = message {
            tx.execute(
                "INSERT OR IGNORE INTO messages (room_id, seq, id, sender, device, text, sent_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![room.0, seq.0, m.id.0, m.sender, m.device.0, m.text, m.sent_at_ms],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(true)
    }

    /// Records that this device joined the room's group at `seq` (by creating it,
    /// external commit or Welcome): the cursor moves there.
    ///
    /// # Errors
    /// Database errors.
    pub fn mark_joined(&self, room: RoomId, seq: Seq) -> Result<()> {
        self.conn
            .execute(
                "UPDATE rooms SET joined = ?2, cursor = MAX(cursor, ?2) WHERE id = ?1",
                params![room.0, seq.0],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Stores a message this device sent (its own ciphertext cannot be decrypted
    /// by itself later), without moving the cursor.
    ///
    /// # Errors
    /// Database errors.
    pub fn store_own(&self, room: RoomId, message: &StoredMessage) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO messages (room_id, seq, id, sender, device, text, sent_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    room.0,
                    message.seq.0,
                    message.id.0,
                    message.sender,
                    message.device.0,
                    message.text,
                    message.sent_at_ms
                ],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Whether the message at `seq` is stored.
    ///
    /// # Errors
    /// Database errors.
    pub fn has(&self, room: RoomId, seq: Seq) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM messages WHERE room_id = ?1 AND seq = ?2",
                params![room.0, seq.0],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(db_err)
    }

    /// The stored message at `seq`, if any.
    ///
    /// # Errors
    /// Database errors.
    pub fn message_at(&self, room: RoomId, seq: Seq) -> Result<Option<StoredMessage>> {
        self.conn
            .query_row(
                "SELECT m.id, m.seq, r.name, m.sender, m.device, m.text, m.sent_at_ms \
                 FROM messages m JOIN rooms r ON r.id = m.room_id WHERE m.room_id = ?1 AND m.seq = ?2",
                params![room.0, seq.0],
                stored_message,
            )
            .optional()
            .map_err(db_err)
    }

    /// Removes a deleted message. Returns whether it was stored.
    ///
    /// # Errors
    /// Database errors.
    pub fn remove(&self, room: RoomId, id: MessageId) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM messages WHERE room_id = ?1 AND id = ?2", params![room.0, id.0])
            .map_err(db_err)?;
        Ok(n > 0)
    }

    /// At most `limit` messages of a room before `before`, in room order: the
    /// page above what is on screen when scrolling back.
    ///
    /// # Errors
    /// Database errors.
    pub fn messages_before(&self, room: RoomId, before: Seq, limit: u32) -> Result<Vec<StoredMessage>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT m.id, m.seq, r.name, m.sender, m.device, m.text, m.sent_at_ms \
                 FROM messages m JOIN rooms r ON r.id = m.room_id WHERE m.room_id = ?1 AND m.seq < ?2 \
                 ORDER BY m.seq DESC LIMIT ?3",
            )
            .map_err(db_err)?;
        let mut rows = stmt
            .query_map(params![room.0, before.0, limit], stored_message)
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)?;
        rows.reverse();
        Ok(rows)
    }

    /// The last `limit` messages of a room, in room order.
    ///
    /// # Errors
    /// Database errors.
    pub fn messages(&self, room: RoomId, limit: u32) -> Result<Vec<StoredMessage>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT m.id, m.seq, r.name, m.sender, m.device, m.text, m.sent_at_ms \
                 FROM messages m JOIN rooms r ON r.id = m.room_id WHERE m.room_id = ?1 \
                 ORDER BY m.seq DESC LIMIT ?2",
            )
            .map_err(db_err)?;
        let mut rows = stmt
            .query_map(params![room.0, limit], stored_message)
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)?;
        rows.reverse();
        Ok(rows)
    }
}
