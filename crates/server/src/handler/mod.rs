//! Request handlers, one module per request family. Each function opens with the
//! wire request it serves. Handlers return typed [`RequestError`]s; the session
//! turns them into wire errors in one place.
//!
//! [`RequestError`]: crate::error::RequestError

pub(crate) mod account;
pub(crate) mod auth;
pub(crate) mod device;
pub(crate) mod message;
pub(crate) mod presence;
pub(crate) mod retirement;
pub(crate) mod room;
pub(crate) mod sessions;

use crate::{
    Shared,
    audit::AuditAction,
    auth::token,
    clock,
    error::RequestError,
    store::{NewDeviceCookie, NewSession, Store},
};
use conclave_proto::{DeviceId, ErrorCode, Reply, Request, SessionId, UserId, UserInfo, validate};
use std::net::IpAddr;

/// What a handler needs to know about the request's origin.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    /// Client address, for rate limits and the audit log.
    pub peer: IpAddr,
    /// Client name from `hello`.
    pub client: &'a str,
}

/// Who a messaging request comes from: an authenticated user on a bound device.
pub(crate) struct Caller<'a> {
    pub user: &'a UserInfo,
    pub device: DeviceId,
}

/// Routes a messaging request (every request that needs a bound device) to
/// its handler.
pub(crate) async fn messaging(
    ctx: &Ctx<'_>,
    me: &Caller<'_>,
    request: Request,
) -> Result<Reply, RequestError> {
    match request {
        Request::UploadKeyPackages { key_packages, last_resort } => {
            device::upload_key_packages(ctx, me, key_packages, last_resort).await
        }
        Request::ClaimKeyPackages { users } => device::claim_key_packages(ctx, me, &users).await,
        Request::Welcomes {} => device::welcomes(ctx, me).await,
        Request::CreateRoom { name, public } => room::create_room(ctx, me, &name, public).await,
        Request::OpenDirect { username } => room::open_direct(ctx, me, &username).await,
        Request::FindRoom { name } => room::find_room(ctx, me, &name).await,
        Request::ListRooms {} => room::list_rooms(ctx, me).await,
        Request::GroupInfo { room } => room::group_info(ctx, me, room).await,
        Request::Members { room } => room::members(ctx, me, room).await,
        Request::Leave { room } => room::leave(ctx, me, room).await,
        Request::Commit { room, epoch, change, commit, group_info, ratchet_tree, welcome } => {
            let request =
                room::CommitRequest { room, epoch, change, commit, group_info, ratchet_tree, welcome };
            room::commit(ctx, me, request).await
        }
        Request::Send { room, ciphertext, nonce } => message::send(ctx, me, room, ciphertext, nonce).await,
        Request::Signal { room, ciphertext } => message::signal(ctx, me, room, ciphertext).await,
        Request::Fetch { room, after, limit } => message::fetch(ctx, me, room, after, limit).await,
        Request::Delete { room, message } => message::delete(ctx, me, room, message).await,
        Request::Users {} => presence::users(ctx).await,
        Request::Hello { .. }
        | Request::Register { .. }
        | Request::Login { .. }
        | Request::Authenticate { .. }
        | Request::Logout {}
        | Request::Whoami {}
        | Request::ListSessions {}
        | Request::RevokeSession { .. }
        | Request::ListDevices {}
        | Request::RemoveDevice { .. }
        | Request::Ping {}
        | Request::Device { .. } => {
            Err(RequestError::Protocol(ErrorCode::BadRequest, "not a messaging request"))
        }
    }
}

/// Device cookies kept per user (as many as devices an account may have): a
/// login from a client home beyond the newest 32 counts as untrusted again.
const MAX_DEVICE_COOKIES_PER_USER: i64 = 32;

/// A session granted to a connection by register, login or authenticate.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub user: UserInfo,
    pub session_id: SessionId,
    /// Absolute expiry, Unix seconds.
    pub expires_at: i64,
}

impl Ctx<'_> {
    /// Appends an audit entry with the client address added to `detail`.
    async fn audit(
        &self,
        actor: Option<&str>,
        action: AuditAction,
        mut detail: serde_json::Value,
    ) -> Result<(), RequestError> {
        if let Some(map) = detail.as_object_mut() {
            map.insert("ip".into(), self.peer.to_string().into());
        }
        Ok(self.shared.audit.record(actor, action, detail).await?)
    }

    /// Creates a session for `user`: a fresh 256-bit token (only its hash is
    /// stored) and the absolute expiry from the configuration.
    async fn open_session(&self, user: UserInfo) -> Result<(String, Grant), RequestError> {
        let now = clock::now_secs();
        let (token, token_hash) = token::new_token();
        let session_id = token::new_session_id();
        let absolute = i64::try_from(self.shared.config.session_absolute.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(absolute);
        self.shared
            .store
            .create_session(&NewSession {
                id: &session_id,
                user: user.id,
                token_hash: &token_hash,
                client: self.client,
                now,
                expires_at,
            })
            .await?;
        Ok((token, Grant { user, session_id, expires_at }))
    }

    /// Issues a device cookie for `user` with the session just opened,
    /// replacing the cookie the login presented (its row keeps its place, its
    /// count starts again), and returns it. Only its hash is stored; each user
    /// keeps at most [`MAX_DEVICE_COOKIES_PER_USER`], the newest.
    async fn issue_device_cookie(
        &self,
        user: UserId,
        session: &SessionId,
        replacing: Option<i64>,
    ) -> Result<String, RequestError> {
        let now = clock::now_secs();
        let (cookie, hash) = token::new_device_cookie();
        let lifetime = i64::try_from(self.shared.config.device_cookie_lifetime.as_secs()).unwrap_or(i64::MAX);
        self.shared
            .store
            .issue_device_cookie(&NewDeviceCookie {
                user,
                hash: &hash,
                session,
                replacing,
                now,
                expires_at: now.saturating_add(lifetime),
                keep: MAX_DEVICE_COOKIES_PER_USER,
            })
            .await?;
        Ok(cookie)
    }

    fn idle_secs(&self) -> i64 {
        i64::try_from(self.shared.config.session_idle.as_secs()).unwrap_or(i64::MAX)
    }
}

/// The accounts of `names` (any case), in order, each with its canonical name:
/// what a commit's add or remove and a KeyPackage claim act on. Refuses a name
/// that is no account (naming it) and a user named twice.
async fn named_users(store: &Store, names: &[String]) -> Result<Vec<(UserId, String)>, RequestError> {
    let mut named: Vec<(UserId, String)> = Vec::with_capacity(names.len());
    for name in names {
        let name = validate::normalize_username(name)?;
        let user = store.user_id(&name).await?.ok_or_else(|| RequestError::NoSuchUser(name.clone()))?;
        if named.iter().any(|(seen, _)| *seen == user) {
            return Err(RequestError::Invalid("a user is named twice"));
        }
        named.push((user, name));
    }
    Ok(named)
}

fn user_info(id: UserId, username: &str) -> UserInfo {
    UserInfo { id, username: username.to_owned() }
}
