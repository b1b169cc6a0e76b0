//! [`MlsError`]: everything the MLS layer can refuse or fail at.
//!
//! Variants are named for what the caller can do: bind an identity first
//! ([`MlsError::NoIdentity`]), settle a pending commit ([`MlsError::PendingCommit`]),
//! drop a message from the network ([`MlsError::Malformed`], [`MlsError::Rejected`]),
//! rejoin because the local state fell behind ([`MlsError::EpochAhead`]), forget a group
//! this device was removed from ([`MlsError::NotMember`]), or report a bug / a broken
//! store ([`MlsError::Store`], [`MlsError::CorruptStore`], [`MlsError::Internal`]).

use conclave_mls::{Identity, InvalidIdentity};
use std::{error::Error as StdError, path::PathBuf};

/// Shorthand for results of the MLS layer.
pub type Result<T, E = MlsError> = std::result::Result<T, E>;

/// A boxed source error from OpenMLS or the store driver.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong in the MLS layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlsError {
    /// The MLS store file could not be created, opened or migrated (permissions, disk,
    /// a file that is not an SQLite database).
    #[error("cannot open the MLS store {}", path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// Why.
        #[source]
        source: BoxError,
    },

    /// Reading or writing the MLS store failed (disk full, I/O error, store locked by
    /// another process for longer than the busy timeout).
    #[error("MLS store error")]
    Store(#[source] BoxError),

    /// The store holds inconsistent data, e.g. the device's signature key pair is
    /// missing. Nothing in this store can be trusted any more.
    #[error("the MLS store is corrupt: {0}")]
    CorruptStore(&'static str),

    /// [`MlsState::set_identity`](super::MlsState::set_identity) has not been called
    /// yet; no group operation is possible without an identity.
    #[error("this device has no MLS identity yet")]
    NoIdentity,

    /// The store is already bound to another identity. A device that gets a new
    /// identity needs a new store (its old groups carry the old identity).
    #[error("this MLS store already belongs to {current}")]
    IdentityMismatch {
        /// The identity the store is bound to.
        current: Identity,
    },

    /// A credential carries something other than `username/device_id`.
    #[error(transparent)]
    InvalidIdentity(#[from] InvalidIdentity),

    /// Bytes (from the network or the caller) could not be decoded as what was
    /// expected. Drop them.
    #[error("malformed {what}")]
    Malformed {
        /// What was expected, e.g. "MLS message", "ratchet tree".
        what: &'static str,
    },

    /// The group, KeyPackage or Welcome uses a ciphersuite other than
    /// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
    #[error("unsupported MLS ciphersuite")]
    UnsupportedCiphersuite,

    /// This device has no state for the group.
    #[error("unknown MLS group")]
    UnknownGroup,

    /// This device already has state for the group: forget it first to start over.
    #[error("the MLS group already exists on this device")]
    GroupExists,

    /// The message names another group than the one it was processed for.
    #[error("the message belongs to another MLS group")]
    WrongGroup,

    /// This device was removed from the group. Forget the group.
    #[error("this device is not a member of the MLS group any more")]
    NotMember,

    /// A commit of this device is pending: [`confirm`](super::MlsState::confirm) or
    /// [`discard`](super::MlsState::discard) it first.
    #[error("a commit of this device is pending in the MLS group")]
    PendingCommit,

    /// Another member proposed a change that no commit has covered yet; application
    /// messages can be sent again once a commit arrives (or this device commits).
    #[error("the MLS group has pending proposals")]
    PendingProposals,

    /// The message is for a later epoch than the local state: a commit was missed, so
    /// this device cannot follow the group any more. Rejoin (external commit).
    #[error("message for epoch {message}, but this device is at epoch {local}")]
    EpochAhead {
        /// The message's epoch.
        message: u64,
        /// The local epoch.
        local: u64,
    },

    /// The Welcome is not addressed to any KeyPackage of this device (or that
    /// KeyPackage was already used).
    #[error("the Welcome is not addressed to this device")]
    NotForUs,

    /// A device to add is already a member of the group.
    #[error("{0} is already a member of the MLS group")]
    AlreadyMember(Identity),

    /// None of the devices to remove is a member of the group.
    #[error("none of these devices is a member of the MLS group")]
    NotInGroup,

    /// A device cannot remove itself with a commit.
    #[error("this device cannot remove itself from the MLS group")]
    CannotRemoveSelf,

    /// Input from the network failed MLS validation (bad signature or membership tag,
    /// undecryptable, replayed, too old, invalid commit). Drop it.
    #[error("{what} rejected")]
    Rejected {
        /// What was rejected.
        what: &'static str,
        /// OpenMLS's reason.
        #[source]
        source: BoxError,
    },

    /// Input from the network is valid MLS but breaks Conclave's rules (for example a
    /// member changing the identity in its leaf). Drop it.
    #[error("{what} rejected: {reason}")]
    Policy {
        /// What was rejected.
        what: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },

    /// An OpenMLS operation on local state failed. This is a bug or a broken store.
    #[error("MLS operation {op} failed")]
    Internal {
        /// The operation.
        op: &'static str,
        /// OpenMLS's reason.
        #[source]
        source: BoxError,
    },
}

impl From<rusqlite::Error> for MlsError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<conclave_mls::Error> for MlsError {
    /// The shared rules' refusals, in this layer's terms: input from the network
    /// that fails them is dropped like any other invalid input.
    fn from(e: conclave_mls::Error) -> Self {
        use conclave_mls::Error as Shared;
        match e {
            Shared::Malformed { what } => Self::Malformed { what },
            Shared::UnsupportedCiphersuite => Self::UnsupportedCiphersuite,
            Shared::InvalidIdentity(e) => Self::InvalidIdentity(e),
            Shared::Refused { what, reason } => Self::Policy { what, reason },
            Shared::WrongGroup => Self::WrongGroup,
            Shared::Rejected { what, source } => Self::Rejected { what, source },
            e @ (Shared::WrongEpoch { .. } | Shared::Mismatch { .. }) => {
                Self::Rejected { what: "handshake message", source: Box::new(e) }
            }
            e => Self::Internal { op: "shared MLS rules", source: Box::new(e) },
        }
    }
}

impl MlsError {
    /// A mapper for `map_err`: input from the network failed validation.
    pub(crate) fn rejected<E: StdError + Send + Sync + 'static>(
        what: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |e| Self::Rejected { what, source: Box::new(e) }
    }

    /// A mapper for `map_err`: an operation on local state failed.
    pub(crate) fn internal<E: StdError + Send + Sync + 'static>(op: &'static str) -> impl FnOnce(E) -> Self {
        move |e| Self::Internal { op, source: Box::new(e) }
    }

    /// An operation on local state ended up somewhere OpenMLS promises it cannot.
    pub(crate) fn bug(op: &'static str, what: &'static str) -> Self {
        Self::Internal { op, source: what.into() }
    }

    /// A mapper for `map_err`: bytes could not be decoded.
    pub(crate) fn malformed<E>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |_| Self::Malformed { what }
    }
}
