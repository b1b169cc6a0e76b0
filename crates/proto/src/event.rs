//! What the server pushes without being asked.

use serde::{Deserialize, Serialize};

/// A server-pushed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The session this connection used has ended (logout, revocation, expiry).
    /// The server closes the connection right after this event.
    SessionEnded {
        /// Why: `logged_out`, `revoked` or `expired`.
        reason: SessionEndReason,
    },
    /// The server is shutting down; reconnect later.
    ServerShutdown,
    /// An event this client does not know (sent by a newer server); ignore it.
    /// Never sent by this version.
    #[serde(other)]
    Unknown,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// The user logged out with this session.
    LoggedOut,
    /// The user (or an operator) revoked the session from elsewhere.
    Revoked,
    /// The idle or absolute timeout passed.
    Expired,
}
