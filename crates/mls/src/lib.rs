//! Conclave's MLS rules that client and server share, on OpenMLS alone.
//!
//! Every conversation is one MLS group (RFC 9420) and every device one leaf, whose
//! basic credential names it ([`Identity`], `username/device_id`). The server is the
//! Delivery Service: it holds no group secret, yet it must refuse any handshake
//! message that would break a room for others. [`delivery`] does that on OpenMLS's
//! keyless public view of a group; [`commit::effects`] says what a commit does in
//! Conclave's terms, for the server before it stores a commit and for each member's
//! client before it merges one, so the two cannot disagree.
//!
//! The stateful side of a device (its keys, groups, encryption) is
//! `conclave_client::mls::MlsState`, built on this crate.
//!
//! # Layout
//! * [`identity`] — [`Identity`] and reading it from a credential.
//! * [`commit`] — [`CommitEffects`]: who a commit adds and removes; the allowed
//!   proposal types.
//! * [`delivery`] — the Delivery Service's checks and the [`PublicState`] it stores.
//! * [`inspect`] — [`inspect_handshake`]: what a handshake message claims, read
//!   without any group state.
//! * [`error`] — [`Error`].

pub mod commit;
pub mod delivery;
pub mod error;
pub mod identity;
pub mod inspect;

#[cfg(test)]
mod tests;

pub use commit::{CommitEffects, Leaf};
pub use delivery::{Checked, PublicState, adopt, check_commit, check_creation};
pub use error::{BoxError, Error, Result};
pub use identity::{Identity, InvalidIdentity, identity_of};
pub use inspect::{
    HandshakeKind, HandshakeSender, HandshakeSummary, LeafSummary, ProposalSummary, inspect_handshake,
};

use openmls::prelude::Ciphersuite;

/// The ciphersuite of every Conclave group: X25519 HPKE, AES-128-GCM, SHA-256, Ed25519.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
