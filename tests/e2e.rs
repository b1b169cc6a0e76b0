//! End-to-end tests: the real `conclave` binary as server and as client, over
//! real TLS on 127.0.0.1, against SQLite and PostgreSQL (each test runs once per
//! backend, with a fresh data directory and database).
//!
//! Where things go:
//! * `abuse` — per-account quotas and rates, what outsiders can learn of rooms
//!   and names, KeyPackage draining and the client's replenishing.
//! * `auth` — registration, login, second factors, back-off, sessions, logout,
//!   password normalisation.
//! * `lockout` — device cookies, untrusted and per-device back-offs, the hourly
//!   bound on guesses.
//! * `registration` — registration modes, registration tokens, the
//!   registration rate.
//! * `devices` — devices whose session ends (logout, revocation, removal)
//!   leaving every group; the device cap; a new device on a home that logs in
//!   again.
//! * `processes` — several processes on one client home at once.
//! * `protocol` — the wire protocol under malformed and hostile input.
//! * `flood` — connections that never log in: the caps per address and overall.
//! * `ops` — what an operator sees: TLS, health, metrics, restarts, certificates.
//! * `attacks` — what an attacker tried against a release build: handshakes
//!   replayed or forged against other rooms, and `admin repair-room`.
//! * `audit` — the hash-chained audit log and `conclave admin audit`.
//! * `chat` — the terminal UI in a pseudo-terminal, against CLI users.
//! * `leak` — no secret in the server's storage or logs.
//! * `messages` — end-to-end encrypted conversations through the CLI.
//! * `messaging` — devices, KeyPackages, rooms and their policy, MLS commits,
//!   ordered delivery, catch-up, deletion, presence, crash durability.
//! * `harness` — the MLS test harness of the wire-protocol tests: members with
//!   real MLS state, commits built, sent and settled.

#[path = "e2e/abuse.rs"]
mod abuse;
#[path = "e2e/attacks.rs"]
mod attacks;
#[path = "e2e/audit.rs"]
mod audit;
#[path = "e2e/auth.rs"]
mod auth;
#[path = "e2e/chat.rs"]
mod chat;
#[path = "e2e/devices.rs"]
mod devices;
#[path = "e2e/flood.rs"]
mod flood;
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/leak.rs"]
mod leak;
#[path = "e2e/lockout.rs"]
mod lockout;
#[path = "e2e/messages.rs"]
mod messages;
#[path = "e2e/messaging.rs"]
mod messaging;
#[path = "e2e/ops.rs"]
mod ops;
#[path = "e2e/processes.rs"]
mod processes;
#[path = "e2e/protocol.rs"]
mod protocol;
#[path = "e2e/registration.rs"]
mod registration;

use conclave_testkit::{Backend, ServerProcess};
use std::path::Path;

/// A password the default policy accepts.
pub const PASSWORD: &str = "violet staple orbit 42";

/// The `conclave` binary built for these tests.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_conclave"))
}

/// A fresh server for `backend` with extra `serve` flags.
pub async fn server(backend: Backend, extra: &[&str]) -> ServerProcess {
    ServerProcess::start(bin(), backend, extra).await
}
