//! The MLS test harness of the end-to-end tests that speak the wire protocol:
//! [`Member`], one user's device with its own real MLS state (the client's MLS
//! layer), and helpers to build, send and settle real commits and to read a
//! room's log. Every commit the tests send is real MLS, so the server's checks
//! see what a client would send (or an attacker could).

use crate::PASSWORD;
use conclave_client::mls::{Identity, MlsState, Outgoing};
use conclave_proto::{
    Bytes, Change, DeviceId, EntryBody, ErrorCode, Event, LogEntry, MessageId, Outcome, Reply, Request,
    Response, RoomId, RoomInfo, Seq, limits::MAX_FETCH,
};
use conclave_testkit::{Account, RawClient, ServerProcess};
use std::time::Duration;

/// One user's device, connected and bound, with its own MLS state.
pub(crate) struct Member {
    pub(crate) account: Account,
    pub(crate) client: RawClient,
    pub(crate) device: DeviceId,
    pub(crate) key: Vec<u8>,
    pub(crate) mls: MlsState,
}

/// A real MLS commit, built but not sent yet (pending in its builder's MLS state).
pub(crate) struct Pending {
    pub(crate) request: Request,
    pub(crate) outgoing: Outgoing,
    pub(crate) create: bool,
}

impl Pending {
    /// The epoch the commit is for.
    pub(crate) fn epoch(&self) -> u64 {
        self.outgoing.epoch
    }

    /// The same commit, declared as another change.
    pub(crate) fn declaring(mut self, declared: Change) -> Self {
        if let Request::Commit { change, .. } = &mut self.request {
            *change = declared;
        }
        self
    }

    pub(crate) fn without_welcome(mut self) -> Self {
        if let Request::Commit { welcome, .. } = &mut self.request {
            *welcome = None;
        }
        self
    }

    pub(crate) fn without_group_info(mut self) -> Self {
        if let Request::Commit { group_info, .. } = &mut self.request {
            *group_info = Bytes::default();
        }
        self
    }
}

/// The `commit` request for what `outgoing` did, declared as `change`.
pub(crate) fn pending(room: RoomId, change: Change, outgoing: Outgoing, create: bool) -> Pending {
    let request = Request::Commit {
        room,
        epoch: outgoing.epoch,
        change,
        commit: Bytes(outgoing.commit.clone()),
        group_info: Bytes(outgoing.group_info.clone()),
        ratchet_tree: Bytes(outgoing.ratchet_tree.clone()),
        welcome: outgoing.welcome.clone().map(Bytes),
    };
    Pending { request, outgoing, create }
}

impl Member {
    /// Registers `name` and binds a first device.
    pub(crate) async fn new(server: &ServerProcess, name: &str) -> Self {
        let (account, client) = Account::register(server, name, PASSWORD).await;
        Self::bind(account, client).await
    }

    /// Binds a new device on `client` with a fresh MLS signature key, and gives
    /// its MLS state the identity the server assigned.
    pub(crate) async fn bind(account: Account, mut client: RawClient) -> Self {
        let mut mls = MlsState::in_memory().expect("MLS state");
        let key = mls.signature_public_key().expect("signature key");
        let (device, _) = client.bind_device(None, &key).await;
        mls.set_identity(Identity::new(account.username.clone(), device.0)).expect("MLS identity");
        Self { account, client, device, key, mls }
    }

    /// Another device of the same user, on its own connection.
    pub(crate) async fn another_device(&self, server: &ServerProcess) -> Self {
        Self::bind(self.account.clone(), self.account.connect(server).await).await
    }

    /// The same device on a new connection, as after a reconnect.
    pub(crate) async fn reconnect(&self, server: &ServerProcess) -> RawClient {
        let mut client = self.account.connect(server).await;
        client.bind_device(Some(self.device), &self.key).await;
        client
    }

    pub(crate) fn name(&self) -> String {
        self.account.username.clone()
    }

    pub(crate) fn identity(&self) -> Identity {
        Identity::new(self.name(), self.device.0)
    }

    /// Uploads `n` real one-time KeyPackages and a last-resort one.
    pub(crate) fn upload(&self, n: usize) -> Request {
        let mut packages = self.mls.key_packages(n, true).expect("KeyPackages");
        let last_resort = packages.pop().map(Bytes);
        Request::UploadKeyPackages { key_packages: packages.into_iter().map(Bytes).collect(), last_resort }
    }

    /// Creates `room`'s group (epoch 0): no commit, only GroupInfo and tree.
    pub(crate) fn create(&self, room: &RoomInfo) -> Pending {
        let state = self.mls.create_group(&room.group_id.0).expect("create group");
        let outgoing = Outgoing::creation(&room.group_id.0, state);
        pending(room.id, Change::Create {}, outgoing, true)
    }

    /// An external commit joining `room` from the GroupInfo the server serves.
    pub(crate) async fn join(&mut self, room: &RoomInfo) -> Pending {
        let reply = self.client.ok(Request::GroupInfo { room: room.id }).await;
        let Reply::GroupInfo { group_info: Some(info), ratchet_tree: Some(tree), .. } = reply else {
            panic!("unexpected reply to group_info: {reply:?}")
        };
        self.join_from(room, &info.0, &tree.0)
    }

    /// An external commit joining `room` from this GroupInfo and tree (for a
    /// device the server would not give them to). Old state of the group is
    /// forgotten first.
    pub(crate) fn join_from(&self, room: &RoomInfo, group_info: &[u8], ratchet_tree: &[u8]) -> Pending {
        if self.mls.has_group(&room.group_id.0) {
            self.mls.forget_group(&room.group_id.0).expect("forget group");
        }
        let outgoing = self.mls.external_join(group_info, ratchet_tree).expect("external join");
        pending(room.id, Change::Join {}, outgoing, false)
    }

    /// A real external join of a group with `room`'s group id at epoch 0, made
    /// by a throwaway device: a join for a group the server does not have.
    pub(crate) fn join_elsewhere(&self, room: &RoomInfo) -> Pending {
        let mut creator = MlsState::in_memory().expect("MLS state");
        creator.set_identity(Identity::new("someone", 1_000_000)).expect("MLS identity");
        let state = creator.create_group(&room.group_id.0).expect("create group");
        self.join_from(room, &state.group_info, &state.ratchet_tree)
    }

    /// A key update: adds and removes nobody.
    pub(crate) fn update(&self, room: &RoomInfo) -> Pending {
        let outgoing = self.mls.self_update(&room.group_id.0).expect("self update");
        pending(room.id, Change::Update {}, outgoing, false)
    }

    /// Adds the devices of these claimed KeyPackages, declared as `users`.
    pub(crate) fn add(&self, room: &RoomInfo, users: &[String], packages: &[(DeviceId, Vec<u8>)]) -> Pending {
        let key_packages: Vec<Vec<u8>> = packages.iter().map(|p| p.1.clone()).collect();
        let outgoing = self.mls.add_members(&room.group_id.0, &key_packages).expect("add members");
        let devices = packages.iter().map(|p| p.0).collect();
        pending(room.id, Change::Add { users: users.to_vec(), devices }, outgoing, false)
    }

    /// Removes the leaves of `devices`, declared as removing `users`.
    pub(crate) fn remove(&self, room: &RoomInfo, users: &[String], devices: &[Identity]) -> Pending {
        let outgoing = self.mls.remove_members(&room.group_id.0, devices).expect("remove members");
        pending(room.id, Change::Remove { users: users.to_vec() }, outgoing, false)
    }

    /// Processes the commits of `room`'s log this device's group has not seen.
    pub(crate) async fn catch_up(&mut self, room: &RoomInfo) {
        let group = &room.group_id.0;
        for entry in log(&mut self.client, room.id, 0).await {
            if let EntryBody::Commit { epoch, commit, .. } = entry.body
                && !commit.0.is_empty()
                && epoch == self.mls.epoch(group).expect("epoch")
            {
                self.mls.process(group, &commit.0).expect("process commit");
            }
        }
    }

    /// Sends a commit and settles it in the MLS state by the server's answer.
    pub(crate) async fn send(&mut self, pending: Pending) -> Response {
        let response = self.client.request(pending.request.clone()).await;
        self.settle(&pending, &response);
        response
    }

    /// Confirms an accepted commit; drops a refused one.
    pub(crate) fn settle(&self, pending: &Pending, response: &Response) {
        let group = &pending.outgoing.group_id;
        match (&response.outcome, pending.create) {
            (Outcome::Ok(_), _) => {
                self.mls.confirm(group).expect("confirm");
            }
            (Outcome::Error(_), true) => self.mls.forget_group(group).expect("forget group"),
            (Outcome::Error(_), false) => self.mls.discard(group).expect("discard"),
        }
    }
}

pub(crate) fn signature_key(name: &str, n: u8) -> Vec<u8> {
    format!("fake-ed25519-key:{name}:{n:02}:0123456789").into_bytes()
}

pub(crate) fn mls(tag: &str) -> Bytes {
    Bytes(tag.as_bytes().to_vec())
}

/// Sends a commit that must be accepted; returns its seq and the new epoch.
pub(crate) async fn committed(member: &mut Member, pending: Pending) -> (Seq, u64) {
    match member.send(pending).await.outcome {
        Outcome::Ok(Reply::Committed { seq, epoch }) => (seq, epoch),
        other => panic!("unexpected reply to commit: {other:?}"),
    }
}

/// Sends a commit that must be refused; returns the error code.
pub(crate) async fn refused(member: &mut Member, pending: Pending) -> ErrorCode {
    match member.send(pending).await.outcome {
        Outcome::Error(err) => err.code,
        Outcome::Ok(reply) => panic!("commit unexpectedly accepted: {reply:?}"),
    }
}

/// `member` joins `room` by external commit.
pub(crate) async fn joined(member: &mut Member, room: &RoomInfo) -> (Seq, u64) {
    let join = member.join(room).await;
    committed(member, join).await
}

pub(crate) fn send(room: RoomId, ciphertext: &[u8], nonce: u64) -> Request {
    Request::Send { room, ciphertext: Bytes(ciphertext.to_vec()), nonce }
}

pub(crate) async fn sent(
    client: &mut RawClient,
    room: RoomId,
    ciphertext: &[u8],
    nonce: u64,
) -> (MessageId, Seq) {
    match client.ok(send(room, ciphertext, nonce)).await {
        Reply::Sent { id, seq } => (id, seq),
        other => panic!("unexpected reply to send: {other:?}"),
    }
}

pub(crate) fn fetch(room: RoomId, after: i64, limit: u32) -> Request {
    Request::Fetch { room, after: Seq(after), limit }
}

/// Every entry after `after`, page by page.
pub(crate) async fn log(client: &mut RawClient, room: RoomId, after: i64) -> Vec<LogEntry> {
    let mut all = Vec::new();
    let mut cursor = after;
    loop {
        let Reply::Log { entries, last_seq, .. } = client.ok(fetch(room, cursor, MAX_FETCH)).await else {
            panic!("unexpected reply to fetch")
        };
        cursor = entries.last().map_or(cursor, |e| e.seq.0);
        all.extend(entries);
        if cursor >= last_seq.0 {
            return all;
        }
    }
}

/// Creates a room owned by `owner` and its group (epoch 0).
pub(crate) async fn create_room(owner: &mut Member, name: &str, public: bool) -> RoomInfo {
    let reply = owner.client.ok(Request::CreateRoom { name: name.into(), public }).await;
    let Reply::Room { room } = reply else { panic!("unexpected reply to create_room: {reply:?}") };
    let create = owner.create(&room);
    assert_eq!(committed(owner, create).await.1, 0);
    room
}

pub(crate) async fn claim(client: &mut RawClient, username: &str) -> Vec<(DeviceId, Vec<u8>)> {
    let (packages, unavailable) = claim_all(client, &[username]).await;
    assert!(unavailable.is_empty(), "{username} has packages");
    packages.into_iter().map(|(_, device, package)| (device, package)).collect()
}

/// Claims the KeyPackages of `users` in one request: (user, device, package)
/// for each device that had one, and the users without any.
pub(crate) async fn claim_all(
    client: &mut RawClient,
    users: &[&str],
) -> (Vec<(String, DeviceId, Vec<u8>)>, Vec<String>) {
    let users = users.iter().map(|u| (*u).to_owned()).collect();
    match client.ok(Request::ClaimKeyPackages { users }).await {
        Reply::KeyPackages { packages, unavailable } => {
            (packages.into_iter().map(|p| (p.user, p.device, p.key_package.0)).collect(), unavailable)
        }
        other => panic!("unexpected reply to claim_key_packages: {other:?}"),
    }
}

pub(crate) fn claim_of(users: &[&str]) -> Request {
    Request::ClaimKeyPackages { users: users.iter().map(|u| (*u).to_owned()).collect() }
}

/// `owner` adds `user` (all devices with KeyPackages) to `room` at `epoch`; the
/// user's device joins the group from the Welcome.
pub(crate) async fn add_member(
    owner: &mut Member,
    user: &mut Member,
    room: &RoomInfo,
    epoch: u64,
) -> (Seq, u64) {
    let upload = user.upload(2);
    user.client.ok(upload).await;
    let packages = claim(&mut owner.client, &user.name()).await;
    let add = owner.add(room, &[user.name()], &packages);
    assert_eq!(add.epoch(), epoch);
    let (welcome, tree) =
        (add.outgoing.welcome.clone().expect("a Welcome"), add.outgoing.ratchet_tree.clone());
    let result = committed(owner, add).await;
    user.mls.join_welcome(&welcome, &tree).expect("join from the Welcome");
    result
}

/// Reads events until `n` message entries of `room` arrived; other events are
/// skipped.
pub(crate) async fn pushed_messages(client: &mut RawClient, room: RoomId, n: usize) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    while entries.len() < n {
        if let Event::Entry { room: r, entry } = client.next_event().await
            && r == room
            && matches!(entry.body, EntryBody::Message { .. })
        {
            entries.push(entry);
        }
    }
    entries
}

/// The next entry pushed for any room; other events are skipped.
pub(crate) async fn next_entry(client: &mut RawClient) -> (RoomId, LogEntry) {
    loop {
        if let Event::Entry { room, entry } = client.next_event().await {
            return (room, entry);
        }
    }
}

/// Every event that arrives before `quiet` passes without one.
pub(crate) async fn events(client: &mut RawClient, quiet: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = client.event_within(quiet).await {
        events.push(event);
    }
    events
}

pub(crate) fn entries_of(events: &[Event], room: RoomId) -> Vec<LogEntry> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Entry { room: r, entry } if *r == room => Some(entry.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn error_code(response: &Response) -> Option<ErrorCode> {
    match &response.outcome {
        Outcome::Error(body) => Some(body.code),
        Outcome::Ok(_) => None,
    }
}
