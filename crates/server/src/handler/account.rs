//! Account creation.

use super::{Ctx, Grant, user_info};
use crate::{
    audit::AuditAction,
    auth::{policy, token, totp},
    clock,
    error::RequestError,
    store::{NewUser, StoreError},
};
use conclave_proto::{Reply, limits::RECOVERY_CODE_COUNT, validate};
use serde_json::json;

/// # `register`
///
/// Creates the account only if the TOTP code confirms the secret, so nobody ends
/// up with an account whose second factor they cannot produce. The confirming
/// code's step counts as used. Recovery codes are returned once; only their
/// hashes are kept. The connection is logged in afterwards.
pub(crate) async fn register(
    ctx: &Ctx<'_>,
    username: &str,
    password: &str,
    totp_secret: &str,
    totp_code: &str,
) -> Result<(Reply, Grant), RequestError> {
    let shared = ctx.shared;
    if !shared.address_limiter.allow(&ctx.peer) {
        return Err(RequestError::RateLimited);
    }
    let username = validate::normalize_username(username)?;
    policy::check(shared.config.password_policy, password, &username)?;
    let secret = totp::decode_secret(totp_secret)?;
    let now = clock::now_secs();
    let step = validate::is_totp_code(totp_code)
        .then(|| totp::matching_step(&secret, totp_code, now.unsigned_abs()))
        .flatten()
        .ok_or(RequestError::TotpCode)?;

    let password_hash = shared.hasher.hash(password).await?;
    let sealed_secret = shared.secrets.seal(&secret, &username);
    let (codes, hashes): (Vec<String>, Vec<[u8; 32]>) =
        (0..RECOVERY_CODE_COUNT).map(|_| token::new_recovery_code()).unzip();
    let new = NewUser {
        username: &username,
        password_hash: &password_hash,
        totp_secret: &sealed_secret,
        totp_step: step,
        recovery_hashes: &hashes,
        now,
    };
    let id = match shared.store.create_user(&new).await {
        Ok(id) => id,
        Err(StoreError::Conflict) => return Err(RequestError::UsernameTaken),
        Err(err) => return Err(err.into()),
    };
    shared.metrics.registrations.inc();
    ctx.audit(Some(&username), AuditAction::Registered, json!({ "user_id": id.0, "client": ctx.client }))
        .await?;
    let (token, grant) = ctx.open_session(user_info(id, &username)).await?;
    ctx.audit(
        Some(&username),
        AuditAction::LoginOk,
        json!({ "session": grant.session_id.0, "client": ctx.client, "via": "registration" }),
    )
    .await?;
    tracing::info!(user = %username, "account registered");
    let reply = Reply::Registered {
        user: grant.user.clone(),
        recovery_codes: codes,
        session_id: grant.session_id.clone(),
        token,
    };
    Ok((reply, grant))
}
