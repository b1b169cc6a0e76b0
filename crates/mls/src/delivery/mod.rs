//! The Delivery Service's checks: every handshake message is checked against the
//! group it claims to be for, by OpenMLS, on a keyless public view of the group.
//!
//! The server stores each group's public state ([`PublicState`]: ratchet tree,
//! group context, transcript hash, confirmation tag — no secret). For every commit
//! it is sent, it loads that state into an OpenMLS [`PublicGroup`] and lets OpenMLS
//! process the commit as a member would, minus decryption:
//!
//! * the group id and epoch are the group's ([`Error::WrongGroup`],
//!   [`Error::WrongEpoch`]: a commit replayed from another room or epoch is refused);
//! * the signature verifies with the sender's leaf key (an outsider cannot commit
//!   for a member), and an external commit carries a valid leaf and path;
//! * every proposal is valid MLS (KeyPackages verify, removed leaves exist), and
//!   [`crate::commit::effects`] applies Conclave's rules and says who is added and
//!   removed, by device, so a Remove's leaf is known to belong to whom;
//! * after merging, the ratchet tree sent with the commit must be exactly the one
//!   the server computed, and the GroupInfo must be this epoch's, signed by the
//!   committer ([`group_info`]); a Welcome must be addressed to exactly the
//!   KeyPackages the commit adds.
//!
//! What a public view cannot check is what only members can decrypt: the path
//! secrets encrypted to each member, the membership tag and the confirmation tag.
//! A *member* can therefore still send a commit that others fail to process; it is
//! signed, so the member is known, and an operator can reset the group
//! (`conclave admin repair-room`).

mod group_info;
mod state;

pub use state::PublicState;

use crate::{
    CIPHERSUITE,
    commit::{CommitEffects, Leaf, check_members, effects},
    error::{Error, Result},
};
use openmls::prelude::{
    GroupId, MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, ProposalStore, ProtocolMessage,
    PublicGroup, RatchetTreeIn, Sender,
    tls_codec::{Deserialize as _, Serialize as _},
};
use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::RustCrypto;
use std::collections::HashSet;

/// A checked change: what to store for the group's new epoch, and what it does.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The group's public state after the change.
    pub state: PublicState,
    /// The group's epoch after the change.
    pub epoch: u64,
    /// The ratchet tree after the change, as the server computed it (equal to the
    /// one sent).
    pub ratchet_tree: Vec<u8>,
    /// Who committed, added and removed.
    pub effects: CommitEffects,
    /// The group's members after the change, in leaf order.
    pub members: Vec<Leaf>,
}

/// Checks a new group's first epoch (Conclave's `create`, which has no commit): the
/// GroupInfo and ratchet tree describe a valid epoch-0 group with id `group_id`
/// and one member, who signed the GroupInfo.
///
/// # Errors
/// [`Error::Malformed`], [`Error::Rejected`] (OpenMLS refuses the tree or the
/// GroupInfo), [`Error::WrongGroup`], [`Error::WrongEpoch`], [`Error::Refused`]
/// (more than one member, missing `external_pub`), [`Error::Mismatch`].
pub fn check_creation(group_id: &[u8], group_info: &[u8], ratchet_tree: &[u8]) -> Result<Checked> {
    let (storage, group) = adopt_group(group_id, group_info, ratchet_tree)?;
    if group.group_context().epoch().as_u64() != 0 {
        return Err(Error::WrongEpoch { message: group.group_context().epoch().as_u64(), group: 0 });
    }
    let members = check_members(group.members())?;
    let [creator] = members.as_slice() else {
        return Err(Error::Refused { what: "group creation", reason: "a new group has exactly one member" });
    };
    let effects = CommitEffects {
        committer: creator.clone(),
        external: false,
        added: vec![creator.clone()],
        removed: vec![],
    };
    finish(&storage, &group, ratchet_tree, effects)
}

/// Builds the public state of a group from a GroupInfo and ratchet tree that were
/// stored before the server kept public state, verifying both (the GroupInfo's
/// signature, the tree's hashes and every leaf). For rooms created by older
/// servers; a room whose stored GroupInfo and tree do not verify must be reset.
///
/// # Errors
/// As [`check_creation`], but any epoch and membership is allowed.
pub fn adopt(group_id: &[u8], group_info: &[u8], ratchet_tree: &[u8]) -> Result<PublicState> {
    let (storage, group) = adopt_group(group_id, group_info, ratchet_tree)?;
    check_members(group.members())?;
    tree_matches(&group, ratchet_tree)?;
    PublicState::encode(&storage)
}

/// Checks `commit` against the group's current public `state`, with the GroupInfo,
/// ratchet tree and Welcome sent with it; returns the state to store if the
/// commit wins its epoch.
///
/// # Errors
/// [`Error::WrongGroup`] / [`Error::WrongEpoch`] for a commit of another group or
/// epoch; [`Error::Malformed`]; [`Error::Rejected`] when OpenMLS refuses the
/// commit (signature, proposals, path); [`Error::Refused`] for a broken Conclave
/// rule; [`Error::Mismatch`] when the tree, GroupInfo or Welcome is not what the
/// commit produces; [`Error::CorruptState`] when `state` cannot be loaded.
pub fn check_commit(
    state: &PublicState,
    group_id: &[u8],
    commit: &[u8],
    group_info: &[u8],
    ratchet_tree: &[u8],
    welcome: Option<&[u8]>,
) -> Result<Checked> {
    let crypto = RustCrypto::default();
    let group_id = GroupId::from_slice(group_id);
    let (storage, mut group) = state.load(&group_id)?;
    let message =
        match MlsMessageIn::tls_deserialize_exact(commit).map_err(Error::malformed("commit"))?.extract() {
            MlsMessageBodyIn::PublicMessage(message) => ProtocolMessage::from(message),
            _ => return Err(Error::Malformed { what: "commit (not a PublicMessage)" }),
        };
    if message.group_id() != &group_id {
        return Err(Error::WrongGroup);
    }
    let current = group.group_context().epoch().as_u64();
    if message.epoch().as_u64() != current {
        return Err(Error::WrongEpoch { message: message.epoch().as_u64(), group: current });
    }
    let processed = group.process_message(&crypto, message).map_err(Error::rejected("commit"))?;
    let sender = processed.sender().clone();
    let credential = processed.credential().clone();
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        return Err(Error::Malformed { what: "commit (not a commit)" });
    };
    let effects = effects(&staged, &sender, &credential, group.members())?;
    let signer = match sender {
        Sender::Member(index) => index,
        _ => group.ext_commit_sender_index(&staged).map_err(Error::internal("external committer's leaf"))?,
    };
    let mut added_packages = HashSet::new();
    for add in staged.add_proposals() {
        let reference = add
            .add_proposal()
            .key_package()
            .hash_ref(&crypto)
            .map_err(Error::internal("KeyPackage reference"))?;
        added_packages.insert(reference.as_slice().to_vec());
    }
    group.merge_commit(&storage, *staged).map_err(Error::internal("merge commit"))?;

    group_info::verify(&crypto, group_info, &group, signer)?;
    check_welcome(welcome, &added_packages)?;
    finish(&storage, &group, ratchet_tree, effects)
}

/// Loads a group from a GroupInfo and ratchet tree, verifying both, and checks it
/// is `group_id`'s.
fn adopt_group(
    group_id: &[u8],
    group_info: &[u8],
    ratchet_tree: &[u8],
) -> Result<(MemoryStorage, PublicGroup)> {
    let crypto = RustCrypto::default();
    let verifiable = group_info::parse(group_info)?;
    if verifiable.group_id().as_slice() != group_id {
        return Err(Error::WrongGroup);
    }
    group_info::check_extensions(&verifiable)?;
    let tree =
        RatchetTreeIn::tls_deserialize_exact(ratchet_tree).map_err(Error::malformed("ratchet tree"))?;
    let storage = MemoryStorage::default();
    let (group, _) = PublicGroup::from_external(&crypto, &storage, tree, verifiable, ProposalStore::new())
        .map_err(Error::rejected("GroupInfo and ratchet tree"))?;
    if group.ciphersuite() != CIPHERSUITE {
        return Err(Error::UnsupportedCiphersuite);
    }
    Ok((storage, group))
}

/// The tree sent must be the one the server's view of the group has.
fn tree_matches(group: &PublicGroup, ratchet_tree: &[u8]) -> Result<Vec<u8>> {
    let computed = group
        .export_ratchet_tree()
        .tls_serialize_detached()
        .map_err(Error::internal("encode ratchet tree"))?;
    if computed != ratchet_tree {
        return Err(Error::Mismatch { what: "ratchet tree" });
    }
    Ok(computed)
}

/// A Welcome comes with a commit that adds devices, and is addressed to exactly
/// the KeyPackages it adds.
fn check_welcome(welcome: Option<&[u8]>, added: &HashSet<Vec<u8>>) -> Result<()> {
    let Some(welcome) = welcome else {
        return if added.is_empty() { Ok(()) } else { Err(Error::Mismatch { what: "Welcome (missing)" }) };
    };
    let MlsMessageBodyIn::Welcome(welcome) =
        MlsMessageIn::tls_deserialize_exact(welcome).map_err(Error::malformed("Welcome"))?.extract()
    else {
        return Err(Error::Malformed { what: "Welcome" });
    };
    if welcome.ciphersuite() != CIPHERSUITE {
        return Err(Error::UnsupportedCiphersuite);
    }
    let addressed: HashSet<Vec<u8>> =
        welcome.secrets().iter().map(|secret| secret.new_member().as_slice().to_vec()).collect();
    if addressed.len() != welcome.secrets().len() || addressed != *added {
        return Err(Error::Mismatch { what: "Welcome" });
    }
    Ok(())
}

/// Checks the tree and the members after a change and encodes what to store.
fn finish(
    storage: &MemoryStorage,
    group: &PublicGroup,
    ratchet_tree: &[u8],
    effects: CommitEffects,
) -> Result<Checked> {
    let ratchet_tree = tree_matches(group, ratchet_tree)?;
    let members = check_members(group.members())?;
    Ok(Checked {
        state: PublicState::encode(storage)?,
        epoch: group.group_context().epoch().as_u64(),
        ratchet_tree,
        effects,
        members,
    })
}
