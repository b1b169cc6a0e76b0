//! Replies to requests and the stable error codes.

use crate::{
    bytes::Bytes,
    ids::{DeviceId, MessageId, RoomId, Seq, SessionId, UserId},
    room::{ClaimedKeyPackage, LogEntry, MemberInfo, RoomInfo, UserPresence, WelcomeInfo},
};
use serde::{Deserialize, Serialize};
use std::fmt;

fn default_max_frame_bytes() -> u64 {
    crate::limits::MAX_FRAME_BYTES as u64
}

/// The single response to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The id of the request this answers; `0` when the request could not be
    /// parsed far enough to read its id.
    pub id: u64,
    /// Success or a typed error.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// `{"ok": …}` or `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The request succeeded.
    Ok(Reply),
    /// The request failed; nothing was changed unless the code says otherwise.
    Error(ErrorBody),
}

/// What a successful request returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to `hello`: the version both sides will speak.
    Hello {
        /// The negotiated protocol version.
        version: u32,
        /// Server software name and version.
        server: String,
        /// The largest frame this server accepts, in bytes (its `max_frame_bytes`),
        /// so a client can refuse a larger request itself, with a clear error,
        /// instead of having its connection closed. Absent from older servers:
        /// the protocol's default then.
        #[serde(default = "default_max_frame_bytes")]
        max_frame_bytes: u64,
        /// Who may `register`, so a client can ask for an invitation token (or
        /// say that registration is closed) before the user fills in a form.
        /// Absent from older servers: `open` then.
        #[serde(default)]
        registration: RegistrationMode,
    },
    /// Answer to `register`: the account exists and, as after `login`, this
    /// connection is authenticated with a new session. The recovery codes are shown
    /// to the user once and never again (the server keeps only their hashes).
    Registered {
        /// The new account.
        user: UserInfo,
        /// One-time recovery codes.
        recovery_codes: Vec<String>,
        /// The new session's public id.
        session_id: SessionId,
        /// The secret session token; store it privately (mode 0600).
        token: String,
        /// This client home's device cookie for the account: store it privately
        /// and send it with every later `login` as this user on this server.
        /// Absent from older servers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_cookie: Option<String>,
    },
    /// Answer to `login`: the connection is authenticated with a new session.
    LoggedIn {
        /// The account.
        user: UserInfo,
        /// The new session's public id.
        session_id: SessionId,
        /// The secret session token; store it privately (mode 0600).
        token: String,
        /// How many unused recovery codes remain (when one was just used, the
        /// user should be told).
        recovery_codes_left: u32,
        /// A new device cookie, replacing the one sent (which no longer works):
        /// store it privately and send it with the next `login`. Absent from
        /// older servers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_cookie: Option<String>,
    },
    /// Answer to `authenticate` and `whoami`.
    Authenticated {
        /// The account.
        user: UserInfo,
        /// The session this connection uses.
        session_id: SessionId,
    },
    /// Answer to `list_sessions`.
    Sessions {
        /// Live sessions, newest first.
        sessions: Vec<SessionInfo>,
    },
    /// Answer to `list_devices`.
    Devices {
        /// The user's devices that are not retired, oldest first.
        devices: Vec<DeviceInfo>,
    },
    /// Answer to `ping`.
    Pong,
    /// Answer to `device`: the connection is bound to this device.
    Device {
        /// The device id (new or resumed).
        device_id: DeviceId,
        /// One-time KeyPackages the server still holds for it (upload more when low).
        key_packages_left: u32,
        /// The device's last-resort KeyPackage has been handed out since it was
        /// uploaded: upload a fresh one (and one-time packages). Absent from
        /// older servers: `false`.
        #[serde(default)]
        last_resort_used: bool,
    },
    /// Answer to `claim_key_packages`: one KeyPackage per device of each user
    /// that has one.
    KeyPackages {
        /// The packages, in the order the users were named, then device order.
        packages: Vec<ClaimedKeyPackage>,
        /// The users named that have no device with a package to claim (they
        /// cannot be added until one of their devices uploads some).
        unavailable: Vec<String>,
    },
    /// Answer to `create_room`, `open_direct` and `find_room`.
    Room {
        /// The room.
        room: RoomInfo,
    },
    /// Answer to `list_rooms`.
    Rooms {
        /// Rooms the user is in, then public rooms they are not in.
        rooms: Vec<RoomInfo>,
    },
    /// Answer to `group_info`.
    GroupInfo {
        /// The room.
        room: RoomId,
        /// Current epoch; absent if the group was not created yet (then the
        /// caller creates it with a `create` commit).
        epoch: Option<u64>,
        /// GroupInfo (TLS-serialized), when the group exists.
        group_info: Option<Bytes>,
        /// Ratchet tree (TLS-serialized), when the group exists.
        ratchet_tree: Option<Bytes>,
    },
    /// Answer to `commit`: accepted and stored.
    Committed {
        /// The commit's position in the room log.
        seq: Seq,
        /// The group's new epoch.
        epoch: u64,
    },
    /// Answer to `send` and `delete`: durably stored.
    Sent {
        /// The message id (for `delete`: the deleted message).
        id: MessageId,
        /// Position in the room log.
        seq: Seq,
    },
    /// Answer to `fetch`.
    Log {
        /// The room.
        room: RoomId,
        /// Entries, oldest first.
        entries: Vec<LogEntry>,
        /// The newest sequence number in the room.
        last_seq: Seq,
    },
    /// Answer to `members`.
    Members {
        /// The members.
        members: Vec<MemberInfo>,
    },
    /// Answer to `welcomes`.
    Welcomes {
        /// Pending Welcomes, oldest first.
        welcomes: Vec<WelcomeInfo>,
    },
    /// Answer to `users`.
    Users {
        /// Every user, by name.
        users: Vec<UserPresence>,
    },
    /// The request was carried out and has nothing to return.
    Done,
}

/// Who may create an account on a server (its `registration` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone may register.
    #[default]
    Open,
    /// Only with a registration token the operator created
    /// (`conclave admin registration-token create`).
    Invite,
    /// Nobody may register.
    Closed,
}

impl RegistrationMode {
    /// The `snake_case` wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Invite => "invite",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for RegistrationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RegistrationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Self::Open),
            "invite" => Ok(Self::Invite),
            "closed" => Ok(Self::Closed),
            other => Err(format!("unknown registration mode {other:?} (expected open, invite or closed)")),
        }
    }
}

/// Public facts about an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Permanent id.
    pub id: UserId,
    /// Lower-case username.
    pub username: String,
}

/// One login session as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Public id (use it to revoke).
    pub id: SessionId,
    /// When the session was created, Unix seconds.
    pub created_at: i64,
    /// Last time the session was used, Unix seconds.
    pub last_seen_at: i64,
    /// When the session ends at the latest (absolute timeout), Unix seconds.
    pub expires_at: i64,
    /// Client name given in `hello` at login.
    pub client: String,
    /// Whether this is the session of the connection asking.
    pub current: bool,
}

/// One of the user's devices, as `list_devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device.
    pub id: DeviceId,
    /// When it was registered, Unix seconds.
    pub created_at: i64,
    /// When a connection last bound it, Unix seconds.
    pub last_bound_at: i64,
    /// Client name given in `hello` by the session it was last bound with.
    pub client: String,
    /// Whether this is the device of the connection asking.
    pub current: bool,
}

/// A typed error with a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Text for people; never contains internal details.
    pub message: String,
}

/// Stable error codes. New codes may be added in later versions; clients treat an
/// unknown code like `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a known request shape.
    BadRequest,
    /// The first request on a connection was not `hello`.
    HelloRequired,
    /// `hello` was sent twice.
    AlreadyGreeted,
    /// No protocol version in common.
    UnsupportedVersion,
    /// Login failed. Deliberately one code and one message for unknown user,
    /// wrong password, wrong code and temporary back-off.
    AuthFailed,
    /// Too many requests of one kind in a short time (from this address, on
    /// this connection, or by this account); wait and retry.
    RateLimited,
    /// An account's or device's total of something (rooms owned, devices,
    /// KeyPackages held) is at the server's limit; waiting does not help.
    QuotaExceeded,
    /// The username does not fit the rules.
    InvalidUsername,
    /// The password does not fit the policy; the message says why.
    WeakPassword,
    /// The username is already registered.
    UsernameTaken,
    /// The TOTP secret or confirming code at registration is not valid.
    InvalidTotp,
    /// The server's registration mode is `closed`: nobody may register.
    RegistrationClosed,
    /// The server's registration mode is `invite` and the registration token
    /// is missing, wrong, expired, used up or revoked (one code for all).
    InvalidRegistrationToken,
    /// The request needs an authenticated connection.
    NotAuthenticated,
    /// The connection is already authenticated.
    AlreadyAuthenticated,
    /// The session token is unknown, revoked or expired.
    SessionInvalid,
    /// The named thing does not exist, or is not yours, or the caller may not
    /// know of it: a private or direct room answers a non-member exactly as a
    /// room that does not exist.
    NotFound,
    /// Storage is unreachable; retry later.
    Unavailable,
    /// Messaging needs a device bound with `device` first.
    DeviceRequired,
    /// The device id or signature key does not match a device of this user.
    DeviceMismatch,
    /// The device was retired (its session ended by logout or revocation, or
    /// its owner removed it): it never binds again. The client starts a new
    /// device with a new key.
    DeviceRetired,
    /// The user may not do this in this room (room policy), and may know that
    /// the room exists (a member, or anyone in the lobby or a public room).
    Forbidden,
    /// The commit was made for an epoch that is no longer current: process the
    /// newer log entries, then retry.
    StaleEpoch,
    /// The user has no device with a KeyPackage to claim.
    NoKeyPackages,
    /// A room name does not fit the rules.
    InvalidName,
    /// A room with that name exists.
    NameTaken,
    /// A message is larger than allowed.
    TooLarge,
    /// A commit, or the GroupInfo, ratchet tree or Welcome sent with it, failed the
    /// server's MLS checks against the room's group (another group or epoch, a bad
    /// signature, a GroupInfo or tree that is not the commit's…); the message says
    /// which. Nothing was stored.
    InvalidCommit,
    /// The room's group state on the server cannot be used (a room broken before
    /// the server checked commits): the operator resets it with
    /// `conclave admin repair-room`, then members rejoin.
    GroupBroken,
    /// Something went wrong on the server; details are in its log.
    Internal,
    /// A code this client does not know (sent by a newer server); treat it like
    /// `internal`. Never sent by this version.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The `snake_case` wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::HelloRequired => "hello_required",
            Self::AlreadyGreeted => "already_greeted",
            Self::UnsupportedVersion => "unsupported_version",
            Self::AuthFailed => "auth_failed",
            Self::RateLimited => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::InvalidUsername => "invalid_username",
            Self::WeakPassword => "weak_password",
            Self::UsernameTaken => "username_taken",
            Self::InvalidTotp => "invalid_totp",
            Self::RegistrationClosed => "registration_closed",
            Self::InvalidRegistrationToken => "invalid_registration_token",
            Self::NotAuthenticated => "not_authenticated",
            Self::AlreadyAuthenticated => "already_authenticated",
            Self::SessionInvalid => "session_invalid",
            Self::NotFound => "not_found",
            Self::Unavailable => "unavailable",
            Self::DeviceRequired => "device_required",
            Self::DeviceMismatch => "device_mismatch",
            Self::DeviceRetired => "device_retired",
            Self::Forbidden => "forbidden",
            Self::StaleEpoch => "stale_epoch",
            Self::NoKeyPackages => "no_key_packages",
            Self::InvalidName => "invalid_name",
            Self::NameTaken => "name_taken",
            Self::TooLarge => "too_large",
            Self::InvalidCommit => "invalid_commit",
            Self::GroupBroken => "group_broken",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Response {
    /// A successful response.
    #[must_use]
    pub fn ok(id: u64, reply: Reply) -> Self {
        Self { id, outcome: Outcome::Ok(reply) }
    }

    /// An error response.
    #[must_use]
    pub fn error(id: u64, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { id, outcome: Outcome::Error(ErrorBody { code, message: message.into() }) }
    }
}
