//! The Delivery Service's MLS checks (conclave-mls) on arbitrary handshakes:
//! creations, adoptions of stored GroupInfos, commits against a fixed honest
//! group of alice and bob at epoch 1 (`fixtures/handshake_state.bin`, written
//! with the seed corpus by `writes_the_fuzz_seeds` in crates/mls/src/tests.rs),
//! commits against a state of the input's own, and handshake inspection.
//!
//! Input: one operation byte, then the operation's parts, each behind its
//! length (u16, little-endian); missing parts are empty, and a Welcome is
//! present when its part is. Nothing may panic; what is accepted must be
//! consistent: the tree returned is the tree sent, a creation is epoch 0 with
//! one member and adopts to the same state, a commit moves the group one epoch.
#![no_main]

use conclave_mls::{PublicState, adopt, check_commit, check_creation, inspect_handshake};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The group id of the fixed group (room A of the MLS tests).
const GROUP_ID: &[u8] = b"room-a-group-id!";
/// The fixed group's epoch.
const EPOCH: u64 = 1;

static STATE: LazyLock<PublicState> =
    LazyLock::new(|| PublicState::from_bytes(include_bytes!("../fixtures/handshake_state.bin").to_vec()));

/// Splits `data` into length-prefixed parts.
fn parts(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while data.len() >= 2 && parts.len() < 8 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        parts.push(&data[2..2 + len]);
        data = &data[2 + len..];
    }
    parts
}

fn part<'a>(parts: &[&'a [u8]], index: usize) -> &'a [u8] {
    parts.get(index).copied().unwrap_or_default()
}

fn commit(state: &PublicState, group_id: &[u8], parts: &[&[u8]], epoch: Option<u64>) {
    let (message, group_info, tree) = (part(parts, 0), part(parts, 1), part(parts, 2));
    let welcome = parts.get(3).copied();
    if let Ok(checked) = check_commit(state, group_id, message, group_info, tree, welcome) {
        assert_eq!(checked.ratchet_tree, tree, "the tree accepted is the tree sent");
        assert!(!checked.members.is_empty());
        if let Some(epoch) = epoch {
            assert_eq!(checked.epoch, epoch + 1, "a commit moves the group one epoch");
        }
        let summary = inspect_handshake(message).expect("an accepted commit inspects");
        assert_eq!(summary.group_id, group_id, "an accepted commit is for its group");
        if let Some(epoch) = epoch {
            assert_eq!(summary.epoch, epoch, "an accepted commit is for the group's epoch");
        }
        // The same commit on the same state is judged the same way.
        let again = check_commit(state, group_id, message, group_info, tree, welcome).expect("again");
        assert_eq!(again.epoch, checked.epoch);
        assert_eq!(again.ratchet_tree, checked.ratchet_tree);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else { return };
    match op % 5 {
        0 => {
            let parts = parts(rest);
            let (group_id, group_info, tree) = (part(&parts, 0), part(&parts, 1), part(&parts, 2));
            if let Ok(checked) = check_creation(group_id, group_info, tree) {
                assert_eq!(checked.epoch, 0);
                assert_eq!(checked.members.len(), 1, "a new group has one member");
                assert_eq!(checked.ratchet_tree, tree);
                let adopted = adopt(group_id, group_info, tree).expect("a created group adopts");
                assert_eq!(adopted, checked.state, "creation and adoption store the same state");
            }
        }
        1 => {
            let parts = parts(rest);
            let (group_id, group_info, tree) = (part(&parts, 0), part(&parts, 1), part(&parts, 2));
            if let Ok(state) = adopt(group_id, group_info, tree) {
                let again = adopt(group_id, group_info, tree).expect("adopts again");
                assert_eq!(again, state, "adoption is deterministic");
            }
        }
        2 => commit(&STATE, GROUP_ID, &parts(rest), Some(EPOCH)),
        3 => {
            let _ = inspect_handshake(rest);
        }
        _ => {
            let parts = parts(rest);
            let state = PublicState::from_bytes(part(&parts, 0).to_vec());
            commit(&state, part(&parts, 1), &parts[parts.len().min(2)..], None);
        }
    }
});
