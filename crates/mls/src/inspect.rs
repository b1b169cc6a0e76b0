//! [`inspect_handshake`]: what a Delivery Service can read from a handshake message
//! without any group state, to enforce room policy (who may add, remove or join).
//!
//! Handshake messages travel as PublicMessages, so their content is readable by
//! anyone. OpenMLS parses them completely (`MlsMessageIn`), but keeps the body of a
//! PublicMessage (`FramedContent::body`, `CommitIn`) crate-private. Everything this
//! function reports therefore comes from decoding the message a second time, field by
//! field in the order RFC 9420 §6 fixes, with OpenMLS's own public TLS types
//! (`GroupId`, `Sender`, `ContentType`, `ProposalOrRefIn`, `ProposalIn`, `KeyPackageIn`,
//! `Credential`): no field is hand-decoded.
//!
//! Nothing is verified: not the signature, not the membership tag, not the
//! KeyPackages (that needs the group's state). It tells what a sender *claims*:
//! the Delivery Service's real checks are in [`crate::delivery`], and members verify
//! everything when they process the commit.

use crate::{
    error::{Error, Result},
    identity::{Identity, identity_of},
};
use openmls::prelude::{
    ContentType, Credential, GroupId, KeyPackageIn, MlsMessageBodyIn, MlsMessageIn, ProposalIn,
    ProposalOrRefIn, ProtocolVersion, Sender, WireFormat,
    tls_codec::{Deserialize, Serialize as _, VLBytes},
};

/// Who sent a handshake message, as its framing says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeSender {
    /// A member, by leaf index.
    Member(u32),
    /// A device joining by external commit.
    NewMemberCommit,
    /// A device asking to be added (external proposal; Conclave does not use these).
    NewMemberProposal,
    /// A preconfigured external sender (Conclave does not use these).
    External,
}

/// Whether the handshake message is a commit or a standalone proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// A commit: ends the epoch.
    Commit,
    /// A standalone proposal, for a later commit.
    Proposal,
}

/// A leaf as a handshake message carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSummary {
    /// The identity in the leaf's credential.
    pub identity: Identity,
    /// The leaf's signature public key: compare with the key bound to the device.
    pub signature_key: Vec<u8>,
}

/// A proposal carried by value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalSummary {
    /// Adds the device of a KeyPackage.
    Add(LeafSummary),
    /// Removes the leaf at this index.
    Remove {
        /// The leaf index (map it to a device with the group's ratchet tree).
        leaf_index: u32,
    },
    /// Replaces the sender's leaf.
    Update,
    /// The external commit's key exchange: present exactly in external joins.
    ExternalInit,
    /// Any other proposal type (which Conclave clients reject).
    Other {
        /// The IANA proposal type.
        proposal_type: u16,
    },
}

/// What a handshake message says, read without group state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeSummary {
    /// The group.
    pub group_id: Vec<u8>,
    /// The epoch the message is for: the server accepts one commit per epoch.
    pub epoch: u64,
    /// Who sent it.
    pub sender: HandshakeSender,
    /// Commit or standalone proposal.
    pub kind: HandshakeKind,
    /// The proposals carried by value: a commit's inline proposals, or the one
    /// proposal of a proposal message.
    pub proposals: Vec<ProposalSummary>,
    /// How many earlier proposals a commit includes by reference (Conclave clients
    /// only make inline proposals, so normally 0).
    pub proposal_refs: usize,
    /// The committer's new leaf from the commit's update path, if it has one. For an
    /// external commit this is the joiner.
    pub path_leaf: Option<LeafSummary>,
}

impl HandshakeSummary {
    /// Whether this is an external join: a commit by a new member carrying an
    /// ExternalInit proposal.
    pub fn is_external_join(&self) -> bool {
        self.kind == HandshakeKind::Commit
            && self.sender == HandshakeSender::NewMemberCommit
            && self.proposals.contains(&ProposalSummary::ExternalInit)
    }
}

/// Reads the group, epoch, sender and proposals of a handshake message (a
/// TLS-serialized `MLSMessage` holding a PublicMessage commit or proposal) without any
/// group state. Nothing is verified; see the module documentation.
///
/// # Errors
/// [`Error::Malformed`] if the bytes are not a PublicMessage commit or proposal;
/// [`Error::InvalidIdentity`] / [`Error::Refused`] if a leaf's credential is not
/// a Conclave identity.
pub fn inspect_handshake(message: &[u8]) -> Result<HandshakeSummary> {
    let malformed = || Error::Malformed { what: "handshake message" };
    // First the full parse, which checks the whole message (and nothing trailing).
    let message_in = MlsMessageIn::tls_deserialize_exact(message).map_err(|_| malformed())?;
    let MlsMessageBodyIn::PublicMessage(public) = message_in.extract() else {
        return Err(malformed());
    };
    let kind = match public.content_type() {
        ContentType::Commit => HandshakeKind::Commit,
        ContentType::Proposal => HandshakeKind::Proposal,
        ContentType::Application => return Err(malformed()),
    };
    let sender = match public.sender() {
        Sender::Member(index) => HandshakeSender::Member(index.u32()),
        Sender::NewMemberCommit => HandshakeSender::NewMemberCommit,
        Sender::NewMemberProposal => HandshakeSender::NewMemberProposal,
        Sender::External(_) => HandshakeSender::External,
    };

    // Then the body, which OpenMLS keeps private: walk RFC 9420's
    // MLSMessage { version, wire_format, PublicMessage { FramedContent { group_id,
    // epoch, sender, authenticated_data, content_type, body }, … } }.
    let reader = &mut &message[..];
    ProtocolVersion::tls_deserialize(reader).map_err(|_| malformed())?;
    WireFormat::tls_deserialize(reader).map_err(|_| malformed())?;
    GroupId::tls_deserialize(reader).map_err(|_| malformed())?;
    u64::tls_deserialize(reader).map_err(|_| malformed())?;
    Sender::tls_deserialize(reader).map_err(|_| malformed())?;
    VLBytes::tls_deserialize(reader).map_err(|_| malformed())?;
    ContentType::tls_deserialize(reader).map_err(|_| malformed())?;

    let mut proposals = Vec::new();
    let mut proposal_refs = 0;
    let mut path_leaf = None;
    match kind {
        HandshakeKind::Commit => {
            // Commit { ProposalOrRef proposals<V>; optional<UpdatePath> path; }
            for proposal in Vec::<ProposalOrRefIn>::tls_deserialize(reader).map_err(|_| malformed())? {
                match proposal {
                    ProposalOrRefIn::Proposal(proposal) => proposals.push(summarize(*proposal)?),
                    ProposalOrRefIn::Reference(_) => proposal_refs += 1,
                }
            }
            if u8::tls_deserialize(reader).map_err(|_| malformed())? == 1 {
                // UpdatePath { LeafNode leaf_node; … }, LeafNode { HPKEPublicKey
                // encryption_key; SignaturePublicKey signature_key; Credential credential; … }
                VLBytes::tls_deserialize(reader).map_err(|_| malformed())?;
                let signature_key = VLBytes::tls_deserialize(reader).map_err(|_| malformed())?;
                let credential = Credential::tls_deserialize(reader).map_err(|_| malformed())?;
                path_leaf = Some(LeafSummary {
                    identity: identity_of(&credential)?,
                    signature_key: signature_key.as_slice().to_vec(),
                });
            }
        }
        HandshakeKind::Proposal => {
            proposals.push(summarize(ProposalIn::tls_deserialize(reader).map_err(|_| malformed())?)?);
        }
    }

    Ok(HandshakeSummary {
        group_id: public.group_id().to_vec(),
        epoch: public.epoch().as_u64(),
        sender,
        kind,
        proposals,
        proposal_refs,
        path_leaf,
    })
}

/// What a proposal does.
fn summarize(proposal: ProposalIn) -> Result<ProposalSummary> {
    Ok(match proposal {
        ProposalIn::Add(add) => {
            // `AddProposalIn` hides its KeyPackage, but its encoding is the KeyPackage's.
            let bytes =
                add.tls_serialize_detached().map_err(|_| Error::Malformed { what: "Add proposal" })?;
            let key_package = KeyPackageIn::tls_deserialize_exact(bytes)
                .map_err(|_| Error::Malformed { what: "Add proposal" })?;
            let leaf = key_package.unverified_credential();
            ProposalSummary::Add(LeafSummary {
                identity: identity_of(&leaf.credential)?,
                signature_key: leaf.signature_key.as_slice().to_vec(),
            })
        }
        ProposalIn::Remove(remove) => ProposalSummary::Remove { leaf_index: remove.removed().u32() },
        ProposalIn::Update(_) => ProposalSummary::Update,
        ProposalIn::ExternalInit(_) => ProposalSummary::ExternalInit,
        other => ProposalSummary::Other { proposal_type: other.proposal_type().into() },
    })
}
