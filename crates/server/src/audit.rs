//! The audit log: typed events appended to a hash chain.
//!
//! Each entry's hash covers the previous entry's hash and every field of the
//! entry, so changing, inserting or deleting any row breaks the chain from that
//! point on; the chain head row catches deletion of the newest entries.
//! [`verify`] names the first entry that does not check out.
//!
//! Entries carry metadata only: never a password, token, TOTP secret, code or
//! message content.

use crate::store::{AuditRow, NewAuditEntry, Result, Store};
use sha2::{Digest, Sha256};

/// What happened. The wire name is stored in the `action` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// An account was created.
    Registered,
    /// A login succeeded.
    LoginOk,
    /// A login failed (detail says why; the client was only told "failed").
    LoginFailed,
    /// A login used a recovery code instead of TOTP.
    RecoveryCodeUsed,
    /// Repeated failures started (or extended) an account back-off.
    Lockout,
    /// The user logged out.
    Logout,
    /// A session was revoked.
    SessionRevoked,
    /// A device (MLS signature key) was bound to the account.
    DeviceAdded,
    /// A room was created (or a direct conversation opened for the first time).
    RoomCreated,
    /// A user joined a room (or created its group).
    RoomJoined,
    /// A user left a room.
    RoomLeft,
    /// A commit added users to a room.
    MemberAdded,
    /// A commit removed users from a room.
    MemberRemoved,
    /// A message was stored (room, id and size only; never content).
    MessageSent,
    /// A message was deleted for everyone.
    MessageDeleted,
    /// An operator reset a room's MLS group (`conclave admin repair-room`).
    RoomRepaired,
}

impl AuditAction {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::LoginOk => "login_ok",
            Self::LoginFailed => "login_failed",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::Lockout => "lockout",
            Self::Logout => "logout",
            Self::SessionRevoked => "session_revoked",
            Self::DeviceAdded => "device_added",
            Self::RoomCreated => "room_created",
            Self::RoomJoined => "room_joined",
            Self::RoomLeft => "room_left",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::MessageSent => "message_sent",
            Self::MessageDeleted => "message_deleted",
            Self::RoomRepaired => "room_repaired",
        }
    }
}

/// Appends events to the chain. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
}

impl Audit {
    /// An audit writer over `store`.
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Appends one event. `detail` is JSON metadata.
    ///
    /// # Errors
    /// Storage errors: the caller fails the action rather than act unaudited.
    pub async fn record(
        &self,
        actor: Option<&str>,
        action: AuditAction,
        detail: serde_json::Value,
    ) -> Result<()> {
        let at_ms = crate::clock::now_ms();
        let detail = detail.to_string();
        let entry = NewAuditEntry { at_ms, actor, action: action.as_str(), detail: &detail };
        self.store
            .append_audit(&entry, |prev, seq| entry_hash(prev, seq, at_ms, actor, action.as_str(), &detail))
            .await?;
        Ok(())
    }
}

/// The hash of one entry: SHA-256 over the previous hash and the entry's fields,
/// each length-prefixed so no two different entries encode alike.
#[must_use]
pub fn entry_hash(
    prev: &[u8],
    seq: i64,
    at_ms: i64,
    actor: Option<&str>,
    action: &str,
    detail: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"conclave-audit-v1");
    for part in [prev, &seq.to_be_bytes(), &at_ms.to_be_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    match actor {
        Some(actor) => {
            h.update([1]);
            h.update((actor.len() as u64).to_be_bytes());
            h.update(actor.as_bytes());
        }
        None => h.update([0]),
    }
    for part in [action, detail] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry checks out.
    Intact {
        /// Number of entries.
        entries: i64,
    },
    /// The chain is broken at `seq`.
    Broken {
        /// The first entry that does not check out.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// Walks the whole chain and reports the first entry that was altered, inserted
/// or removed.
///
/// # Errors
/// Storage errors.
pub async fn verify(store: &Store) -> Result<Verdict> {
    const PAGE: i64 = 1000;
    let mut prev = vec![0u8; 32];
    let mut expected_seq = 1;
    loop {
        let rows = store.audit_entries(expected_seq - 1, PAGE).await?;
        let count = rows.len();
        for row in rows {
            if let Some(reason) = check(&row, expected_seq, &prev) {
                return Ok(Verdict::Broken { seq: row.seq.min(expected_seq), reason });
            }
            prev = row.hash;
            expected_seq += 1;
        }
        if count < PAGE as usize {
            break;
        }
    }
    let (head_seq, head_hash) = store.audit_head().await?;
    if head_seq != expected_seq - 1 {
        return Ok(Verdict::Broken {
            seq: expected_seq,
            reason: format!("entries {expected_seq} to {head_seq} are missing"),
        });
    }
    if head_hash != prev {
        return Ok(Verdict::Broken {
            seq: head_seq,
            reason: "the newest entry does not match the chain head".into(),
        });
    }
    Ok(Verdict::Intact { entries: head_seq })
}

fn check(row: &AuditRow, expected_seq: i64, prev: &[u8]) -> Option<String> {
    if row.seq != expected_seq {
        return Some(format!("entry {expected_seq} is missing"));
    }
    if row.prev_hash != prev {
        return Some(
            "its link to the previous entry is wrong (an entry before it was removed or changed)".into(),
        );
    }
    let hash = entry_hash(prev, row.seq, row.at_ms, row.actor.as_deref(), &row.action, &row.detail);
    if row.hash != hash {
        return Some("its content does not match its hash (the entry was altered)".into());
    }
    None
}
