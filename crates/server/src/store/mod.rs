//! Durable storage over sqlx: the embedded SQLite database or PostgreSQL.
//!
//! One [`Store`] serves both backends. Every query is a `'static` SQL string with
//! bound parameters (`$1`, `$2`, … which both SQLite and PostgreSQL accept), so no
//! input ever becomes SQL text. The [`with_pool!`] macro expands one body once per
//! backend, so each query is type-checked against both drivers and cannot drift.
//! Where the dialects differ, the migrations differ (`migrations/sqlite`,
//! `migrations/postgres`, same numbered files), never the queries.
//!
//! Serialization that must hold across several server nodes (TOTP step reuse,
//! recovery codes, the audit chain, each room's log and MLS epoch, KeyPackage
//! claims) is done by the database with conditional `UPDATE`s, `DELETE …
//! RETURNING` and row locks, not by locks in this process.
//!
//! # Layout
//! * [`open`](Store::open) — connection, durability settings, migrations.
//! * `accounts` — users and their second factors.
//! * `login_limits` — the counters behind login back-offs and hourly caps.
//! * `device_cookies` — the marks of client homes that logged in before.
//! * `registration_tokens` — operator-made invitations to register.
//! * `sessions` — login sessions.
//! * `audit` — the audit log's table and its chain head.
//! * `devices` — devices and their KeyPackages.
//! * `retirement` — devices whose session ended leaving their groups.
//! * `rooms` — rooms, members, group state.
//! * `log` — each room's ordered log: commits (epoch compare-and-set), messages,
//!   deletions, departures; Welcomes.

mod accounts;
mod audit;
mod device_cookies;
mod devices;
mod log;
mod login_limits;
mod migrate;
mod registration_tokens;
mod repair;
mod retirement;
mod rooms;
mod sessions;

pub use accounts::{CreateUserError, NewUser, UserRecord};
pub use audit::{AuditHead, AuditRow, Keying, NewAuditEntry};
pub use device_cookies::{DeviceCookieRecord, NewDeviceCookie};
pub(crate) use devices::DeviceRecord;
pub(crate) use log::{AppendError, NewCommit, NewMessage, StoredMessage};
pub use login_limits::{AttemptCounters, Scope};
pub use registration_tokens::RegistrationTokenRecord;
pub use repair::{GroupReset, RoomSummary};
pub(crate) use retirement::Retiring;
pub(crate) use rooms::{GroupState, NewRoom, RoomRecord, kind_name};
pub use sessions::{NewSession, SessionRecord};

use crate::config::Database;
use sqlx::{
    postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
};
use std::{net::IpAddr, str::FromStr, time::Duration};

/// Why a storage operation failed.
///
/// The driver's error is part of the message and not a `source`: log lines
/// print the message alone, and an error chain would print it twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or the connection broke; retrying later
    /// may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// A unique constraint refused the write (for example a taken username).
    #[error("already exists")]
    Conflict,
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The configured database is not acceptable (for example plaintext to a
    /// remote PostgreSQL).
    #[error("{0}")]
    Refused(String),
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(err)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            _ => Self::Database(err),
        }
    }
}

/// Result of a storage operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The connection pool of whichever backend is configured.
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Handle to the database. Cheap to clone; all clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A connection kept by the one task that stores messages, across its
/// transactions. SQLite drops a connection's page cache whenever another
/// connection has written since its last transaction, so with a pool handing
/// each batch whichever connection is free, every batch would read the pages
/// of the tables it writes again (about 140 reads per batch in workload B).
/// Kept by one writer, the cache stays warm. If a batch fails, the appender
/// drops it and takes a fresh one, so a broken connection is not kept.
#[derive(Debug)]
pub(crate) enum Writer {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the writer's connection, once per backend
/// (as [`with_pool!`]).
macro_rules! with_writer {
    ($writer:expr, $conn:ident => $body:expr) => {
        match $writer {
            $crate::store::Writer::Sqlite($conn) => $body,
            $crate::store::Writer::Postgres($conn) => $body,
        }
    };
}
pub(crate) use with_writer;

impl Store {
    /// Connects to the configured database and brings its schema up to date.
    ///
    /// SQLite runs in WAL mode with `synchronous=FULL`: a write acknowledged is a
    /// write on disk. `secure_delete` zeroes freed space, so an erased message
    /// does not linger in the file. PostgreSQL to any host that is not loopback must use
    /// `sslmode=verify-full`; anything weaker is refused rather than silently
    /// falling back to plaintext.
    ///
    /// # Errors
    /// [`StoreError::Refused`] for an unsafe PostgreSQL URL, otherwise connection or
    /// migration errors.
    pub async fn open(database: &Database) -> Result<Self> {
        let pool = match database {
            Database::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .pragma("secure_delete", "ON")
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
                tracing::info!(path = %path.display(), "storage: SQLite (WAL, synchronous=FULL)");
                Pool::Sqlite(pool)
            }
            Database::Postgres(url) => {
                let options = postgres_options(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Pool::Postgres(pool)
            }
        };
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Takes a connection out of the pool for one writer to keep (see [`Writer`]).
    ///
    /// # Errors
    /// The pool's: no connection within its timeout, or the database is down.
    pub(crate) async fn writer(&self) -> Result<Writer> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => Writer::Sqlite(pool.acquire().await?),
            Pool::Postgres(pool) => Writer::Postgres(pool.acquire().await?),
        })
    }

    /// Whether the database answers; used by `/healthz`.
    pub async fn ping(&self) -> bool {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    /// Which backend this is, for logs and metrics.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes every pooled connection, waiting for those in use.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}

/// Parses a PostgreSQL URL and enforces the transport rule: loopback (or a Unix
/// socket) may go without TLS; every other host needs `sslmode=verify-full`.
fn postgres_options(url: &str) -> Result<PgConnectOptions> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| StoreError::Refused(format!("bad database URL: {e}")))?;
    let host = options.get_host().to_owned();
    let local = options.get_socket().is_some()
        || host == "localhost"
        || host.starts_with('/')
        || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let mode = options.get_ssl_mode();
    if !local && !matches!(mode, PgSslMode::VerifyFull) {
        return Err(StoreError::Refused(format!(
            "PostgreSQL host {host} is not loopback: TLS with sslmode=verify-full is required \
             (add ?sslmode=verify-full, and sslrootcert=… for a private CA); got sslmode={}",
            ssl_mode_name(mode)
        )));
    }
    tracing::info!(
        host = %host,
        port = options.get_port(),
        database = options.get_database().unwrap_or_default(),
        sslmode = ssl_mode_name(mode),
        "storage: PostgreSQL"
    );
    Ok(options)
}

fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_postgres_requires_verify_full() {
        assert!(postgres_options("postgres://u@127.0.0.1/db").is_ok());
        assert!(postgres_options("postgres://u@localhost/db").is_ok());
        assert!(postgres_options("postgres://u@[::1]/db").is_ok());
        for weak in ["", "?sslmode=prefer", "?sslmode=require", "?sslmode=verify-ca", "?sslmode=disable"] {
            let err = postgres_options(&format!("postgres://u@db.example.org/db{weak}")).unwrap_err();
            assert!(err.to_string().contains("verify-full"), "{err}");
        }
        assert!(postgres_options("postgres://u@db.example.org/db?sslmode=verify-full").is_ok());
    }
}
