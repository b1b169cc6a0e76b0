//! Errors: [`ServerError`] for start-up and the listener, [`RequestError`] for one
//! request. [`RequestError::to_wire`] is the single place that decides what a peer
//! is told; internal details are logged, never sent.

use crate::{
    auth::{password::HashError, policy::PolicyViolation, totp::SecretError},
    policy::Refusal,
    quota::Quota,
    store::{AppendError, StoreError},
};
use conclave_proto::{ErrorCode, validate::UsernameError};
use std::path::PathBuf;

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A file or directory could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Password hashing could not be set up.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The audit log cannot be written with the audit key at `path`.
    #[error("audit key {}: {source}", path.display())]
    Audit {
        /// The audit key file.
        path: PathBuf,
        /// The cause.
        source: crate::audit::AuditError,
    },
}

/// Why one request failed. Variants say what the client can do about it.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Login failed for any reason (the reason is audited, never told).
    #[error("login failed")]
    AuthFailed,
    /// Too many login attempts from this address.
    #[error("rate limited")]
    RateLimited,
    /// Too many registration attempts from this address.
    #[error("registrations rate limited")]
    RegistrationsRateLimited,
    /// Bad username.
    #[error(transparent)]
    Username(#[from] UsernameError),
    /// Password refused by policy.
    #[error(transparent)]
    Password(#[from] PolicyViolation),
    /// Username taken.
    #[error("username taken")]
    UsernameTaken,
    /// TOTP secret unusable.
    #[error(transparent)]
    TotpSecret(#[from] SecretError),
    /// Confirming code wrong at registration.
    #[error("TOTP code does not match")]
    TotpCode,
    /// The registration mode is `closed`.
    #[error("registration closed")]
    RegistrationClosed,
    /// The registration mode is `invite` and the token is missing, wrong,
    /// expired, used up or revoked (which one is not told).
    #[error("no usable registration token")]
    RegistrationToken,
    /// Token unknown, ended or expired.
    #[error("session invalid")]
    SessionInvalid,
    /// No such thing for this user; says what was looked for.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A username named in the request has no account.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// The request is well-formed but its content is not acceptable.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
    /// Too many requests of one kind from this user.
    #[error("too many requests: {0}")]
    TooFast(&'static str),
    /// Messaging before a device was bound with `device`.
    #[error("no device bound")]
    DeviceRequired,
    /// The device id or signature key is not this user's.
    #[error("device mismatch")]
    DeviceMismatch,
    /// The device was retired: it never binds again.
    #[error("device retired")]
    DeviceRetired,
    /// Room policy refuses it; says which rule.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A commit for an epoch that is no longer current.
    #[error("stale epoch")]
    StaleEpoch,
    /// No user named has a device with a KeyPackage.
    #[error("no key packages")]
    NoKeyPackages,
    /// A room name that does not fit the rules.
    #[error("invalid room name")]
    InvalidName,
    /// A room name in use.
    #[error("room name taken")]
    NameTaken,
    /// A payload over its limit; says which.
    #[error("too large: {0}")]
    TooLarge(&'static str),
    /// An account's or device's total is reached; says which.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(Quota),
    /// Hashing slots busy.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A protocol-level refusal with a fixed message (wrong phase, bad hello,
    /// per-connection rate limit).
    #[error("{1}")]
    Protocol(ErrorCode, &'static str),
    /// A stored secret did not decrypt (wrong key file).
    #[error(transparent)]
    Secret(#[from] crate::auth::secretbox::OpenError),
    /// A commit failed the MLS checks against the room's group.
    #[error("invalid commit: {0}")]
    Commit(conclave_mls::Error),
    /// The room's stored group state cannot be used.
    #[error("the room's group state is broken")]
    GroupBroken,
}

/// What every request naming a room by id is told when there is no such room
/// or the caller may not know of it ([`Refusal::Hidden`]): one text for both.
pub(crate) const NO_SUCH_ROOM: &str = "no such room";

/// What `delete` is told for a message that does not exist, in a room that
/// does not exist, or that the caller may not know of: one text for all.
pub(crate) const NO_SUCH_MESSAGE: &str = "no such message";

impl From<Refusal> for RequestError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Hidden => Self::NotFound(NO_SUCH_ROOM),
            Refusal::Forbidden(rule) => Self::Forbidden(rule),
            Refusal::StaleEpoch => Self::StaleEpoch,
        }
    }
}

impl From<AppendError> for RequestError {
    fn from(err: AppendError) -> Self {
        match err {
            AppendError::NotFound => Self::NotFound(NO_SUCH_ROOM),
            AppendError::Refused(refusal) => refusal.into(),
            AppendError::NonceReused => {
                Self::Invalid("that nonce was already used for a message in another room")
            }
            AppendError::Store(err) => Self::Store(err),
            AppendError::Unstored => {
                Self::Protocol(ErrorCode::Unavailable, "the message could not be stored: send it again")
            }
        }
    }
}

/// The one message for every failed login, whatever the cause.
pub const AUTH_FAILED_MESSAGE: &str = "login failed: the username, password or code is wrong, or there were too many attempts (try again later)";

impl RequestError {
    /// The code and message the peer receives. Errors that are the server's fault
    /// are logged here with their detail and reach the peer only as a code.
    #[must_use]
    pub fn to_wire(&self) -> (ErrorCode, String) {
        match self {
            Self::Protocol(code, message) => (*code, (*message).to_owned()),
            Self::AuthFailed => (ErrorCode::AuthFailed, AUTH_FAILED_MESSAGE.into()),
            Self::RateLimited => (
                ErrorCode::RateLimited,
                "too many attempts from your address: wait a minute and try again".into(),
            ),
            Self::RegistrationsRateLimited => {
                (ErrorCode::RateLimited, "too many registrations from your address: try again later".into())
            }
            Self::Username(e) => (ErrorCode::InvalidUsername, e.to_string()),
            Self::Password(e) => (ErrorCode::WeakPassword, e.to_string()),
            Self::UsernameTaken => (ErrorCode::UsernameTaken, "that username is taken".into()),
            Self::TotpSecret(e) => (ErrorCode::InvalidTotp, e.to_string()),
            Self::RegistrationClosed => (
                ErrorCode::RegistrationClosed,
                "registration is closed on this server: ask its operator for an account".into(),
            ),
            Self::RegistrationToken => (
                ErrorCode::InvalidRegistrationToken,
                "registering on this server needs a registration token from its operator; this one is \
                 missing, wrong, expired, used up or revoked"
                    .into(),
            ),
            Self::TotpCode => (
                ErrorCode::InvalidTotp,
                "the code does not match the new secret: check that the authenticator app was set up with \
                 this secret and that the device clock is right"
                    .into(),
            ),
            Self::SessionInvalid => {
                (ErrorCode::SessionInvalid, "the session has ended or expired: log in again".into())
            }
            Self::NotFound(what) => (ErrorCode::NotFound, format!("not found: {what}")),
            Self::NoSuchUser(name) => (ErrorCode::NotFound, format!("not found: no such user: {name}")),
            Self::Invalid(why) => (ErrorCode::BadRequest, (*why).to_owned()),
            Self::TooFast(what) => {
                (ErrorCode::RateLimited, format!("too many requests: {what}; wait a minute"))
            }
            Self::DeviceRequired => {
                (ErrorCode::DeviceRequired, "bind this connection to a device first (`device`)".into())
            }
            Self::DeviceMismatch => (
                ErrorCode::DeviceMismatch,
                "that device id or signature key does not belong to a device of yours".into(),
            ),
            Self::DeviceRetired => (
                ErrorCode::DeviceRetired,
                "this device was retired (logged out, revoked or removed): start a new device".into(),
            ),
            Self::Forbidden(rule) => (ErrorCode::Forbidden, format!("not allowed: {rule}")),
            Self::StaleEpoch => (
                ErrorCode::StaleEpoch,
                "another commit was accepted for that epoch: process the newer log entries, then retry"
                    .into(),
            ),
            Self::NoKeyPackages => {
                (ErrorCode::NoKeyPackages, "no device of the users named has a KeyPackage to claim".into())
            }
            Self::InvalidName => (
                ErrorCode::InvalidName,
                format!(
                    "a room name has 1 to {} characters: a-z, 0-9, '_' and '-'",
                    conclave_proto::limits::ROOM_NAME_MAX_CHARS
                ),
            ),
            Self::NameTaken => (ErrorCode::NameTaken, "a room with that name exists".into()),
            Self::TooLarge(what) => (ErrorCode::TooLarge, format!("too large: {what}")),
            Self::QuotaExceeded(quota) => (ErrorCode::QuotaExceeded, format!("quota exceeded: {quota}")),
            // What was refused, never why OpenMLS's internals failed.
            Self::Commit(error) => (ErrorCode::InvalidCommit, format!("invalid commit: {error}")),
            Self::GroupBroken => (
                ErrorCode::GroupBroken,
                "this room's encryption group is broken on the server: an operator must reset it \
                 (`conclave admin repair-room`), then members rejoin"
                    .into(),
            ),
            Self::Hash(HashError::Busy) | Self::Store(StoreError::Unavailable(_)) => {
                tracing::warn!(error = %self, "request failed: temporarily unavailable");
                (ErrorCode::Unavailable, "the server is temporarily unavailable: try again shortly".into())
            }
            Self::Hash(_) | Self::Store(_) | Self::Secret(_) => {
                tracing::error!(error = %self, "request failed: internal error");
                (ErrorCode::Internal, "internal server error".into())
            }
        }
    }
}
