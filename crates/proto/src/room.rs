//! Rooms, their ordered logs and their members, as the server describes them.

use crate::{
    bytes::Bytes,
    ids::{DeviceId, MessageId, RoomId, Seq},
    request::Change,
};
use serde::{Deserialize, Serialize};

/// What kind of conversation a room is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// The public room every user joins at first login.
    Lobby,
    /// A room anyone may join.
    Public,
    /// A group only invited users may join; only the owner adds and removes.
    Private,
    /// A two-person conversation.
    Direct,
}

/// A room as one user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Server id.
    pub id: RoomId,
    /// `lobby`, the group's name, or for a direct conversation the other
    /// participant as `@name`.
    pub name: String,
    /// Kind.
    pub kind: RoomKind,
    /// The owner's username (none for the lobby).
    pub owner: Option<String>,
    /// Whether the asking user is a member.
    pub member: bool,
    /// The MLS group id.
    pub group_id: Bytes,
    /// Current MLS epoch; absent until the group is created.
    pub epoch: Option<u64>,
    /// Sequence number of the newest log entry (0 when empty).
    pub last_seq: Seq,
}

/// One entry of a room's totally ordered log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the room's log.
    pub seq: Seq,
    /// When the server stored it, Unix milliseconds.
    pub at_ms: i64,
    /// Sending user.
    pub sender: String,
    /// Sending device.
    pub device: DeviceId,
    /// What it is.
    pub body: EntryBody,
}

/// The content of a log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntryBody {
    /// An application message (MLS PrivateMessage).
    Message {
        /// Message id.
        id: MessageId,
        /// Ciphertext; absent once the message was deleted.
        ciphertext: Option<Bytes>,
    },
    /// An accepted MLS commit that moved the group from `epoch` to `epoch + 1`.
    Commit {
        /// The epoch the commit was made in.
        epoch: u64,
        /// The declared change.
        change: Change,
        /// The MLS commit; empty for the group's creation.
        commit: Bytes,
    },
    /// A message was deleted for everyone.
    Deleted {
        /// The deleted message.
        message: MessageId,
    },
    /// A user left the room; members remove their devices at their next commit.
    Left {
        /// Who left.
        user: String,
    },
    /// One of a member's devices was retired (its session ended, or its owner
    /// removed it); members remove it from the group at their next commit.
    DeviceLeft {
        /// Whose device.
        user: String,
        /// The retired device.
        device: DeviceId,
    },
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Username.
    pub username: String,
    /// Whether this member owns the room.
    pub owner: bool,
    /// The member's devices in the group.
    pub devices: Vec<DeviceId>,
}

/// A KeyPackage claimed for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKeyPackage {
    /// Whose device: the username as the server spells it.
    pub user: String,
    /// The device.
    pub device: DeviceId,
    /// TLS-serialized KeyPackage.
    pub key_package: Bytes,
}

/// A Welcome into a room, for this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelcomeInfo {
    /// The room.
    pub room: RoomInfo,
    /// Sequence number of the commit that added this device: history before it is
    /// not readable on this device.
    pub seq: Seq,
    /// The MLS Welcome.
    pub welcome: Bytes,
    /// The ratchet tree after the commit.
    pub ratchet_tree: Bytes,
}

/// A user and whether they are online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence {
    /// Username.
    pub username: String,
    /// Connected right now on any device.
    pub online: bool,
}
