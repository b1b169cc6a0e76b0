//! Account creation.

use super::{Ctx, Grant, user_info};
use crate::{
    audit::AuditAction,
    auth::{policy, token, totp},
    clock,
    error::RequestError,
    store::{CreateUserError, NewUser},
};
use conclave_proto::{RegistrationMode, Reply, limits::RECOVERY_CODE_COUNT, validate};
use serde_json::json;

/// What `register` carries.
pub(crate) struct Registration<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub totp_secret: &'a str,
    pub totp_code: &'a str,
    pub registration_token: Option<&'a str>,
}

/// # `register`
///
/// Creates the account only if the TOTP code confirms the secret, so nobody ends
/// up with an account whose second factor they cannot produce. The confirming
/// code's step counts as used. Recovery codes are returned once; only their
/// hashes are kept. The connection is logged in afterwards, and the client home
/// gets its first device cookie.
///
/// The server's registration mode is checked first: `closed` refuses everyone,
/// `invite` everyone without a usable registration token (one error for a
/// missing, wrong, expired, used-up or revoked one), before anything about the
/// username is looked at. The token's use is taken in the transaction that
/// creates the account.
pub(crate) async fn register(
    ctx: &Ctx<'_>,
    request: &Registration<'_>,
) -> Result<(Reply, Grant), RequestError> {
    let shared = ctx.shared;
    if !shared.registration_limiter.allow(&ctx.peer) {
        return Err(RequestError::RegistrationsRateLimited);
    }
    let now = clock::now_secs();
    let registration_token = match shared.config.registration {
        RegistrationMode::Open => None,
        RegistrationMode::Closed => return Err(RequestError::RegistrationClosed),
        RegistrationMode::Invite => Some(usable_token(ctx, request.registration_token, now).await?),
    };
    let username = validate::normalize_username(request.username)?;
    let password = policy::canonical(request.password)?;
    policy::check(shared.config.password_policy, &password, &username)?;
    let secret = totp::decode_secret(request.totp_secret)?;
    let code = request.totp_code;
    let step = validate::is_totp_code(code)
        .then(|| totp::matching_step(&secret, code, now.unsigned_abs()))
        .flatten()
        .ok_or(RequestError::TotpCode)?;

    let password_hash = shared.hasher.hash(&password).await?;
    let sealed_secret = shared.secrets.seal(&secret, &username);
    let (codes, hashes): (Vec<String>, Vec<[u8; 32]>) =
        (0..RECOVERY_CODE_COUNT).map(|_| token::new_recovery_code()).unzip();
    let new = NewUser {
        username: &username,
        password_hash: &password_hash,
        totp_secret: &sealed_secret,
        totp_step: step,
        recovery_hashes: &hashes,
        registration_token: registration_token.as_deref(),
        now,
    };
    let id = match shared.store.create_user(&new).await {
        Ok(id) => id,
        Err(CreateUserError::UsernameTaken) => return Err(RequestError::UsernameTaken),
        Err(CreateUserError::TokenUnusable) => return Err(RequestError::RegistrationToken),
        Err(CreateUserError::Store(err)) => return Err(err.into()),
    };
    shared.metrics.registrations.inc();
    ctx.audit(Some(&username), AuditAction::Registered, json!({ "user_id": id.0, "client": ctx.client }))
        .await?;
    if let Some(token_id) = &registration_token {
        ctx.audit(Some(&username), AuditAction::RegistrationTokenUsed, json!({ "token": token_id })).await?;
    }
    let (token, grant) = ctx.open_session(user_info(id, &username)).await?;
    let device_cookie = ctx.issue_device_cookie(id, &grant.session_id, None).await?;
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
        device_cookie: Some(device_cookie),
    };
    Ok((reply, grant))
}

/// The id of the registration token `raw`, if it is one that can be used now.
/// Its secret is compared with the stored hash in constant time.
async fn usable_token(ctx: &Ctx<'_>, raw: Option<&str>, now: i64) -> Result<String, RequestError> {
    let (id, secret) =
        raw.and_then(validate::split_registration_token).ok_or(RequestError::RegistrationToken)?;
    let record = ctx.shared.store.registration_token(&id).await?.ok_or(RequestError::RegistrationToken)?;
    if token::registration_secret_matches(&secret, &record.secret_hash) && record.usable(now) {
        Ok(id)
    } else {
        Err(RequestError::RegistrationToken)
    }
}
