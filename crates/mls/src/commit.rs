//! What a commit does, in Conclave's terms, and the rules every commit must keep.
//!
//! Both sides call [`effects`] on the same OpenMLS [`StagedCommit`]: the server on
//! its keyless public view of the group (in [`crate::delivery`]) before it stores the
//! commit, each member's client on its own group before it merges it. So the server
//! and the clients cannot disagree about who a commit adds or removes.

use crate::{
    error::{Error, Result},
    identity::{Identity, identity_of},
};
use openmls::prelude::{LeafNode, LeafNodeIndex, Member, ProposalType, Sender, StagedCommit};
use std::collections::{HashMap, HashSet};

/// The proposals a Conclave commit may carry. Anything else (group context
/// extensions, re-init, PSKs…) could change the group's rules behind the server's
/// back.
pub const ALLOWED_PROPOSALS: [ProposalType; 4] =
    [ProposalType::Add, ProposalType::Update, ProposalType::Remove, ProposalType::ExternalInit];

/// A leaf as Conclave sees it: whose device, and the signature key the server
/// bound to that device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Leaf {
    /// The device, from the leaf's credential.
    pub identity: Identity,
    /// The leaf's signature public key.
    pub signature_key: Vec<u8>,
}

impl Leaf {
    /// The leaf of a group member.
    ///
    /// # Errors
    /// As [`identity_of`].
    pub fn of_member(member: &Member) -> Result<Self> {
        Ok(Self { identity: identity_of(&member.credential)?, signature_key: member.signature_key.clone() })
    }

    /// The leaf a leaf node describes.
    ///
    /// # Errors
    /// As [`identity_of`].
    pub fn of_node(leaf: &LeafNode) -> Result<Self> {
        Ok(Self {
            identity: identity_of(leaf.credential())?,
            signature_key: leaf.signature_key().as_slice().to_vec(),
        })
    }
}

/// What a commit does to the group's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEffects {
    /// Who committed; for an external commit, the joiner.
    pub committer: Leaf,
    /// Whether it is an external commit: a device joining by itself.
    pub external: bool,
    /// The leaves it adds; for an external commit, the joiner.
    pub added: Vec<Leaf>,
    /// The leaves it removes (as they were before the commit).
    pub removed: Vec<Leaf>,
}

impl CommitEffects {
    /// The identities added.
    #[must_use]
    pub fn added_identities(&self) -> Vec<Identity> {
        self.added.iter().map(|leaf| leaf.identity.clone()).collect()
    }

    /// The identities removed.
    #[must_use]
    pub fn removed_identities(&self) -> Vec<Identity> {
        self.removed.iter().map(|leaf| leaf.identity.clone()).collect()
    }
}

/// Reads what `staged` does to a group whose members before it are `members`, and
/// checks Conclave's rules: only [`ALLOWED_PROPOSALS`]; a committer's new leaf (and
/// an update proposal's) keeps its device's identity and signature key; an
/// external commit removes no device but the joiner's own earlier leaf; every
/// device is in the group at most once afterwards.
///
/// `sender` and `committer` are the processed message's sender and credential.
///
/// # Errors
/// [`Error::Refused`] for a broken rule; [`Error::InvalidIdentity`] for a leaf
/// that is not a Conclave identity.
pub fn effects(
    staged: &StagedCommit,
    sender: &Sender,
    committer: &openmls::prelude::Credential,
    members: impl IntoIterator<Item = Member>,
) -> Result<CommitEffects> {
    let refused = |reason| Error::Refused { what: "commit", reason };
    if staged.queued_proposals().any(|p| !ALLOWED_PROPOSALS.contains(&p.proposal().proposal_type())) {
        return Err(refused("it carries a proposal type Conclave does not use"));
    }
    let before: HashMap<LeafNodeIndex, Leaf> =
        members.into_iter().map(|m| Ok((m.index, Leaf::of_member(&m)?))).collect::<Result<_>>()?;
    let leaf_at =
        |index: LeafNodeIndex| before.get(&index).cloned().ok_or(refused("it refers to an empty leaf"));

    let external = matches!(sender, Sender::NewMemberCommit);
    let path_leaf = staged.update_path_leaf_node().map(Leaf::of_node).transpose()?;
    let committer = match sender {
        Sender::Member(index) => {
            let leaf = leaf_at(*index)?;
            if path_leaf.as_ref().is_some_and(|path| *path != leaf) {
                return Err(refused("the committer's new leaf changes its identity or signature key"));
            }
            leaf
        }
        Sender::NewMemberCommit => {
            let leaf = path_leaf.ok_or(refused("an external commit without an update path"))?;
            if identity_of(committer)? != leaf.identity {
                return Err(refused("the external commit is signed for another identity than its leaf"));
            }
            leaf
        }
        Sender::NewMemberProposal | Sender::External(_) => {
            return Err(refused("a commit from outside the group"));
        }
    };
    for update in staged.update_proposals() {
        let Sender::Member(index) = update.sender() else {
            return Err(refused("an update proposal from outside the group"));
        };
        let leaf = update.update_proposal().leaf_node();
        let new = Leaf {
            identity: identity_of(leaf.credential())?,
            signature_key: leaf.signature_key().as_slice().to_vec(),
        };
        if new != leaf_at(*index)? {
            return Err(refused("an update proposal changes a member's identity or signature key"));
        }
    }
    let removed = staged
        .remove_proposals()
        .map(|remove| leaf_at(remove.remove_proposal().removed()))
        .collect::<Result<Vec<_>>>()?;
    if external && removed.iter().any(|leaf| leaf.identity != committer.identity) {
        return Err(refused("an external commit removes another device"));
    }
    let mut added = staged
        .add_proposals()
        .map(|add| Leaf::of_node(add.add_proposal().key_package().leaf_node()))
        .collect::<Result<Vec<_>>>()?;
    if external {
        added.push(committer.clone());
    }
    // After the commit every device must still name exactly one leaf.
    let removed_ids: HashSet<&Identity> = removed.iter().map(|leaf| &leaf.identity).collect();
    let mut present: HashSet<&Identity> =
        before.values().map(|leaf| &leaf.identity).filter(|id| !removed_ids.contains(id)).collect();
    if added.iter().any(|leaf| !present.insert(&leaf.identity)) {
        return Err(refused("it adds a device that is already a member"));
    }
    Ok(CommitEffects { committer, external, added, removed })
}

/// Checks that no identity names two leaves and every leaf is a Conclave identity:
/// what a group must look like after a join from a GroupInfo or Welcome.
///
/// # Errors
/// [`Error::Refused`] for a device with two leaves; identity errors.
pub fn check_members(members: impl IntoIterator<Item = Member>) -> Result<Vec<Leaf>> {
    let leaves = members.into_iter().map(|m| Leaf::of_member(&m)).collect::<Result<Vec<_>>>()?;
    let distinct: HashSet<&Identity> = leaves.iter().map(|leaf| &leaf.identity).collect();
    if distinct.len() != leaves.len() {
        return Err(Error::Refused { what: "group", reason: "two leaves carry the same identity" });
    }
    Ok(leaves)
}
