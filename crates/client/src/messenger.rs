//! [`Messenger`]: one logged-in device taking part in conversations.
//!
//! It ties the three stateful parts together — the server connection
//! ([`Client`]), the MLS groups ([`MlsState`]) and the local history
//! ([`History`]) — and keeps them consistent:
//!
//! * every room log entry is applied exactly once, in sequence order, and the
//!   room's cursor moves in the same local transaction that stores its result;
//! * a commit this device makes is merged only after the server accepted it; a
//!   commit that lost the race for its epoch is discarded, the winner processed,
//!   and the change rebuilt and retried;
//! * the membership change each commit declares to the server is checked against
//!   what the MLS commit really does, and a mismatch is reported.
//!
//! Front ends (CLI, TUI, bots, the load generator) call its methods and show the
//! [`Update`]s they return.

use crate::{
    client::{Client, unexpected},
    content::Content,
    error::{ClientError, Result},
    home::Home,
    mls::{Identity, MlsState, Outgoing, Processed},
    store::{DeviceRecord, History as LocalHistory, LocalRoom, StoredMessage},
};
use conclave_proto::{
    Change, ClaimedKeyPackage, DeviceId, EntryBody, ErrorCode, Event, LogEntry, MessageId, Reply, Request,
    RoomId, RoomInfo, Seq, UserPresence, WelcomeInfo,
    limits::{MAX_CHANGE_USERS, MAX_FETCH},
    validate,
};
use std::collections::HashSet;

/// One-time KeyPackages uploaded when the server holds fewer than
/// [`KEY_PACKAGES_LOW`].
const KEY_PACKAGE_BATCH: usize = 30;
/// Replenish below this many.
const KEY_PACKAGES_LOW: u32 = 10;
/// Most devices one add commit carries: the commit holds a KeyPackage per
/// device and its Welcome a secret per device, so this keeps it well inside the
/// server's frame limit (the same bound as users per add).
const MAX_ADD_DEVICES: usize = MAX_CHANGE_USERS;
/// Tries for a commit that keeps losing its epoch to other members' commits.
const COMMIT_TRIES: usize = 8;

/// Something a front end may want to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A message arrived (or could not be read on this device).
    Message(StoredMessage),
    /// A message was deleted for everyone.
    Deleted {
        /// Room name.
        room: String,
        /// The message.
        id: MessageId,
    },
    /// Members or devices changed.
    Membership {
        /// Room name.
        room: String,
        /// What happened, for people.
        text: String,
    },
    /// This device joined a room (history before this point is not readable here).
    Joined {
        /// Room name.
        room: String,
    },
    /// This device was removed from a room.
    Removed {
        /// Room name.
        room: String,
    },
    /// A user came online or went offline.
    Presence(UserPresence),
    /// A member is typing in a room (show it for a few seconds, or until their
    /// next message arrives).
    Typing {
        /// Room name.
        room: String,
        /// Who.
        user: String,
    },
}

/// What [`Messenger::invite`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invited {
    /// The users added, as the server spells them, in the order named.
    pub added: Vec<String>,
    /// The users named that could not be added: none of their devices has a
    /// KeyPackage on the server (they have not logged in on any device yet, or
    /// every device was removed).
    pub unavailable: Vec<String>,
    /// The users named who were in the room already, in the order named:
    /// nothing was claimed or committed for them.
    pub already_members: Vec<String>,
    /// What to show: the room's entries processed on the way, then the
    /// membership lines: who was added, who was in already, who could not be
    /// added.
    pub updates: Vec<Update>,
}

impl Invited {
    /// `bob is already in team`, `bob and carol are already in team`; `None`
    /// when nobody named was.
    #[must_use]
    pub fn already_in(&self, room: &str) -> Option<String> {
        let verb = match self.already_members.len() {
            0 => return None,
            1 => "is",
            _ => "are",
        };
        Some(format!("{} {verb} already in {room}", name_list(&self.already_members)))
    }
}

/// One add commit's share of an invitation.
#[derive(Debug, Default)]
struct AddBatch {
    users: Vec<String>,
    devices: Vec<DeviceId>,
    key_packages: Vec<Vec<u8>>,
}

/// Splits claimed KeyPackages (grouped by user, as the server answers) into
/// commits of whole users with at most [`MAX_ADD_DEVICES`] devices each; a
/// user with more devices than that gets a commit alone.
fn add_batches(packages: Vec<ClaimedKeyPackage>) -> Vec<AddBatch> {
    let mut batches: Vec<AddBatch> = Vec::new();
    let mut packages = packages.into_iter().peekable();
    while let Some(first) = packages.next() {
        let mut user = vec![first];
        while let Some(next) = packages.next_if(|p| p.user == user[0].user) {
            user.push(next);
        }
        let fits = batches.last().is_some_and(|b| {
            b.users.len() < MAX_CHANGE_USERS && b.devices.len() + user.len() <= MAX_ADD_DEVICES
        });
        if !fits {
            batches.push(AddBatch::default());
        }
        let batch = batches.last_mut().expect("pushed above");
        batch.users.push(user[0].user.clone());
        for package in user {
            batch.devices.push(package.device);
            batch.key_packages.push(package.key_package.0);
        }
    }
    batches
}

/// `users` (a leading `@` allowed) normalized as the server compares them,
/// each once, in the order first named.
fn distinct_usernames(users: &[String]) -> Result<Vec<String>> {
    let mut distinct: Vec<String> = Vec::with_capacity(users.len());
    let mut seen = HashSet::with_capacity(users.len());
    for user in users {
        let name = validate::normalize_username(user.strip_prefix('@').unwrap_or(user))
            .map_err(|source| ClientError::Username { input: user.clone(), source })?;
        if seen.insert(name.clone()) {
            distinct.push(name);
        }
    }
    if distinct.is_empty() {
        return Err(ClientError::NoUsers);
    }
    Ok(distinct)
}

/// `a`, `a and b`, `a, b and c`; past five names, the first four and how many
/// more.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 4;
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] if names.len() <= SHOWN + 1 => format!("{} and {last}", init.join(", ")),
        _ => format!("{} and {} others", names[..SHOWN].join(", "), names.len() - SHOWN),
    }
}

/// A conversation's history as [`Messenger::history`] returns it.
#[derive(Debug, Clone)]
pub struct History {
    /// The newest messages, in room order.
    pub messages: Vec<StoredMessage>,
    /// Where this device joined (messages before it are not readable here).
    pub joined: Seq,
    /// Membership changes and repairs noticed while catching up, for people.
    pub notes: Vec<String>,
}

/// A logged-in device in its conversations.
#[derive(Debug)]
pub struct Messenger {
    client: Client,
    mls: MlsState,
    history: LocalHistory,
    me: String,
    device: DeviceId,
    /// Held while one log entry is applied: several processes may use one client
    /// home at once (`listen` in one terminal, `send` in another), and an MLS
    /// message can be decrypted only once, so each entry is applied by exactly
    /// one of them; the others read the result from the history.
    apply_lock: std::fs::File,
    /// Users who left rooms but whose devices are still in the MLS group: the
    /// next catch-up commits their removal (any member may), so they cannot
    /// decrypt anything sent afterwards even if they obtained it.
    leavers: Vec<(RoomId, String)>,
    /// Retired devices (their sessions ended) still in a room's MLS group: the
    /// next catch-up commits their removal, as for leavers.
    retired: Vec<(RoomId, DeviceId)>,
    /// Updates produced while starting (catching up during the lobby join),
    /// handed out by the next [`sync_all`](Self::sync_all) or
    /// [`next_updates`](Self::next_updates).
    pending: Vec<Update>,
}

impl Messenger {
    /// Binds `client` (authenticated as `username`) to this home's device —
    /// registering the device and its MLS signature key on first use — tops up
    /// KeyPackages, accepts pending Welcomes and joins the lobby.
    ///
    /// # Errors
    /// Server, storage and MLS errors.
    pub async fn start(mut client: Client, home: &Home, username: &str) -> Result<Self> {
        let mls_path = home.path().join("mls.db");
        let mut mls = MlsState::open(&mls_path)?;
        let server = client.server().to_string();
        let mut saved = DeviceRecord::load(home)?;
        if let Some(saved) = &saved
            && (saved.server != server || saved.username != username)
        {
            return Err(ClientError::Protocol(format!(
                "this client home is device {} of {} on {}; use another --home for {username} on {server}",
                saved.device_id, saved.username, saved.server
            )));
        }
        let bind = |device_id, signature_key: Vec<u8>| Request::Device {
            device_id,
            signature_key: signature_key.into(),
        };
        let reply = match client
            .request(bind(saved.as_ref().map(|d| d.device_id), mls.signature_public_key()?))
            .await
        {
            // This home's device was retired (logged out, revoked or removed):
            // its keys are of no use any more and are deleted; the home starts
            // a new device, which joins the user's rooms afresh below.
            Err(err) if err.code() == Some(ErrorCode::DeviceRetired) && saved.is_some() => {
                tracing::info!("this home's device was retired; starting a new device");
                drop(mls);
                DeviceRecord::forget(home)?;
                MlsState::delete(&mls_path)?;
                mls = MlsState::open(&mls_path)?;
                saved = None;
                client.request(bind(None, mls.signature_public_key()?)).await?
            }
            other => other?,
        };
        let Reply::Device { device_id, key_packages_left, last_resort_used } = reply else {
            return Err(unexpected("device", &reply));
        };
        if saved.is_none() {
            DeviceRecord { server, username: username.to_owned(), device_id }.save(home)?;
        }
        mls.set_identity(Identity { user: username.to_owned(), device: device_id.0 })?;
        let history = LocalHistory::open(&home.path().join("history.db"))?;
        let lock_path = home.path().join("apply.lock");
        let apply_lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| ClientError::File { path: lock_path, source })?;
        let mut messenger = Self {
            client,
            mls,
            history,
            me: username.to_owned(),
            device: device_id,
            apply_lock,
            leavers: Vec::new(),
            retired: Vec::new(),
            pending: Vec::new(),
        };
        // A new device has no last-resort package yet; one handed out while
        // this device was away is replaced.
        messenger.replenish_key_packages(key_packages_left, saved.is_none() || last_resort_used).await?;
        let mut pending = messenger.accept_welcomes().await?;
        // One room that cannot be joined (its group broken on the server, say)
        // must not keep the device out of the others: it is reported and skipped.
        let lobby = messenger.find("lobby").await?;
        let joined = messenger.join(&lobby).await;
        pending.extend(room_outcome(&lobby.name, joined)?);
        // A new device of an existing member joins the user's other rooms by
        // external commit (the server allows this for members only).
        for room in messenger.rooms().await? {
            if room.member && room.epoch.is_some() && !messenger.mls.has_group(&room.group_id.0) {
                let joined = messenger.join(&room).await;
                pending.extend(room_outcome(&room.name, joined)?);
            }
        }
        messenger.pending = pending;
        Ok(messenger)
    }

    /// This device's id.
    #[must_use]
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// The user's name.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.me
    }

    /// The connection, for requests this type does not wrap.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Closes the connection.
    ///
    /// # Errors
    /// If the close handshake fails.
    pub async fn close(self) -> Result<()> {
        self.client.close().await
    }

    /// Uploads a batch of one-time KeyPackages when the server holds fewer than
    /// [`KEY_PACKAGES_LOW`] (`left`), and a fresh last-resort package when
    /// `last_resort` (a new device, or the server said the old one was handed
    /// out). Nothing when neither is needed.
    async fn replenish_key_packages(&mut self, left: u32, last_resort: bool) -> Result<()> {
        let batch = if left < KEY_PACKAGES_LOW { KEY_PACKAGE_BATCH } else { 0 };
        if batch == 0 && !last_resort {
            return Ok(());
        }
        let key_packages = self.mls.key_packages(batch, false)?;
        let last_resort = if last_resort { self.mls.key_packages(1, true)?.pop() } else { None };
        self.client
            .request(Request::UploadKeyPackages {
                key_packages: key_packages.into_iter().map(Into::into).collect(),
                last_resort: last_resort.map(Into::into),
            })
            .await?;
        Ok(())
    }

    /// Resolves `#name`, `name` or `@user` to a room (for `@user`, finding or
    /// creating the direct conversation).
    ///
    /// # Errors
    /// `not_found` and other server errors.
    pub async fn resolve(&mut self, target: &str) -> Result<RoomInfo> {
        match target.strip_prefix('@') {
            Some(user) => {
                let reply = self.client.request(Request::OpenDirect { username: user.to_owned() }).await?;
                let Reply::Room { room } = reply else { return Err(unexpected("open_direct", &reply)) };
                if room.epoch.is_none() {
                    // A new conversation: create the group and add the other
                    // participant's devices, so they can read the first message.
                    self.join(&room).await?;
                    match self.invite(&room, &[user.to_owned()]).await {
                        Ok(_) => {}
                        Err(err) if err.code() == Some(ErrorCode::NoKeyPackages) => {
                            tracing::info!(%user, "no device of the other participant yet; they join later");
                        }
                        Err(err) => return Err(err),
                    }
                }
                Ok(room)
            }
            None => self.find(target.trim_start_matches('#')).await,
        }
    }

    async fn find(&mut self, name: &str) -> Result<RoomInfo> {
        let reply = self.client.request(Request::FindRoom { name: name.to_owned() }).await?;
        let Reply::Room { room } = reply else { return Err(unexpected("find_room", &reply)) };
        Ok(room)
    }

    /// Rooms the user is in, and public rooms.
    ///
    /// # Errors
    /// Server errors.
    pub async fn rooms(&mut self) -> Result<Vec<RoomInfo>> {
        let reply = self.client.request(Request::ListRooms {}).await?;
        let Reply::Rooms { rooms } = reply else { return Err(unexpected("list_rooms", &reply)) };
        Ok(rooms)
    }

    /// Makes sure this device is in the room's MLS group: creates the group if
    /// the room has none yet (the lobby's first joiner, a new room's creator),
    /// else joins by external commit. A no-op when already in. Returns updates
    /// from catching up.
    ///
    /// # Errors
    /// `forbidden` when room policy does not allow joining; server and MLS errors.
    pub async fn join(&mut self, room: &RoomInfo) -> Result<Vec<Update>> {
        let mut updates = Vec::new();
        let mut reset = false;
        if let Some(local) = self.history.room(room.id)?
            && local.group_id != room.group_id.0
        {
            reset = true;
            // The server's operator reset the room's group (a new group id): the
            // old one is dead; join the new one.
            if self.mls.has_group(&local.group_id) {
                self.mls.forget_group(&local.group_id)?;
            }
            updates.push(Update::Membership {
                room: room.name.clone(),
                text: "the room's encryption group was reset by the server's operator; this device \
                       rejoins, and messages sent in between are not readable on it"
                    .to_owned(),
            });
        }
        self.history.upsert_room(room)?;
        if self.mls.has_group(&room.group_id.0) {
            return self.sync(room.id).await;
        }
        for _ in 0..COMMIT_TRIES {
            let reply = self.client.request(Request::GroupInfo { room: room.id }).await?;
            let Reply::GroupInfo { epoch, group_info, ratchet_tree, .. } = reply else {
                return Err(unexpected("group_info", &reply));
            };
            let (outgoing, change) = match (epoch, group_info, ratchet_tree) {
                (None, _, _) => {
                    let state = self.mls.create_group(&room.group_id.0)?;
                    let outgoing = Outgoing::creation(&room.group_id.0, state);
                    (outgoing, Change::Create {})
                }
                (Some(_), Some(info), Some(tree)) => {
                    (self.mls.external_join(&info.0, &tree.0)?, Change::Join {})
                }
                _ => return Err(ClientError::Protocol("group_info without the group's state".into())),
            };
            let created = matches!(change, Change::Create {});
            match self.submit(room.id, &outgoing, change).await {
                Ok(seq) => {
                    self.history.mark_joined(room.id, seq)?;
                    updates.push(Update::Joined { room: room.name.clone() });
                    if created && reset && room.kind != conclave_proto::RoomKind::Lobby {
                        updates.extend(Box::pin(self.add_other_members(room)).await);
                    }
                    return Ok(updates);
                }
                Err(err) if is_stale(&err) => self.mls.forget_group(&room.group_id.0)?,
                Err(err) => {
                    self.mls.forget_group(&room.group_id.0)?;
                    return Err(err);
                }
            }
        }
        Err(ClientError::Protocol("could not join: the group kept changing".into()))
    }

    /// Adds the room's other members to a group this device just re-created after
    /// a reset, so that what is sent next is readable by them (they would
    /// otherwise join later, by themselves, and miss it). Best effort: who cannot
    /// be added now joins by external commit later.
    async fn add_other_members(&mut self, room: &RoomInfo) -> Vec<Update> {
        let others: Vec<String> = match self.members(room).await {
            Ok(members) => members.into_iter().map(|m| m.username).filter(|u| *u != self.me).collect(),
            Err(err) => {
                tracing::info!(room = %room.name, %err, "could not list the members to add back");
                return Vec::new();
            }
        };
        if others.is_empty() {
            return Vec::new();
        }
        match self.invite(room, &others).await {
            Ok(invited) => invited.updates,
            Err(err) => {
                tracing::info!(room = %room.name, %err, "could not add the members back; they rejoin by themselves");
                Vec::new()
            }
        }
    }

    /// Sends a commit and merges it when accepted. Returns its sequence number.
    async fn submit(&mut self, room: RoomId, outgoing: &Outgoing, change: Change) -> Result<Seq> {
        let reply = self
            .client
            .request(Request::Commit {
                room,
                epoch: outgoing.epoch,
                change: change.clone(),
                commit: outgoing.commit.clone().into(),
                group_info: outgoing.group_info.clone().into(),
                ratchet_tree: outgoing.ratchet_tree.clone().into(),
                welcome: outgoing.welcome.clone().map(Into::into),
            })
            .await;
        match reply {
            Ok(Reply::Committed { seq, .. }) => {
                if !matches!(change, Change::Create {}) {
                    self.mls.confirm(&outgoing.group_id)?;
                }
                Ok(seq)
            }
            Ok(other) => Err(unexpected("commit", &other)),
            Err(err) => {
                if !matches!(change, Change::Create {}) {
                    self.mls.discard(&outgoing.group_id)?;
                }
                Err(err)
            }
        }
    }

    /// Builds a commit with `build`, submits it, and on a lost epoch race catches
    /// up and rebuilds it; returns the entries processed on the way. The caller
    /// has joined the room (which catches up), so the first try needs no fetch.
    async fn commit_with_retry(
        &mut self,
        room: &RoomInfo,
        change: Change,
        build: impl Fn(&MlsState) -> Result<Outgoing>,
    ) -> Result<(Seq, Vec<Update>)> {
        let mut updates = Vec::new();
        for attempt in 0..COMMIT_TRIES {
            if attempt > 0 {
                updates.extend(self.sync(room.id).await?);
            }
            let outgoing = build(&self.mls)?;
            match self.submit(room.id, &outgoing, change.clone()).await {
                Ok(seq) => {
                    self.history.record(room.id, seq, None)?;
                    return Ok((seq, updates));
                }
                Err(err) if is_stale(&err) => {}
                Err(err) => return Err(err),
            }
        }
        Err(ClientError::Protocol("the group kept changing: try again".into()))
    }

    /// Creates a room owned by this user and its MLS group.
    ///
    /// # Errors
    /// `name_taken`, `invalid_name` and other server errors.
    pub async fn create_room(&mut self, name: &str, public: bool) -> Result<RoomInfo> {
        let reply = self.client.request(Request::CreateRoom { name: name.to_owned(), public }).await?;
        let Reply::Room { room } = reply else { return Err(unexpected("create_room", &reply)) };
        self.join(&room).await?;
        Ok(room)
    }

    /// Adds every device of each of `users` to the room (owner only in private
    /// rooms): their KeyPackages are claimed [`MAX_CHANGE_USERS`] users per
    /// request and added in commits of whole users, at most
    /// [`MAX_ADD_DEVICES`] devices each, so a thousand people take a few
    /// dozen round trips rather than a thousand commits.
    ///
    /// Users already in the group (once this device has caught up with it)
    /// are left out before anything is claimed and listed in
    /// [`Invited::already_members`]. Users with no device ready to be added
    /// (none has a KeyPackage) are not an error while someone else can be
    /// added: they are listed in [`Invited::unavailable`].
    ///
    /// # Errors
    /// [`ClientError::Username`] or [`ClientError::NoUsers`] before anything
    /// is sent; `not_found` (naming the user) before anything is claimed;
    /// `no_key_packages` when some could not be added and nobody was;
    /// `forbidden` and other server errors. A failure in a later commit leaves
    /// the users of earlier commits added.
    pub async fn invite(&mut self, room: &RoomInfo, users: &[String]) -> Result<Invited> {
        let named = distinct_usernames(users)?;
        let group = room.group_id.0.clone();
        // Caught up first, so the members seen are the group's current ones.
        let caught_up = self.join(room).await?;
        // Leaving out who is in the group already keeps their one-time
        // KeyPackages unclaimed; MLS would refuse their devices a second leaf.
        let in_group: HashSet<String> = self.mls.members(&group)?.into_iter().map(|m| m.user).collect();
        let (already_members, users): (Vec<String>, Vec<String>) =
            named.into_iter().partition(|user| in_group.contains(user));
        let mut invited = Invited { already_members, updates: caught_up, ..Invited::default() };
        for chunk in users.chunks(MAX_CHANGE_USERS) {
            let claimed = self.client.request(Request::ClaimKeyPackages { users: chunk.to_vec() }).await;
            let (packages, unavailable) = match claimed {
                Ok(Reply::KeyPackages { packages, unavailable }) => (packages, unavailable),
                Ok(reply) => return Err(unexpected("claim_key_packages", &reply)),
                Err(err) if err.code() == Some(ErrorCode::NoKeyPackages) => (Vec::new(), chunk.to_vec()),
                Err(err) => return Err(err),
            };
            invited.unavailable.extend(unavailable);
            for batch in add_batches(packages) {
                let change = Change::Add { users: batch.users.clone(), devices: batch.devices };
                let key_packages = batch.key_packages;
                let (_, updates) = self
                    .commit_with_retry(room, change, |mls| Ok(mls.add_members(&group, &key_packages)?))
                    .await?;
                invited.updates.extend(updates);
                invited.added.extend(batch.users);
            }
        }
        if invited.added.is_empty() && !invited.unavailable.is_empty() {
            return Err(ClientError::Server {
                code: ErrorCode::NoKeyPackages,
                message: format!(
                    "no device of {} has a KeyPackage to claim",
                    name_list(&invited.unavailable)
                ),
            });
        }
        if !invited.added.is_empty() {
            invited.updates.push(Update::Membership {
                room: room.name.clone(),
                text: format!("you added {}", name_list(&invited.added)),
            });
        }
        if let Some(text) = invited.already_in(&room.name) {
            invited.updates.push(Update::Membership { room: room.name.clone(), text });
        }
        if !invited.unavailable.is_empty() {
            invited.updates.push(Update::Membership {
                room: room.name.clone(),
                text: format!(
                    "{} could not be added: no device set up yet (no KeyPackage on the server)",
                    name_list(&invited.unavailable)
                ),
            });
        }
        Ok(invited)
    }

    /// Removes every device of `user` from the room.
    ///
    /// # Errors
    /// `forbidden` and other server errors.
    pub async fn remove(&mut self, room: &RoomInfo, user: &str) -> Result<Vec<Update>> {
        let group = room.group_id.0.clone();
        let change = Change::Remove { users: vec![user.to_owned()] };
        let user_owned = user.to_owned();
        let mut updates = self.join(room).await?;
        let (_, caught_up) = self
            .commit_with_retry(room, change, |mls| {
                let leaves: Vec<Identity> =
                    mls.members(&group)?.into_iter().filter(|m| m.user == user_owned).collect();
                if leaves.is_empty() {
                    return Err(ClientError::Protocol(format!("{user_owned} is not in this group")));
                }
                Ok(mls.remove_members(&group, &leaves)?)
            })
            .await?;
        updates.extend(caught_up);
        updates.push(Update::Membership { room: room.name.clone(), text: format!("you removed {user}") });
        Ok(updates)
    }

    /// Removes retired `devices` (their sessions ended) from the room's group.
    ///
    /// # Errors
    /// `forbidden` for a device that is not retired; other server errors.
    pub async fn remove_devices(&mut self, room: &RoomInfo, devices: &[DeviceId]) -> Result<Vec<Update>> {
        let group = room.group_id.0.clone();
        let change = Change::RemoveDevices { devices: devices.to_vec() };
        let wanted = devices.to_vec();
        let mut updates = self.join(room).await?;
        let (_, caught_up) = self
            .commit_with_retry(room, change, |mls| {
                let leaves: Vec<Identity> = mls
                    .members(&group)?
                    .into_iter()
                    .filter(|m| wanted.iter().any(|d| d.0 == m.device))
                    .collect();
                if leaves.len() != wanted.len() {
                    return Err(ClientError::Protocol("a device to remove is not in this group".to_owned()));
                }
                Ok(mls.remove_members(&group, &leaves)?)
            })
            .await?;
        updates.extend(caught_up);
        updates.push(Update::Membership {
            room: room.name.clone(),
            text: format!("you removed signed-out device(s) {}", device_list(devices)),
        });
        Ok(updates)
    }

    /// Leaves a room.
    ///
    /// # Errors
    /// Server errors (the lobby cannot be left).
    pub async fn leave(&mut self, room: &RoomInfo) -> Result<()> {
        self.client.request(Request::Leave { room: room.id }).await?;
        self.mls.forget_group(&room.group_id.0)?;
        Ok(())
    }

    /// Encrypts and sends a text message; returns once the server has stored it.
    ///
    /// # Errors
    /// Server and MLS errors.
    pub async fn send_text(&mut self, room: &RoomInfo, text: &str) -> Result<(StoredMessage, Vec<Update>)> {
        let updates = self.join(room).await?;
        let ciphertext = self.mls.encrypt(&room.group_id.0, &Content::text(text).encode())?;
        let nonce = rand::random::<u64>();
        let reply = self
            .client
            .request(Request::Send { room: room.id, ciphertext: ciphertext.into(), nonce })
            .await?;
        let Reply::Sent { id, seq } = reply else { return Err(unexpected("send", &reply)) };
        let message = StoredMessage {
            id,
            seq,
            room: room.name.clone(),
            sender: self.me.clone(),
            device: self.device,
            text: Some(text.to_owned()),
            sent_at_ms: now_ms(),
        };
        self.history.store_own(room.id, &message)?;
        let mut updates = updates;
        updates.extend(self.remove_leavers().await?);
        Ok((message, updates))
    }

    /// Tells the room's online members that this user is typing: an ephemeral
    /// MLS application message the server relays and never stores. Front ends
    /// send it at most every few seconds while the user types.
    ///
    /// # Errors
    /// Server and MLS errors (`too_fast` when sent too often).
    pub async fn send_typing(&mut self, room: &RoomInfo) -> Result<()> {
        if !self.mls.has_group(&room.group_id.0) {
            return Ok(());
        }
        let ciphertext = self.mls.encrypt(&room.group_id.0, &Content::typing().encode())?;
        self.client.request(Request::Signal { room: room.id, ciphertext: ciphertext.into() }).await?;
        Ok(())
    }

    /// At most `limit` messages of the local history before `before`, oldest
    /// first: the page above the oldest one shown, for scrolling back.
    ///
    /// # Errors
    /// Storage errors.
    pub fn older(&self, room: &RoomInfo, before: Seq, limit: u32) -> Result<Vec<StoredMessage>> {
        self.history.messages_before(room.id, before, limit)
    }

    /// Deletes a message for everyone.
    ///
    /// # Errors
    /// `forbidden` (not yours, not the owner), `not_found`, server errors.
    pub async fn delete(&mut self, room: &RoomInfo, id: MessageId) -> Result<()> {
        self.client.request(Request::Delete { room: room.id, message: id }).await?;
        self.history.remove(room.id, id)?;
        Ok(())
    }

    /// Catches up and returns the last `limit` messages of the room from the
    /// local history, in room order, and the sequence number where this device
    /// joined (messages before it are not readable here).
    ///
    /// # Errors
    /// Server, storage and MLS errors.
    pub async fn history(&mut self, room: &RoomInfo, limit: u32) -> Result<History> {
        // What starting noticed (a room that cannot be used, say) is said first.
        let mut notes: Vec<String> = std::mem::take(&mut self.pending)
            .into_iter()
            .filter_map(|update| match update {
                Update::Membership { room: name, text } => Some(format!("{name}: {text}")),
                _ => None,
            })
            .collect();
        for update in self.join(room).await? {
            if let Update::Membership { text, .. } = &update {
                notes.push(text.clone());
            }
            // A broken group state was dropped while catching up: rejoin now.
            if matches!(update, Update::Membership { .. }) && !self.mls.has_group(&room.group_id.0) {
                self.join(room).await?;
                notes.push("this device rejoined the group by external commit".to_owned());
            }
        }
        let joined = self.history.room(room.id)?.map_or(Seq(0), |r| r.joined);
        Ok(History { messages: self.history.messages(room.id, limit)?, joined, notes })
    }

    /// Fetches and applies every entry after the room's cursor. If the server
    /// says this device is no longer in the room's group because an operator
    /// reset it, joins the new group.
    ///
    /// # Errors
    /// Server, storage and MLS errors.
    pub async fn sync(&mut self, room: RoomId) -> Result<Vec<Update>> {
        let mut updates = self.sync_entries(room).await?;
        updates.extend(self.remove_retired(Some(room)).await?);
        Ok(updates)
    }

    /// [`sync`](Self::sync) without removing retired devices.
    async fn sync_entries(&mut self, room: RoomId) -> Result<Vec<Update>> {
        match self.fetch_and_apply(room).await {
            Err(err) if err.code() == Some(ErrorCode::Forbidden) => {
                let Some(local) = self.history.room(room)? else { return Err(err) };
                let Ok(info) = self.find_by_id(room).await else { return Err(err) };
                if !info.member || info.group_id.0 == local.group_id {
                    return Err(err);
                }
                Box::pin(self.join(&info)).await
            }
            other => other,
        }
    }

    /// Fetches and applies every entry after the room's cursor.
    async fn fetch_and_apply(&mut self, room: RoomId) -> Result<Vec<Update>> {
        let mut updates = Vec::new();
        loop {
            let Some(local) = self.history.room(room)? else { return Ok(updates) };
            let reply =
                self.client.request(Request::Fetch { room, after: local.cursor, limit: MAX_FETCH }).await?;
            let Reply::Log { entries, last_seq, .. } = reply else { return Err(unexpected("fetch", &reply)) };
            // The server may return fewer entries than asked (a size budget):
            // keep fetching until the newest entry is reached.
            let reached = entries.last().map_or(Seq(0), |e| e.seq);
            let empty = entries.is_empty();
            for entry in entries {
                updates.extend(self.apply(&local, entry)?);
            }
            if empty || reached >= last_seq {
                return Ok(updates);
            }
        }
    }

    /// Catches up every room this device knows.
    ///
    /// # Errors
    /// As [`sync`](Self::sync).
    pub async fn sync_all(&mut self) -> Result<Vec<Update>> {
        let mut updates = std::mem::take(&mut self.pending);
        updates.extend(self.accept_welcomes().await?);
        for room in self.history.rooms()? {
            if self.mls.has_group(&room.group_id) {
                let synced = self.sync(room.id).await;
                updates.extend(room_outcome(&room.name, synced)?);
            }
        }
        updates.extend(self.remove_leavers().await?);
        updates.extend(self.remove_retired(None).await?);
        Ok(updates)
    }

    /// Commits the removal of retired devices still in a group (of `only`
    /// that room, or of every room). One that loses its epoch to another
    /// commit stays queued for the next catch-up (unless that commit removed
    /// the device).
    async fn remove_retired(&mut self, only: Option<RoomId>) -> Result<Vec<Update>> {
        let mut by_room: Vec<(RoomId, Vec<DeviceId>)> = Vec::new();
        let (now, later) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|(room, _)| only.is_none_or(|only| only == *room));
        self.retired = later;
        let now: Vec<(RoomId, DeviceId)> = now;
        for (room, device) in now {
            match by_room.iter_mut().find(|(r, _)| *r == room) {
                Some((_, devices)) => devices.push(device),
                None => by_room.push((room, vec![device])),
            }
        }
        let mut updates = Vec::new();
        for (room_id, devices) in by_room {
            let Some(local) = self.history.room(room_id)? else { continue };
            if !self.mls.has_group(&local.group_id) {
                continue;
            }
            let members = self.mls.members(&local.group_id)?;
            let present: Vec<DeviceId> =
                devices.into_iter().filter(|d| members.iter().any(|m| m.device == d.0)).collect();
            if present.is_empty() {
                continue;
            }
            let room = self.find_by_id(room_id).await?;
            match Box::pin(self.remove_devices(&room, &present)).await {
                Ok(done) => updates.extend(done),
                Err(err) if err.code() == Some(ErrorCode::StaleEpoch) => {
                    self.retired.extend(present.into_iter().map(|d| (room_id, d)));
                }
                // Someone else removed them meanwhile, or we may not: fine.
                Err(err) => tracing::info!(room = %local.name, %err, "did not remove retired devices"),
            }
        }
        Ok(updates)
    }

    /// Commits the removal of users who left, if their devices are still in the
    /// group (another member may have done it first: then nothing is left to do).
    async fn remove_leavers(&mut self) -> Result<Vec<Update>> {
        let mut updates = Vec::new();
        for (room_id, user) in std::mem::take(&mut self.leavers) {
            let Some(local) = self.history.room(room_id)? else { continue };
            if !self.mls.has_group(&local.group_id)
                || !self.mls.members(&local.group_id)?.iter().any(|m| m.user == user)
            {
                continue;
            }
            let room = self.find_by_id(room_id).await?;
            match self.remove(&room, &user).await {
                Ok(done) => updates.extend(done),
                // Someone else removed them meanwhile, or we may not: fine.
                Err(err) => tracing::info!(room = %local.name, %user, %err, "did not remove a user who left"),
            }
        }
        Ok(updates)
    }

    async fn find_by_id(&mut self, id: RoomId) -> Result<RoomInfo> {
        self.rooms()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| ClientError::Protocol(format!("room {id} is gone")))
    }

    /// Applies one log entry, exactly once.
    fn apply(&mut self, room: &LocalRoom, entry: LogEntry) -> Result<Vec<Update>> {
        if entry.seq <= room.cursor {
            return Ok(Vec::new());
        }
        let lock = &self.apply_lock;
        lock.lock().map_err(ClientError::Io)?;
        let result = self.apply_locked(room, entry);
        // Closing the file would release the lock too; unlock now so other
        // processes need not wait for this one to exit.
        self.apply_lock.unlock().ok();
        result
    }

    /// [`apply`](Self::apply) under the home's apply lock: re-reads the cursor,
    /// since another process may have applied the entry meanwhile.
    fn apply_locked(&mut self, room: &LocalRoom, entry: LogEntry) -> Result<Vec<Update>> {
        let cursor = self.history.room(room.id)?.map_or(room.cursor, |r| r.cursor);
        if entry.seq <= cursor {
            return Ok(match entry.body {
                EntryBody::Message { .. } => {
                    self.history.message_at(room.id, entry.seq)?.map(Update::Message).into_iter().collect()
                }
                EntryBody::Deleted { message } => {
                    vec![Update::Deleted { room: room.name.clone(), id: message }]
                }
                _ => Vec::new(),
            });
        }
        let group = room.group_id.as_slice();
        let mine = entry.device == self.device;
        let mut updates = Vec::new();
        let message = match entry.body {
            EntryBody::Message { id, ciphertext: Some(ciphertext) } if !mine => {
                let text = match self.mls.process(group, &ciphertext.0) {
                    Ok(Processed::Application { sender, plaintext, .. })
                        if sender.user == entry.sender && sender.device == entry.device.0 =>
                    {
                        Some(Content::decode(&plaintext).map_or_else(
                            || "[a message this version of Conclave cannot show]".to_owned(),
                            |c| c.display_text(),
                        ))
                    }
                    Ok(other) => {
                        tracing::warn!(room = %room.name, seq = %entry.seq, ?other, "message sender does not match its MLS sender");
                        None
                    }
                    Err(err) => {
                        tracing::warn!(room = %room.name, seq = %entry.seq, %err, "cannot decrypt a message");
                        None
                    }
                };
                let stored = StoredMessage {
                    id,
                    seq: entry.seq,
                    room: room.name.clone(),
                    sender: entry.sender.clone(),
                    device: entry.device,
                    text,
                    sent_at_ms: entry.at_ms,
                };
                updates.push(Update::Message(stored.clone()));
                Some(stored)
            }
            EntryBody::Message { .. } => None,
            EntryBody::Commit { epoch, change, commit } => {
                updates.extend(self.apply_commit(
                    room,
                    &entry.sender,
                    entry.device,
                    epoch,
                    &change,
                    &commit.0,
                )?);
                None
            }
            EntryBody::Deleted { message } => {
                self.history.remove(room.id, message)?;
                updates.push(Update::Deleted { room: room.name.clone(), id: message });
                None
            }
            EntryBody::Left { user } => {
                updates.push(Update::Membership { room: room.name.clone(), text: format!("{user} left") });
                self.leavers.push((room.id, user));
                None
            }
            EntryBody::DeviceLeft { user, device } => {
                updates.push(Update::Membership {
                    room: room.name.clone(),
                    text: format!("{user}'s device {device} was signed out"),
                });
                if device != self.device {
                    self.retired.push((room.id, device));
                }
                None
            }
        };
        self.history.record(room.id, entry.seq, message.as_ref())?;
        Ok(updates)
    }

    fn apply_commit(
        &mut self,
        room: &LocalRoom,
        sender: &str,
        device: DeviceId,
        epoch: u64,
        change: &Change,
        commit: &[u8],
    ) -> Result<Vec<Update>> {
        let group = room.group_id.as_slice();
        if matches!(change, Change::Create {}) || !self.mls.has_group(group) {
            return Ok(Vec::new());
        }
        let current = self.mls.epoch(group)?;
        if epoch < current {
            // Made before this device joined, or this device's own commit that was
            // merged when the server accepted it.
            return Ok(Vec::new());
        }
        if device == self.device {
            // Our own commit, accepted while we were away before we could merge it.
            self.mls.confirm(group)?;
            return Ok(Vec::new());
        }
        let processed = match self.mls.process(group, commit) {
            Ok(processed) => processed,
            Err(err) => {
                // This device cannot follow the group any more (lost or damaged
                // state): it leaves its broken copy and rejoins by external commit
                // at the next opportunity. Messages in between stay unreadable here.
                tracing::warn!(room = %room.name, %err, "group state broken; rejoining");
                self.mls.forget_group(group)?;
                return Ok(vec![Update::Membership {
                    room: room.name.clone(),
                    text: "this device's encryption state for the room was broken; it rejoins, and \
                           messages sent in between are not readable on it"
                        .to_owned(),
                }]);
            }
        };
        match processed {
            Processed::Commit { added, removed, removed_me, .. } => {
                let mut updates = Vec::new();
                if !declared_matches(sender, change, &added, &removed) {
                    // The server enforced policy on what was declared; the MLS
                    // content did something else. Members must know.
                    tracing::warn!(room = %room.name, %sender, ?change, ?added, ?removed, "a commit does not do what it declared");
                    updates.push(Update::Membership {
                        room: room.name.clone(),
                        text: format!(
                            "WARNING: a group change by {sender} did not match what it declared to the server \
                             (added {}, removed {}); check the member list",
                            names(&added),
                            names(&removed)
                        ),
                    });
                }
                let name = room.name.clone();
                let text = describe(sender, change, &added, &removed);
                if !text.is_empty() {
                    updates.push(Update::Membership { room: name.clone(), text });
                }
                if removed_me {
                    self.mls.forget_group(group)?;
                    updates.push(Update::Removed { room: name });
                }
                Ok(updates)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Joins every room this device was welcomed into.
    async fn accept_welcomes(&mut self) -> Result<Vec<Update>> {
        let reply = self.client.request(Request::Welcomes {}).await?;
        let Reply::Welcomes { welcomes } = reply else { return Err(unexpected("welcomes", &reply)) };
        let mut updates = Vec::new();
        for welcome in welcomes {
            updates.extend(self.accept_welcome(&welcome)?);
        }
        Ok(updates)
    }

    fn accept_welcome(&mut self, welcome: &WelcomeInfo) -> Result<Vec<Update>> {
        if self.mls.has_group(&welcome.room.group_id.0) {
            return Ok(Vec::new());
        }
        self.mls.join_welcome(&welcome.welcome.0, &welcome.ratchet_tree.0)?;
        self.history.upsert_room(&welcome.room)?;
        self.history.mark_joined(welcome.room.id, welcome.seq)?;
        Ok(vec![Update::Joined { room: welcome.room.name.clone() }])
    }

    /// Waits for the next server event and applies it. Cancel-safe only between
    /// events.
    ///
    /// # Errors
    /// Connection errors (the caller reconnects), storage and MLS errors.
    pub async fn next_updates(&mut self) -> Result<Vec<Update>> {
        if !self.pending.is_empty() {
            return Ok(std::mem::take(&mut self.pending));
        }
        let event = self.client.next_event().await?;
        match event {
            Event::Entry { room, entry } => {
                let Some(local) = self.history.room(room)? else { return Ok(Vec::new()) };
                if !self.mls.has_group(&local.group_id) {
                    return Ok(Vec::new());
                }
                if entry.seq.0 == local.cursor.0 + 1 {
                    self.apply(&local, entry)
                } else if entry.seq > local.cursor {
                    self.sync(room).await
                } else {
                    Ok(Vec::new())
                }
            }
            Event::Signal { room, sender, device, after, ciphertext } => {
                self.signal(room, &sender, device, after, &ciphertext.0)
            }
            Event::Welcome { welcome } => self.accept_welcome(&welcome),
            Event::Presence { username, online } => {
                Ok(vec![Update::Presence(UserPresence { username, online })])
            }
            Event::Resync => self.sync_all().await,
            Event::LastResortUsed { key_packages_left } => {
                self.replenish_key_packages(key_packages_left, true).await?;
                Ok(Vec::new())
            }
            Event::SessionEnded { reason } => Err(ClientError::SessionEnded { reason }),
            Event::ServerShutdown => Err(ClientError::ServerShutdown),
            Event::Unknown => Ok(Vec::new()),
        }
    }

    /// Reads an ephemeral signal, only when this device has applied the room's
    /// log up to where the signal was relayed (else it would decrypt it ahead
    /// of stored messages of the same sender and lose them). Signals that cannot
    /// be read are dropped: they carry nothing that must arrive.
    fn signal(
        &mut self,
        room: RoomId,
        sender: &str,
        device: DeviceId,
        after: Seq,
        ciphertext: &[u8],
    ) -> Result<Vec<Update>> {
        let Some(local) = self.history.room(room)? else { return Ok(Vec::new()) };
        if local.cursor < after || device == self.device || !self.mls.has_group(&local.group_id) {
            return Ok(Vec::new());
        }
        self.apply_lock.lock().map_err(ClientError::Io)?;
        let processed = self.mls.process_ephemeral(&local.group_id, ciphertext);
        self.apply_lock.unlock().ok();
        let typing = match processed {
            Ok((identity, plaintext)) => {
                identity.user == sender
                    && identity.device == device.0
                    && matches!(
                        Content::decode(&plaintext).map(|c| c.body),
                        Some(crate::content::Body::Typing {})
                    )
            }
            Err(err) => {
                tracing::debug!(room = %local.name, %err, "dropped an unreadable signal");
                false
            }
        };
        Ok(if typing {
            vec![Update::Typing { room: local.name, user: sender.to_owned() }]
        } else {
            Vec::new()
        })
    }

    /// All users and who is online.
    ///
    /// # Errors
    /// Server errors.
    pub async fn users(&mut self) -> Result<Vec<UserPresence>> {
        let reply = self.client.request(Request::Users {}).await?;
        let Reply::Users { users } = reply else { return Err(unexpected("users", &reply)) };
        Ok(users)
    }

    /// The room's members.
    ///
    /// # Errors
    /// Server errors.
    pub async fn members(&mut self, room: &RoomInfo) -> Result<Vec<conclave_proto::MemberInfo>> {
        let reply = self.client.request(Request::Members { room: room.id }).await?;
        let Reply::Members { members } = reply else { return Err(unexpected("members", &reply)) };
        Ok(members)
    }
}

/// The updates of an action on one room, or — when it failed for that room only
/// ([`ClientError::is_room_level`]) — a line saying the room cannot be used now,
/// so that the other rooms go on working. Other failures are returned.
fn room_outcome(room: &str, outcome: Result<Vec<Update>>) -> Result<Vec<Update>> {
    match outcome {
        Ok(updates) => Ok(updates),
        Err(err) if err.is_room_level() => {
            tracing::warn!(%room, %err, "a room cannot be used now");
            let what = if err.code() == Some(ErrorCode::GroupBroken) {
                "its encryption group is broken on the server: ask the server's operator to run \
                 `conclave admin repair-room`"
                    .to_owned()
            } else {
                let mut text = err.to_string();
                let mut source = std::error::Error::source(&err);
                while let Some(cause) = source {
                    text = format!("{text}: {cause}");
                    source = cause.source();
                }
                text
            };
            Ok(vec![Update::Membership {
                room: room.to_owned(),
                text: format!("this room cannot be used now: {what}"),
            }])
        }
        Err(err) => Err(err),
    }
}

fn is_stale(err: &ClientError) -> bool {
    err.code() == Some(ErrorCode::StaleEpoch)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether the MLS effect of a commit is what its sender declared to the server.
fn declared_matches(sender: &str, change: &Change, added: &[Identity], removed: &[Identity]) -> bool {
    fn users(ids: &[Identity]) -> Vec<String> {
        let mut users: Vec<String> = ids.iter().map(|i| i.user.to_ascii_lowercase()).collect();
        users.sort_unstable();
        users.dedup();
        users
    }
    fn declared(names: &[String]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
    match change {
        Change::Create {} | Change::Update {} => added.is_empty() && removed.is_empty(),
        // An external join adds the sender's own device, and may remove only an
        // older leaf of that same user (a device rejoining).
        Change::Join {} => added.iter().all(|a| a.user == sender) && removed.iter().all(|r| r.user == sender),
        Change::Add { users: names, .. } => removed.is_empty() && users(added) == declared(names),
        Change::Remove { users: names } => added.is_empty() && users(removed) == declared(names),
        Change::RemoveDevices { devices } => {
            let mut gone: Vec<i64> = removed.iter().map(|r| r.device).collect();
            let mut named: Vec<i64> = devices.iter().map(|d| d.0).collect();
            gone.sort_unstable();
            named.sort_unstable();
            added.is_empty() && gone == named
        }
    }
}

fn device_list(devices: &[DeviceId]) -> String {
    devices.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn names(ids: &[Identity]) -> String {
    if ids.is_empty() {
        return "nobody".to_owned();
    }
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// A sentence for people about a membership change.
fn describe(sender: &str, change: &Change, added: &[Identity], removed: &[Identity]) -> String {
    match change {
        Change::Join {} => format!("{sender} joined (new device {})", added.first().map_or(0, |a| a.device)),
        Change::Add { users, .. } => format!("{sender} added {}", name_list(users)),
        Change::Remove { users } => format!("{sender} removed {}", name_list(users)),
        Change::RemoveDevices { .. } => format!("{sender} removed signed-out device(s) {}", names(removed)),
        Change::Create {} | Change::Update {} if removed.is_empty() => String::new(),
        Change::Create {} | Change::Update {} => format!("{sender} removed {} device(s)", removed.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_proto::Bytes;

    fn package(user: &str, device: i64) -> ClaimedKeyPackage {
        ClaimedKeyPackage { user: user.into(), device: DeviceId(device), key_package: Bytes(vec![0; 4]) }
    }

    #[test]
    fn invitations_are_committed_in_whole_users_of_bounded_size() {
        let mut packages: Vec<ClaimedKeyPackage> = (0..150).map(|i| package(&format!("u{i}"), i)).collect();
        packages.splice(1..1, (0..MAX_ADD_DEVICES as i64).map(|d| package("u0", 1_000 + d)));
        let batches = add_batches(packages);
        let shape: Vec<(usize, usize)> = batches.iter().map(|b| (b.users.len(), b.devices.len())).collect();
        assert_eq!(shape, [(1, MAX_ADD_DEVICES + 1), (100, 100), (49, 49)]);
        assert_eq!(batches[1].users[0], "u1");
        assert!(batches.iter().all(|b| b.key_packages.len() == b.devices.len()));
    }

    #[test]
    fn names_are_normalized_once_each_in_order() {
        let named = ["Bob", "@carol", "bob", "dave"].map(String::from);
        assert_eq!(distinct_usernames(&named).unwrap(), ["bob", "carol", "dave"]);
        assert!(matches!(distinct_usernames(&["b o b".into()]), Err(ClientError::Username { .. })));
        assert!(matches!(distinct_usernames(&[]), Err(ClientError::NoUsers)));
    }

    #[test]
    fn long_name_lists_are_cut_short() {
        let names = |n: usize| (1..=n).map(|i| format!("u{i}")).collect::<Vec<_>>();
        assert_eq!(name_list(&names(1)), "u1");
        assert_eq!(name_list(&names(2)), "u1 and u2");
        assert_eq!(name_list(&names(5)), "u1, u2, u3, u4 and u5");
        assert_eq!(name_list(&names(100)), "u1, u2, u3, u4 and 96 others");
    }

    #[test]
    fn members_already_in_are_named_with_the_right_verb() {
        let invited = |already: &[&str]| Invited {
            already_members: already.iter().map(ToString::to_string).collect(),
            ..Invited::default()
        };
        assert_eq!(invited(&[]).already_in("team"), None);
        assert_eq!(invited(&["bob"]).already_in("team").as_deref(), Some("bob is already in team"));
        assert_eq!(
            invited(&["bob", "carol"]).already_in("team").as_deref(),
            Some("bob and carol are already in team")
        );
    }
}
