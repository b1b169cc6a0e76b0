//! What the server pushes without being asked.

use crate::{
    bytes::Bytes,
    ids::{DeviceId, RoomId, Seq},
    room::{LogEntry, WelcomeInfo},
};
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
    /// A new entry in a room this device is in. Entries of one room arrive in
    /// sequence order; a gap means the client must `fetch` what it missed.
    Entry {
        /// The room.
        room: RoomId,
        /// The entry.
        entry: LogEntry,
    },
    /// An ephemeral message from another member device (see the `signal`
    /// request): never stored, so missing it loses nothing.
    Signal {
        /// The room.
        room: RoomId,
        /// Who sent it.
        sender: String,
        /// The sending device.
        device: DeviceId,
        /// The room's last sequence number when it was relayed. A client that has
        /// not processed the log up to here must drop the signal rather than
        /// decrypt it: decrypting it first would move the sender's MLS ratchet past
        /// stored messages the client has yet to read.
        after: Seq,
        /// The MLS ciphertext.
        ciphertext: Bytes,
    },
    /// This device was added to a room.
    Welcome {
        /// The Welcome.
        welcome: WelcomeInfo,
    },
    /// A user came online or went offline.
    Presence {
        /// Who.
        username: String,
        /// Online now.
        online: bool,
    },
    /// This device's last-resort KeyPackage was handed out to someone adding
    /// the device to a group (its one-time packages were used up, or the
    /// claimer was over its budget for them): upload a fresh last-resort
    /// package, and one-time packages when few are left. Sent once per
    /// last-resort package uploaded; the `device` reply says the same.
    LastResortUsed {
        /// One-time KeyPackages the server still holds for this device.
        key_packages_left: u32,
    },
    /// The server could not keep up with this connection and dropped events:
    /// `fetch` every room from the last processed sequence number.
    Resync,
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
