//! Devices whose session ended: listing a user's devices, removing one, and
//! retiring the devices of a session that ends.
//!
//! A device is retired when the session it was last bound with ends (`logout`,
//! `revoke_session`) or when its owner removes it from another device
//! (`remove_device`). A retired device never binds again, its KeyPackages and
//! pending Welcomes are deleted, it stops counting toward the device quota,
//! and every room whose group holds it gets a `device_left` entry: the next
//! member to commit there removes it (`remove_devices`), so it cannot read
//! what is sent afterwards even with its keys.

use super::{Ctx, Grant};
use crate::{
    audit::AuditAction,
    clock,
    error::RequestError,
    fanout::{self, Delta},
    store::Retiring,
};
use conclave_proto::{
    DeviceId, DeviceInfo, EntryBody, Event, LogEntry, Reply, UserInfo, event::SessionEndReason,
};
use serde_json::json;

/// # `list_devices`
///
/// The caller's devices that are not retired; the current one is the device
/// this connection is bound to or, for a connection bound to none (the CLI),
/// the device last bound with its session.
pub(crate) async fn list(
    ctx: &Ctx<'_>,
    grant: &Grant,
    current: Option<DeviceId>,
) -> Result<Reply, RequestError> {
    let devices = ctx.shared.store.device_listing(grant.user.id, &grant.session_id).await?;
    let devices = devices
        .into_iter()
        .map(|d| DeviceInfo {
            current: current.map_or(d.this_session, |bound| bound == d.id),
            id: d.id,
            created_at: d.created_at,
            last_bound_at: d.last_bound_at,
            client: d.client,
        })
        .collect();
    Ok(Reply::Devices { devices })
}

/// # `remove_device`
///
/// Retires one of the caller's other devices, ending the session it was last
/// bound with (its connections close).
pub(crate) async fn remove(
    ctx: &Ctx<'_>,
    grant: &Grant,
    current: Option<DeviceId>,
    device: DeviceId,
) -> Result<Reply, RequestError> {
    let store = &ctx.shared.store;
    let record = store
        .device(device)
        .await?
        .filter(|d| d.user == grant.user.id && !d.retired)
        .ok_or(RequestError::NotFound("no such device of yours"))?;
    if current == Some(device) || record.session.as_ref() == Some(&grant.session_id) {
        return Err(RequestError::Invalid("this is the device of this session: log out instead"));
    }
    retire(ctx, &grant.user, Retiring::Device(device)).await?;
    if let Some(session) = record.session
        && store.end_session(grant.user.id, &session, clock::now_secs()).await?
    {
        store.revoke_device_cookie_of(&session).await?;
        ctx.audit(Some(&grant.user.username), AuditAction::SessionRevoked, json!({ "session": session.0 }))
            .await?;
        ctx.shared.live.end(&session, SessionEndReason::Revoked);
        retire(ctx, &grant.user, Retiring::BoundWith(&session)).await?;
    }
    Ok(Reply::Done)
}

/// Retires `user`'s devices that `which` names and asks the members of every
/// group holding one of them to remove it.
pub(crate) async fn retire(ctx: &Ctx<'_>, user: &UserInfo, which: Retiring<'_>) -> Result<(), RequestError> {
    let shared = ctx.shared;
    for device in shared.store.retire_devices(user.id, which, clock::now_secs()).await? {
        ctx.audit(Some(&user.username), AuditAction::DeviceRetired, json!({ "device": device.0 })).await?;
        tracing::info!(user = %user.username, %device, "device retired");
        let rooms = shared.store.groups_holding(device).await?;
        if rooms.is_empty() {
            continue;
        }
        let at_ms = clock::now_ms();
        let turns = shared.fanout.turns(rooms.iter().copied()).await;
        for (room, seq) in shared.store.announce_device_left(user.id, device, &rooms, at_ms).await? {
            let entry = LogEntry {
                seq,
                at_ms,
                sender: user.username.clone(),
                device,
                body: EntryBody::DeviceLeft { user: user.username.clone(), device },
            };
            shared.fanout.publish(room, &fanout::encode(Event::Entry { room, entry }), Delta::default());
        }
        drop(turns);
    }
    Ok(())
}
