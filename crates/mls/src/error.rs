//! [`Error`]: why a handshake message, GroupInfo, ratchet tree or Welcome is refused.
//!
//! Variants say who is at fault and what to do: [`Error::Malformed`] and
//! [`Error::Rejected`] are bytes from the network that OpenMLS cannot decode or
//! refuses (drop them, answer "invalid"); [`Error::Refused`] is valid MLS that breaks
//! a Conclave rule; [`Error::WrongGroup`] / [`Error::WrongEpoch`] name another group
//! or epoch than the one checked; [`Error::Mismatch`] is a GroupInfo, tree or Welcome
//! that is not what its commit produces; [`Error::CorruptState`] and
//! [`Error::Internal`] are faults of the checker's own side.

use crate::identity::InvalidIdentity;
use std::error::Error as StdError;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed source error from OpenMLS.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything the shared MLS rules can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not the MLS structure expected.
    #[error("malformed {what}")]
    Malformed {
        /// What was expected, e.g. "commit", "GroupInfo".
        what: &'static str,
    },

    /// The group, KeyPackage or Welcome uses a ciphersuite other than Conclave's.
    #[error("unsupported MLS ciphersuite")]
    UnsupportedCiphersuite,

    /// A credential carries something other than `username/device_id`.
    #[error(transparent)]
    InvalidIdentity(#[from] InvalidIdentity),

    /// Valid MLS that breaks one of Conclave's rules (a proposal type it does not
    /// use, two leaves of one device, a committer's leaf changing identity…).
    #[error("{what} refused: {reason}")]
    Refused {
        /// What was refused.
        what: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },

    /// OpenMLS refused it: a bad signature, an invalid tree or proposal, a
    /// GroupInfo that does not verify.
    #[error("{what} rejected by MLS validation")]
    Rejected {
        /// What was rejected.
        what: &'static str,
        /// OpenMLS's reason.
        #[source]
        source: BoxError,
    },

    /// The message is for another MLS group than the one checked (a commit replayed
    /// from another room).
    #[error("the message belongs to another MLS group")]
    WrongGroup,

    /// The message is for another epoch than the group's current one.
    #[error("the message is for epoch {message}, the group is at epoch {group}")]
    WrongEpoch {
        /// The message's epoch.
        message: u64,
        /// The group's epoch.
        group: u64,
    },

    /// A GroupInfo, ratchet tree or Welcome sent with a commit is not the one that
    /// commit produces.
    #[error("the {what} does not match the commit")]
    Mismatch {
        /// What does not match.
        what: &'static str,
    },

    /// The stored public state of the group cannot be read back.
    #[error("the stored MLS group state is unreadable: {0}")]
    CorruptState(&'static str),

    /// A fault of this side (encoding what OpenMLS produced failed): a bug.
    #[error("internal MLS error: {what}")]
    Internal {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A closure mapping an OpenMLS error to [`Error::Rejected`].
    pub(crate) fn rejected<E: StdError + Send + Sync + 'static>(
        what: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |source| Self::Rejected { what, source: Box::new(source) }
    }

    /// A closure mapping an error to [`Error::Internal`].
    pub(crate) fn internal<E: StdError + Send + Sync + 'static>(
        what: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |source| Self::Internal { what, source: Box::new(source) }
    }

    /// [`Error::Malformed`] for anything, discarding the decoder's detail.
    pub(crate) fn malformed<E>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |_| Self::Malformed { what }
    }
}
