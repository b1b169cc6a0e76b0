//! Login and token authentication.

use super::{Ctx, Grant, user_info};
use crate::{
    audit::AuditAction,
    auth::{ratelimit, token, totp},
    clock,
    error::RequestError,
    store::UserRecord,
};
use conclave_proto::{Reply, SecondFactor, validate};
use serde_json::json;

/// Why a login failed; audited, never told to the client.
#[derive(Debug, Clone, Copy)]
enum Failure {
    UnknownUser,
    Disabled,
    BackedOff,
    Password,
    TotpCode,
    TotpReplay,
    RecoveryCode,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::Disabled => "disabled",
            Self::BackedOff => "backed_off",
            Self::Password => "wrong_password",
            Self::TotpCode => "wrong_totp_code",
            Self::TotpReplay => "reused_totp_code",
            Self::RecoveryCode => "wrong_or_used_recovery_code",
        }
    }
}

/// # `login`
///
/// Password, then second factor. Every failure — unknown user, wrong password,
/// wrong or reused code, account in back-off — returns the same error with the
/// same message, and an unknown user still costs one argon2 verification, so
/// neither text nor timing tells whether an account exists. During a back-off even
/// correct credentials are refused.
pub(crate) async fn login(
    ctx: &Ctx<'_>,
    username: &str,
    password: &str,
    second_factor: &SecondFactor,
) -> Result<(Reply, Grant), RequestError> {
    let shared = ctx.shared;
    if !shared.address_limiter.allow(&ctx.peer) {
        shared.metrics.login("rate_limited");
        return Err(RequestError::RateLimited);
    }
    let username = validate::normalize_username(username).ok();
    // The same reads for every valid name, existing or not.
    let (user, locked_until) = match &username {
        Some(name) => (shared.store.user_by_name(name).await?, shared.store.login_locked_until(name).await?),
        None => (None, 0),
    };
    let password_ok = shared.hasher.verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    let now = clock::now_secs();
    let Some(user) = user else {
        return Err(fail(ctx, username.as_deref(), Failure::UnknownUser).await);
    };
    let failure = if user.disabled {
        Some(Failure::Disabled)
    } else if locked_until > now {
        Some(Failure::BackedOff)
    } else if !password_ok {
        Some(Failure::Password)
    } else {
        check_second_factor(ctx, &user, second_factor, now).await?
    };
    if let Some(failure) = failure {
        return Err(fail(ctx, Some(&user.username), failure).await);
    }

    shared.store.reset_login_failures(&user.username).await?;
    let (token, grant) = ctx.open_session(user_info(user.id, &user.username)).await?;
    let recovery = matches!(second_factor, SecondFactor::Recovery(_));
    let recovery_codes_left = shared.store.recovery_codes_left(user.id).await?;
    if recovery {
        ctx.audit(
            Some(&user.username),
            AuditAction::RecoveryCodeUsed,
            json!({ "left": recovery_codes_left }),
        )
        .await?;
    }
    ctx.audit(
        Some(&user.username),
        AuditAction::LoginOk,
        json!({ "session": grant.session_id.0, "client": ctx.client, "second_factor": if recovery { "recovery_code" } else { "totp" } }),
    )
    .await?;
    shared.metrics.login("ok");
    tracing::info!(user = %user.username, session = %grant.session_id, "login");
    let reply = Reply::LoggedIn {
        user: grant.user.clone(),
        session_id: grant.session_id.clone(),
        token,
        recovery_codes_left,
    };
    Ok((reply, grant))
}

/// Checks the second factor and consumes it. `Ok(None)` means it was valid and is
/// now used up.
async fn check_second_factor(
    ctx: &Ctx<'_>,
    user: &UserRecord,
    second_factor: &SecondFactor,
    now: i64,
) -> Result<Option<Failure>, RequestError> {
    let store = &ctx.shared.store;
    match second_factor {
        SecondFactor::Totp(code) => {
            let secret = ctx.shared.secrets.open(&user.totp_secret, &user.username)?;
            let step = validate::is_totp_code(code)
                .then(|| totp::matching_step(&secret, code, now.unsigned_abs()))
                .flatten();
            Ok(match step {
                None => Some(Failure::TotpCode),
                Some(step) if store.consume_totp_step(user.id, step).await? => None,
                Some(_) => Some(Failure::TotpReplay),
            })
        }
        SecondFactor::Recovery(code) => {
            let Some(normalized) = validate::normalize_recovery_code(code) else {
                return Ok(Some(Failure::RecoveryCode));
            };
            let hash = token::hash_recovery_code(&normalized);
            Ok((!store.consume_recovery_code(user.id, &hash, now).await?).then_some(Failure::RecoveryCode))
        }
    }
}

/// Records a failed login (count, back-off, audit, metrics) and returns the one
/// generic error. Unknown usernames are counted and backed off exactly like real
/// ones. Storage errors while recording are logged; the client still gets the
/// generic error.
async fn fail(ctx: &Ctx<'_>, attempted: Option<&str>, failure: Failure) -> RequestError {
    ctx.shared.metrics.login("failed");
    tracing::info!(user = attempted.unwrap_or("<invalid>"), reason = failure.as_str(), "login failed");
    if let Err(err) = record_failure(ctx, attempted, failure).await {
        tracing::error!(error = %err, "could not record a failed login");
    }
    RequestError::AuthFailed
}

async fn record_failure(
    ctx: &Ctx<'_>,
    attempted: Option<&str>,
    failure: Failure,
) -> Result<(), RequestError> {
    let shared = ctx.shared;
    ctx.audit(attempted, AuditAction::LoginFailed, json!({ "reason": failure.as_str() })).await?;
    let Some(username) = attempted else { return Ok(()) };
    let now = clock::now_secs();
    let failures = shared.store.record_login_failure(username, now).await?;
    let config = &shared.config;
    if let Some(backoff) = ratelimit::backoff(
        failures,
        config.login_max_failures,
        config.login_backoff,
        config.login_backoff_max,
    ) {
        // Times are whole seconds: round up, so a back-off is never shorter than
        // configured (a failure at 10.9 s with a 2 s back-off lasts until 13 s).
        let until =
            now.saturating_add(i64::try_from(backoff.as_secs()).unwrap_or(i64::MAX)).saturating_add(1);
        shared.store.lock_until(username, until).await?;
        ctx.audit(Some(username), AuditAction::Lockout, json!({ "failures": failures, "until": until }))
            .await?;
    }
    Ok(())
}

/// # `authenticate`
///
/// Resumes a session on a new connection with its token. The token is checked by
/// looking up its SHA-256, so only the hash is ever stored or compared.
pub(crate) async fn authenticate(ctx: &Ctx<'_>, token_text: &str) -> Result<(Reply, Grant), RequestError> {
    if !validate::is_token_shape(token_text) {
        return Err(RequestError::SessionInvalid);
    }
    let store = &ctx.shared.store;
    let now = clock::now_secs();
    let session = store
        .session_by_token(&token::hash_token(token_text), now, ctx.idle_secs())
        .await?
        .ok_or(RequestError::SessionInvalid)?;
    // A use recorded less than a refresh interval ago (or half the idle timeout,
    // if that is shorter) is as precise as the idle timeout needs: clients
    // reconnecting after a restart or a network change cost the database a read
    // each, not a write and an fsync.
    let fresh_for = crate::session::REFRESH_EVERY.as_secs().cast_signed().min(ctx.idle_secs() / 2);
    let recorded_recently = now - session.last_seen_at < fresh_for;
    if !recorded_recently && !store.refresh_session(&session.id, now).await? {
        return Err(RequestError::SessionInvalid);
    }
    let grant = Grant {
        user: user_info(session.user, &session.username),
        session_id: session.id,
        expires_at: session.expires_at,
    };
    let reply = Reply::Authenticated { user: grant.user.clone(), session_id: grant.session_id.clone() };
    Ok((reply, grant))
}
