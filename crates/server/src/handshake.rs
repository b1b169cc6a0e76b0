//! Checks that a commit's MLS content is the change it declares.
//!
//! Room policy is decided on the declared [`Change`]; this module makes the
//! declaration binding. Commits are MLS PublicMessages, so their proposals can
//! be read without any group secret (by
//! [`conclave_client::mls::inspect_handshake`], which parses with OpenMLS's own
//! types and verifies nothing cryptographic — members verify signatures when
//! they process the commit). The server refuses a commit whose proposals do
//! not match: an `update` that adds or removes anyone, an `add` of other devices
//! than declared, a `join` that is not the caller's own external commit, or a
//! commit signed for another identity than the caller's.
//!
//! Removes name leaf indices, which only the ratchet tree maps to devices, so
//! for `remove` the server checks the kind and number of proposals and the
//! members' clients check whom they remove.

use crate::error::RequestError;
use conclave_client::mls::{HandshakeKind, HandshakeSender, ProposalSummary, inspect_handshake};
use conclave_proto::{Change, DeviceId};

/// Refuses `commit` unless it is a commit for `epoch` by the caller (`user`,
/// `device`) whose proposals are exactly the declared `change`.
pub(crate) fn verify(
    change: &Change,
    commit: &[u8],
    epoch: u64,
    user: &str,
    device: DeviceId,
    removable_devices: usize,
) -> Result<(), RequestError> {
    use RequestError::Forbidden;
    if matches!(change, Change::Create {}) {
        return Ok(());
    }
    let summary = inspect_handshake(commit)
        .map_err(|_| RequestError::Invalid("the commit is not an MLS PublicMessage commit"))?;
    if summary.kind != HandshakeKind::Commit || summary.proposal_refs != 0 {
        return Err(Forbidden("only commits with inline proposals are accepted"));
    }
    if summary.epoch != epoch {
        return Err(RequestError::Invalid("the commit is for another epoch than declared"));
    }
    if let Some(leaf) = &summary.path_leaf
        && (!leaf.identity.user.eq_ignore_ascii_case(user) || leaf.identity.device != device.0)
    {
        return Err(Forbidden("the commit is signed for another device than the caller's"));
    }
    let count = |want: fn(&ProposalSummary) -> bool| summary.proposals.iter().filter(|p| want(p)).count();
    let adds = count(|p| matches!(p, ProposalSummary::Add(_)));
    let removes = count(|p| matches!(p, ProposalSummary::Remove { .. }));
    let external = count(|p| matches!(p, ProposalSummary::ExternalInit));
    let others = count(|p| matches!(p, ProposalSummary::Other { .. }));
    if others > 0 {
        return Err(Forbidden("the commit carries a proposal type Conclave does not use"));
    }
    let member = matches!(summary.sender, HandshakeSender::Member(_));
    let ok = match change {
        // Returned early above: a create carries no commit.
        Change::Create {} => true,
        Change::Join {} => {
            matches!(summary.sender, HandshakeSender::NewMemberCommit)
                && external == 1
                && adds == 0
                && removes <= 1
                && summary.path_leaf.is_some()
        }
        Change::Update {} => member && adds == 0 && removes == 0 && external == 0,
        Change::Remove { .. } => {
            member && adds == 0 && external == 0 && removes >= 1 && removes <= removable_devices.max(1)
        }
        Change::Add { users, devices } => {
            let mut added: Vec<i64> = summary
                .proposals
                .iter()
                .filter_map(|p| match p {
                    ProposalSummary::Add(leaf)
                        if users.iter().any(|u| u.eq_ignore_ascii_case(&leaf.identity.user)) =>
                    {
                        Some(leaf.identity.device)
                    }
                    _ => None,
                })
                .collect();
            let mut declared: Vec<i64> = devices.iter().map(|d| d.0).collect();
            added.sort_unstable();
            declared.sort_unstable();
            member && removes == 0 && external == 0 && adds == added.len() && added == declared
        }
    };
    if ok { Ok(()) } else { Err(Forbidden("the commit does not do what it declares")) }
}

#[cfg(test)]
mod tests;
