//! Group operations of [`MlsState`]: create, join, commit, confirm/discard, encrypt,
//! process.

use super::{
    CIPHERSUITE, GroupState, Identity, MlsState, Outgoing, Processed, ProposalSummary, capabilities,
    create_config,
    error::{MlsError, Result},
    identity_of, inspect_handshake, join_config,
    store::Tx,
};
use openmls::messages::group_info::VerifiableGroupInfo;
use openmls::prelude::{
    CommitMessageBundle, GroupId, KeyPackage, KeyPackageIn, LeafNodeIndex, LeafNodeParameters, MlsGroup,
    MlsMessageBodyIn, MlsMessageIn, OpenMlsProvider as _, ProcessedMessageContent, ProposalType,
    ProtocolMessage, ProtocolVersion, QueuedProposal, RatchetTreeIn, Sender, StagedWelcome, WelcomeError,
    tls_codec::Deserialize as _,
};
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;

impl MlsState {
    /// Creates a group with this device as its only member, under the caller's
    /// `group_id`. Returns what the server keeps for it (epoch 0).
    ///
    /// # Errors
    /// [`MlsError::NoIdentity`], [`MlsError::GroupExists`], store errors.
    pub fn create_group(&self, group_id: &[u8]) -> Result<GroupState> {
        let credential = self.credential_with_key()?;
        let group_id = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            if MlsGroup::load(tx.storage(), &group_id)?.is_some() {
                return Err(MlsError::GroupExists);
            }
            let group = MlsGroup::new_with_group_id(
                &tx.provider,
                &self.signer,
                &create_config(),
                group_id,
                credential,
            )
            .map_err(MlsError::internal("create group"))?;
            self.export_state(tx, &group)
        })
    }

    /// Builds an external commit that joins the group described by `group_info` and
    /// `ratchet_tree` (as the server keeps them). The joined group is stored, but the
    /// join is pending until [`confirm`](Self::confirm) (the server accepted the commit)
    /// or [`discard`](Self::discard) (it did not: fetch the new GroupInfo and try again).
    ///
    /// If this device's own leaf is still in the tree (same signature key), the commit
    /// removes it: that is how a device that lost track of a group resynchronises.
    ///
    /// # Errors
    /// [`MlsError::NoIdentity`]; [`MlsError::Malformed`] /
    /// [`MlsError::UnsupportedCiphersuite`] / [`MlsError::Rejected`] for bad input;
    /// [`MlsError::GroupExists`] if this device still has state for the group
    /// ([`forget_group`](Self::forget_group) it first); [`MlsError::Policy`] if another
    /// device already holds this identity in the group.
    pub fn external_join(&self, group_info: &[u8], ratchet_tree: &[u8]) -> Result<Outgoing> {
        let identity = self.require_identity()?.clone();
        let credential = self.credential_with_key()?;
        let group_info = parse_group_info(group_info)?;
        if group_info.ciphersuite() != CIPHERSUITE {
            return Err(MlsError::UnsupportedCiphersuite);
        }
        let ratchet_tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree)
            .map_err(MlsError::malformed("ratchet tree"))?;
        let group_id = group_info.group_id().clone();
        let epoch = group_info.epoch().as_u64();
        self.store.write(|tx| {
            if MlsGroup::load(tx.storage(), &group_id)?.is_some() {
                return Err(MlsError::GroupExists);
            }
            let (group, bundle) = MlsGroup::external_commit_builder()
                .with_ratchet_tree(ratchet_tree)
                .with_config(join_config())
                // Only never-updated leaves carry a lifetime (that of their KeyPackage);
                // a member who never committed must not lock everyone out after it.
                .skip_lifetime_validation()
                .build_group(&tx.provider, group_info, credential)
                .map_err(MlsError::rejected("GroupInfo and ratchet tree"))?
                .leaf_node_parameters(LeafNodeParameters::builder().with_capabilities(capabilities()).build())
                .load_psks(tx.storage())
                .map_err(MlsError::internal("external commit"))?
                .create_group_info(true)
                .build(tx.provider.rand(), tx.provider.crypto(), &self.signer, |_| true)
                .map_err(MlsError::rejected("GroupInfo and ratchet tree"))?
                .finalize(&tx.provider)
                .map_err(MlsError::internal("external commit"))?;
            check_members(&group)?;
            let (commit, _, new_group_info) = bundle.into_messages();
            let commit = serialize(&commit, "commit")?;
            let new_group_info =
                new_group_info.ok_or_else(|| MlsError::bug("external commit", "no GroupInfo"))?;
            // OpenMLS removes this device's old leaf (same signature key) if present.
            let summary = inspect_handshake(&commit)?;
            let removed = if summary.proposals.iter().any(|p| matches!(p, ProposalSummary::Remove { .. })) {
                vec![identity.clone()]
            } else {
                Vec::new()
            };
            tx.record_sent(group_id.as_slice(), &digest(&commit), epoch)?;
            tx.set_pending_join(group_id.as_slice())?;
            Ok(Outgoing {
                group_id: group_id.to_vec(),
                commit,
                welcome: None,
                group_info: serialize(&new_group_info, "GroupInfo")?,
                ratchet_tree: serialize(&group.export_ratchet_tree(), "ratchet tree")?,
                epoch,
                added: vec![identity],
                removed,
            })
        })
    }

    /// Builds a commit adding the devices of these KeyPackages (as fetched from the
    /// server). Pending until [`confirm`](Self::confirm) / [`discard`](Self::discard);
    /// [`Outgoing::welcome`] is set. Proposals stored from other members are committed
    /// too.
    ///
    /// # Errors
    /// [`MlsError::Malformed`] / [`MlsError::Rejected`] /
    /// [`MlsError::UnsupportedCiphersuite`] for a bad KeyPackage;
    /// [`MlsError::AlreadyMember`]; [`MlsError::UnknownGroup`]; [`MlsError::NotMember`];
    /// [`MlsError::PendingCommit`].
    pub fn add_members(&self, group_id: &[u8], key_packages: &[Vec<u8>]) -> Result<Outgoing> {
        if key_packages.is_empty() {
            return Err(MlsError::Malformed { what: "empty KeyPackage list" });
        }
        let group_id = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            let mut group = load(tx, &group_id)?;
            ensure_can_commit(&group)?;
            let mut present = member_identities(&group)?.into_iter().collect::<HashSet<_>>();
            let key_packages = key_packages
                .iter()
                .map(|bytes| {
                    let key_package = parse_key_package(tx, bytes)?;
                    let identity = identity_of(key_package.leaf_node().credential())?;
                    if !present.insert(identity.clone()) {
                        return Err(MlsError::AlreadyMember(identity));
                    }
                    Ok(key_package)
                })
                .collect::<Result<Vec<_>>>()?;
            let bundle = group
                .commit_builder()
                .propose_adds(key_packages)
                .load_psks(tx.storage())
                .map_err(MlsError::internal("add members"))?
                .create_group_info(true)
                .build(tx.provider.rand(), tx.provider.crypto(), &self.signer, |_| true)
                .map_err(MlsError::rejected("KeyPackage"))?
                .stage_commit(&tx.provider)
                .map_err(MlsError::internal("add members"))?;
            self.outgoing(tx, &group, bundle)
        })
    }

    /// Builds a commit removing every leaf whose identity is in `members` (pass every
    /// device of a user to remove the user). Identities that are not members are
    /// ignored. Pending until [`confirm`](Self::confirm) / [`discard`](Self::discard).
    ///
    /// # Errors
    /// [`MlsError::NotInGroup`] if none is a member; [`MlsError::CannotRemoveSelf`];
    /// [`MlsError::UnknownGroup`]; [`MlsError::NotMember`]; [`MlsError::PendingCommit`].
    pub fn remove_members(&self, group_id: &[u8], members: &[Identity]) -> Result<Outgoing> {
        let group_id = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            let mut group = load(tx, &group_id)?;
            ensure_can_commit(&group)?;
            let own = group.own_leaf_index();
            let mut leaves = Vec::new();
            for member in group.members() {
                if members.contains(&identity_of(&member.credential)?) {
                    if member.index == own {
                        return Err(MlsError::CannotRemoveSelf);
                    }
                    leaves.push(member.index);
                }
            }
            if leaves.is_empty() {
                return Err(MlsError::NotInGroup);
            }
            let bundle = group
                .commit_builder()
                .propose_removals(leaves)
                .load_psks(tx.storage())
                .map_err(MlsError::internal("remove members"))?
                .create_group_info(true)
                .build(tx.provider.rand(), tx.provider.crypto(), &self.signer, |_| true)
                .map_err(MlsError::internal("remove members"))?
                .stage_commit(&tx.provider)
                .map_err(MlsError::internal("remove members"))?;
            self.outgoing(tx, &group, bundle)
        })
    }

    /// Builds a commit that adds and removes nobody but gives this device a fresh leaf
    /// (a key update, for post-compromise security). Proposals stored from other
    /// members are committed too. Pending until [`confirm`](Self::confirm) /
    /// [`discard`](Self::discard).
    ///
    /// # Errors
    /// [`MlsError::UnknownGroup`]; [`MlsError::NotMember`]; [`MlsError::PendingCommit`].
    pub fn self_update(&self, group_id: &[u8]) -> Result<Outgoing> {
        let group_id = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            let mut group = load(tx, &group_id)?;
            ensure_can_commit(&group)?;
            let bundle = group
                .commit_builder()
                .force_self_update(true)
                .leaf_node_parameters(LeafNodeParameters::builder().with_capabilities(capabilities()).build())
                .load_psks(tx.storage())
                .map_err(MlsError::internal("self update"))?
                .create_group_info(true)
                .build(tx.provider.rand(), tx.provider.crypto(), &self.signer, |_| true)
                .map_err(MlsError::internal("self update"))?
                .stage_commit(&tx.provider)
                .map_err(MlsError::internal("self update"))?;
            self.outgoing(tx, &group, bundle)
        })
    }

    /// The server accepted this device's pending commit (or external join): merge it.
    /// Returns the new epoch. A no-op, returning the current epoch, when nothing is
    /// pending (the commit already came back through [`process`](Self::process)).
    ///
    /// # Errors
    /// [`MlsError::UnknownGroup`], [`MlsError::NotMember`], store errors.
    pub fn confirm(&self, group_id: &[u8]) -> Result<u64> {
        let gid = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            let mut group = load(tx, &gid)?;
            settle_own_commit(tx, &mut group)?;
            Ok(group.epoch().as_u64())
        })
    }

    /// The server refused this device's pending commit: another commit won the epoch.
    /// Drops the pending commit (for an external join: the whole joined group). Then
    /// process the winner from the log and build the commit again. A no-op when
    /// nothing is pending.
    ///
    /// # Errors
    /// [`MlsError::UnknownGroup`], store errors.
    pub fn discard(&self, group_id: &[u8]) -> Result<()> {
        let gid = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            let mut group = load(tx, &gid)?;
            let epoch = group.epoch().as_u64();
            if tx.is_pending_join(group_id)? {
                // OpenMLS merges an external commit as it builds it; undo by deleting.
                group.delete(tx.storage())?;
                tx.clear_pending_join(group_id)?;
                tx.forget_sent(group_id, epoch.saturating_sub(1))?;
            } else if group.pending_commit().is_some() {
                group.clear_pending_commit(tx.storage())?;
                tx.forget_sent(group_id, epoch)?;
            }
            Ok(())
        })
    }

    /// Joins a group from a Welcome addressed to one of this device's KeyPackages,
    /// with the group's ratchet tree from the server. Returns the group id. The
    /// KeyPackage's private keys are deleted (unless it is the last-resort one).
    ///
    /// # Errors
    /// [`MlsError::Malformed`] / [`MlsError::UnsupportedCiphersuite`] /
    /// [`MlsError::Rejected`] for bad input; [`MlsError::NotForUs`];
    /// [`MlsError::GroupExists`]; [`MlsError::Policy`] if the group's members do not
    /// carry valid, distinct identities.
    pub fn join_welcome(&self, welcome: &[u8], ratchet_tree: &[u8]) -> Result<Vec<u8>> {
        let MlsMessageBodyIn::Welcome(welcome) = parse_body(welcome, "Welcome")? else {
            return Err(MlsError::Malformed { what: "Welcome" });
        };
        if welcome.ciphersuite() != CIPHERSUITE {
            return Err(MlsError::UnsupportedCiphersuite);
        }
        let ratchet_tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree)
            .map_err(MlsError::malformed("ratchet tree"))?;
        self.store.write(|tx| {
            let join = StagedWelcome::build_from_welcome(&tx.provider, &join_config(), welcome)
                .map_err(welcome_error)?;
            let group_id = join.processed_welcome().unverified_group_info().group_id().clone();
            if MlsGroup::load(tx.storage(), &group_id)?.is_some() {
                return Err(MlsError::GroupExists);
            }
            let group = join
                .with_ratchet_tree(ratchet_tree)
                .skip_lifetime_validation()
                .build()
                .map_err(welcome_error)?
                .into_group(&tx.provider)
                .map_err(welcome_error)?;
            check_members(&group)?;
            Ok(group_id.to_vec())
        })
    }

    /// Encrypts an application message: a TLS-serialized `MLSMessage` holding a
    /// PrivateMessage, signed by this device.
    ///
    /// # Errors
    /// [`MlsError::UnknownGroup`], [`MlsError::NotMember`],
    /// [`MlsError::PendingProposals`], store errors.
    pub fn encrypt(&self, group_id: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let group_id = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            let mut group = load(tx, &group_id)?;
            if !group.is_active() {
                return Err(MlsError::NotMember);
            }
            if group.pending_proposals().next().is_some() {
                return Err(MlsError::PendingProposals);
            }
            let message = group
                .create_message(&tx.provider, &self.signer, plaintext)
                .map_err(MlsError::internal("encrypt"))?;
            serialize(&message, "application message")
        })
    }

    /// Processes one message of the group's ordered log: another member's application
    /// message, commit (merged at once: the server only forwards accepted commits) or
    /// proposal (stored), or this device's own message or commit coming back.
    ///
    /// A message that fails leaves the state as it was.
    ///
    /// # Errors
    /// [`MlsError::Malformed`], [`MlsError::WrongGroup`], [`MlsError::Rejected`] and
    /// [`MlsError::Policy`]: drop the message. [`MlsError::EpochAhead`]: a commit was
    /// missed, rejoin. [`MlsError::NotMember`]: this device was removed.
    /// [`MlsError::UnknownGroup`].
    pub fn process(&self, group_id: &[u8], message: &[u8]) -> Result<Processed> {
        let protocol = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(MlsError::malformed("MLS message"))?
            .try_into_protocol_message()
            .map_err(MlsError::malformed("group message"))?;
        if protocol.group_id().as_slice() != group_id {
            return Err(MlsError::WrongGroup);
        }
        // Only commits are remembered (by digest); they are all PublicMessages.
        let digest = matches!(protocol, ProtocolMessage::PublicMessage(_)).then(|| digest(message));
        let gid = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            let mut group = load(tx, &gid)?;
            if let Some(digest) = digest
                && tx.is_sent(group_id, &digest)?
            {
                settle_own_commit(tx, &mut group)?;
                return Ok(Processed::Own);
            }
            if !group.is_active() {
                return Err(MlsError::NotMember);
            }
            let (message_epoch, local) = (protocol.epoch().as_u64(), group.epoch().as_u64());
            if message_epoch > local {
                return Err(MlsError::EpochAhead { message: message_epoch, local });
            }
            let processed =
                group.process_message(&tx.provider, protocol).map_err(MlsError::rejected("message"))?;
            let sender = processed.sender().clone();
            let credential = processed.credential().clone();
            let epoch = processed.epoch().as_u64();
            match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(message) => Ok(Processed::Application {
                    sender: identity_of(&credential)?,
                    plaintext: message.into_bytes(),
                    epoch,
                }),
                ProcessedMessageContent::ProposalMessage(proposal) => {
                    check_proposal(&group, &proposal)?;
                    group.store_pending_proposal(tx.storage(), *proposal)?;
                    Ok(Processed::Proposal { sender: identity_of(&credential)? })
                }
                ProcessedMessageContent::ExternalJoinProposalMessage(_) => Err(MlsError::Policy {
                    what: "proposal",
                    reason: "proposals from outside the group are not accepted",
                }),
                ProcessedMessageContent::StagedCommitMessage(staged) => {
                    let effects =
                        conclave_mls::commit::effects(&staged, &sender, &credential, group.members())?;
                    let (added, removed) = (effects.added_identities(), effects.removed_identities());
                    let (sender_identity, external) = (effects.committer.identity, effects.external);
                    let removed_me = staged.self_removed();
                    group
                        .merge_staged_commit(&tx.provider, *staged)
                        .map_err(MlsError::internal("merge commit"))?;
                    let epoch = group.epoch().as_u64();
                    tx.prune_sent(group_id, epoch)?;
                    Ok(Processed::Commit {
                        sender: sender_identity,
                        added,
                        removed,
                        external,
                        epoch,
                        removed_me,
                    })
                }
                ProcessedMessageContent::OwnPrivateMessage => Ok(Processed::Own),
                ProcessedMessageContent::OwnPendingCommit => {
                    settle_own_commit(tx, &mut group)?;
                    Ok(Processed::Own)
                }
            }
        })
    }

    /// Decrypts an ephemeral application message (a typing indicator) that did
    /// not come through the room's log. Only a PrivateMessage of the current or a
    /// recent epoch is accepted: a handshake message arriving this way is refused
    /// before it can touch the group, since only the server's log may order
    /// commits.
    ///
    /// # Errors
    /// As [`process`](Self::process); [`MlsError::Policy`] for anything but an
    /// application message.
    pub fn process_ephemeral(&self, group_id: &[u8], message: &[u8]) -> Result<(Identity, Vec<u8>)> {
        let refused = || MlsError::Policy { what: "ephemeral message", reason: "not an application message" };
        let parsed = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(MlsError::malformed("MLS message"))?
            .try_into_protocol_message()
            .map_err(MlsError::malformed("group message"))?;
        if !matches!(parsed, ProtocolMessage::PrivateMessage(_)) {
            return Err(refused());
        }
        match self.process(group_id, message)? {
            Processed::Application { sender, plaintext, .. } => Ok((sender, plaintext)),
            _ => Err(refused()),
        }
    }

    /// The group's members, in leaf order.
    ///
    /// # Errors
    /// [`MlsError::UnknownGroup`], store errors.
    pub fn members(&self, group_id: &[u8]) -> Result<Vec<Identity>> {
        let group_id = GroupId::from_slice(group_id);
        self.store.read(|tx| member_identities(&load(tx, &group_id)?))
    }

    /// The group's members with their signature public keys, in leaf order: compare
    /// them with the keys the server bound to each device.
    ///
    /// # Errors
    /// [`MlsError::UnknownGroup`], store errors.
    pub fn member_keys(&self, group_id: &[u8]) -> Result<Vec<(Identity, Vec<u8>)>> {
        let group_id = GroupId::from_slice(group_id);
        self.store.read(|tx| {
            load(tx, &group_id)?
                .members()
                .map(|member| Ok((identity_of(&member.credential)?, member.signature_key)))
                .collect()
        })
    }

    /// The group's current epoch (before any pending commit).
    ///
    /// # Errors
    /// [`MlsError::UnknownGroup`], store errors.
    pub fn epoch(&self, group_id: &[u8]) -> Result<u64> {
        let group_id = GroupId::from_slice(group_id);
        self.store.read(|tx| Ok(load(tx, &group_id)?.epoch().as_u64()))
    }

    /// Whether this device has state for the group. A store error reads as `false`.
    pub fn has_group(&self, group_id: &[u8]) -> bool {
        let group_id = GroupId::from_slice(group_id);
        self.store.read(|tx| Ok(MlsGroup::load(tx.storage(), &group_id)?.is_some())).unwrap_or(false)
    }

    /// Forgets a group (after leaving it or being removed), deleting its secrets. A
    /// no-op for an unknown group.
    ///
    /// # Errors
    /// Store errors.
    pub fn forget_group(&self, group_id: &[u8]) -> Result<()> {
        let gid = GroupId::from_slice(group_id);
        self.store.write(|tx| {
            if let Some(mut group) = MlsGroup::load(tx.storage(), &gid)? {
                group.delete(tx.storage())?;
            }
            tx.forget_group(group_id)
        })
    }

    /// The current GroupInfo and ratchet tree, to upload after a commit of this device
    /// was confirmed (the same as in its [`Outgoing`]).
    ///
    /// # Errors
    /// [`MlsError::UnknownGroup`], [`MlsError::NotMember`], store errors.
    pub fn group_state(&self, group_id: &[u8]) -> Result<GroupState> {
        let group_id = GroupId::from_slice(group_id);
        self.store.read(|tx| {
            let group = load(tx, &group_id)?;
            if !group.is_active() {
                return Err(MlsError::NotMember);
            }
            self.export_state(tx, &group)
        })
    }

    /// GroupInfo and ratchet tree of the group's current epoch.
    fn export_state(&self, tx: &Tx<'_>, group: &MlsGroup) -> Result<GroupState> {
        let group_info = group
            .export_group_info(tx.provider.crypto(), &self.signer, false)
            .map_err(MlsError::internal("export GroupInfo"))?;
        Ok(GroupState {
            group_info: serialize(&group_info, "GroupInfo")?,
            ratchet_tree: serialize(&group.export_ratchet_tree(), "ratchet tree")?,
            epoch: group.epoch().as_u64(),
        })
    }

    /// What to send for a commit just staged on `group`, and remember its digest.
    fn outgoing(&self, tx: &Tx<'_>, group: &MlsGroup, bundle: CommitMessageBundle) -> Result<Outgoing> {
        let staged = group.pending_commit().ok_or_else(|| MlsError::bug("commit", "nothing pending"))?;
        let added = staged
            .add_proposals()
            .map(|add| identity_of(add.add_proposal().key_package().leaf_node().credential()))
            .collect::<Result<_>>()?;
        let removed = staged
            .remove_proposals()
            .map(|remove| member_identity(group, remove.remove_proposal().removed()))
            .collect::<Result<_>>()?;
        let ratchet_tree = staged
            .export_ratchet_tree(tx.provider.crypto(), group.export_ratchet_tree())
            .map_err(MlsError::internal("export ratchet tree"))?
            .ok_or_else(|| MlsError::bug("commit", "no ratchet tree"))?;
        let (commit, welcome, group_info) = bundle.into_messages();
        let commit = serialize(&commit, "commit")?;
        let group_info = group_info.ok_or_else(|| MlsError::bug("commit", "no GroupInfo"))?;
        let epoch = group.epoch().as_u64();
        tx.record_sent(group.group_id().as_slice(), &digest(&commit), epoch)?;
        Ok(Outgoing {
            group_id: group.group_id().to_vec(),
            commit,
            welcome: welcome.map(|welcome| serialize(&welcome, "Welcome")).transpose()?,
            group_info: serialize(&group_info, "GroupInfo")?,
            ratchet_tree: serialize(&ratchet_tree, "ratchet tree")?,
            epoch,
            added,
            removed,
        })
    }
}

/// Merges this device's pending commit or settles its pending external join: the
/// server accepted it.
fn settle_own_commit(tx: &Tx<'_>, group: &mut MlsGroup) -> Result<()> {
    let group_id = group.group_id().to_vec();
    if tx.is_pending_join(&group_id)? {
        tx.clear_pending_join(&group_id)?;
    } else if group.pending_commit().is_some() {
        group.merge_pending_commit(&tx.provider).map_err(|e| match e {
            openmls::prelude::MergePendingCommitError::MlsGroupStateError(_) => MlsError::NotMember,
            e => MlsError::internal("merge commit")(e),
        })?;
    } else if !group.is_active() {
        return Err(MlsError::NotMember);
    }
    tx.prune_sent(&group_id, group.epoch().as_u64())
}

/// Checks a standalone proposal against Conclave's rules before storing it.
fn check_proposal(group: &MlsGroup, proposal: &QueuedProposal) -> Result<()> {
    let policy = |reason| MlsError::Policy { what: "proposal", reason };
    let proposal_type = proposal.proposal().proposal_type();
    if !conclave_mls::commit::ALLOWED_PROPOSALS.contains(&proposal_type)
        || proposal_type == ProposalType::ExternalInit
    {
        return Err(policy("a proposal type Conclave does not use"));
    }
    match (proposal.proposal(), proposal.sender()) {
        (openmls::prelude::Proposal::Update(update), Sender::Member(index))
            if identity_of(update.leaf_node().credential())? != member_identity(group, *index)? =>
        {
            return Err(policy("an update proposal changes a member's identity"));
        }
        (openmls::prelude::Proposal::Add(add), _) => {
            let identity = identity_of(add.key_package().leaf_node().credential())?;
            if member_identities(group)?.contains(&identity) {
                return Err(policy("it adds a device that is already a member"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks that every member of a group just joined carries a valid identity, and no
/// identity names two leaves.
fn check_members(group: &MlsGroup) -> Result<()> {
    conclave_mls::commit::check_members(group.members())?;
    Ok(())
}

/// Loads a group, or [`MlsError::UnknownGroup`].
fn load(tx: &Tx<'_>, group_id: &GroupId) -> Result<MlsGroup> {
    MlsGroup::load(tx.storage(), group_id)?.ok_or(MlsError::UnknownGroup)
}

/// Refuses a commit on a group this device left or that has a commit pending.
fn ensure_can_commit(group: &MlsGroup) -> Result<()> {
    if !group.is_active() {
        return Err(MlsError::NotMember);
    }
    if group.pending_commit().is_some() {
        return Err(MlsError::PendingCommit);
    }
    Ok(())
}

/// The identities of all members, in leaf order.
fn member_identities(group: &MlsGroup) -> Result<Vec<Identity>> {
    group.members().map(|member| identity_of(&member.credential)).collect()
}

/// The identity of the member at `index`.
fn member_identity(group: &MlsGroup, index: LeafNodeIndex) -> Result<Identity> {
    let credential = group
        .member(index)
        .ok_or(MlsError::Policy { what: "commit", reason: "it refers to an empty leaf" })?;
    identity_of(credential)
}

/// Decodes an `MLSMessage` of any kind.
fn parse_body(bytes: &[u8], what: &'static str) -> Result<MlsMessageBodyIn> {
    Ok(MlsMessageIn::tls_deserialize_exact(bytes).map_err(MlsError::malformed(what))?.extract())
}

/// Decodes a GroupInfo `MLSMessage`.
fn parse_group_info(bytes: &[u8]) -> Result<VerifiableGroupInfo> {
    match parse_body(bytes, "GroupInfo")? {
        MlsMessageBodyIn::GroupInfo(group_info) => Ok(group_info),
        _ => Err(MlsError::Malformed { what: "GroupInfo" }),
    }
}

/// Decodes and verifies a KeyPackage `MLSMessage`.
fn parse_key_package(tx: &Tx<'_>, bytes: &[u8]) -> Result<KeyPackage> {
    let key_package: KeyPackageIn = match parse_body(bytes, "KeyPackage")? {
        MlsMessageBodyIn::KeyPackage(key_package) => key_package,
        _ => return Err(MlsError::Malformed { what: "KeyPackage" }),
    };
    let key_package = key_package
        .validate(tx.provider.crypto(), ProtocolVersion::Mls10)
        .map_err(MlsError::rejected("KeyPackage"))?;
    if key_package.ciphersuite() != CIPHERSUITE {
        return Err(MlsError::UnsupportedCiphersuite);
    }
    Ok(key_package)
}

/// Maps the errors of joining from a Welcome.
fn welcome_error(e: WelcomeError<rusqlite::Error>) -> MlsError {
    match e {
        WelcomeError::NoMatchingKeyPackage | WelcomeError::NoMatchingEncryptionKey => MlsError::NotForUs,
        WelcomeError::GroupAlreadyExists => MlsError::GroupExists,
        WelcomeError::StorageError(e) => e.into(),
        e => MlsError::rejected("Welcome")(e),
    }
}

/// TLS-serializes something OpenMLS made.
fn serialize(value: &impl openmls::prelude::tls_codec::Serialize, what: &'static str) -> Result<Vec<u8>> {
    value.tls_serialize_detached().map_err(MlsError::internal(what))
}

/// The digest by which a sent commit is recognised when it comes back.
fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}
