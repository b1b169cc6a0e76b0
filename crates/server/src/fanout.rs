//! Real-time fan-out: stored log entries, Welcomes and presence pushed to the
//! connections of the devices that should see them.
//!
//! ```text
//!  handler: turn(room) ─▶ store append (committed) ─▶ publish(room, frame, delta)
//!                                                        │ encoded once; every copy
//!                                                        │ shares one buffer
//!            rooms: RoomId → {DeviceId} ─▶ devices: DeviceId → [connection]
//!                                                        │ push: never waits
//!                                                        ▼
//!            each connection's socket (wire): encrypted and written at once,
//!            or left pending (bounded) for its session when it would block
//! ```
//!
//! **Who receives what.** A connection bound to a device is registered here and
//! subscribed to the rooms whose group that device is in (read from the database
//! once, at bind). After that, subscriptions follow the membership changes each
//! publish carries ([`Delta`]): devices added or joining are subscribed *after*
//! the entry that added them is delivered (they get a Welcome, not their own add);
//! users removed or leaving are unsubscribed after it (they see their removal,
//! then nothing more). No delivery reads the database.
//!
//! **Order.** Entries of one room reach every connection in sequence order:
//! appends to a room take the room's [`turn`](Fanout::turn) around "store, then
//! publish", so two appends to one room cannot publish out of order.
//!
//! **Slow consumers.** A push never blocks and never slows another connection:
//! what a socket would not take waits in that connection's bounded pending
//! bytes, and past the bound the connection is told to resync (see
//! [`crate::wire`]). Nothing is skipped silently.
//!
//! **Presence.** A user is online while at least one of their devices has a
//! bound connection; the first such connection and the last one gone each send a
//! `presence` event to every connection.
//!
//! **Scale-out.** Several nodes would share this interface with a NATS-backed
//! implementation: `publish` would also send `(room, seq, frame, delta)` on a
//! per-room subject, and each node's registry would deliver it and apply the
//! delta exactly as here; `to_device` would use a per-device subject and presence
//! per-node counts on a shared subject. The turn orders appends within one node
//! only, so a receiving node would order each room by seq itself (holding a later
//! entry briefly for its predecessor, else sending `resync`).

use crate::{
    metrics::Metrics,
    wire::{self, Pushed, Wire},
};
use conclave_proto::{DeviceId, Event, RoomId, ServerFrame, UserId};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicU64, Ordering},
    },
};
use tokio::sync::{Mutex, MutexGuard};

pub(crate) use crate::wire::Frame;

/// Room turns: appends to rooms that share a stripe wait for each other on this
/// node, which bounds memory whatever the number of rooms. They serialize on
/// the room's row lock in the database anyway.
const TURN_STRIPES: usize = 256;

/// The `resync` event a lagging connection gets in place of what it missed.
pub(crate) static RESYNC: LazyLock<Frame> = LazyLock::new(|| encode(Event::Resync));

/// Encodes an event once for any number of connections.
pub(crate) fn encode(event: Event) -> Frame {
    wire::frame_text(ServerFrame::Event { event }.encode())
}

/// The turn stripe of a room.
fn stripe(room: RoomId) -> usize {
    usize::try_from(room.0.rem_euclid(TURN_STRIPES as i64)).unwrap_or(0)
}

/// Membership changes a published entry makes, applied after it is delivered.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Delta<'a> {
    /// Devices that are now in the room's group.
    pub subscribe: &'a [DeviceId],
    /// Users who are no longer members.
    pub unsubscribe_users: &'a [UserId],
}

/// Handle to the fan-out registry. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Fanout {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// std `RwLock`: publishes hold it shared while they push (no await,
    /// no blocking); registration and membership changes hold it exclusively,
    /// briefly. Never held across an `.await`.
    state: RwLock<State>,
    /// Orders "store, then publish" per room; see [`Fanout::turn`].
    turns: Box<[Mutex<()>]>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct State {
    connections: HashMap<u64, Connection>,
    /// Live connections of each device.
    devices: HashMap<DeviceId, Vec<(u64, Outlet)>>,
    /// Users with at least one live connection.
    users: HashMap<UserId, UserEntry>,
    /// Local subscriptions: devices with a live connection, per room.
    rooms: HashMap<RoomId, Room>,
    /// The reverse of `rooms`, to clean up when a device's last connection goes.
    device_rooms: HashMap<DeviceId, HashSet<RoomId>>,
}

/// One room's local subscribers.
#[derive(Debug, Default)]
struct Room {
    devices: HashSet<DeviceId>,
    /// Every live connection of those devices in one array, so a delivery to
    /// a large room walks memory in order instead of looking up each device.
    outlets: Vec<(DeviceId, u64, Outlet)>,
}

impl State {
    /// Subscribes `device` (which has a live connection) to `room`.
    fn subscribe(&mut self, room: RoomId, device: DeviceId) {
        let Some(connections) = self.devices.get(&device) else { return };
        let subscribers = self.rooms.entry(room).or_default();
        if subscribers.devices.insert(device) {
            subscribers.outlets.extend(connections.iter().map(|(id, outlet)| (device, *id, outlet.clone())));
            self.device_rooms.entry(device).or_default().insert(room);
        }
    }

    /// Unsubscribes `device` from `room`.
    fn unsubscribe(&mut self, room: RoomId, device: DeviceId) {
        let Some(subscribers) = self.rooms.get_mut(&room) else { return };
        if subscribers.devices.remove(&device) {
            subscribers.outlets.retain(|(d, _, _)| *d != device);
        }
        if subscribers.devices.is_empty() {
            self.rooms.remove(&room);
        }
        if let Some(rooms) = self.device_rooms.get_mut(&device) {
            rooms.remove(&room);
        }
    }
}

#[derive(Debug)]
struct Connection {
    outlet: Outlet,
}

#[derive(Debug)]
struct UserEntry {
    username: String,
    connections: usize,
    /// Devices with a live connection.
    devices: Vec<DeviceId>,
    /// Bumped whenever the user is unsubscribed from a room, so a bind that
    /// read its rooms before that can tell its list is stale.
    version: u64,
}

/// The fan-out's side of one connection: its socket.
#[derive(Debug, Clone)]
struct Outlet {
    wire: Arc<Wire>,
}

impl Outlet {
    /// Writes `frames` unless the connection is lagging or gone; never waits.
    fn push(&self, frames: &[Frame]) -> bool {
        self.wire.push(frames) == Pushed::Sent
    }
}

/// A delivery to at least this many connections is split in two, written in
/// parallel (each half split again while it is this large).
const PARALLEL_FROM: usize = 256;

/// Writes `frames` to every connection in `outlets` except those of `except`;
/// returns to how many it tried and how many took them. A large room is
/// written by every core at once (rayon's fork-join): its last member then
/// waits half as long. The call returns when all are written, so the next
/// entry of the room (which waits for the room's turn) cannot overtake it on
/// any connection.
fn write_to(
    outlets: &[(DeviceId, u64, Outlet)],
    frames: &[Frame],
    except: Option<DeviceId>,
) -> (usize, usize) {
    if outlets.len() >= PARALLEL_FROM {
        let (left, right) = outlets.split_at(outlets.len() / 2);
        let (a, b) = rayon::join(|| write_to(left, frames, except), || write_to(right, frames, except));
        return (a.0 + b.0, a.1 + b.1);
    }
    let (mut attempted, mut delivered) = (0, 0);
    for (_, _, outlet) in outlets.iter().filter(|(d, _, _)| Some(*d) != except) {
        attempted += 1;
        delivered += usize::from(outlet.push(frames));
    }
    (attempted, delivered)
}

/// Keeps a connection registered (and its user online); unregisters on drop.
#[derive(Debug)]
pub(crate) struct Registration {
    fanout: Fanout,
    id: u64,
    device: DeviceId,
    user: UserId,
}

impl Fanout {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        let turns = (0..TURN_STRIPES).map(|_| Mutex::new(())).collect();
        Self {
            inner: Arc::new(Inner { state: RwLock::default(), turns, next_id: AtomicU64::new(1), metrics }),
        }
    }

    /// Registers a connection bound to `device` of `user`, writing to `wire`;
    /// returns the handle that keeps it registered. Tells everyone when the
    /// user comes online.
    pub(crate) fn register(
        &self,
        user: UserId,
        username: &str,
        device: DeviceId,
        wire: &Arc<Wire>,
    ) -> Registration {
        let outlet = Outlet { wire: wire.clone() };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.write();
        let state = &mut *guard;
        state.connections.insert(id, Connection { outlet: outlet.clone() });
        state.devices.entry(device).or_default().push((id, outlet.clone()));
        // Another connection of the device may be subscribed already.
        for room in state.device_rooms.get(&device).into_iter().flatten() {
            if let Some(subscribers) = state.rooms.get_mut(room) {
                subscribers.outlets.push((device, id, outlet.clone()));
            }
        }
        let entry = state.users.entry(user).or_insert_with(|| UserEntry {
            username: username.to_owned(),
            connections: 0,
            devices: Vec::new(),
            version: 0,
        });
        entry.connections += 1;
        if !entry.devices.contains(&device) {
            entry.devices.push(device);
        }
        if entry.connections == 1 {
            let frame = encode(Event::Presence { username: username.to_owned(), online: true });
            self.broadcast(state, &frame);
        }
        drop(guard);
        Registration { fanout: self.clone(), id, device, user }
    }

    /// Waits for `room`'s turn. Hold it from before an append is stored until
    /// its entry is published, so entries are published in seq order.
    pub(crate) async fn turn(&self, room: RoomId) -> MutexGuard<'_, ()> {
        self.inner.turns[stripe(room)].lock().await
    }

    /// Waits for the turns of all of `rooms` (a batch of messages), taking each
    /// stripe once and in stripe order, so it cannot deadlock with a handler
    /// that holds one turn.
    pub(crate) async fn turns(&self, rooms: impl Iterator<Item = RoomId>) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = rooms.map(stripe).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for index in stripes {
            guards.push(self.inner.turns[index].lock().await);
        }
        guards
    }

    /// Delivers `frame` to every connection subscribed to `room`, then applies
    /// `delta`.
    pub(crate) fn publish(&self, room: RoomId, frame: &Frame, delta: Delta<'_>) {
        self.publish_all(room, std::slice::from_ref(frame), delta);
    }

    /// Delivers `frames` (consecutive entries of `room`) to every connection
    /// subscribed to it, all of them with one write per connection, then
    /// applies `delta`.
    pub(crate) fn publish_all(&self, room: RoomId, frames: &[Frame], delta: Delta<'_>) {
        if delta.subscribe.is_empty() && delta.unsubscribe_users.is_empty() {
            let state = self.read();
            self.deliver(&state, room, frames);
            return;
        }
        let mut state = self.write();
        self.deliver(&state, room, frames);
        let state = &mut *state;
        for device in delta.subscribe {
            state.subscribe(room, *device);
        }
        for user in delta.unsubscribe_users {
            let Some(entry) = state.users.get_mut(user) else { continue };
            entry.version += 1;
            for device in entry.devices.clone() {
                state.unsubscribe(room, device);
            }
        }
    }

    /// Delivers an ephemeral `frame` to the connections of every device
    /// subscribed to `room` except `from`, the sender's.
    pub(crate) fn relay(&self, room: RoomId, from: DeviceId, frame: &Frame) {
        let state = self.read();
        self.deliver_except(&state, room, std::slice::from_ref(frame), Some(from));
    }

    /// Delivers `frame` to every connection of `device` (a Welcome).
    pub(crate) fn to_device(&self, device: DeviceId, frame: &Frame) {
        let state = self.read();
        let outlets = state.devices.get(&device).map_or(&[][..], Vec::as_slice);
        let delivered = outlets.iter().filter(|(_, outlet)| outlet.push(std::slice::from_ref(frame))).count();
        self.count(delivered, outlets.len(), 1);
    }

    /// The users with a bound connection now.
    pub(crate) fn online(&self) -> HashSet<UserId> {
        self.read().users.keys().copied().collect()
    }

    fn deliver(&self, state: &State, room: RoomId, frames: &[Frame]) {
        self.deliver_except(state, room, frames, None);
    }

    fn deliver_except(&self, state: &State, room: RoomId, frames: &[Frame], except: Option<DeviceId>) {
        let Some(subscribers) = state.rooms.get(&room) else { return };
        let (attempted, delivered) = write_to(&subscribers.outlets, frames, except);
        self.count(delivered, attempted, frames.len());
    }

    fn broadcast(&self, state: &State, frame: &Frame) {
        let frames = std::slice::from_ref(frame);
        let delivered = state.connections.values().filter(|c| c.outlet.push(frames)).count();
        self.count(delivered, state.connections.len(), 1);
    }

    /// Counts `frames` frames each to `attempted` connections, of which
    /// `delivered` took them.
    fn count(&self, delivered: usize, attempted: usize, frames: usize) {
        let metrics = &self.inner.metrics;
        let as_u64 = |n: usize| u64::try_from(n.saturating_mul(frames)).unwrap_or(u64::MAX);
        metrics.deliveries.inc_by(as_u64(delivered));
        metrics.frames_out.inc_by(as_u64(delivered));
        let dropped = attempted.saturating_sub(delivered);
        if dropped > 0 {
            metrics.deliveries_dropped.inc_by(as_u64(dropped));
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // Every critical section leaves the maps consistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.inner.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Registration {
    /// The user's subscription version; pass it to [`subscribe`](Self::subscribe).
    pub(crate) fn version(&self) -> u64 {
        self.fanout.read().users.get(&self.user).map_or(0, |u| u.version)
    }

    /// Subscribes this connection's device to `rooms`, read from the database
    /// after [`version`](Self::version) returned `seen`. Returns `false` (and
    /// subscribes nothing) if the user was unsubscribed from a room since: the
    /// list may be stale, read it again.
    pub(crate) fn subscribe(&self, rooms: &[RoomId], seen: u64) -> bool {
        let mut state = self.fanout.write();
        if state.users.get(&self.user).map_or(0, |u| u.version) != seen {
            return false;
        }
        for room in rooms {
            state.subscribe(*room, self.device);
        }
        true
    }

    /// Writes `frame` to this connection only.
    pub(crate) fn push(&self, frame: &Frame) {
        let state = self.fanout.read();
        let delivered =
            state.connections.get(&self.id).is_some_and(|c| c.outlet.push(std::slice::from_ref(frame)));
        self.fanout.count(usize::from(delivered), 1, 1);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let fanout = &self.fanout;
        let mut state = fanout.write();
        let state = &mut *state;
        state.connections.remove(&self.id);
        let device_gone = match state.devices.get_mut(&self.device) {
            Some(ids) => {
                ids.retain(|(id, _)| *id != self.id);
                ids.is_empty()
            }
            None => true,
        };
        if device_gone {
            state.devices.remove(&self.device);
            for room in state.device_rooms.remove(&self.device).unwrap_or_default() {
                state.unsubscribe(room, self.device);
            }
        } else {
            for room in state.device_rooms.get(&self.device).into_iter().flatten() {
                if let Some(subscribers) = state.rooms.get_mut(room) {
                    subscribers.outlets.retain(|(_, id, _)| *id != self.id);
                }
            }
        }
        let Some(entry) = state.users.get_mut(&self.user) else { return };
        entry.connections = entry.connections.saturating_sub(1);
        if device_gone {
            entry.devices.retain(|d| *d != self.device);
        }
        if entry.connections == 0 {
            let username = std::mem::take(&mut entry.username);
            state.users.remove(&self.user);
            let frame = encode(Event::Presence { username, online: false });
            fanout.broadcast(state, &frame);
        }
    }
}

#[cfg(test)]
mod tests;
