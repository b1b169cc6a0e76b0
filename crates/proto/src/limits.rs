//! Every protocol bound in one place, so server, client and documentation agree.

/// Largest WebSocket frame or message accepted by either side (1 MiB). The server
/// can be configured lower or higher (`max_frame_bytes`); this is the default.
///
/// Sized for the largest frames a client sends: a commit that adds members to a
/// large room carries its Welcome, and the Welcome the whole ratchet tree (about
/// 300 bytes per member once encoded). Rooms of 1,000 members need about 320 KiB,
/// over the 256 KiB this used to be; 1 MiB leaves room for about 3,000.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Largest message the server reads on a connection that has not logged in yet
/// (16 KiB). Everything sent before login (`hello`, `register`, `login`,
/// `authenticate`) fits in a few KiB even with a 1,024-character password
/// written as JSON escapes; a larger message closes the connection with 1009.
/// After login, the server's `max_frame_bytes` applies.
pub const MAX_UNAUTHENTICATED_FRAME_BYTES: usize = 16 * 1024;

/// Largest frame a client accepts from the server (4 MiB). Server frames can be
/// larger than client frames: a large group's ratchet tree or GroupInfo is sent
/// whole. `fetch` replies are kept well below this by the server.
pub const MAX_SERVER_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Budget for the entries of one `fetch` reply (their encoded size, roughly):
/// the server returns fewer entries than asked rather than exceed it.
pub const FETCH_REPLY_BUDGET_BYTES: usize = 1024 * 1024;

/// Shortest allowed username.
pub const USERNAME_MIN_CHARS: usize = 3;
/// Longest allowed username.
pub const USERNAME_MAX_CHARS: usize = 32;

/// Shortest password the default policy accepts (NIST 800-63B, OWASP ASVS 5.0).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest password accepted. Passwords are never truncated: a longer one is refused.
pub const PASSWORD_MAX_CHARS: usize = 1024;

/// Digits in a TOTP code (RFC 6238 as used by Google Authenticator).
pub const TOTP_DIGITS: usize = 6;
/// Seconds per TOTP step.
pub const TOTP_STEP_SECONDS: u64 = 30;
/// Smallest TOTP secret accepted, in bytes (160 bits, RFC 4226 recommends this).
pub const TOTP_SECRET_MIN_BYTES: usize = 20;
/// Largest TOTP secret accepted, in bytes.
pub const TOTP_SECRET_MAX_BYTES: usize = 64;

/// Number of one-time recovery codes issued at registration.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Length of a recovery code as shown (`xxxx-xxxx-xxxx-xxxx`).
pub const RECOVERY_CODE_CHARS: usize = 19;

/// Longest session token or device cookie accepted on the wire (base64url of
/// 32 bytes is 43).
pub const TOKEN_MAX_CHARS: usize = 64;
/// Hex digits of a registration token's public id.
pub const REGISTRATION_TOKEN_ID_CHARS: usize = 12;
/// Base32 characters of a registration token's secret (128 random bits).
pub const REGISTRATION_TOKEN_SECRET_CHARS: usize = 26;
/// Length of a registration token as shown: `<id>-<secret>`.
pub const REGISTRATION_TOKEN_CHARS: usize = REGISTRATION_TOKEN_ID_CHARS + 1 + REGISTRATION_TOKEN_SECRET_CHARS;
/// Longest client name accepted in `hello`.
pub const CLIENT_NAME_MAX_CHARS: usize = 64;
/// Most protocol versions a client may offer in `hello`.
pub const MAX_OFFERED_VERSIONS: usize = 16;

/// Longest room name.
pub const ROOM_NAME_MAX_CHARS: usize = 32;
/// Largest MLS application message (ciphertext) accepted by `send`.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest ephemeral MLS message (`signal`): a typing indicator needs a few
/// hundred bytes.
pub const MAX_SIGNAL_BYTES: usize = 4096;
/// Ephemeral messages one user may send per minute (a client sends a typing
/// indicator at most every few seconds per conversation).
pub const SIGNALS_PER_MINUTE: u32 = 120;
/// Most one-time KeyPackages a device may hold on the server by default (the
/// server's `max_key_packages_per_device` setting).
pub const MAX_KEY_PACKAGES_PER_DEVICE: usize = 200;
/// Largest KeyPackage accepted (a typical one is under 1 KiB).
pub const MAX_KEY_PACKAGE_BYTES: usize = 16 * 1024;
/// Most KeyPackages in one upload.
pub const MAX_KEY_PACKAGES_PER_UPLOAD: usize = 100;
/// Most entries one `fetch` returns.
pub const MAX_FETCH: u32 = 500;
/// Most users one commit may add or remove.
pub const MAX_CHANGE_USERS: usize = 100;
