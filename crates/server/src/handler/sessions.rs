//! Session management for a logged-in user.

use super::{Ctx, Grant};
use crate::{audit::AuditAction, clock, error::RequestError, store::Retiring};
use conclave_proto::{Reply, SessionId, SessionInfo, event::SessionEndReason};
use serde_json::json;

/// # `whoami`
pub(crate) fn whoami(grant: &Grant) -> Reply {
    Reply::Authenticated { user: grant.user.clone(), session_id: grant.session_id.clone() }
}

/// # `list_sessions`
pub(crate) async fn list(ctx: &Ctx<'_>, grant: &Grant) -> Result<Reply, RequestError> {
    let sessions = ctx.shared.store.sessions_of(grant.user.id, clock::now_secs(), ctx.idle_secs()).await?;
    let sessions = sessions
        .into_iter()
        .map(|s| SessionInfo {
            current: s.id == grant.session_id,
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            client: s.client,
        })
        .collect();
    Ok(Reply::Sessions { sessions })
}

/// # `revoke_session`
///
/// Ends one of the user's sessions and closes every connection using it, and
/// forgets the device cookie issued with it: a device whose session its owner
/// revoked (a lost laptop) no longer counts as known, and the devices bound
/// with the session are retired. Returns whether it was
/// the caller's own session (then the caller's connection closes too).
pub(crate) async fn revoke(ctx: &Ctx<'_>, grant: &Grant, id: &SessionId) -> Result<bool, RequestError> {
    if !ctx.shared.store.end_session(grant.user.id, id, clock::now_secs()).await? {
        return Err(RequestError::NotFound("no such session of yours"));
    }
    ctx.shared.store.revoke_device_cookie_of(id).await?;
    ctx.audit(Some(&grant.user.username), AuditAction::SessionRevoked, json!({ "session": id.0 })).await?;
    let own = *id == grant.session_id;
    ctx.shared.live.end(id, SessionEndReason::Revoked);
    super::retirement::retire(ctx, &grant.user, Retiring::BoundWith(id)).await?;
    Ok(own)
}

/// # `logout`
///
/// Ends the caller's session: the token stops working, every connection using
/// it is closed, and the devices bound with it are retired.
pub(crate) async fn logout(ctx: &Ctx<'_>, grant: &Grant) -> Result<(), RequestError> {
    ctx.shared.store.end_session(grant.user.id, &grant.session_id, clock::now_secs()).await?;
    ctx.audit(Some(&grant.user.username), AuditAction::Logout, json!({ "session": grant.session_id.0 }))
        .await?;
    ctx.shared.live.end(&grant.session_id, SessionEndReason::LoggedOut);
    super::retirement::retire(ctx, &grant.user, Retiring::BoundWith(&grant.session_id)).await?;
    Ok(())
}
