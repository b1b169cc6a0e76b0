//! Registration tokens as the operator manages them (`conclave admin
//! registration-token`), for a server whose `registration` setting is
//! `invite`.
//!
//! A token is `<id>-<secret>`: a 48-bit public id (to list and revoke it by)
//! and a 128-bit random secret. It is shown once, when created; the server
//! keeps only the secret's SHA-256, and a registration's token is compared with
//! it in constant time. Each token allows a number of registrations until it
//! expires or is revoked. Creating, revoking and using one are audited.

use crate::{
    audit::{Audit, AuditAction},
    auth::token,
    clock,
    store::{RegistrationTokenRecord, Store, StoreError},
};
use serde_json::json;
use std::time::Duration;

/// The most registrations one token may allow.
pub const MAX_USES: u32 = 10_000;

/// The longest a token may stay usable (one year).
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 86_400);

/// Why a token was not created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The number of uses is 0 or above [`MAX_USES`].
    #[error("a registration token allows 1 to {MAX_USES} registrations")]
    Uses,
    /// The lifetime is under a second or over [`MAX_LIFETIME`].
    #[error("a registration token stays usable for at least a second and at most a year")]
    Lifetime,
    /// No token with that id, or it was revoked already.
    #[error("no registration token {0} that is not revoked already")]
    NotFound(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token just created: the only time its full text exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedToken {
    /// The token to hand to the person invited (`<id>-<secret>`).
    pub token: String,
    /// Its public id.
    pub id: String,
    /// Registrations it allows.
    pub max_uses: u32,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
}

/// What the operator sees of a token: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its public id.
    pub id: String,
    /// Registrations it allows in all.
    pub max_uses: i64,
    /// Registrations it was used for.
    pub uses: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds, if revoked.
    pub revoked_at: Option<i64>,
    /// Whether a registration could use it now.
    pub usable: bool,
}

/// Creates a token allowing `uses` registrations for `lifetime`.
///
/// # Errors
/// [`TokenError::Uses`] or [`TokenError::Lifetime`] for values out of range;
/// storage errors.
pub async fn create(
    store: &Store,
    audit: &Audit,
    uses: u32,
    lifetime: Duration,
) -> Result<CreatedToken, TokenError> {
    if !(1..=MAX_USES).contains(&uses) {
        return Err(TokenError::Uses);
    }
    if lifetime < Duration::from_secs(1) || lifetime > MAX_LIFETIME {
        return Err(TokenError::Lifetime);
    }
    let now = clock::now_secs();
    let expires_at = now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
    let (text, id, hash) = token::new_registration_token();
    store.create_registration_token(&id, &hash, i64::from(uses), now, expires_at).await?;
    let detail = json!({ "token": id, "max_uses": uses, "expires_at": expires_at, "via": "admin" });
    audit.record(None, AuditAction::RegistrationTokenCreated, detail).await?;
    Ok(CreatedToken { token: text, id, max_uses: uses, expires_at })
}

/// Every token, newest first.
///
/// # Errors
/// Storage errors.
pub async fn list(store: &Store) -> Result<Vec<TokenInfo>, TokenError> {
    let now = clock::now_secs();
    Ok(store.registration_tokens().await?.into_iter().map(|record| info(&record, now)).collect())
}

/// Revokes the token with public id `id`: no registration can use it after.
///
/// # Errors
/// [`TokenError::NotFound`] if there is no such token or it was revoked
/// already; storage errors.
pub async fn revoke(store: &Store, audit: &Audit, id: &str) -> Result<(), TokenError> {
    let id = id.trim().to_ascii_lowercase();
    if !store.revoke_registration_token(&id, clock::now_secs()).await? {
        return Err(TokenError::NotFound(id));
    }
    let detail = json!({ "token": id, "via": "admin" });
    audit.record(None, AuditAction::RegistrationTokenRevoked, detail).await?;
    Ok(())
}

fn info(record: &RegistrationTokenRecord, now: i64) -> TokenInfo {
    TokenInfo {
        id: record.id.clone(),
        max_uses: record.max_uses,
        uses: record.uses,
        created_at: record.created_at,
        expires_at: record.expires_at,
        revoked_at: record.revoked_at,
        usable: record.usable(now),
    }
}
