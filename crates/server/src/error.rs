//! Errors: [`ServerError`] for start-up and the listener, [`RequestError`] for one
//! request. [`RequestError::to_wire`] is the single place that decides what a peer
//! is told; internal details are logged, never sent.

use crate::{
    auth::{password::HashError, policy::PolicyViolation, totp::SecretError},
    store::StoreError,
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
}

/// Why one request failed. Variants say what the client can do about it.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Login failed for any reason (the reason is audited, never told).
    #[error("login failed")]
    AuthFailed,
    /// Too many attempts from this address.
    #[error("rate limited")]
    RateLimited,
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
    /// Token unknown, ended or expired.
    #[error("session invalid")]
    SessionInvalid,
    /// No such thing for this user.
    #[error("not found")]
    NotFound,
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
            Self::Username(e) => (ErrorCode::InvalidUsername, e.to_string()),
            Self::Password(e) => (ErrorCode::WeakPassword, e.to_string()),
            Self::UsernameTaken => (ErrorCode::UsernameTaken, "that username is taken".into()),
            Self::TotpSecret(e) => (ErrorCode::InvalidTotp, e.to_string()),
            Self::TotpCode => (
                ErrorCode::InvalidTotp,
                "the code does not match the new secret: check that the authenticator app was set up with \
                 this secret and that the device clock is right"
                    .into(),
            ),
            Self::SessionInvalid => {
                (ErrorCode::SessionInvalid, "the session has ended or expired: log in again".into())
            }
            Self::NotFound => (ErrorCode::NotFound, "no such session".into()),
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
