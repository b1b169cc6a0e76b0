//! The audit log: typed events appended to a chain that someone with the
//! database but without the audit key cannot rewrite.
//!
//! Each entry's link covers the previous entry's link and every field of the
//! entry, so changing, inserting or deleting any row breaks the chain from that
//! point on; the chain head row catches deletion of the newest entries. Since
//! the server's first start with an audit key, links are HMAC-SHA-256 under
//! that key, which is kept in a file outside the database ([`ChainKey`]); the
//! entries of a log written before that keep their plain SHA-256 hashes, and
//! the entry that records the switch ([`AuditAction::ChainKeyed`]) covers them.
//! [`verify`] names the first entry that does not check out, and with
//! [`Checkpoint`]s exported earlier it also catches a rewrite by someone who
//! holds the key. `docs/audit.md` says what the log proves and what it cannot.
//!
//! Entries carry metadata only: never a password, token, TOTP secret, code or
//! message content.
//!
//! # Layout
//! * `chain` — the two link formats and the key.
//! * `verify` — the walk along the log.
//! * `checkpoint` — exported checkpoints and their text forms.

mod chain;
mod checkpoint;
mod verify;

/// Whether the audit key file existed before this start (see [`Audit::open`]).
pub use crate::keyfile::Origin as KeyOrigin;
pub use chain::{ChainKey, plain_hash};
pub use checkpoint::{Checkpoint, CheckpointError, latest};
pub use verify::{Verdict, VerifyError, verify};

use crate::store::{Keying, NewAuditEntry, Result, Store, StoreError};

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
    /// Repeated failures started (or extended) a back-off of an account's
    /// untrusted logins or of one known device (detail says which and until
    /// when).
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
    /// A device was retired (its session ended, or its owner removed it).
    DeviceRetired,
    /// A commit removed retired devices from a room.
    DeviceRemoved,
    /// A message was stored (room, id and size only; never content).
    MessageSent,
    /// A message was deleted for everyone.
    MessageDeleted,
    /// The operator created a registration token (id, uses, expiry; never the
    /// token).
    RegistrationTokenCreated,
    /// The operator revoked a registration token.
    RegistrationTokenRevoked,
    /// A registration used up one use of a registration token.
    RegistrationTokenUsed,
    /// An operator reset a room's MLS group (`conclave admin repair-room`).
    RoomRepaired,
    /// The log is keyed from this entry on (the server's first start with an
    /// audit key); entries before it carry plain hashes.
    ChainKeyed,
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
            Self::DeviceRetired => "device_retired",
            Self::DeviceRemoved => "device_removed",
            Self::MessageSent => "message_sent",
            Self::MessageDeleted => "message_deleted",
            Self::RegistrationTokenCreated => "registration_token_created",
            Self::RegistrationTokenRevoked => "registration_token_revoked",
            Self::RegistrationTokenUsed => "registration_token_used",
            Self::RoomRepaired => "room_repaired",
            Self::ChainKeyed => "audit_keyed",
        }
    }
}

/// Appends events to the chain. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
    key: ChainKey,
}

/// Why the server cannot write the audit log with its key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Storage errors.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log is keyed with another key.
    #[error(
        "this is not the key the audit log is keyed with: every node sharing one database needs the \
         same audit key file (copy it from the node that keyed the log)"
    )]
    OtherKey,
    /// The log is not keyed, but the key file existed before this start.
    #[error(
        "the audit log's {entries} entries are not keyed, yet this key already existed: the log may \
         have been rewritten without the key (check it with `conclave admin audit --verify`); if the \
         database is a copy restored from before the log was keyed, start with a new audit key file"
    )]
    Unkeyed {
        /// Entries in the log.
        entries: i64,
    },
}

impl Audit {
    /// The audit writer over `store`, keying the log first if it is not keyed
    /// yet: an entry recording the switch is appended, linked by `key`'s MAC,
    /// and the key's id is stored with the head.
    ///
    /// A log is keyed only when it is empty or when `origin` says the key file
    /// was created by this start. An existing key with a log that is not
    /// keyed means the log was rewritten (or a backup restored): keying it now
    /// would bless whatever it holds, so the server refuses to start.
    ///
    /// # Errors
    /// [`AuditError::OtherKey`] when the log is keyed with another key (a node
    /// without the shared key file), [`AuditError::Unkeyed`] as above, storage
    /// errors.
    pub async fn open(store: Store, key: ChainKey, origin: KeyOrigin) -> Result<Self, AuditError> {
        let switch = NewAuditEntry {
            at_ms: crate::clock::now_ms(),
            actor: None,
            action: AuditAction::ChainKeyed.as_str(),
            detail: r#"{"chain":"hmac-sha256"}"#,
        };
        let keying = store
            .key_audit_log(
                key.id(),
                &switch,
                |entries| origin == KeyOrigin::Created || entries == 0,
                |prev, seq| key.link(prev, seq, &switch),
            )
            .await?;
        match keying {
            Keying::Keyed => {}
            Keying::Switched { seq } => {
                tracing::info!(entry = seq, "the audit log is keyed from this entry on")
            }
            Keying::OtherKey => return Err(AuditError::OtherKey),
            Keying::Unkeyed { entries } => return Err(AuditError::Unkeyed { entries }),
        }
        Ok(Self { store, key })
    }

    /// The key that links entries (the appender links message entries itself).
    pub(crate) fn key(&self) -> &ChainKey {
        &self.key
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
        self.store.append_audit(&entry, |prev, seq| self.key.link(prev, seq, &entry)).await?;
        Ok(())
    }
}
