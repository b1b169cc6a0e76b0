//! Test harness for Conclave's end-to-end tests.
//!
//! Tests drive the real `conclave` binary: [`ServerProcess`] runs `conclave serve`
//! on `127.0.0.1:0` with a fresh data directory and (for PostgreSQL) a fresh
//! database; [`Home`] runs client commands with an isolated client home;
//! [`RawClient`] speaks the wire protocol directly for tests of malformed input;
//! [`leak`] searches everything the server stored or logged for a secret.
//!
//! Test-only code: nothing here is used by the product.
//!
//! # Layout
//! * `db` — [`Backend`] and fresh databases per test.
//! * `server` — [`ServerProcess`].
//! * `bin` — [`Home`], the CLI runner.
//! * `raw` — [`RawClient`] and plain HTTPS requests.
//! * `account` — [`Account`]: registration, more connections, devices, over
//!   [`RawClient`].
//! * `totp` — codes for a given time, as an authenticator app computes them.
//! * `pty` — [`Terminal`]: a program in a pseudo-terminal, its screen emulated.
//! * [`leak`] — plaintext searches over server storage and logs.

mod account;
mod bin;
mod db;
pub mod leak;
mod pty;
mod raw;
mod server;
mod totp;

pub use account::Account;
pub use bin::{Home, Output, Registered, Running};
pub use db::{Backend, TestDb};
pub use pty::Terminal;
pub use raw::{RawClient, http_get, https_get, tls12_handshake, try_http_get, try_https_get};
pub use server::ServerProcess;
pub use totp::{code_at, code_now, code_previous_step, new_secret};

/// Defines one test per storage backend from an async function taking a
/// [`Backend`]: `backend_tests!(login_works);` makes `login_works::sqlite` and
/// `login_works::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await;
            }
        }
    )*};
}
