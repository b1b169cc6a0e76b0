//! Room policy: who may do what in which kind of room.
//!
//! Pure functions over facts. The store reads those facts inside the transaction
//! that carries the action out, after taking the room's row lock, so a decision
//! and the change it permits see the same state (a user removed a moment ago
//! cannot slip one more message in).
//!
//! Policy is decided on the *declared* [`Change`] of a commit;
//! [`crate::handshake`] holds the commit's MLS content to that declaration (and
//! every member's client checks the same again).
//!
//! | action | lobby | public | private | direct |
//! |---|---|---|---|---|
//! | `create` (epoch none → 0) | anyone | members | members | a participant |
//! | `join` (own device) | anyone | anyone | members | participants |
//! | `add` | members | members | owner | owner, participants only |
//! | `remove` a member | nobody | owner | owner | owner |
//! | `remove` a user who left | any member | any member | any member | any member |
//! | `update` | members | members | members | members |
//! | `group_info`, `members` | anyone | anyone | members | members |
//! | `send`, `fetch` | member devices in the group | ← | ← | ← |
//! | `delete` | sender or owner | ← | ← | ← |
//! | `leave` | refused | members but the owner | members but the owner | participants |
//!
//! The owner is never removed. Commits other than `create` and `join` must come
//! from a device that is in the group.
//!
//! **Who may know a room exists.** Everyone may know of the lobby and public
//! rooms (they are listed); only current members may know of a private or
//! direct room. Whoever may not know of a room is refused with
//! [`Refusal::Hidden`], which the peer is told exactly as "no such room", so
//! no request by id tells an outsider whether the room exists. A refusal the
//! caller may understand (a member lacking a permission, anyone in a public
//! room) is [`Refusal::Forbidden`] and names its rule. Message ids are hidden
//! from every non-member: `delete` by one answers "no such message" whether
//! the message exists or not.

use conclave_proto::{Change, RoomKind, UserId};

/// A user's standing in one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Membership {
    /// Never a member.
    Outsider,
    /// A member.
    Member,
    /// The member who owns the room.
    Owner,
    /// Was a member; left or was removed.
    Left,
}

impl Membership {
    /// From a `room_members` row: its role and whether it has `left_at`.
    pub(crate) fn from_row(row: Option<(&str, bool)>) -> Self {
        match row {
            None => Self::Outsider,
            Some((_, true)) => Self::Left,
            Some(("owner", false)) => Self::Owner,
            Some(_) => Self::Member,
        }
    }

    /// A member now (owner included).
    pub(crate) fn is_member(self) -> bool {
        matches!(self, Self::Member | Self::Owner)
    }
}

/// What a room is, as policy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoomFacts {
    pub kind: RoomKind,
    /// Current MLS epoch; `None` until the group is created.
    pub epoch: Option<u64>,
}

/// Everything a commit decision depends on.
#[derive(Debug, Clone)]
pub(crate) struct CommitFacts {
    pub room: RoomFacts,
    pub caller: Membership,
    /// The committing device is a leaf of the group.
    pub device_in_group: bool,
    /// For `add` and `remove`: each named user's standing, in declared order.
    pub targets: Vec<Membership>,
    /// For `add` and `remove_devices`: whether each named device is retired
    /// (an unknown device counts as retired), in declared order.
    pub devices_retired: Vec<bool>,
    /// For direct rooms: whether each target is one of the two participants.
    pub targets_are_participants: bool,
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The caller may not know that the room (or the message) exists: answered
    /// exactly as if it did not.
    Hidden,
    /// Room policy forbids it; the text says which rule.
    Forbidden(&'static str),
    /// The commit was made for an epoch that is not the room's current one.
    StaleEpoch,
}

/// May this commit, made in `epoch`, be accepted?
///
/// # Errors
/// The rule that refuses it. Permission is decided before the epoch, so a user
/// without permission learns nothing about the group's state.
pub(crate) fn commit(facts: &CommitFacts, change: &Change, epoch: u64) -> Result<(), Refusal> {
    use Membership::{Left, Member, Outsider, Owner};
    use Refusal::Forbidden;
    use RoomKind::{Direct, Lobby, Private, Public};
    let kind = facts.room.kind;
    let caller = facts.caller;
    if !may_see(kind, caller) {
        return Err(Refusal::Hidden);
    }
    let in_group = || {
        if !caller.is_member() {
            Err(Forbidden("only members may change the group"))
        } else if !facts.device_in_group {
            Err(Forbidden("this device is not in the group: join it first"))
        } else {
            Ok(())
        }
    };
    match change {
        Change::Create {} => {
            // A new room's only member is its owner; after an operator reset
            // the group, any member re-creates it (the others then join).
            let allowed = match kind {
                Lobby => true,
                Public | Private | Direct => caller.is_member(),
            };
            if !allowed {
                return Err(Forbidden("only members create the room's group"));
            }
            return if facts.room.epoch.is_none() { Ok(()) } else { Err(Refusal::StaleEpoch) };
        }
        Change::Join {} => {
            if matches!(kind, Private | Direct) && !caller.is_member() {
                return Err(Forbidden("only members may join this room"));
            }
        }
        Change::Add { .. } => {
            in_group()?;
            if facts.devices_retired.iter().any(|retired| *retired) {
                return Err(Forbidden("a device added was retired: claim KeyPackages again"));
            }
            match kind {
                Lobby | Public => {}
                Private | Direct if caller != Owner => {
                    return Err(Forbidden("only the owner adds people to this room"));
                }
                Private => {}
                Direct if !facts.targets_are_participants => {
                    return Err(Forbidden("a direct conversation has only its two participants"));
                }
                Direct => {}
            }
        }
        Change::Remove { .. } => {
            in_group()?;
            for target in &facts.targets {
                match target {
                    Owner => return Err(Forbidden("the owner cannot be removed")),
                    Outsider => return Err(Forbidden("only members can be removed")),
                    Left => {}
                    Member if caller == Owner => {}
                    Member => return Err(Forbidden("only the owner removes members")),
                }
            }
        }
        Change::RemoveDevices { .. } => {
            // A retired device can never be used again: anyone in the group
            // removes it, as a leaver. Active devices leave only with their user.
            in_group()?;
            if !facts.devices_retired.iter().all(|retired| *retired) {
                return Err(Forbidden("only retired devices are removed on their own"));
            }
        }
        Change::Update {} => in_group()?,
    }
    if facts.room.epoch == Some(epoch) { Ok(()) } else { Err(Refusal::StaleEpoch) }
}

/// May a user with this standing know that the room exists? The lobby and
/// public rooms are listed to everyone; private and direct rooms are known to
/// their current members only.
pub(crate) fn may_see(kind: RoomKind, caller: Membership) -> bool {
    matches!(kind, RoomKind::Lobby | RoomKind::Public) || caller.is_member()
}

/// May a user with this standing read the room's GroupInfo and member list?
/// Whoever may know of the room may (an external join needs the GroupInfo).
///
/// # Errors
/// [`Refusal::Hidden`] for whoever may not know of the room.
pub(crate) fn may_inspect(kind: RoomKind, caller: Membership) -> Result<(), Refusal> {
    if may_see(kind, caller) { Ok(()) } else { Err(Refusal::Hidden) }
}

/// May this device send to, or read the log of, the room?
///
/// # Errors
/// Why not: [`Refusal::Hidden`] for whoever may not know of the room.
pub(crate) fn may_use(kind: RoomKind, caller: Membership, device_in_group: bool) -> Result<(), Refusal> {
    if !may_see(kind, caller) {
        Err(Refusal::Hidden)
    } else if !caller.is_member() {
        Err(Refusal::Forbidden("you are not a member of this room"))
    } else if !device_in_group {
        Err(Refusal::Forbidden("this device is not in the room's group: join it first"))
    } else {
        Ok(())
    }
}

/// May `caller` delete a message sent by `sender` in a room owned by `owner`?
///
/// # Errors
/// Why not: [`Refusal::Hidden`] for a non-member, whatever the room, so that
/// only members learn which sequence numbers are messages.
pub(crate) fn may_delete(
    caller: UserId,
    standing: Membership,
    sender: UserId,
    owner: Option<UserId>,
) -> Result<(), Refusal> {
    if !standing.is_member() {
        Err(Refusal::Hidden)
    } else if caller == sender || owner == Some(caller) {
        Ok(())
    } else {
        Err(Refusal::Forbidden("only the sender or the room's owner may delete a message"))
    }
}

/// May a user with this standing leave the room?
///
/// # Errors
/// Why not.
pub(crate) fn may_leave(kind: RoomKind, caller: Membership) -> Result<(), Refusal> {
    if !may_see(kind, caller) {
        return Err(Refusal::Hidden);
    }
    match (kind, caller) {
        (RoomKind::Lobby, _) => Err(Refusal::Forbidden("nobody leaves the lobby")),
        (_, Membership::Outsider | Membership::Left) => {
            Err(Refusal::Forbidden("you are not a member of this room"))
        }
        (RoomKind::Public | RoomKind::Private, Membership::Owner) => {
            Err(Refusal::Forbidden("the owner cannot leave the room they own"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
