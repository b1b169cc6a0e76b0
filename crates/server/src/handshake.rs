//! Checks every commit against the room's MLS group before it is stored: the
//! server is a validating Delivery Service.
//!
//! OpenMLS does the MLS checking ([`conclave_mls::delivery`]): on the group's
//! keyless public state it verifies that a commit is for this group and epoch,
//! signed by a member (or a valid external join), with valid proposals, and that
//! the GroupInfo, ratchet tree and Welcome sent with it are the ones it produces.
//! It reports what the commit really does, device by device. This module then
//! holds that against what the caller is and what it declared, on which room
//! policy was decided:
//!
//! * the committer is the calling device, with the signature key bound to it;
//! * `create` is the caller's one-member group, `join` the caller's own external
//!   commit (removing at most an earlier leaf of the same device), `update` adds
//!   and removes nobody;
//! * `add` adds exactly the declared devices, each with the key the server bound to
//!   it; `remove` removes only leaves of the named users, and all of them.
//!
//! Nothing of a refused commit is stored, so no member and no outsider can leave a
//! room in a state others cannot follow — except by what only members can check
//! (secrets encrypted to them), which `conclave admin repair-room` resets.

use crate::error::RequestError;
use conclave_mls::{Checked, Error as MlsError, Leaf, PublicState};
use conclave_proto::{Change, DeviceId};

/// A device as the server bound it to its account.
#[derive(Debug, Clone)]
pub(crate) struct BoundDevice {
    /// The account's (lower-case) username.
    pub username: String,
    /// The device.
    pub device: DeviceId,
    /// The signature key bound to the device.
    pub signature_key: Vec<u8>,
}

impl BoundDevice {
    /// Whether `leaf` is this device, with its bound key.
    fn is(&self, leaf: &Leaf) -> bool {
        self.names(leaf) && leaf.signature_key == self.signature_key
    }

    /// Whether `leaf` names this device (whatever its key).
    fn names(&self, leaf: &Leaf) -> bool {
        leaf.identity.user.eq_ignore_ascii_case(&self.username) && leaf.identity.device == self.device.0
    }
}

/// What a commit request carries for the group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handshake<'a> {
    /// The commit (empty for `create`).
    pub commit: &'a [u8],
    /// The GroupInfo after it.
    pub group_info: &'a [u8],
    /// The ratchet tree after it.
    pub ratchet_tree: &'a [u8],
    /// The Welcome for added devices.
    pub welcome: Option<&'a [u8]>,
}

/// Everything [`check`] needs, owned, to run on a blocking thread.
#[derive(Debug)]
pub(crate) struct Job {
    /// The room's MLS group id.
    pub group_id: Vec<u8>,
    /// The group's public state; `None` for a `create`.
    pub state: Option<PublicState>,
    /// The declared change.
    pub change: Change,
    /// Commit, GroupInfo, ratchet tree, Welcome.
    pub commit: Vec<u8>,
    pub group_info: Vec<u8>,
    pub ratchet_tree: Vec<u8>,
    pub welcome: Option<Vec<u8>>,
    /// The calling device.
    pub caller: BoundDevice,
    /// The devices an `add` or a `remove_devices` declares.
    pub named: Vec<BoundDevice>,
}

impl Job {
    /// Runs [`check`] on a thread for blocking work: OpenMLS's checks are CPU
    /// work (a signature per added leaf, the tree's hashes).
    pub(crate) async fn run(self) -> Result<Checked, RequestError> {
        tokio::task::spawn_blocking(move || {
            let handshake = Handshake {
                commit: &self.commit,
                group_info: &self.group_info,
                ratchet_tree: &self.ratchet_tree,
                welcome: self.welcome.as_deref(),
            };
            check(&self.group_id, self.state.as_ref(), &self.change, &handshake, &self.caller, &self.named)
        })
        .await
        .map_err(|_| RequestError::Protocol(conclave_proto::ErrorCode::Internal, "internal server error"))?
    }
}

/// Checks `handshake` against the group's current public `state` (`None` for a
/// `create`) and the declared `change`; returns what to store if it wins its
/// epoch.
///
/// `named` are the devices an `add` or a `remove_devices` declares, as the
/// server bound them.
///
/// # Errors
/// `invalid_commit` ([`RequestError::Commit`]) when the MLS checks fail,
/// `stale_epoch` for a commit of an epoch that has passed, `forbidden` when the
/// commit does not do what was declared or is not the caller's, `group_broken`
/// when the stored state cannot be loaded.
pub(crate) fn check(
    group_id: &[u8],
    state: Option<&PublicState>,
    change: &Change,
    handshake: &Handshake<'_>,
    caller: &BoundDevice,
    named: &[BoundDevice],
) -> Result<Checked, RequestError> {
    let checked = match state {
        None => conclave_mls::check_creation(group_id, handshake.group_info, handshake.ratchet_tree),
        Some(state) => conclave_mls::check_commit(
            state,
            group_id,
            handshake.commit,
            handshake.group_info,
            handshake.ratchet_tree,
            handshake.welcome,
        ),
    }
    .map_err(refusal)?;
    let effects = &checked.effects;
    if !caller.is(&effects.committer) {
        return Err(RequestError::Forbidden("the commit is signed for another device than the caller's"));
    }
    let ok = match change {
        Change::Create {} => state.is_none(),
        Change::Join {} => {
            effects.external
                && effects.added.len() == 1
                && effects.removed.iter().all(|leaf| caller.names(leaf))
        }
        Change::Update {} => !effects.external && effects.added.is_empty() && effects.removed.is_empty(),
        Change::Add { .. } => {
            !effects.external
                && effects.removed.is_empty()
                && effects.added.len() == named.len()
                && named.iter().all(|device| effects.added.iter().any(|leaf| device.is(leaf)))
        }
        Change::RemoveDevices { .. } => {
            !effects.external
                && effects.added.is_empty()
                && effects.removed.len() == named.len()
                && named.iter().all(|device| effects.removed.iter().any(|leaf| device.is(leaf)))
        }
        Change::Remove { users } => {
            let named = |leaf: &Leaf| users.iter().any(|u| u.eq_ignore_ascii_case(&leaf.identity.user));
            !effects.external
                && effects.added.is_empty()
                && !effects.removed.is_empty()
                && effects.removed.iter().all(named)
                && !checked.members.iter().any(named)
        }
    };
    if !ok {
        return Err(RequestError::Forbidden("the commit does not do what it declares"));
    }
    Ok(checked)
}

/// The request error for a commit the MLS checks refused.
fn refusal(error: MlsError) -> RequestError {
    match error {
        MlsError::WrongEpoch { message, group } if message < group => RequestError::StaleEpoch,
        MlsError::CorruptState(_) => {
            tracing::error!(%error, "a room's stored group state cannot be loaded");
            RequestError::GroupBroken
        }
        MlsError::Internal { .. } => {
            tracing::error!(%error, "checking a commit failed");
            RequestError::Protocol(conclave_proto::ErrorCode::Internal, "internal server error")
        }
        error => RequestError::Commit(error),
    }
}

#[cfg(test)]
mod tests;
