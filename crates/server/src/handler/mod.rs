//! Request handlers, one module per request family. Each function opens with the
//! wire request it serves. Handlers return typed [`RequestError`]s; the session
//! turns them into wire errors in one place.
//!
//! [`RequestError`]: crate::error::RequestError

pub(crate) mod account;
pub(crate) mod auth;
pub(crate) mod sessions;

use crate::{Shared, audit::AuditAction, auth::token, clock, error::RequestError, store::NewSession};
use conclave_proto::{SessionId, UserId, UserInfo};
use std::net::IpAddr;

/// What a handler needs to know about the request's origin.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    /// Client address, for rate limits and the audit log.
    pub peer: IpAddr,
    /// Client name from `hello`.
    pub client: &'a str,
}

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

    fn idle_secs(&self) -> i64 {
        i64::try_from(self.shared.config.session_idle.as_secs()).unwrap_or(i64::MAX)
    }
}

fn user_info(id: UserId, username: &str) -> UserInfo {
    UserInfo { id, username: username.to_owned() }
}
