//! [`check`] against real commits built with the client's MLS layer, on the
//! server's public view of the group.

use super::{BoundDevice, Handshake, check};
use crate::error::RequestError;
use conclave_client::mls::{GroupState, Identity, MlsState, Outgoing};
use conclave_mls::{Checked, Error as MlsError, PublicState};
use conclave_proto::{Change, DeviceId};

const GROUP: &[u8] = b"room-1-group-id!";
const OTHER_GROUP: &[u8] = b"room-2-group-id!";

/// A device with its identity set.
fn device(user: &str, id: i64) -> MlsState {
    let mut state = MlsState::in_memory().expect("in-memory MLS state");
    state.set_identity(Identity::new(user, id)).expect("identity");
    state
}

/// The device as the server bound it.
fn bound(state: &MlsState) -> BoundDevice {
    let identity = state.identity().expect("identity");
    BoundDevice {
        username: identity.user.clone(),
        device: DeviceId(identity.device),
        signature_key: state.signature_public_key().expect("key"),
    }
}

fn key_package(state: &MlsState) -> Vec<u8> {
    state.key_packages(1, false).expect("key package").remove(0)
}

fn handshake(outgoing: &Outgoing) -> Handshake<'_> {
    Handshake {
        commit: &outgoing.commit,
        group_info: &outgoing.group_info,
        ratchet_tree: &outgoing.ratchet_tree,
        welcome: outgoing.welcome.as_deref(),
    }
}

/// Checks `outgoing` as sent by `caller` against `state`.
fn submit(
    state: &PublicState,
    change: &Change,
    outgoing: &Outgoing,
    caller: &MlsState,
    added: &[&MlsState],
) -> Result<Checked, RequestError> {
    let added: Vec<BoundDevice> = added.iter().map(|d| bound(d)).collect();
    check(GROUP, Some(state), change, &handshake(outgoing), &bound(caller), &added)
}

/// Alice creates the group: the server's state at epoch 0.
fn created(alice: &MlsState) -> PublicState {
    let GroupState { group_info, ratchet_tree, .. } = alice.create_group(GROUP).expect("create");
    let creation =
        Handshake { commit: &[], group_info: &group_info, ratchet_tree: &ratchet_tree, welcome: None };
    check(GROUP, None, &Change::Create {}, &creation, &bound(alice), &[]).expect("creation").state
}

/// Alice (device 1) creates the group and adds Bob (device 2): both at epoch 1,
/// and the server's state of epoch 1.
fn alice_and_bob() -> (MlsState, MlsState, PublicState) {
    let (alice, bob) = (device("alice", 1), device("bob", 2));
    let state = created(&alice);
    let add = alice.add_members(GROUP, &[key_package(&bob)]).expect("add bob");
    let checked = submit(&state, &add_change(&["bob"], &[2]), &add, &alice, &[&bob]).expect("add bob");
    alice.confirm(GROUP).expect("confirm");
    bob.join_welcome(&add.welcome.expect("welcome"), &add.ratchet_tree).expect("bob joins");
    (alice, bob, checked.state)
}

fn add_change(users: &[&str], devices: &[i64]) -> Change {
    Change::Add {
        users: users.iter().map(|u| (*u).to_owned()).collect(),
        devices: devices.iter().copied().map(DeviceId).collect(),
    }
}

fn remove_change(users: &[&str]) -> Change {
    Change::Remove { users: users.iter().map(|u| (*u).to_owned()).collect() }
}

#[track_caller]
fn assert_forbidden(result: Result<Checked, RequestError>) {
    assert!(matches!(result, Err(RequestError::Forbidden(_))), "{result:?}");
}

#[test]
fn honest_add_passes_and_reports_its_devices() {
    let alice = device("alice", 1);
    let (bob, bobs_phone) = (device("bob", 2), device("bob", 3));
    let state = created(&alice);
    let outgoing = alice.add_members(GROUP, &[key_package(&bob), key_package(&bobs_phone)]).expect("add");
    let change = add_change(&["bob"], &[3, 2]);
    let checked = submit(&state, &change, &outgoing, &alice, &[&bobs_phone, &bob]).expect("an honest add");
    assert_eq!(checked.epoch, 1);
    assert_eq!(checked.members.len(), 3);
    let upper = add_change(&["BOB"], &[2, 3]);
    submit(&state, &upper, &outgoing, &alice, &[&bob, &bobs_phone]).expect("usernames are case-insensitive");
}

#[test]
fn add_of_other_devices_than_declared_is_refused() {
    let alice = device("alice", 1);
    let (bob, carol, impostor) = (device("bob", 2), device("carol", 3), device("carol", 3));
    let state = created(&alice);
    let outgoing = alice.add_members(GROUP, &[key_package(&bob), key_package(&carol)]).expect("add");
    submit(&state, &add_change(&["bob", "carol"], &[2, 3]), &outgoing, &alice, &[&bob, &carol])
        .expect("honest");
    // Carol is added but not declared (so policy never saw her).
    assert_forbidden(submit(&state, &add_change(&["bob"], &[2]), &outgoing, &alice, &[&bob]));
    // Carol's leaf carries another signature key than the one bound to device 3.
    assert_forbidden(submit(
        &state,
        &add_change(&["bob", "carol"], &[2, 3]),
        &outgoing,
        &alice,
        &[&bob, &impostor],
    ));
    // A device declared that the commit does not add.
    let dave = device("dave", 4);
    assert_forbidden(submit(
        &state,
        &add_change(&["bob", "carol", "dave"], &[2, 3, 4]),
        &outgoing,
        &alice,
        &[&bob, &carol, &dave],
    ));
}

#[test]
fn another_change_declared_than_the_commit_makes_is_refused() {
    let (alice, _bob, state) = alice_and_bob();
    let carol = device("carol", 3);
    let adding = alice.add_members(GROUP, &[key_package(&carol)]).expect("add");
    assert_forbidden(submit(&state, &Change::Update {}, &adding, &alice, &[]));
    assert_forbidden(submit(&state, &remove_change(&["carol"]), &adding, &alice, &[]));
    assert_forbidden(submit(&state, &Change::Join {}, &adding, &alice, &[]));
    alice.discard(GROUP).expect("discard");

    let removing = alice.remove_members(GROUP, &[Identity::new("bob", 2)]).expect("remove");
    assert_forbidden(submit(&state, &Change::Update {}, &removing, &alice, &[]));
}

#[test]
fn a_remove_declared_for_one_user_that_removes_another_is_refused() {
    let (alice, _bob, state) = alice_and_bob();
    let carol = device("carol", 3);
    let adding = alice.add_members(GROUP, &[key_package(&carol)]).expect("add carol");
    let state = submit(&state, &add_change(&["carol"], &[3]), &adding, &alice, &[&carol]).expect("add").state;
    alice.confirm(GROUP).expect("confirm");
    // Declared as removing carol (say, a user who left: any member may), the
    // commit really removes bob.
    let removing = alice.remove_members(GROUP, &[Identity::new("bob", 2)]).expect("remove bob");
    assert_forbidden(submit(&state, &remove_change(&["carol"]), &removing, &alice, &[]));
    submit(&state, &remove_change(&["bob"]), &removing, &alice, &[]).expect("the honest declaration");
}

#[test]
fn a_remove_must_take_every_device_of_the_users_named() {
    let (alice, _bob, state) = alice_and_bob();
    let (carol, carols_phone) = (device("carol", 3), device("carol", 4));
    let adding = alice.add_members(GROUP, &[key_package(&carol), key_package(&carols_phone)]).expect("add");
    let state = submit(&state, &add_change(&["carol"], &[3, 4]), &adding, &alice, &[&carol, &carols_phone])
        .expect("add carol")
        .state;
    alice.confirm(GROUP).expect("confirm");
    let one = alice.remove_members(GROUP, &[Identity::new("carol", 3)]).expect("remove one");
    assert_forbidden(submit(&state, &remove_change(&["carol"]), &one, &alice, &[]));
    alice.discard(GROUP).expect("discard");
    let both = [Identity::new("carol", 3), Identity::new("carol", 4)];
    let outgoing = alice.remove_members(GROUP, &both).expect("remove carol");
    let checked = submit(&state, &remove_change(&["carol"]), &outgoing, &alice, &[]).expect("both devices");
    let mut removed = checked.effects.removed_identities();
    removed.sort();
    assert_eq!(removed, both, "in any order");
}

/// A `remove_devices` (of a retired device, say) must remove exactly the
/// devices it names, with the keys the server bound to them: declaring carol's
/// retired phone while removing her laptop, or removing more, is refused.
#[test]
fn a_device_removal_must_remove_exactly_the_devices_named() {
    let (alice, _bob, state) = alice_and_bob();
    let (carol, carols_phone) = (device("carol", 3), device("carol", 4));
    let adding = alice.add_members(GROUP, &[key_package(&carol), key_package(&carols_phone)]).expect("add");
    let state = submit(&state, &add_change(&["carol"], &[3, 4]), &adding, &alice, &[&carol, &carols_phone])
        .expect("add carol")
        .state;
    alice.confirm(GROUP).expect("confirm");
    let phone_only = Change::RemoveDevices { devices: vec![DeviceId(4)] };
    let laptop = alice.remove_members(GROUP, &[Identity::new("carol", 3)]).expect("remove the laptop");
    assert_forbidden(submit(&state, &phone_only, &laptop, &alice, &[&carols_phone]));
    alice.discard(GROUP).expect("discard");
    let both = alice
        .remove_members(GROUP, &[Identity::new("carol", 4), Identity::new("bob", 2)])
        .expect("remove two");
    assert_forbidden(submit(&state, &phone_only, &both, &alice, &[&carols_phone]));
    alice.discard(GROUP).expect("discard");
    let phone = alice.remove_members(GROUP, &[Identity::new("carol", 4)]).expect("remove the phone");
    let impostor = device("carol", 4);
    assert_forbidden(submit(&state, &phone_only, &phone, &alice, &[&impostor]));
    let checked = submit(&state, &phone_only, &phone, &alice, &[&carols_phone]).expect("the honest removal");
    assert_eq!(checked.members.len(), 3, "alice, bob and carol's laptop stay");
}

#[test]
fn honest_update_passes_only_for_its_committer() {
    let (alice, bob, state) = alice_and_bob();
    let outgoing = bob.self_update(GROUP).expect("update");
    submit(&state, &Change::Update {}, &outgoing, &bob, &[]).expect("an honest update");
    assert_forbidden(submit(&state, &Change::Update {}, &outgoing, &alice, &[]));
    let bob_elsewhere = device("bob", 7);
    assert_forbidden(submit(&state, &Change::Update {}, &outgoing, &bob_elsewhere, &[]));
}

#[test]
fn honest_join_passes_and_only_for_the_joiner() {
    let (alice, _bob, state) = alice_and_bob();
    let GroupState { group_info, ratchet_tree, epoch } = alice.group_state(GROUP).expect("state");
    let carol = device("carol", 3);
    let join = carol.external_join(&group_info, &ratchet_tree).expect("join");
    assert_eq!(join.epoch, epoch);
    let checked = submit(&state, &Change::Join {}, &join, &carol, &[]).expect("an honest join");
    assert!(checked.effects.external);
    assert_forbidden(submit(&state, &Change::Join {}, &join, &device("dave", 4), &[]));
    assert_forbidden(submit(&state, &Change::Join {}, &join, &alice, &[]));
    assert_forbidden(submit(&state, &Change::Update {}, &join, &carol, &[]));
    assert_forbidden(submit(&state, &add_change(&["carol"], &[3]), &join, &carol, &[&carol]));
}

#[test]
fn a_commit_replayed_into_another_group_is_an_invalid_commit() {
    let (_alice, _bob, state) = alice_and_bob();
    let (info, tree) = {
        let owner = device("zed", 9);
        let GroupState { group_info, ratchet_tree, .. } = owner.create_group(OTHER_GROUP).expect("other");
        (group_info, ratchet_tree)
    };
    let eve = device("eve", 5);
    let join = eve.external_join(&info, &tree).expect("join the other group");
    let result = submit(&state, &Change::Join {}, &join, &eve, &[]);
    assert!(matches!(result, Err(RequestError::Commit(MlsError::WrongGroup))), "{result:?}");
}

#[test]
fn garbage_and_non_commits_are_invalid_commits() {
    let (alice, _bob, state) = alice_and_bob();
    let message = alice.encrypt(GROUP, b"hello").expect("application message");
    for bytes in [&b"garbage"[..], &[0u8; 64], &message] {
        let outgoing = Outgoing {
            group_id: GROUP.to_vec(),
            commit: bytes.to_vec(),
            welcome: None,
            group_info: Vec::new(),
            ratchet_tree: Vec::new(),
            epoch: 1,
            added: Vec::new(),
            removed: Vec::new(),
        };
        let result = submit(&state, &Change::Update {}, &outgoing, &alice, &[]);
        assert!(matches!(result, Err(RequestError::Commit(MlsError::Malformed { .. }))), "{result:?}");
    }
    let mut outgoing = alice.self_update(GROUP).expect("update");
    outgoing.group_info = b"GARBAGE-GROUPINFO".to_vec();
    let result = submit(&state, &Change::Update {}, &outgoing, &alice, &[]);
    assert!(
        matches!(result, Err(RequestError::Commit(MlsError::Malformed { what: "GroupInfo" }))),
        "{result:?}"
    );
}

#[test]
fn a_commit_of_a_past_epoch_is_stale() {
    let (alice, _bob, state) = alice_and_bob();
    let first = alice.self_update(GROUP).expect("update");
    let next = submit(&state, &Change::Update {}, &first, &alice, &[]).expect("first").state;
    let result = submit(&next, &Change::Update {}, &first, &alice, &[]);
    assert!(matches!(result, Err(RequestError::StaleEpoch)), "{result:?}");
}

#[test]
fn a_creation_must_be_the_callers_one_member_group() {
    let alice = device("alice", 1);
    let GroupState { group_info, ratchet_tree, .. } = alice.create_group(GROUP).expect("create");
    let creation =
        Handshake { commit: &[], group_info: &group_info, ratchet_tree: &ratchet_tree, welcome: None };
    assert_forbidden(check(GROUP, None, &Change::Create {}, &creation, &bound(&device("mallory", 6)), &[]));
    let result = check(OTHER_GROUP, None, &Change::Create {}, &creation, &bound(&alice), &[]);
    assert!(matches!(result, Err(RequestError::Commit(MlsError::WrongGroup))), "{result:?}");
    let garbage = Handshake { group_info: b"GARBAGE-GROUPINFO", ..creation };
    let result = check(GROUP, None, &Change::Create {}, &garbage, &bound(&alice), &[]);
    assert!(matches!(result, Err(RequestError::Commit(MlsError::Malformed { .. }))), "{result:?}");
}
