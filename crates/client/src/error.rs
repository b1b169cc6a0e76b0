//! The one error type of the client library.
//!
//! Variants are named for what the caller can do about them: ask the user to trust
//! a new server ([`ClientError::UnknownServer`]), refuse loudly
//! ([`ClientError::CertificateChanged`]), log in again
//! ([`ClientError::NotLoggedIn`], [`ClientError::SessionEnded`], or
//! [`ClientError::Server`] with [`ErrorCode::SessionInvalid`]), retry later
//! ([`ClientError::Connect`], [`ClientError::Timeout`]), or report a bug
//! ([`ClientError::Protocol`]).

use crate::{
    address::AddressError,
    fingerprint::{Fingerprint, FingerprintError},
};
use conclave_proto::{ErrorCode, event::SessionEndReason};
use std::{io, path::PathBuf};

/// Shorthand for results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Everything that can go wrong in the client library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server address is not `HOST:PORT`. The user typed something wrong.
    #[error(transparent)]
    Address(#[from] AddressError),

    /// A certificate fingerprint given by the user is malformed.
    #[error("invalid certificate fingerprint")]
    Fingerprint(#[from] FingerprintError),

    /// The TCP connection could not be made (server down, wrong port, no route).
    #[error("cannot connect to {server}")]
    Connect {
        /// The address tried.
        server: String,
        /// Why the operating system refused.
        #[source]
        source: io::Error,
    },

    /// A step took longer than its deadline; the server may be overloaded or
    /// something on the path swallows packets.
    #[error("timed out waiting for {waiting_for}")]
    Timeout {
        /// What was being waited for.
        waiting_for: &'static str,
    },

    /// First contact: the server's certificate is not pinned yet. The handshake was
    /// aborted before anything was sent. Show the fingerprint to the user, and if
    /// they confirm it matches what the server operator published, connect again
    /// with [`Trust::Pinned`](crate::trust::Trust::Pinned).
    #[error(
        "the authenticity of the server can't be established: its certificate \
         (SHA-256 fingerprint {fingerprint}) is not trusted yet; nothing was sent to it"
    )]
    UnknownServer {
        /// SHA-256 of the public key of the certificate the server presented.
        fingerprint: Fingerprint,
    },

    /// The server presented a different certificate from the pinned one. This is
    /// either an attack (someone intercepting the connection) or the operator
    /// replaced the certificate. Never continue automatically.
    #[error(
        "WARNING: THE SERVER'S CERTIFICATE HAS CHANGED! Someone could be intercepting \
         this connection (man-in-the-middle attack), or the server's certificate was \
         replaced. Expected SHA-256 fingerprint {expected}, the server presented \
         {presented}. Refusing to connect"
    )]
    CertificateChanged {
        /// The pinned fingerprint.
        expected: Fingerprint,
        /// The public key fingerprint of what the server presented instead.
        presented: Fingerprint,
    },

    /// The TLS handshake failed for another reason (for example the certificate
    /// does not chain to the CA file, or the server does not speak TLS 1.3).
    #[error("TLS error")]
    Tls(#[from] rustls::Error),

    /// The CA file given for certificate verification could not be used.
    #[error("cannot use CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The WebSocket upgrade or a WebSocket read/write failed.
    #[error("WebSocket error")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),

    /// The server closed the connection.
    #[error("the server closed the connection{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed {
        /// The close reason the server gave, if any.
        reason: Option<String>,
    },

    /// A request was not sent because it is larger than the server accepts (its
    /// `max_frame_bytes`); the connection stays usable. For a commit, change
    /// fewer members at once.
    #[error("the request is {bytes} bytes, over the server's limit of {limit} bytes; nothing was sent")]
    FrameTooLarge {
        /// The encoded request's size.
        bytes: usize,
        /// The server's limit.
        limit: usize,
    },

    /// A username the user typed breaks the rules; nothing was sent.
    #[error("{input:?} is not a valid username: {source}")]
    Username {
        /// What was typed.
        input: String,
        /// The rule it breaks.
        source: conclave_proto::validate::UsernameError,
    },

    /// A request that names users named none.
    #[error("name at least one user")]
    NoUsers,

    /// The server announced that it is shutting down; reconnect later.
    #[error("the server is shutting down; try again later")]
    ServerShutdown,

    /// The server sent something this client does not expect. A bug on one side
    /// or a version mismatch; not something the user can fix.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The server refused the request with a typed error.
    #[error("{message} ({code})")]
    Server {
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable text from the server. It came from the network: sanitize
        /// it before printing to a terminal.
        message: String,
    },

    /// The session of this connection ended (logout, revocation or expiry); log in
    /// again.
    #[error("the session has ended ({})", session_end_text(*reason))]
    SessionEnded {
        /// Why the server ended it.
        reason: SessionEndReason,
    },

    /// There is no saved session in the client home; log in first.
    #[error("not logged in")]
    NotLoggedIn,

    /// No client home directory could be determined (no `--home`, no
    /// `CONCLAVE_HOME`, and the platform has no data directory).
    #[error("no home directory for Conclave: pass --home DIR or set CONCLAVE_HOME")]
    NoHome,

    /// An MLS operation failed (a broken or hostile message, a lost group state).
    /// The MLS error is the source, so an error chain names it once.
    #[error("end-to-end encryption")]
    Mls(#[from] crate::mls::MlsError),

    /// A file in the client home could not be read or written.
    #[error("cannot access {}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// A file in the client home is not in the expected format.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with a line number when there is one.
        reason: String,
    },

    /// A TOTP secret is not valid base32 of an acceptable length.
    #[error("invalid TOTP secret: {0}")]
    TotpSecret(String),

    /// The QR code for the authenticator could not be drawn (the data is too long).
    #[error("cannot render the QR code: {0}")]
    QrCode(String),

    /// Any other I/O failure on the connection.
    #[error("I/O error on the connection")]
    Io(#[from] io::Error),
}

impl ClientError {
    /// The server's error code, when this is a typed error reply.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the failure concerns one room only (its group cannot be joined or
    /// followed, the server refused an action there), so the other rooms stay
    /// usable; connection, session and storage failures are not.
    #[must_use]
    pub fn is_room_level(&self) -> bool {
        match self {
            Self::Mls(_) | Self::Protocol(_) => true,
            Self::Server { code, .. } => matches!(
                code,
                ErrorCode::Forbidden
                    | ErrorCode::NotFound
                    | ErrorCode::GroupBroken
                    | ErrorCode::InvalidCommit
                    | ErrorCode::StaleEpoch
                    | ErrorCode::BadRequest
                    | ErrorCode::NoKeyPackages
            ),
            _ => false,
        }
    }

    /// Whether the stored session token is no longer usable, so the user has to
    /// log in again.
    #[must_use]
    pub fn is_session_gone(&self) -> bool {
        matches!(self, Self::SessionEnded { .. } | Self::NotLoggedIn)
            || self.code() == Some(ErrorCode::SessionInvalid)
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(err: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::WebSocket(Box::new(err))
    }
}

fn session_end_text(reason: SessionEndReason) -> &'static str {
    match reason {
        SessionEndReason::LoggedOut => "logged out",
        SessionEndReason::Revoked => "revoked",
        SessionEndReason::Expired => "expired",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Front ends print an error followed by its sources, so each link says
    /// its own part only.
    #[test]
    fn an_mls_error_is_named_once_in_the_chain() {
        let err = ClientError::from(crate::mls::MlsError::NotForUs);
        let mut parts = vec![err.to_string()];
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            parts.push(cause.to_string());
            source = cause.source();
        }
        assert_eq!(parts, ["end-to-end encryption", "the Welcome is not addressed to this device"]);
    }
}
