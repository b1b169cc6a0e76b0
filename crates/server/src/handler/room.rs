//! Rooms and their MLS groups: creation, lookup, membership, and the commits
//! that move a group from one epoch to the next.
//!
//! The rules are in [`crate::policy`]; the store applies them inside the
//! transaction that carries the action out.

use super::{Caller, Ctx};
use crate::{
    audit::AuditAction,
    clock,
    error::{NO_SUCH_ROOM, RequestError},
    fanout::{self, Delta},
    handshake::{BoundDevice, Job},
    policy,
    quota::Quota,
    store::{NewCommit, NewRoom, RoomRecord},
};
use conclave_mls::PublicState;
use conclave_proto::{
    Bytes, Change, DeviceId, EntryBody, Event, LogEntry, MemberInfo, Reply, RoomId, RoomInfo, RoomKind,
    UserId, WelcomeInfo, limits::MAX_CHANGE_USERS, validate,
};
use serde_json::json;

/// A room as `viewer` sees it on the wire: a direct room is named after the
/// other participant.
pub(crate) fn room_info(room: &RoomRecord, viewer: UserId) -> RoomInfo {
    let name = match &room.participants {
        Some(pair) if room.kind == RoomKind::Direct => {
            let other = pair.iter().find(|(id, _)| *id != viewer).unwrap_or(&pair[0]);
            format!("@{}", other.1)
        }
        _ => room.name.clone(),
    };
    RoomInfo {
        id: room.id,
        name,
        kind: room.kind,
        owner: room.owner.as_ref().map(|(_, name)| name.clone()),
        member: room.viewer.is_member(),
        group_id: Bytes(room.group_id.clone()),
        epoch: room.epoch,
        last_seq: room.last_seq,
    }
}

fn new_group_id() -> [u8; 16] {
    rand::random()
}

async fn load(ctx: &Ctx<'_>, me: &Caller<'_>, room: RoomId) -> Result<RoomRecord, RequestError> {
    ctx.shared.store.room(me.user.id, room).await?.ok_or(RequestError::NotFound(NO_SUCH_ROOM))
}

/// # `create_room`
///
/// Creates a public or private room owned by the caller. The caller then
/// creates its MLS group with a `create` commit. Public names are unique among
/// public rooms; private names only among the owner's own private rooms (the
/// naming model is in the `rooms` store module), so the answer never tells of
/// anyone else's private room. Bounded per account: rooms owned, and rooms
/// created a minute.
pub(crate) async fn create_room(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    name: &str,
    public: bool,
) -> Result<Reply, RequestError> {
    if !validate::is_room_name(name) {
        return Err(RequestError::InvalidName);
    }
    let kind = if public { RoomKind::Public } else { RoomKind::Private };
    let shared = ctx.shared;
    shared.quotas.create_room(me.user.id)?;
    let max = shared.quotas.totals.rooms;
    let created =
        shared.store.create_room(name, kind, me.user.id, &new_group_id(), clock::now_secs(), max).await?;
    let id = match created {
        NewRoom::Created(id) => id,
        NewRoom::NameTaken => return Err(RequestError::NameTaken),
        NewRoom::AtQuota => return Err(shared.quotas.exceeded(Quota::Rooms(max))),
    };
    ctx.audit(
        Some(&me.user.username),
        AuditAction::RoomCreated,
        json!({ "room": id.0, "kind": crate::store::kind_name(kind) }),
    )
    .await?;
    Ok(Reply::Room { room: room_info(&load(ctx, me, id).await?, me.user.id) })
}

/// # `open_direct`
///
/// Finds or creates the direct conversation with another user; both are its
/// members from now on (one who had left is a member again).
pub(crate) async fn open_direct(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    username: &str,
) -> Result<Reply, RequestError> {
    let username = validate::normalize_username(username)?;
    let store = &ctx.shared.store;
    let other = store.user_id(&username).await?.ok_or(RequestError::NotFound("no such user"))?;
    if other == me.user.id {
        return Err(RequestError::Invalid("a direct conversation needs another user"));
    }
    // Opening one that exists creates nothing, so it is not counted.
    if store.direct_room(me.user.id, other).await?.is_none() {
        ctx.shared.quotas.create_room(me.user.id)?;
    }
    let (id, created) = store.open_direct(me.user.id, other, &new_group_id(), clock::now_secs()).await?;
    if created {
        ctx.audit(
            Some(&me.user.username),
            AuditAction::RoomCreated,
            json!({ "room": id.0, "kind": "direct", "with": username }),
        )
        .await?;
    }
    Ok(Reply::Room { room: room_info(&load(ctx, me, id).await?, me.user.id) })
}

/// # `find_room`
///
/// `lobby`, a room name, `owner/name`, or `@user` for the direct conversation
/// with that user. A private room is found only by its members; a bare name
/// shared by several rooms the caller may see means the one the caller is in
/// (their own first), then the public one (see the `rooms` store module).
pub(crate) async fn find_room(ctx: &Ctx<'_>, me: &Caller<'_>, name: &str) -> Result<Reply, RequestError> {
    let store = &ctx.shared.store;
    let found = if let Some(username) = name.strip_prefix('@') {
        let username = validate::normalize_username(username)?;
        match store.user_id(&username).await? {
            Some(other) => store.direct_room(me.user.id, other).await?,
            None => None,
        }
    } else if let Some((owner, name)) = name.split_once('/') {
        let owner = validate::normalize_username(owner)?;
        if !validate::is_room_name(name) {
            return Err(RequestError::InvalidName);
        }
        match store.user_id(&owner).await? {
            Some(owner) => store.owned_room_by_name(me.user.id, owner, name).await?,
            None => None,
        }
    } else if validate::is_room_name(name) {
        store.room_by_name(me.user.id, name).await?
    } else {
        return Err(RequestError::InvalidName);
    };
    let room = found.ok_or(RequestError::NotFound(NO_SUCH_ROOM))?;
    Ok(Reply::Room { room: room_info(&room, me.user.id) })
}

/// # `list_rooms`
///
/// The rooms the caller is a member of, then the lobby and public rooms they
/// are not in.
pub(crate) async fn list_rooms(ctx: &Ctx<'_>, me: &Caller<'_>) -> Result<Reply, RequestError> {
    let rooms = ctx.shared.store.rooms_for(me.user.id).await?;
    Ok(Reply::Rooms { rooms: rooms.iter().map(|room| room_info(room, me.user.id)).collect() })
}

/// # `group_info`
///
/// The latest GroupInfo and ratchet tree, for an external join: anyone may read
/// them for the lobby and public rooms, only members for private and direct
/// rooms (to anyone else such a room does not exist).
pub(crate) async fn group_info(ctx: &Ctx<'_>, me: &Caller<'_>, room: RoomId) -> Result<Reply, RequestError> {
    let record = load(ctx, me, room).await?;
    policy::may_inspect(record.kind, record.viewer)?;
    let state = ctx.shared.store.group_state(room).await?.ok_or(RequestError::NotFound(NO_SUCH_ROOM))?;
    if state.epoch.is_some() && state.public_group.is_none() {
        // Stored before the server checked commits: served only once verified.
        adopt_stored(ctx, room, &state).await?;
    }
    Ok(Reply::GroupInfo {
        room,
        epoch: state.epoch,
        group_info: state.group_info.map(Bytes),
        ratchet_tree: state.ratchet_tree.map(Bytes),
    })
}

/// # `members`
///
/// The current members and their devices in the group; as visible as
/// `group_info`.
pub(crate) async fn members(ctx: &Ctx<'_>, me: &Caller<'_>, room: RoomId) -> Result<Reply, RequestError> {
    let record = load(ctx, me, room).await?;
    policy::may_inspect(record.kind, record.viewer)?;
    let members = ctx.shared.store.members(room).await?;
    Ok(Reply::Members {
        members: members
            .into_iter()
            .map(|m| MemberInfo { username: m.username, owner: m.owner, devices: m.devices })
            .collect(),
    })
}

/// # `leave`
///
/// Leaves a room (never the lobby; an owner cannot leave their own group). The
/// caller stops being a member at once — no more entries, fetches or sends —
/// and a `left` entry tells the others, whose next commit removes the leaver's
/// devices from the MLS group.
pub(crate) async fn leave(ctx: &Ctx<'_>, me: &Caller<'_>, room: RoomId) -> Result<Reply, RequestError> {
    let shared = ctx.shared;
    let at_ms = clock::now_ms();
    let turn = shared.fanout.turn(room).await;
    let appended = shared.store.leave_room(room, me.user.id, me.device, at_ms, policy::may_leave).await?;
    let entry = LogEntry {
        seq: appended.seq,
        at_ms,
        sender: me.user.username.clone(),
        device: me.device,
        body: EntryBody::Left { user: me.user.username.clone() },
    };
    let delta = Delta { unsubscribe_users: &[me.user.id], ..Delta::default() };
    shared.fanout.publish(room, &fanout::encode(Event::Entry { room, entry }), delta);
    drop(turn);
    ctx.audit(
        Some(&me.user.username),
        AuditAction::RoomLeft,
        json!({ "room": room.0, "seq": appended.seq.0 }),
    )
    .await?;
    Ok(Reply::Done)
}

/// A commit as received, before validation.
pub(crate) struct CommitRequest {
    pub room: RoomId,
    pub epoch: u64,
    pub change: Change,
    pub commit: Bytes,
    pub group_info: Bytes,
    pub ratchet_tree: Bytes,
    pub welcome: Option<Bytes>,
}

/// The users named by an `add` or `remove`, and the devices an `add` adds;
/// for a `remove_devices`, the devices and their users.
struct Targets {
    users: Vec<UserId>,
    names: Vec<String>,
    devices: Vec<DeviceId>,
    /// The user of each of `devices`.
    owners: Vec<UserId>,
    /// The signature key bound to each of `devices`.
    keys: Vec<Vec<u8>>,
}

impl Targets {
    /// The devices an `add` adds or a `remove_devices` removes, as the server
    /// bound them.
    fn bound_devices(&self) -> Vec<BoundDevice> {
        self.devices
            .iter()
            .zip(&self.owners)
            .zip(&self.keys)
            .map(|((device, owner), key)| {
                let index = self.users.iter().position(|u| u == owner).unwrap_or_default();
                BoundDevice {
                    username: self.names[index].clone(),
                    device: *device,
                    signature_key: key.clone(),
                }
            })
            .collect()
    }
}

/// Checks a commit's shape and resolves the users and devices it names.
async fn targets(ctx: &Ctx<'_>, request: &CommitRequest) -> Result<Targets, RequestError> {
    use RequestError::Invalid;
    if request.group_info.0.is_empty() || request.ratchet_tree.0.is_empty() {
        return Err(Invalid("a commit carries the GroupInfo and ratchet tree after it"));
    }
    let create = matches!(request.change, Change::Create {});
    if create && (request.epoch != 0 || !request.commit.0.is_empty()) {
        return Err(Invalid("a create is made in epoch 0 and carries no commit"));
    }
    if !create && request.commit.0.is_empty() {
        return Err(Invalid("the commit is missing"));
    }
    let adds = matches!(&request.change, Change::Add { devices, .. } if !devices.is_empty());
    if adds != request.welcome.is_some() {
        return Err(Invalid("a welcome comes with an add of devices, and only then"));
    }
    if let Change::RemoveDevices { devices } = &request.change {
        return retired_targets(&ctx.shared.store, devices).await;
    }
    let (names, devices): (&[String], &[DeviceId]) = match &request.change {
        Change::Add { users, devices } => (users, devices),
        Change::Remove { users } => (users, &[]),
        Change::Create {} | Change::Join {} | Change::Update {} | Change::RemoveDevices { .. } => (&[], &[]),
    };
    let change_names = matches!(request.change, Change::Add { .. } | Change::Remove { .. });
    if change_names && !(1..=MAX_CHANGE_USERS).contains(&names.len()) {
        return Err(Invalid("an add or remove names 1 to 100 users"));
    }
    if devices.len() > MAX_CHANGE_USERS * super::device::MAX_DEVICES_PER_USER {
        return Err(Invalid("too many devices in one add"));
    }
    let store = &ctx.shared.store;
    let (users, names) = super::named_users(store, names).await?.into_iter().unzip();
    let mut resolved = Targets { users, names, devices: Vec::new(), owners: Vec::new(), keys: Vec::new() };
    for device in devices {
        let record = store.device(*device).await?.filter(|d| resolved.users.contains(&d.user));
        let Some(record) = record else {
            return Err(Invalid("a device added does not belong to a user added"));
        };
        if resolved.devices.contains(device) {
            return Err(Invalid("a device is named twice"));
        }
        resolved.devices.push(*device);
        resolved.owners.push(record.user);
        resolved.keys.push(record.signature_key);
    }
    Ok(resolved)
}

/// The devices a `remove_devices` names, with their users.
async fn retired_targets(store: &crate::store::Store, devices: &[DeviceId]) -> Result<Targets, RequestError> {
    use RequestError::Invalid;
    if !(1..=MAX_CHANGE_USERS).contains(&devices.len()) {
        return Err(Invalid("a remove_devices names 1 to 100 devices"));
    }
    let mut resolved = Targets {
        users: Vec::new(),
        names: Vec::new(),
        devices: Vec::new(),
        owners: Vec::new(),
        keys: Vec::new(),
    };
    for device in devices {
        let Some(record) = store.device(*device).await? else {
            return Err(Invalid("a device removed is not registered"));
        };
        if resolved.devices.contains(device) {
            return Err(Invalid("a device is named twice"));
        }
        if !resolved.users.contains(&record.user) {
            resolved.users.push(record.user);
            resolved.names.push(record.username);
        }
        resolved.devices.push(*device);
        resolved.owners.push(record.user);
        resolved.keys.push(record.signature_key);
    }
    Ok(resolved)
}

/// # `commit`
///
/// Accepts an MLS handshake for the room's group if room policy allows the
/// declared change and `epoch` is still the room's epoch (compare-and-set: of
/// two commits for one epoch exactly one wins; the other gets `stale_epoch` and
/// nothing of it is stored). Welcomes are stored in the same transaction and
/// pushed to the added devices only after it commits. The entry then goes to
/// every member device, in seq order.
pub(crate) async fn commit(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    request: CommitRequest,
) -> Result<Reply, RequestError> {
    let shared = ctx.shared;
    let targets = targets(ctx, &request).await?;
    let change_json =
        serde_json::to_string(&request.change).map_err(|_| RequestError::Invalid("unencodable change"))?;
    let at_ms = clock::now_ms();
    let CommitRequest { room, epoch, change, commit, group_info, ratchet_tree, welcome } = request;
    let new = NewCommit {
        room,
        user: me.user.id,
        device: me.device,
        epoch,
        change: &change,
        change_json: &change_json,
        commit: &commit.0,
        group_info: &group_info.0,
        ratchet_tree: &ratchet_tree.0,
        public_group: &[],
        welcome: welcome.as_ref().map(|w| w.0.as_slice()),
        targets: &targets.users,
        devices: &targets.devices,
        at_ms,
    };

    // Permission first, so a caller without it learns nothing of the group.
    let facts = shared.store.commit_facts(&new).await?;
    policy::commit(&facts, &change, epoch)?;
    let checked = check_handshake(ctx, me, &new, &targets).await?;
    let new =
        NewCommit { ratchet_tree: &checked.ratchet_tree, public_group: checked.state.as_bytes(), ..new };

    let turn = shared.fanout.turn(room).await;
    let appended = shared.store.append_commit(&new, |facts| policy::commit(facts, &change, epoch)).await?;
    if let Some(welcome) = &welcome {
        // Each added user sees the room from their side (a direct room is
        // named after the other participant).
        for user in &targets.users {
            let Some(record) = shared.store.room(*user, room).await? else { continue };
            let info = WelcomeInfo {
                room: room_info(&record, *user),
                seq: appended.seq,
                welcome: welcome.clone(),
                ratchet_tree: ratchet_tree.clone(),
            };
            let frame = fanout::encode(Event::Welcome { welcome: info });
            for (device, owner) in targets.devices.iter().zip(&targets.owners) {
                if owner == user {
                    shared.fanout.to_device(*device, &frame);
                }
            }
        }
    }
    let own_device = [me.device];
    let delta = match &change {
        Change::Create {} | Change::Join {} => Delta { subscribe: &own_device, ..Delta::default() },
        Change::Add { .. } => Delta { subscribe: &targets.devices, ..Delta::default() },
        Change::Remove { .. } => Delta { unsubscribe_users: &targets.users, ..Delta::default() },
        // A retired device has no connection left to unsubscribe.
        Change::RemoveDevices { .. } | Change::Update {} => Delta::default(),
    };
    let entry = LogEntry {
        seq: appended.seq,
        at_ms,
        sender: me.user.username.clone(),
        device: me.device,
        body: EntryBody::Commit { epoch, change: change.clone(), commit },
    };
    shared.fanout.publish(room, &fanout::encode(Event::Entry { room, entry }), delta);
    drop(turn);

    shared.metrics.commits.inc();
    let new_epoch = if matches!(change, Change::Create {}) { 0 } else { epoch.saturating_add(1) };
    let audited = match &change {
        Change::Create {} | Change::Join {} => {
            Some((AuditAction::RoomJoined, json!({ "device": me.device.0 })))
        }
        Change::Add { .. } => Some((
            AuditAction::MemberAdded,
            json!({ "users": targets.names, "devices": targets.devices.iter().map(|d| d.0).collect::<Vec<_>>() }),
        )),
        Change::Remove { .. } => Some((AuditAction::MemberRemoved, json!({ "users": targets.names }))),
        Change::RemoveDevices { .. } => Some((
            AuditAction::DeviceRemoved,
            json!({ "devices": targets.devices.iter().map(|d| d.0).collect::<Vec<_>>() }),
        )),
        Change::Update {} => None,
    };
    if let Some((action, mut detail)) = audited {
        if let Some(map) = detail.as_object_mut() {
            map.insert("room".into(), room.0.into());
            map.insert("seq".into(), appended.seq.0.into());
            map.insert("epoch".into(), new_epoch.into());
        }
        ctx.audit(Some(&me.user.username), action, detail).await?;
    }
    Ok(Reply::Committed { seq: appended.seq, epoch: new_epoch })
}

/// Checks the commit's MLS content against the room's group and what the caller
/// declared ([`crate::handshake`]). Rooms created before the server kept public
/// group state get it from their stored GroupInfo and tree, verified.
async fn check_handshake(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    new: &NewCommit<'_>,
    targets: &Targets,
) -> Result<conclave_mls::Checked, RequestError> {
    let store = &ctx.shared.store;
    let group = store.group_state(new.room).await?.ok_or(RequestError::NotFound("no such room"))?;
    let state = match (new.change, group.epoch) {
        (Change::Create {}, None) => None,
        (Change::Create {}, Some(_)) => return Err(RequestError::StaleEpoch),
        (_, None) => return Err(RequestError::Forbidden("the room's group does not exist yet")),
        (_, Some(current)) if new.epoch < current => return Err(RequestError::StaleEpoch),
        (_, Some(current)) if new.epoch > current => {
            return Err(RequestError::Invalid("the commit is for a later epoch than the room's"));
        }
        (_, Some(_)) => Some(match &group.public_group {
            Some(state) => PublicState::from_bytes(state.clone()),
            None => adopt_stored(ctx, new.room, &group).await?,
        }),
    };
    let caller_key = store.device(me.device).await?.ok_or(RequestError::DeviceMismatch)?.signature_key;
    let job = Job {
        group_id: group.group_id,
        state,
        change: new.change.clone(),
        commit: new.commit.to_vec(),
        group_info: new.group_info.to_vec(),
        ratchet_tree: new.ratchet_tree.to_vec(),
        welcome: new.welcome.map(<[u8]>::to_vec),
        caller: BoundDevice {
            username: me.user.username.clone(),
            device: me.device,
            signature_key: caller_key,
        },
        named: targets.bound_devices(),
    };
    job.run().await
}

/// The public state of a room whose group was created before the server kept it,
/// from the GroupInfo and tree it stored then, both verified now, and kept from
/// now on. A room whose stored state does not verify is broken: `group_broken`
/// until an operator repairs it.
async fn adopt_stored(
    ctx: &Ctx<'_>,
    room: RoomId,
    group: &crate::store::GroupState,
) -> Result<PublicState, RequestError> {
    let (Some(epoch), Some(info), Some(tree)) = (group.epoch, &group.group_info, &group.ratchet_tree) else {
        return Err(RequestError::GroupBroken);
    };
    let (group_id, info, tree) = (group.group_id.clone(), info.clone(), tree.clone());
    let adopted = tokio::task::spawn_blocking(move || conclave_mls::adopt(&group_id, &info, &tree))
        .await
        .map_err(|_| RequestError::Protocol(conclave_proto::ErrorCode::Internal, "internal server error"))?;
    match adopted {
        Ok(state) => {
            ctx.shared.store.keep_public_group(room, epoch, state.as_bytes()).await?;
            Ok(state)
        }
        Err(error) => {
            tracing::warn!(room = room.0, %error, "a room's stored GroupInfo and tree do not verify: it needs `conclave admin repair-room`");
            Err(RequestError::GroupBroken)
        }
    }
}
