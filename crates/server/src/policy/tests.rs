use super::*;
use Membership::{Left, Member, Outsider, Owner};
use RoomKind::{Direct, Lobby, Private, Public};
use conclave_proto::DeviceId;

fn facts(kind: RoomKind, epoch: Option<u64>, caller: Membership, targets: &[Membership]) -> CommitFacts {
    CommitFacts {
        room: RoomFacts { kind, epoch },
        caller,
        device_in_group: caller.is_member(),
        targets: targets.to_vec(),
        devices_retired: Vec::new(),
        targets_are_participants: true,
    }
}

fn add() -> Change {
    Change::Add { users: vec!["x".into()], devices: vec![] }
}

fn remove() -> Change {
    Change::Remove { users: vec!["x".into()] }
}

const FORBIDDEN: fn(Result<(), Refusal>) -> bool = |r| matches!(r, Err(Refusal::Forbidden(_)));
const HIDDEN: Result<(), Refusal> = Err(Refusal::Hidden);

#[test]
fn the_lobby_is_created_by_its_first_joiner_and_only_once() {
    assert_eq!(commit(&facts(Lobby, None, Outsider, &[]), &Change::Create {}, 0), Ok(()));
    assert_eq!(
        commit(&facts(Lobby, Some(0), Outsider, &[]), &Change::Create {}, 0),
        Err(Refusal::StaleEpoch)
    );
    assert_eq!(commit(&facts(Lobby, Some(0), Outsider, &[]), &Change::Join {}, 0), Ok(()));
    assert_eq!(commit(&facts(Lobby, None, Outsider, &[]), &Change::Join {}, 0), Err(Refusal::StaleEpoch));
}

/// A new room's only member is its owner; a room whose group an operator reset
/// may be re-created by any of its members, so it does not wait for the owner.
#[test]
fn only_members_create_their_rooms_groups() {
    for kind in [Public, Private] {
        assert_eq!(commit(&facts(kind, None, Owner, &[]), &Change::Create {}, 0), Ok(()));
        assert_eq!(commit(&facts(kind, None, Member, &[]), &Change::Create {}, 0), Ok(()));
    }
    assert!(FORBIDDEN(commit(&facts(Public, None, Outsider, &[]), &Change::Create {}, 0)));
    assert!(FORBIDDEN(commit(&facts(Public, None, Left, &[]), &Change::Create {}, 0)));
    assert_eq!(commit(&facts(Private, None, Outsider, &[]), &Change::Create {}, 0), HIDDEN);
    assert_eq!(commit(&facts(Private, None, Left, &[]), &Change::Create {}, 0), HIDDEN);
    assert_eq!(commit(&facts(Direct, None, Member, &[]), &Change::Create {}, 0), Ok(()));
    assert_eq!(commit(&facts(Direct, None, Left, &[]), &Change::Create {}, 0), HIDDEN);
}

#[test]
fn anyone_joins_public_rooms_only_members_join_private_ones() {
    assert_eq!(commit(&facts(Public, Some(3), Outsider, &[]), &Change::Join {}, 3), Ok(()));
    assert_eq!(commit(&facts(Public, Some(3), Left, &[]), &Change::Join {}, 3), Ok(()));
    for kind in [Private, Direct] {
        assert_eq!(commit(&facts(kind, Some(3), Outsider, &[]), &Change::Join {}, 3), HIDDEN);
        assert_eq!(commit(&facts(kind, Some(3), Left, &[]), &Change::Join {}, 3), HIDDEN);
        assert_eq!(commit(&facts(kind, Some(3), Member, &[]), &Change::Join {}, 3), Ok(()));
    }
}

#[test]
fn a_commit_for_another_epoch_is_stale_but_permission_comes_first() {
    assert_eq!(commit(&facts(Public, Some(3), Member, &[]), &Change::Update {}, 2), Err(Refusal::StaleEpoch));
    assert_eq!(commit(&facts(Public, Some(3), Member, &[]), &Change::Update {}, 4), Err(Refusal::StaleEpoch));
    assert_eq!(commit(&facts(Private, Some(3), Outsider, &[]), &Change::Update {}, 2), HIDDEN);
    assert!(FORBIDDEN(commit(&facts(Public, Some(3), Outsider, &[]), &Change::Update {}, 2)));
}

#[test]
fn only_owners_add_to_private_and_direct_rooms() {
    assert_eq!(commit(&facts(Public, Some(1), Member, &[Outsider]), &add(), 1), Ok(()));
    assert_eq!(commit(&facts(Lobby, Some(1), Member, &[Outsider]), &add(), 1), Ok(()));
    assert!(FORBIDDEN(commit(&facts(Public, Some(1), Outsider, &[Outsider]), &add(), 1)));
    assert_eq!(commit(&facts(Private, Some(1), Owner, &[Outsider]), &add(), 1), Ok(()));
    assert!(FORBIDDEN(commit(&facts(Private, Some(1), Member, &[Outsider]), &add(), 1)));
    assert_eq!(commit(&facts(Direct, Some(1), Owner, &[Member]), &add(), 1), Ok(()));
    assert!(FORBIDDEN(commit(&facts(Direct, Some(1), Member, &[Member]), &add(), 1)));
    let mut third_party = facts(Direct, Some(1), Owner, &[Outsider]);
    third_party.targets_are_participants = false;
    assert!(FORBIDDEN(commit(&third_party, &add(), 1)));
}

#[test]
fn changes_need_a_device_in_the_group() {
    let mut outside = facts(Public, Some(1), Member, &[]);
    outside.device_in_group = false;
    assert!(FORBIDDEN(commit(&outside, &Change::Update {}, 1)));
    assert!(FORBIDDEN(commit(&outside, &add(), 1)));
    // Joining is how a device gets in.
    assert_eq!(commit(&outside, &Change::Join {}, 1), Ok(()));
}

#[test]
fn owners_remove_members_anyone_removes_leavers_nobody_removes_the_owner() {
    for kind in [Public, Private, Direct] {
        assert_eq!(commit(&facts(kind, Some(1), Owner, &[Member]), &remove(), 1), Ok(()));
        assert!(FORBIDDEN(commit(&facts(kind, Some(1), Member, &[Member]), &remove(), 1)));
        assert_eq!(commit(&facts(kind, Some(1), Member, &[Left]), &remove(), 1), Ok(()));
        assert!(FORBIDDEN(commit(&facts(kind, Some(1), Member, &[Owner]), &remove(), 1)));
        assert!(FORBIDDEN(commit(&facts(kind, Some(1), Owner, &[Owner]), &remove(), 1)));
        assert!(FORBIDDEN(commit(&facts(kind, Some(1), Owner, &[Outsider]), &remove(), 1)));
    }
    assert!(FORBIDDEN(commit(&facts(Lobby, Some(1), Member, &[Member]), &remove(), 1)));
    assert_eq!(commit(&facts(Lobby, Some(1), Member, &[Left]), &remove(), 1), Ok(()));
    assert!(FORBIDDEN(commit(&facts(Public, Some(1), Owner, &[Left, Owner]), &remove(), 1)));
}

#[test]
fn reading_deleting_and_leaving() {
    assert!(may_inspect(Public, Outsider).is_ok() && may_inspect(Lobby, Left).is_ok());
    assert_eq!(may_inspect(Private, Outsider), HIDDEN);
    assert_eq!(may_inspect(Direct, Left), HIDDEN);
    assert!(may_inspect(Private, Member).is_ok());

    assert!(may_use(Private, Member, true).is_ok());
    assert!(FORBIDDEN(may_use(Private, Member, false)));
    assert!(FORBIDDEN(may_use(Public, Left, true)));
    assert_eq!(may_use(Private, Left, true), HIDDEN);
    assert_eq!(may_use(Direct, Outsider, false), HIDDEN);

    let (me, other) = (UserId(1), UserId(2));
    assert!(may_delete(me, Member, me, Some(other)).is_ok());
    assert!(may_delete(me, Owner, other, Some(me)).is_ok());
    assert!(FORBIDDEN(may_delete(me, Member, other, Some(other))));
    assert_eq!(may_delete(me, Left, me, None), HIDDEN, "non-members learn nothing of message ids");
    assert_eq!(may_delete(me, Outsider, other, None), HIDDEN);

    assert!(FORBIDDEN(may_leave(Lobby, Member)));
    assert!(may_leave(Public, Member).is_ok());
    assert!(FORBIDDEN(may_leave(Public, Outsider)));
    assert!(FORBIDDEN(may_leave(Private, Owner)));
    assert!(may_leave(Direct, Owner).is_ok());
    assert_eq!(may_leave(Private, Left), HIDDEN);
}

/// Outsiders of a private or direct room are refused every change with the
/// answer for a room that does not exist; in public rooms and the lobby they
/// are told the rule.
#[test]
fn outsiders_learn_nothing_of_private_and_direct_rooms() {
    for kind in [Private, Direct] {
        for caller in [Outsider, Left] {
            for change in [Change::Create {}, Change::Join {}, add(), remove(), Change::Update {}] {
                assert_eq!(
                    commit(&facts(kind, Some(1), caller, &[Member]), &change, 1),
                    HIDDEN,
                    "{change:?}"
                );
            }
        }
    }
    for kind in [Public, Lobby] {
        assert!(FORBIDDEN(commit(&facts(kind, Some(1), Outsider, &[Member]), &Change::Update {}, 1)));
    }
}

/// Retired devices are removed on their own by anyone in the group; active
/// ones are not, and no add may bring a retired device back.
#[test]
fn anyone_in_the_group_removes_retired_devices_and_nobody_adds_them() {
    let remove = Change::RemoveDevices { devices: vec![DeviceId(7), DeviceId(8)] };
    for kind in [Lobby, Public, Private, Direct] {
        let mut retired = facts(kind, Some(2), Member, &[]);
        retired.devices_retired = vec![true, true];
        assert_eq!(commit(&retired, &remove, 2), Ok(()));
        let mut active = retired.clone();
        active.devices_retired = vec![true, false];
        assert!(FORBIDDEN(commit(&active, &remove, 2)));
        let mut outside = retired.clone();
        outside.device_in_group = false;
        assert!(FORBIDDEN(commit(&outside, &remove, 2)));
    }
    let mut add_retired = facts(Public, Some(2), Member, &[Outsider]);
    add_retired.devices_retired = vec![false, true];
    assert!(FORBIDDEN(commit(&add_retired, &add(), 2)));
}
