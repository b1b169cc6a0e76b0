//! Devices: binding a connection to one, its KeyPackages, its pending Welcomes.

use super::{Caller, Ctx, Grant, room::room_info};
use crate::{
    audit::AuditAction,
    clock,
    config::DEVICES_PER_ACCOUNT_CEILING,
    error::RequestError,
    fanout::{self, Registration},
    quota::Quota,
    store::{DeviceRecord, StoreError},
    wire::Wire,
};
use conclave_proto::{
    Bytes, ClaimedKeyPackage, DeviceId, ErrorCode, Event, Reply, UserInfo, WelcomeInfo,
    limits::{MAX_CHANGE_USERS, MAX_KEY_PACKAGE_BYTES, MAX_KEY_PACKAGES_PER_UPLOAD},
};
use serde_json::json;
use std::sync::Arc;

/// Most devices one account may register whatever the configuration says
/// (`max_devices_per_account` is at most this): what an `add` commit's device
/// list is sized for.
pub(crate) const MAX_DEVICES_PER_USER: usize = DEVICES_PER_ACCOUNT_CEILING as usize;

/// Signature public keys are at least this long (Ed25519: 32 bytes) …
const MIN_SIGNATURE_KEY_BYTES: usize = 16;
/// … and at most this long (uncompressed P-521: 133 bytes), with room to spare.
const MAX_SIGNATURE_KEY_BYTES: usize = 256;

/// How often a bind re-reads its rooms when membership changed meanwhile.
const SUBSCRIBE_ATTEMPTS: usize = 5;

/// # `device`
///
/// Registers a new device of the caller with its MLS signature key, or resumes
/// one (id and key must both match). The server binds the key to the account:
/// that binding is what other clients trust when they see the key in a group.
/// Registering a key that is already the caller's resumes that device, so a
/// retried registration is harmless. An account has at most
/// `max_devices_per_account` devices that are not retired, however many
/// registrations race. A retired device ([`super::retirement`]) never binds
/// again: its client starts a new device.
pub(crate) async fn bind(
    ctx: &Ctx<'_>,
    grant: &Grant,
    device_id: Option<DeviceId>,
    signature_key: &[u8],
) -> Result<(Reply, DeviceId), RequestError> {
    if !(MIN_SIGNATURE_KEY_BYTES..=MAX_SIGNATURE_KEY_BYTES).contains(&signature_key.len()) {
        return Err(RequestError::Invalid("a signature key has 16 to 256 bytes"));
    }
    let user = &grant.user;
    let store = &ctx.shared.store;
    let owned = |record: Option<DeviceRecord>| match record {
        Some(d) if d.user == user.id && d.signature_key == signature_key && d.retired => {
            Err(RequestError::DeviceRetired)
        }
        Some(d) if d.user == user.id && d.signature_key == signature_key => Ok(d.id),
        _ => Err(RequestError::DeviceMismatch),
    };
    let device = match device_id {
        Some(id) => owned(store.device(id).await?)?,
        None => match store.device_by_key(signature_key).await? {
            Some(existing) => owned(Some(existing))?,
            None => {
                let max = ctx.shared.quotas.totals.devices;
                match store
                    .create_device(user.id, signature_key, &grant.session_id, clock::now_secs(), max)
                    .await
                {
                    Ok(None) => return Err(ctx.shared.quotas.exceeded(Quota::Devices(max))),
                    Ok(Some(id)) => {
                        ctx.audit(Some(&user.username), AuditAction::DeviceAdded, json!({ "device": id.0 }))
                            .await?;
                        tracing::info!(user = %user.username, device = %id, "device registered");
                        id
                    }
                    // The same key registered concurrently on another connection.
                    Err(StoreError::Conflict) => owned(store.device_by_key(signature_key).await?)?,
                    Err(err) => return Err(err.into()),
                }
            }
        },
    };
    if !store.note_bound(device, &grant.session_id, clock::now_secs()).await? {
        return Err(RequestError::DeviceRetired);
    }
    let (key_packages_left, last_resort_used) = store.key_package_status(device).await?;
    Ok((Reply::Device { device_id: device, key_packages_left, last_resort_used }, device))
}

/// Registers a freshly bound connection with the fan-out: subscribes it to the
/// rooms its device is in and sends its pending Welcomes. Entries stored before
/// this returns reach the client through `fetch` from its cursor.
pub(crate) async fn attach(
    ctx: &Ctx<'_>,
    user: &UserInfo,
    device: DeviceId,
    wire: &Arc<Wire>,
) -> Result<Registration, RequestError> {
    let store = &ctx.shared.store;
    // Registered before the rooms are read, so a membership change committed in
    // between reaches this connection either way.
    let registration = ctx.shared.fanout.register(user.id, &user.username, device, wire);
    let mut subscribed = false;
    for _ in 0..SUBSCRIBE_ATTEMPTS {
        let seen = registration.version();
        let rooms = store.rooms_of_device(device).await?;
        if registration.subscribe(&rooms, seen) {
            subscribed = true;
            break;
        }
    }
    if !subscribed {
        return Err(RequestError::Protocol(
            ErrorCode::Unavailable,
            "room memberships are changing quickly: bind again",
        ));
    }
    for welcome in pending_welcomes(ctx, user, device).await? {
        registration.push(&fanout::encode(Event::Welcome { welcome }));
    }
    Ok(registration)
}

async fn pending_welcomes(
    ctx: &Ctx<'_>,
    user: &UserInfo,
    device: DeviceId,
) -> Result<Vec<WelcomeInfo>, RequestError> {
    let store = &ctx.shared.store;
    let mut welcomes = Vec::new();
    for welcome in store.welcomes_for(device).await? {
        let Some(room) = store.room(user.id, welcome.room).await? else { continue };
        welcomes.push(WelcomeInfo {
            room: room_info(&room, user.id),
            seq: welcome.seq,
            welcome: Bytes(welcome.welcome),
            ratchet_tree: Bytes(welcome.ratchet_tree),
        });
    }
    Ok(welcomes)
}

/// # `welcomes`
///
/// The Welcomes waiting for this device, oldest first. A Welcome stays until the
/// device acts in its room (`commit`, `send` or `fetch` there) or 30 days pass.
pub(crate) async fn welcomes(ctx: &Ctx<'_>, me: &Caller<'_>) -> Result<Reply, RequestError> {
    Ok(Reply::Welcomes { welcomes: pending_welcomes(ctx, me.user, me.device).await? })
}

/// # `upload_key_packages`
///
/// Stores one-time KeyPackages for this device (all or none), and replaces its
/// last-resort package when one is given. The server never parses them. A
/// device holds at most `max_key_packages_per_device` one-time packages and
/// `max_key_package_bytes_per_device` bytes of packages.
pub(crate) async fn upload_key_packages(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    key_packages: Vec<Bytes>,
    last_resort: Option<Bytes>,
) -> Result<Reply, RequestError> {
    if key_packages.is_empty() && last_resort.is_none() {
        return Err(RequestError::Invalid("no KeyPackage to upload"));
    }
    if key_packages.len() > MAX_KEY_PACKAGES_PER_UPLOAD {
        return Err(RequestError::Invalid("at most 100 KeyPackages per upload"));
    }
    let all = key_packages.iter().chain(last_resort.as_ref());
    for package in all {
        if package.0.is_empty() {
            return Err(RequestError::Invalid("a KeyPackage is empty"));
        }
        if package.0.len() > MAX_KEY_PACKAGE_BYTES {
            return Err(RequestError::TooLarge("a KeyPackage is at most 16 KiB"));
        }
    }
    let packages: Vec<Vec<u8>> = key_packages.into_iter().map(|p| p.0).collect();
    let quotas = &ctx.shared.quotas;
    let stored = ctx
        .shared
        .store
        .add_key_packages(
            me.device,
            &packages,
            last_resort.as_ref().map(|p| p.0.as_slice()),
            quotas.totals.key_packages,
            quotas.totals.key_package_bytes,
        )
        .await?;
    match stored {
        Ok(_) => Ok(Reply::Done),
        Err(quota) => Err(quotas.exceeded(quota)),
    }
}

/// # `claim_key_packages`
///
/// One KeyPackage for each device of each user named, to add them to a group
/// in one commit: a one-time package (never handed out twice) or, when none is
/// left, the device's last-resort package. Every name must be an account
/// before anything is claimed, so a typo costs nobody a package. Each claim
/// uses up another user's packages, so claims are limited per claimer (users
/// claimed) and per claimer and claimed user, and the one-time packages of
/// each user per hour, across all claimers: a budget for their contacts and a
/// much smaller one for strangers ([`crate::quota`]). A claim over its budget
/// gets last-resort packages, so it still adds the user. When a device's
/// last-resort package is handed out for the first time since it was
/// uploaded, the device's connections are told (`last_resort_used`), and
/// upload a fresh one.
pub(crate) async fn claim_key_packages(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    users: &[String],
) -> Result<Reply, RequestError> {
    let shared = ctx.shared;
    if !(1..=MAX_CHANGE_USERS).contains(&users.len()) {
        return Err(RequestError::Invalid("a claim names 1 to 100 users"));
    }
    let named = super::named_users(&shared.store, users).await?;
    let claimer = me.user.id;
    let count = u32::try_from(named.len()).unwrap_or(u32::MAX);
    if !shared.claim_limiter.allow_n(&claimer, count)
        || !named.iter().all(|(user, _)| shared.claim_pair_limiter.allow(&(claimer, *user)))
    {
        return Err(RequestError::TooFast("KeyPackage claims"));
    }
    let targets: Vec<_> = named.iter().map(|(user, _)| *user).collect();
    let contacts = shared.store.contacts_among(claimer, &targets).await?;
    let mut packages = Vec::new();
    let mut unavailable = Vec::new();
    for (user, name) in named {
        let before = packages.len();
        let contact = user == claimer || contacts.contains(&user);
        let one_time = shared.quotas.one_time_claim(user, contact);
        for device in shared.store.devices_of(user).await? {
            let Some(claimed) = shared.store.claim_key_package(device, one_time).await? else { continue };
            if claimed.last_resort {
                shared.metrics.last_resort_claims.inc();
            }
            if claimed.first_use {
                let key_packages_left = shared.store.key_packages_left(device).await?;
                shared.fanout.to_device(device, &fanout::encode(Event::LastResortUsed { key_packages_left }));
            }
            packages.push(ClaimedKeyPackage { user: name.clone(), device, key_package: Bytes(claimed.data) });
        }
        if packages.len() == before {
            unavailable.push(name);
        }
    }
    if packages.is_empty() {
        return Err(RequestError::NoKeyPackages);
    }
    Ok(Reply::KeyPackages { packages, unavailable })
}
