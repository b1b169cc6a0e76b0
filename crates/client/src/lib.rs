//! The Conclave client library: everything a front end, test, bot or load
//! generator needs to talk to a Conclave server.
//!
//! A [`Client`] is one TLS 1.3 WebSocket to a server, greeted with `hello`, that
//! sends [`Request`](conclave_proto::Request)s and waits for their answers. The
//! server is authenticated by a [`Trust`] mode: a pinned public key fingerprint
//! (ssh-style trust on first use, remembered in the client home's
//! [`KnownHosts`]), or a CA file. The client home ([`Home`]) keeps the saved
//! session with owner-only permissions. Text that came from the network must go
//! through [`text::sanitize`] before a terminal shows it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), conclave_client::ClientError> {
//! use conclave_client::{Client, Fingerprint, Trust};
//! let pin: Fingerprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".parse()?;
//! let mut client = Client::connect("chat.example.org:8443", Trust::Pinned(pin), "my-bot/1.0").await?;
//! client.ping().await?;
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! * [`client`] — [`Client`]: requests and their typed answers, pending events.
//! * [`connection`] — [`Connection`]: the TLS WebSocket, whole frames in and out.
//! * [`trust`] — [`Trust`]: how the server's certificate is checked (pinning, CA).
//! * [`fingerprint`] — [`Fingerprint`]: SHA-256 of a server's public key (or, as
//!   earlier versions pinned, of its certificate), parse/display.
//! * [`address`] — [`ServerAddress`]: `HOST:PORT` in one canonical spelling.
//! * [`known_hosts`] — [`KnownHosts`]: the file of pinned servers.
//! * [`home`] — [`Home`]: the private client directory and `session.json`.
//! * [`device_cookie`] — [`DeviceCookie`]: what marks this home as a device
//!   that logged in before, so failures elsewhere cannot lock it out.
//! * [`totp`] — [`TotpSecret`]: two-factor enrolment, codes, otpauth URI, QR code.
//! * [`messenger`] — [`Messenger`]: a logged-in device in its conversations
//!   (joins, commits with retry, sends, catches up exactly once, in order).
//! * [`mls`] — the MLS state of this device (the only module using OpenMLS).
//! * [`store`] — the local history and device record in the client home.
//! * [`content`] — the versioned content inside each encrypted message.
//! * [`reconnect`] — back-off between reconnection attempts.
//! * [`text`] — [`text::sanitize`]: strips terminal escape sequences.
//! * [`error`] — [`ClientError`]: the one error type.

#![warn(missing_docs)]

pub mod address;
pub mod client;
pub mod connection;
pub mod content;
pub mod device_cookie;
pub mod error;
pub mod fingerprint;
pub mod home;
pub mod known_hosts;
pub mod messenger;
pub mod mls;
pub mod reconnect;
pub mod store;
pub mod text;
pub mod totp;
pub mod trust;

pub use address::ServerAddress;
pub use client::{Client, Identity, LoggedIn, NewSession, Registered};
pub use connection::{Connection, FrameText, decode_server_frame};
pub use device_cookie::{DeviceCookie, DeviceCookies};
pub use error::{ClientError, Result};
pub use fingerprint::Fingerprint;
pub use home::{Home, SavedSession, SessionToken};
pub use known_hosts::KnownHosts;
pub use messenger::{History, Invited, Messenger, Update};
pub use totp::TotpSecret;
pub use trust::Trust;
