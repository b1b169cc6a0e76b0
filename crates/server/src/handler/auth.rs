//! Login and token authentication.

use super::{Ctx, Grant, user_info};
use crate::{
    audit::AuditAction,
    auth::{lockout::LoginLimits, policy, token, totp},
    clock,
    config::Config,
    error::RequestError,
    store::{AttemptCounters, DeviceCookieRecord, Scope, UserRecord},
};
use conclave_proto::{Reply, SecondFactor, validate};
use serde_json::json;

/// Why a login failed; audited, never told to the client.
#[derive(Debug, Clone, Copy)]
enum Failure {
    UnusablePassword,
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
            Self::UnusablePassword => "unusable_password",
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

/// The login limits of the configuration.
fn limits(config: &Config) -> LoginLimits {
    LoginLimits {
        max_failures: config.login_max_failures,
        backoff: config.login_backoff,
        backoff_max: config.login_backoff_max,
        failures_per_hour: config.login_failures_per_hour,
    }
}

/// How this attempt was counted.
enum Judged<'a> {
    /// Its counters are in a back-off or their hour is full: refused unjudged.
    Waits,
    /// Counted as a failure (given back if it succeeds); the counters after it.
    Counted(Scope<'a>, AttemptCounters),
    /// A malformed username: no account can match, nothing to count.
    Uncounted,
}

/// # `login`
///
/// Password, then second factor. Every failure — unknown user, wrong password,
/// wrong or reused code, an attempt that must wait — returns the same error with
/// the same message, and an unknown user still costs one argon2 verification, so
/// neither text nor timing tells whether an account exists.
///
/// The attempt is judged on the counters of its [`Scope`]: those of the
/// presented device cookie when it is valid for this user (a device that logged
/// in before), else the attempted username's untrusted ones; see
/// [`crate::auth::lockout`]. An attempt is counted before its password is
/// checked, and one whose counters wait is refused unjudged (even with correct
/// credentials) without being counted. A password that cannot be anyone's (NUL,
/// too long) is refused before any lookup, count or hash. On success the
/// attempt's count is given back and a new device cookie replaces the one sent.
pub(crate) async fn login(
    ctx: &Ctx<'_>,
    username: &str,
    password: &str,
    second_factor: &SecondFactor,
    device_cookie: Option<&str>,
) -> Result<(Reply, Grant), RequestError> {
    let shared = ctx.shared;
    if !shared.address_limiter.allow(&ctx.peer) {
        shared.metrics.login("rate_limited");
        return Err(RequestError::RateLimited);
    }
    let username = validate::normalize_username(username).ok();
    let Ok(canonical) = policy::canonical(password) else {
        return Err(fail(ctx, username.as_deref(), Failure::UnusablePassword, false).await);
    };
    let now = clock::now_secs();
    // The same reads and writes for every valid name, existing or not.
    let user = match &username {
        Some(name) => shared.store.user_by_name(name).await?,
        None => None,
    };
    let cookie = known_device(ctx, user.as_ref(), device_cookie, now).await?;
    let judged = judge(ctx, username.as_deref(), cookie, now).await?;
    // Hashes made before passwords were normalised are of the password as sent.
    let legacy = user.as_ref().is_some_and(|u| !u.password_nfc);
    let candidate = if legacy { password } else { canonical.as_str() };
    let password_ok =
        shared.hasher.verify(candidate, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    let known = cookie.is_some();
    let Some(user) = user else {
        return Err(fail(ctx, username.as_deref(), Failure::UnknownUser, known).await);
    };
    let failure = if user.disabled {
        Some(Failure::Disabled)
    } else if matches!(judged, Judged::Waits) {
        Some(Failure::BackedOff)
    } else if !password_ok {
        Some(Failure::Password)
    } else {
        check_second_factor(ctx, &user, second_factor, now).await?
    };
    if let Some(failure) = failure {
        if let Judged::Counted(scope, counters) = &judged
            && let Some(until) = limits(&shared.config).waits_until(counters, now)
        {
            lockout(ctx, &user.username, *scope, counters, until).await;
        }
        return Err(fail(ctx, Some(&user.username), failure, known).await);
    }

    if let Judged::Counted(scope, _) = judged {
        shared.store.attempt_succeeded(scope, now, now).await?;
    }
    if legacy {
        let hash = if canonical == password {
            user.password_hash.clone()
        } else {
            shared.hasher.hash(&canonical).await?
        };
        shared.store.set_nfc_password_hash(user.id, &hash).await?;
    }
    let (token, grant) = ctx.open_session(user_info(user.id, &user.username)).await?;
    let device_cookie = ctx.issue_device_cookie(user.id, &grant.session_id, cookie.map(|c| c.id)).await?;
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
        json!({
            "session": grant.session_id.0,
            "client": ctx.client,
            "second_factor": if recovery { "recovery_code" } else { "totp" },
            "known_device": known,
        }),
    )
    .await?;
    shared.metrics.login("ok");
    tracing::info!(user = %user.username, session = %grant.session_id, known_device = known, "login");
    let reply = Reply::LoggedIn {
        user: grant.user.clone(),
        session_id: grant.session_id.clone(),
        token,
        recovery_codes_left,
        device_cookie: Some(device_cookie),
    };
    Ok((reply, grant))
}

/// The presented device cookie, if it is live and was issued to `user`.
/// Anything else (no cookie, a malformed, unknown, expired or revoked one, or
/// another user's) makes the attempt untrusted, and looks no different.
async fn known_device(
    ctx: &Ctx<'_>,
    user: Option<&UserRecord>,
    cookie: Option<&str>,
    now: i64,
) -> Result<Option<DeviceCookieRecord>, RequestError> {
    let Some(cookie) = cookie.filter(|c| validate::is_token_shape(c)) else { return Ok(None) };
    let found = ctx.shared.store.device_cookie(&token::hash_device_cookie(cookie), now).await?;
    Ok(found.filter(|record| user.is_some_and(|u| u.id == record.user)))
}

/// Counts the attempt on the counters of its scope, unless they wait.
async fn judge<'a>(
    ctx: &Ctx<'_>,
    username: Option<&'a str>,
    cookie: Option<DeviceCookieRecord>,
    now: i64,
) -> Result<Judged<'a>, RequestError> {
    let Some(username) = username else { return Ok(Judged::Uncounted) };
    let scope = match cookie {
        Some(record) => Scope::KnownDevice { username, cookie: record.id },
        None => Scope::Untrusted { username },
    };
    let limits = limits(&ctx.shared.config);
    let counted = ctx.shared.store.count_attempt(scope, now, |counters| limits.count(counters, now)).await?;
    Ok(match counted {
        Some(counters) => Judged::Counted(scope, counters),
        None => Judged::Waits,
    })
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

/// Audits a failed login (the count was taken before the password was
/// checked) and returns the one generic error. Storage errors while auditing
/// are logged; the client still gets the generic error.
async fn fail(ctx: &Ctx<'_>, attempted: Option<&str>, failure: Failure, known_device: bool) -> RequestError {
    ctx.shared.metrics.login("failed");
    tracing::info!(
        user = attempted.unwrap_or("<invalid>"),
        reason = failure.as_str(),
        known_device,
        "login failed"
    );
    let detail = json!({ "reason": failure.as_str(), "known_device": known_device });
    if let Err(err) = ctx.audit(attempted, AuditAction::LoginFailed, detail).await {
        tracing::error!(error = %err, "could not record a failed login");
    }
    RequestError::AuthFailed
}

/// Audits the back-off (or full hour) a failed attempt started.
async fn lockout(ctx: &Ctx<'_>, username: &str, scope: Scope<'_>, counters: &AttemptCounters, until: i64) {
    let scope = match scope {
        Scope::Untrusted { .. } => "untrusted",
        Scope::KnownDevice { .. } => "known_device",
    };
    let detail = json!({ "scope": scope, "failures": counters.failures, "until": until });
    if let Err(err) = ctx.audit(Some(username), AuditAction::Lockout, detail).await {
        tracing::error!(error = %err, "could not record a lockout");
    }
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
