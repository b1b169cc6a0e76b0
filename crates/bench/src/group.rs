//! Members and their MLS groups: the setup every messaging scenario shares.
//!
//! Each member is a real device: a [`Peer`] bound with `device` to the Ed25519
//! key of its own in-memory [`MlsState`], with a KeyPackage uploaded to the
//! server. A room's owner creates the MLS group and adds the others in commits
//! of at most [`MAX_CHANGE_USERS`] users, each with its Welcome, exactly as the
//! reference client does; the server sees the same requests either way.
//!
//! Only *full* members keep their MLS state, accept their Welcome and follow
//! later commits: the senders (who must encrypt) and the members that verify
//! content. The others are *passive*: their device is in the group (so the server
//! delivers to them) but they never decrypt, which keeps the bench's own CPU for
//! reading frames. A Welcome into a 1,000-member group costs a client a
//! verification of the whole ratchet tree, so doing it a thousand times would
//! dominate setup without changing what the server does.
//!
//! KeyPackages go through the server: each member uploads one
//! (`upload_key_packages`), and the owner claims those of each commit's users in
//! one `claim_key_packages`, as the reference client's invite does.

use crate::{peer::Peer, population::User, server::Target};
use anyhow::{Context, Result, bail};
use conclave_client::mls::{MlsState, Outgoing};
use conclave_proto::{
    Bytes, Change, DeviceId, EntryBody, Reply, Request, RoomId, RoomInfo, Seq,
    limits::{MAX_CHANGE_USERS, MAX_FETCH},
};
use futures_util::{StreamExt, stream};

/// Members set up at once (connect, bind, make and upload a KeyPackage).
const SETUP_CONCURRENCY: usize = 32;

/// One device taking part in a scenario.
#[derive(Debug)]
pub struct Member {
    /// Username.
    pub name: String,
    /// Its connection, bound to the device.
    pub peer: Peer,
    /// Its device id.
    pub device: DeviceId,
    /// Its MLS state: kept by full members only.
    pub mls: Option<MlsState>,
}

/// A room with its MLS group, as the scenarios use it.
#[derive(Debug, Clone)]
pub struct Room {
    /// Server id.
    pub id: RoomId,
    /// MLS group id.
    pub group_id: Vec<u8>,
    /// The newest entry when setup ended: measurement counts entries after it.
    pub setup_seq: Seq,
}

/// Connects every user, binds a device, and uploads one KeyPackage.
/// `full(i)` says whether member `i` keeps its MLS state.
///
/// # Errors
/// The first member that fails.
pub async fn connect_members(
    target: &Target,
    users: &[User],
    full: impl Fn(usize) -> bool,
) -> Result<Vec<Member>> {
    let results: Vec<Result<Member>> = stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let keep = full(i);
            async move {
                connect_member(target, user, keep).await.with_context(|| format!("member {}", user.name))
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn connect_member(target: &Target, user: &User, keep_mls: bool) -> Result<Member> {
    let mut peer = Peer::connect(target, &user.token).await?;
    let mut mls = MlsState::in_memory()?;
    let reply = peer
        .call(Request::Device { device_id: None, signature_key: Bytes(mls.signature_public_key()?) })
        .await?;
    let Reply::Device { device_id, .. } = reply else { bail!("unexpected answer to `device`") };
    mls.set_identity(conclave_client::mls::Identity { user: user.name.clone(), device: device_id.0 })?;
    let key_packages = mls.key_packages(1, false)?;
    peer.call(Request::UploadKeyPackages {
        key_packages: key_packages.into_iter().map(Bytes).collect(),
        last_resort: None,
    })
    .await?;
    Ok(Member { name: user.name.clone(), peer, device: device_id, mls: keep_mls.then_some(mls) })
}

/// Makes `owner` create the MLS group of `room` (which it just created or
/// opened) and add every member of `others`, in commits of at most
/// [`MAX_CHANGE_USERS`] users. Then every full member of `others` joins from
/// its Welcome and catches up on the commits after it.
///
/// # Errors
/// Refused commits, MLS failures.
pub async fn build_group(owner: &mut Member, others: &mut [Member], room: &RoomInfo) -> Result<Room> {
    let group_id = room.group_id.0.clone();
    let mls = owner.mls.as_ref().context("the owner must be a full member")?;
    let state = mls.create_group(&group_id)?;
    let create = Outgoing::creation(&group_id, state);
    let mut last = commit(&mut owner.peer, room.id, &create, Change::Create {}).await?;
    for batch in others.chunks(MAX_CHANGE_USERS) {
        let users: Vec<String> = batch.iter().map(|m| m.name.clone()).collect();
        let reply = owner.peer.call(Request::ClaimKeyPackages { users: users.clone() }).await?;
        let Reply::KeyPackages { packages, unavailable } = reply else {
            bail!("unexpected answer to `claim_key_packages`")
        };
        if !unavailable.is_empty() || packages.len() != batch.len() {
            bail!("no KeyPackage of {unavailable:?}, or more than one device per member");
        }
        let (devices, key_packages): (Vec<DeviceId>, Vec<Vec<u8>>) =
            packages.into_iter().map(|p| (p.device, p.key_package.0)).unzip();
        let outgoing = mls.add_members(&group_id, &key_packages)?;
        let change = Change::Add { users, devices };
        match commit(&mut owner.peer, room.id, &outgoing, change).await {
            Ok(seq) => {
                mls.confirm(&group_id)?;
                last = seq;
            }
            Err(err) => {
                mls.discard(&group_id)?;
                return Err(err);
            }
        }
    }
    let joined: Vec<Result<()>> = stream::iter(others.iter_mut().filter(|m| m.mls.is_some()))
        .map(|member| async move { join_from_welcome(member, room.id, last).await })
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    joined.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(Room { id: room.id, group_id, setup_seq: last })
}

/// Sends one commit; returns its sequence number.
async fn commit(peer: &mut Peer, room: RoomId, outgoing: &Outgoing, change: Change) -> Result<Seq> {
    let reply = peer
        .call(Request::Commit {
            room,
            epoch: outgoing.epoch,
            change,
            commit: Bytes(outgoing.commit.clone()),
            group_info: Bytes(outgoing.group_info.clone()),
            ratchet_tree: Bytes(outgoing.ratchet_tree.clone()),
            welcome: outgoing.welcome.clone().map(Bytes),
        })
        .await?;
    let Reply::Committed { seq, .. } = reply else { bail!("unexpected answer to `commit`") };
    Ok(seq)
}

/// A full member joins from its Welcome, then fetches and processes the
/// commits up to `last` (the final commit of setup).
async fn join_from_welcome(member: &mut Member, room: RoomId, last: Seq) -> Result<()> {
    let mls = member.mls.as_ref().context("not a full member")?;
    let welcome = match member.peer.welcomes.iter().position(|w| w.room.id == room) {
        Some(i) => member.peer.welcomes.swap_remove(i),
        None => {
            let reply = member.peer.call(Request::Welcomes {}).await?;
            let Reply::Welcomes { welcomes } = reply else { bail!("unexpected answer to `welcomes`") };
            welcomes.into_iter().find(|w| w.room.id == room).context("no Welcome")?
        }
    };
    let group_id = mls.join_welcome(&welcome.welcome.0, &welcome.ratchet_tree.0)?;
    let mut cursor = welcome.seq;
    while cursor < last {
        let reply = member.peer.call(Request::Fetch { room, after: cursor, limit: MAX_FETCH }).await?;
        let Reply::Log { entries, .. } = reply else { bail!("unexpected answer to `fetch`") };
        if entries.is_empty() {
            bail!("the room log ended at {cursor} before {last}");
        }
        for entry in entries {
            if entry.seq <= cursor {
                continue;
            }
            cursor = entry.seq;
            if let EntryBody::Commit { commit, .. } = entry.body {
                mls.process(&group_id, &commit.0)
                    .with_context(|| format!("{} processing commit {}", member.name, entry.seq))?;
            }
        }
    }
    Ok(())
}

/// Creates a private room owned by `owner`.
///
/// # Errors
/// Server refusals.
pub async fn create_room(owner: &mut Member, name: &str) -> Result<RoomInfo> {
    let reply = owner.peer.call(Request::CreateRoom { name: name.to_owned(), public: false }).await?;
    let Reply::Room { room } = reply else { bail!("unexpected answer to `create_room`") };
    Ok(room)
}

/// Opens the direct conversation of `owner` with `other`.
///
/// # Errors
/// Server refusals.
pub async fn open_direct(owner: &mut Member, other: &str) -> Result<RoomInfo> {
    let reply = owner.peer.call(Request::OpenDirect { username: other.to_owned() }).await?;
    let Reply::Room { room } = reply else { bail!("unexpected answer to `open_direct`") };
    Ok(room)
}
