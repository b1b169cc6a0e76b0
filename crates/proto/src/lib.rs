//! The Conclave wire protocol.
//!
//! Clients talk to the server over one WebSocket (TLS 1.3 only). Every WebSocket
//! text message carries exactly one JSON frame:
//!
//! * client → server: a [`ClientFrame`] — a request id chosen by the client and one
//!   [`Request`];
//! * server → client: a [`ServerFrame`] — either the single [`Response`] to a request
//!   (same id, `ok` with a [`Reply`] or `error` with an [`ErrorCode`]), or an [`Event`]
//!   the server pushes on its own.
//!
//! The first request on a connection must be [`Request::Hello`], which negotiates the
//! protocol version ([`PROTOCOL_VERSION`]). The full specification, with examples, is
//! `docs/protocol.md` in the repository; this crate is its executable form.
//!
//! This crate does no I/O and depends on no runtime, so any front end (or another
//! language, following the document) can speak the protocol.
//!
//! # Layout
//! * [`frame`] — the envelopes and their size-checked encode/decode.
//! * [`request`] — everything a client can ask.
//! * [`response`] — replies and the stable error codes.
//! * [`event`] — what the server pushes unasked.
//! * [`room`] — rooms, their ordered logs, members, Welcomes.
//! * [`bytes`] — binary payloads (MLS messages) as base64.
//! * [`ids`] — newtypes for identifiers that cross the wire.
//! * [`limits`] — every protocol bound in one place.
//! * [`validate`] — the input rules both sides apply (usernames, codes).

pub mod bytes;
pub mod event;
pub mod frame;
pub mod ids;
pub mod limits;
pub mod request;
pub mod response;
pub mod room;
pub mod validate;

pub use bytes::Bytes;
pub use event::Event;
pub use frame::{ClientFrame, FrameError, ServerFrame};
pub use ids::{DeviceId, MessageId, RoomId, Seq, SessionId, UserId};
pub use request::{Change, Request, SecondFactor};
pub use response::{
    DeviceInfo, ErrorBody, ErrorCode, Outcome, RegistrationMode, Reply, Response, SessionInfo, UserInfo,
};
pub use room::{
    ClaimedKeyPackage, EntryBody, LogEntry, MemberInfo, RoomInfo, RoomKind, UserPresence, WelcomeInfo,
};

/// The protocol version this build speaks. A client offers the versions it
/// supports in [`Request::Hello`]; the server picks the highest it shares.
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket path the protocol is served on.
pub const WEBSOCKET_PATH: &str = "/ws";
