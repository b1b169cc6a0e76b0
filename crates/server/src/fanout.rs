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
//!            per-connection bounded queue (QUEUE_FRAMES) ─▶ session task writes
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
//! **Slow consumers.** A push never blocks and never slows another connection. If
//! a connection's queue is full, the frame is dropped for that connection alone
//! and the connection is marked lagged; while marked, further frames for it are
//! dropped as well. Once its session has written everything still queued, it
//! writes one `resync` event in their place, and the client fetches every room
//! from its last processed sequence number (and asks for `welcomes` and `users`).
//! Nothing is skipped silently.
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

use crate::metrics::Metrics;
use axum::extract::ws::Utf8Bytes;
use conclave_proto::{DeviceId, Event, RoomId, ServerFrame, UserId};
use futures_util::task::AtomicWaker;
use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::Poll,
};
use tokio::sync::{Mutex, MutexGuard};

/// Frames one connection may have queued before it counts as lagging.
pub(crate) const QUEUE_FRAMES: usize = 1024;

/// Queue capacity an idle connection keeps after a burst.
const KEEP_CAPACITY: usize = 64;

/// Room turns: appends to rooms that share a stripe wait for each other on this
/// node, which bounds memory whatever the number of rooms. They serialize on
/// the room's row lock in the database anyway.
const TURN_STRIPES: usize = 256;

/// An encoded server frame. Cloning shares the buffer, so a frame for a
/// thousand connections is encoded and allocated once.
pub(crate) type Frame = Utf8Bytes;

/// The `resync` event, as [`encode`] writes it (checked by a test).
const RESYNC: &str = r#"{"kind":"event","event":{"type":"resync"}}"#;

/// Encodes an event once for any number of connections.
pub(crate) fn encode(event: Event) -> Frame {
    ServerFrame::Event { event }.encode().into()
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
    /// Live connections of each device, with their queues (so a delivery
    /// looks up each device once, not each connection again).
    devices: HashMap<DeviceId, Vec<(u64, Outlet)>>,
    /// Users with at least one live connection.
    users: HashMap<UserId, UserEntry>,
    /// Local subscriptions: devices with a live connection, per room.
    rooms: HashMap<RoomId, HashSet<DeviceId>>,
    /// The reverse of `rooms`, to clean up when a device's last connection goes.
    device_rooms: HashMap<DeviceId, HashSet<RoomId>>,
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

/// One connection's queue of frames, shared by its [`Outlet`] (the fan-out side)
/// and its [`Outbox`] (the session side).
///
/// A `std` mutex around a `VecDeque` rather than a channel: a push is one short
/// uncontended lock, the session takes a whole burst under one lock, and only the
/// push that finds the queue empty wakes the session.
#[derive(Debug, Default)]
struct Queue {
    frames: std::sync::Mutex<VecDeque<Frame>>,
    /// Frames were dropped because the queue was full: the session owes the
    /// client a `resync`.
    lagged: AtomicBool,
    /// The session waiting for frames.
    waker: AtomicWaker,
}

impl Queue {
    fn frames(&self) -> std::sync::MutexGuard<'_, VecDeque<Frame>> {
        // Pushes and takes leave the deque consistent, so a poisoned lock is usable.
        self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sending half of one connection's queue.
#[derive(Debug, Clone)]
struct Outlet {
    queue: Arc<Queue>,
}

impl Outlet {
    /// Queues `frame` unless the connection is lagging; never waits.
    fn push(&self, frame: &Frame) -> bool {
        let queue = &*self.queue;
        if queue.lagged.load(Ordering::Acquire) {
            return false;
        }
        let mut frames = queue.frames();
        if frames.len() >= QUEUE_FRAMES {
            drop(frames);
            queue.lagged.store(true, Ordering::Release);
            return false;
        }
        let was_empty = frames.is_empty();
        frames.push_back(frame.clone());
        drop(frames);
        if was_empty {
            queue.waker.wake();
        }
        true
    }
}

/// The receiving half of one connection's queue, owned by its session.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Arc<Queue>,
}

impl Outbox {
    /// Whether there is something to write now: queued frames, or a `resync`.
    fn is_ready(&self) -> bool {
        !self.queue.frames().is_empty() || self.queue.lagged.load(Ordering::Acquire)
    }

    /// Waits until [`is_ready`](Self::is_ready). Cancel-safe: takes nothing.
    pub(crate) async fn ready(&self) {
        std::future::poll_fn(|cx| {
            // Registered before looking, so a push that finds the queue empty
            // after the look wakes this waker.
            self.queue.waker.register(cx.waker());
            if self.is_ready() { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
    }

    /// Moves up to `max` frames into `batch`, in order, without waiting: queued
    /// frames first, then, once the queue is empty, one `resync` if frames were
    /// dropped. Returns whether more is left for the next call.
    pub(crate) fn take(&mut self, batch: &mut Vec<Frame>, max: usize) -> bool {
        let mut frames = self.queue.frames();
        let count = frames.len().min(max);
        batch.extend(frames.drain(..count));
        if frames.is_empty() && frames.capacity() > KEEP_CAPACITY {
            // A burst is over: an idle connection holds no large buffer.
            *frames = VecDeque::new();
        }
        if frames.is_empty() && batch.len() < max && self.queue.lagged.swap(false, Ordering::AcqRel) {
            batch.push(Utf8Bytes::from_static(RESYNC));
        }
        !frames.is_empty() || self.queue.lagged.load(Ordering::Acquire)
    }

    /// The next frame if one is ready now, without waiting.
    pub(crate) fn try_next(&mut self) -> Option<Frame> {
        let mut frames = self.queue.frames();
        match frames.pop_front() {
            Some(frame) => Some(frame),
            None => self.queue.lagged.swap(false, Ordering::AcqRel).then(|| Utf8Bytes::from_static(RESYNC)),
        }
    }

    /// The next frame: queued frames in order, then, if frames were dropped,
    /// one `resync`. Cancel-safe.
    #[cfg(test)]
    pub(crate) async fn recv(&mut self) -> Frame {
        loop {
            self.ready().await;
            if let Some(frame) = self.try_next() {
                return frame;
            }
        }
    }
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

    /// Registers a connection bound to `device` of `user`; returns the handle
    /// that keeps it registered and the queue its session writes from. Tells
    /// everyone when the user comes online.
    pub(crate) fn register(&self, user: UserId, username: &str, device: DeviceId) -> (Registration, Outbox) {
        let queue = Arc::new(Queue::default());
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.write();
        state.connections.insert(id, Connection { outlet: Outlet { queue: queue.clone() } });
        state.devices.entry(device).or_default().push((id, Outlet { queue: queue.clone() }));
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
            self.broadcast(&state, &frame);
        }
        drop(state);
        let registration = Registration { fanout: self.clone(), id, device, user };
        (registration, Outbox { queue })
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
        if delta.subscribe.is_empty() && delta.unsubscribe_users.is_empty() {
            let state = self.read();
            self.deliver(&state, room, frame);
            return;
        }
        let mut state = self.write();
        self.deliver(&state, room, frame);
        let state = &mut *state;
        for device in delta.subscribe {
            if state.devices.contains_key(device) {
                state.rooms.entry(room).or_default().insert(*device);
                state.device_rooms.entry(*device).or_default().insert(room);
            }
        }
        for user in delta.unsubscribe_users {
            let Some(entry) = state.users.get_mut(user) else { continue };
            entry.version += 1;
            for device in &entry.devices {
                if let Some(devices) = state.rooms.get_mut(&room) {
                    devices.remove(device);
                }
                if let Some(rooms) = state.device_rooms.get_mut(device) {
                    rooms.remove(&room);
                }
            }
            if state.rooms.get(&room).is_some_and(HashSet::is_empty) {
                state.rooms.remove(&room);
            }
        }
    }

    /// Delivers an ephemeral `frame` to the connections of every device
    /// subscribed to `room` except `from`, the sender's.
    pub(crate) fn relay(&self, room: RoomId, from: DeviceId, frame: &Frame) {
        let state = self.read();
        self.deliver_except(&state, room, frame, Some(from));
    }

    /// Delivers `frame` to every connection of `device` (a Welcome).
    pub(crate) fn to_device(&self, device: DeviceId, frame: &Frame) {
        let state = self.read();
        let outlets = state.devices.get(&device).map_or(&[][..], Vec::as_slice);
        let delivered = outlets.iter().filter(|(_, outlet)| outlet.push(frame)).count();
        self.count(delivered, outlets.len());
    }

    /// The users with a bound connection now.
    pub(crate) fn online(&self) -> HashSet<UserId> {
        self.read().users.keys().copied().collect()
    }

    fn deliver(&self, state: &State, room: RoomId, frame: &Frame) {
        self.deliver_except(state, room, frame, None);
    }

    fn deliver_except(&self, state: &State, room: RoomId, frame: &Frame, except: Option<DeviceId>) {
        let Some(devices) = state.rooms.get(&room) else { return };
        let (mut attempted, mut delivered) = (0, 0);
        for device in devices.iter().filter(|d| Some(**d) != except) {
            for (_, outlet) in state.devices.get(device).into_iter().flatten() {
                attempted += 1;
                delivered += usize::from(outlet.push(frame));
            }
        }
        self.count(delivered, attempted);
    }

    fn broadcast(&self, state: &State, frame: &Frame) {
        let delivered = state.connections.values().filter(|c| c.outlet.push(frame)).count();
        self.count(delivered, state.connections.len());
    }

    fn count(&self, delivered: usize, attempted: usize) {
        let metrics = &self.inner.metrics;
        metrics.deliveries.inc_by(u64::try_from(delivered).unwrap_or(u64::MAX));
        let dropped = attempted.saturating_sub(delivered);
        if dropped > 0 {
            metrics.deliveries_dropped.inc_by(u64::try_from(dropped).unwrap_or(u64::MAX));
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
            state.rooms.entry(*room).or_default().insert(self.device);
        }
        state.device_rooms.entry(self.device).or_default().extend(rooms.iter().copied());
        true
    }

    /// Queues `frame` for this connection only.
    pub(crate) fn push(&self, frame: &Frame) {
        let state = self.fanout.read();
        let delivered = state.connections.get(&self.id).is_some_and(|c| c.outlet.push(frame));
        self.fanout.count(usize::from(delivered), 1);
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
                if let Some(devices) = state.rooms.get_mut(&room) {
                    devices.remove(&self.device);
                    if devices.is_empty() {
                        state.rooms.remove(&room);
                    }
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
