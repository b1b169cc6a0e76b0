//! [`verify`] against real commits built with the client's MLS layer.

use super::verify;
use crate::error::RequestError;
use conclave_client::mls::{GroupState, Identity, MlsState, Outgoing};
use conclave_proto::{Change, DeviceId};

const GROUP: &[u8] = b"room-1";

/// A device with its identity set.
fn device(user: &str, id: i64) -> MlsState {
    let mut state = MlsState::in_memory().expect("in-memory MLS state");
    state.set_identity(Identity::new(user, id)).expect("identity");
    state
}

fn key_package(state: &MlsState) -> Vec<u8> {
    state.key_packages(1, false).expect("key package").remove(0)
}

/// Alice (device 1) creates the group and adds Bob (device 2): both at epoch 1.
fn alice_and_bob() -> (MlsState, MlsState) {
    let (alice, bob) = (device("alice", 1), device("bob", 2));
    alice.create_group(GROUP).expect("create");
    let add = alice.add_members(GROUP, &[key_package(&bob)]).expect("add bob");
    alice.confirm(GROUP).expect("confirm");
    bob.join_welcome(&add.welcome.expect("welcome"), &add.ratchet_tree).expect("bob joins");
    (alice, bob)
}

fn add(users: &[&str], devices: &[i64]) -> Change {
    Change::Add {
        users: users.iter().map(|u| (*u).to_owned()).collect(),
        devices: devices.iter().copied().map(DeviceId).collect(),
    }
}

fn remove(users: &[&str]) -> Change {
    Change::Remove { users: users.iter().map(|u| (*u).to_owned()).collect() }
}

/// Verifies `outgoing` as sent by `user`/`device` for the epoch it was built in.
fn check(
    change: &Change,
    outgoing: &Outgoing,
    user: &str,
    device: i64,
    removable: usize,
) -> Result<(), RequestError> {
    verify(change, &outgoing.commit, outgoing.epoch, user, DeviceId(device), removable)
}

#[track_caller]
fn assert_forbidden(result: Result<(), RequestError>) {
    assert!(matches!(result, Err(RequestError::Forbidden(_))), "{result:?}");
}

#[track_caller]
fn assert_invalid(result: Result<(), RequestError>) {
    assert!(matches!(result, Err(RequestError::Invalid(_))), "{result:?}");
}

#[test]
fn honest_add_passes() {
    let alice = device("alice", 1);
    let (bob, bobs_phone) = (device("bob", 2), device("bob", 3));
    alice.create_group(GROUP).expect("create");
    let outgoing = alice.add_members(GROUP, &[key_package(&bob), key_package(&bobs_phone)]).expect("add");
    check(&add(&["bob"], &[3, 2]), &outgoing, "alice", 1, 0).expect("an honest add");
    check(&add(&["BOB"], &[2, 3]), &outgoing, "alice", 1, 0).expect("usernames are case-insensitive");
}

#[test]
fn add_of_other_devices_than_declared_is_refused() {
    let alice = device("alice", 1);
    let (bob, carol) = (device("bob", 2), device("carol", 3));
    alice.create_group(GROUP).expect("create");
    let outgoing = alice.add_members(GROUP, &[key_package(&bob), key_package(&carol)]).expect("add");
    check(&add(&["bob", "carol"], &[2, 3]), &outgoing, "alice", 1, 0).expect("honest");
    // Carol is added but not declared (so policy never saw her).
    assert_forbidden(check(&add(&["bob"], &[2]), &outgoing, "alice", 1, 0));
    // A device declared that the commit does not add.
    assert_forbidden(check(&add(&["bob", "carol"], &[2, 3, 4]), &outgoing, "alice", 1, 0));
    // Another device than the one added.
    assert_forbidden(check(&add(&["bob", "carol"], &[2, 5]), &outgoing, "alice", 1, 0));
    assert_forbidden(check(&add(&["dave", "carol"], &[2, 3]), &outgoing, "alice", 1, 0));
}

#[test]
fn update_declared_on_an_add_or_remove_is_refused() {
    let (alice, _bob) = alice_and_bob();
    let carol = device("carol", 3);
    let adding = alice.add_members(GROUP, &[key_package(&carol)]).expect("add");
    assert_forbidden(check(&Change::Update {}, &adding, "alice", 1, 0));
    assert_forbidden(check(&remove(&["carol"]), &adding, "alice", 1, 1));
    assert_forbidden(check(&Change::Join {}, &adding, "alice", 1, 0));
    alice.discard(GROUP).expect("discard");

    let removing = alice.remove_members(GROUP, &[Identity::new("bob", 2)]).expect("remove");
    assert_forbidden(check(&Change::Update {}, &removing, "alice", 1, 0));
    assert_forbidden(check(&add(&["bob"], &[2]), &removing, "alice", 1, 0));
}

#[test]
fn honest_remove_passes_and_removes_no_more_than_the_users_devices() {
    let (alice, _bob) = alice_and_bob();
    let outgoing = alice.remove_members(GROUP, &[Identity::new("bob", 2)]).expect("remove");
    check(&remove(&["bob"]), &outgoing, "alice", 1, 1).expect("an honest remove");
    alice.discard(GROUP).expect("discard");

    let (carol, carols_phone) = (device("carol", 3), device("carol", 4));
    let adding = alice.add_members(GROUP, &[key_package(&carol), key_package(&carols_phone)]).expect("add");
    check(&add(&["carol"], &[3, 4]), &adding, "alice", 1, 0).expect("add carol");
    alice.confirm(GROUP).expect("confirm");
    let both = [Identity::new("carol", 3), Identity::new("carol", 4)];
    let outgoing = alice.remove_members(GROUP, &both).expect("remove carol");
    check(&remove(&["carol"]), &outgoing, "alice", 1, 2).expect("both of carol's devices");
    assert_forbidden(check(&remove(&["carol"]), &outgoing, "alice", 1, 1));
}

#[test]
fn honest_update_passes() {
    let (_alice, bob) = alice_and_bob();
    let outgoing = bob.self_update(GROUP).expect("update");
    check(&Change::Update {}, &outgoing, "bob", 2, 0).expect("an honest update");
    assert_forbidden(check(&Change::Update {}, &outgoing, "alice", 1, 0));
    assert_forbidden(check(&Change::Update {}, &outgoing, "bob", 7, 0));
}

#[test]
fn honest_join_passes_and_only_for_the_joiner() {
    let (alice, _bob) = alice_and_bob();
    let GroupState { group_info, ratchet_tree, epoch } = alice.group_state(GROUP).expect("state");
    let carol = device("carol", 3);
    let join = carol.external_join(&group_info, &ratchet_tree).expect("join");
    assert_eq!(join.epoch, epoch);
    check(&Change::Join {}, &join, "carol", 3, 0).expect("an honest join");
    check(&Change::Join {}, &join, "Carol", 3, 0).expect("usernames are case-insensitive");
    assert_forbidden(check(&Change::Join {}, &join, "dave", 4, 0));
    assert_forbidden(check(&Change::Join {}, &join, "carol", 4, 0));
    assert_forbidden(check(&Change::Join {}, &join, "alice", 1, 0));
    assert_forbidden(check(&Change::Update {}, &join, "carol", 3, 0));
    assert_forbidden(check(&add(&["carol"], &[3]), &join, "carol", 3, 0));
    // A member's commit is no join.
    let update = alice.self_update(GROUP).expect("update");
    assert_forbidden(check(&Change::Join {}, &update, "alice", 1, 0));
}

#[test]
fn garbage_and_non_commits_are_refused() {
    let (alice, _bob) = alice_and_bob();
    for bytes in [&b""[..], b"garbage", &[0u8; 64]] {
        for change in [Change::Update {}, Change::Join {}, remove(&["bob"]), add(&["bob"], &[2])] {
            assert_invalid(verify(&change, bytes, 1, "alice", DeviceId(1), 1));
        }
    }
    let message = alice.encrypt(GROUP, b"hello").expect("application message");
    assert_invalid(verify(&Change::Update {}, &message, 1, "alice", DeviceId(1), 0));
    let mut outgoing = alice.self_update(GROUP).expect("update");
    outgoing.commit.push(0);
    assert_invalid(check(&Change::Update {}, &outgoing, "alice", 1, 0));
    outgoing.commit.truncate(outgoing.commit.len() - 10);
    assert_invalid(check(&Change::Update {}, &outgoing, "alice", 1, 0));
}

#[test]
fn a_commit_for_another_epoch_is_refused() {
    let (alice, _bob) = alice_and_bob();
    let outgoing = alice.self_update(GROUP).expect("update");
    assert_eq!(outgoing.epoch, 1);
    check(&Change::Update {}, &outgoing, "alice", 1, 0).expect("right epoch");
    for epoch in [0, 2, 7] {
        assert_invalid(verify(&Change::Update {}, &outgoing.commit, epoch, "alice", DeviceId(1), 0));
    }
}

#[test]
fn a_create_carries_no_commit_to_check() {
    verify(&Change::Create {}, b"", 0, "alice", DeviceId(1), 0).expect("create");
}
