//! The Conclave server library.
//!
//! [`Server::start`] opens storage (running migrations), loads or creates the TLS
//! identity and sets up shared state; [`Server::run`] serves a listener until the
//! shutdown future completes. The `conclave serve` command and the tests call the
//! same two functions.
//!
//! ```text
//!  listener task ──accept──▶ per-connection task: TLS handshake, HTTP/1.1
//!    (Semaphore:                 ├─ GET /healthz
//!     max_connections)           └─ GET /ws ─upgrade─▶ session task
//!                                                      (owns Connection; state
//!                                                       machine; handlers)
//!                                                        │ shares its Wire (TLS socket)
//!  handlers ──store append, then publish──▶ Fanout ──frames──▶ Wire: written at
//!                                                    once; bounded pending bytes
//!                                                    when the socket would block
//!  shared (Arc): Config, Store (sqlx pool), Hasher (blocking pool behind a
//!  semaphore), SecretBox, Audit, Metrics, LiveSessions, Fanout, rate limiters
//! ```
//!
//! Messaging: the server is the MLS Delivery Service. It never decrypts; it
//! stores KeyPackages, keeps one totally ordered log per room (a commit is
//! accepted only for the room's current epoch), enforces room policy on each
//! commit's declared change ([`policy`]), keeps the latest GroupInfo for external
//! joins, holds Welcomes until the device has joined, and pushes each stored
//! entry to the member devices' connections ([`fanout`]).
//!
//! # Layout
//! * [`config`] — raw layers → validated [`Config`].
//! * `listener` — accept loops (public and metrics), connection limit, TLS
//!   handshake timeout, certificate renewal task.
//! * `admission` — connection caps before login: per address, unauthenticated.
//! * `http` — the axum routers: `/healthz`, `/ws`; `/metrics` on its own listener.
//! * `connection` — one WebSocket, frames in and out, size limits.
//! * `session` — the per-connection protocol state machine.
//! * `handler` — one module per request family.
//! * `auth` — passwords, TOTP, tokens, secrets at rest, rate limits.
//! * `policy` — room policy: who may do what in which kind of room (pure).
//! * `quota` — per-account totals and rates, per-user KeyPackage budgets.
//! * `fanout` — pushing entries, Welcomes and presence to connections.
//! * [`store`] — SQLite | PostgreSQL through one interface.
//! * [`audit`] — the audit log, keyed by a file outside the database.
//! * `keyfile` — the server's key files (at-rest key, audit key).
//! * [`registration`] — registration tokens as the operator manages them.
//! * `fuzzing` (feature `fuzzing`, never in the binary) — real sessions on a
//!   real store answering text messages without a socket, for `fuzz/`.
//! * `metrics` and [`process`] (the process's own use of the machine),
//!   `shutdown`, `live`, [`tls`], [`error`].

mod admission;
mod appender;
pub mod audit;
mod auth;
#[doc(hidden)]
pub mod bench;
pub mod clock;
pub mod config;
mod connection;
pub mod error;
mod fanout;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handler;
mod handshake;
mod http;
mod keyfile;
mod listener;
mod live;
mod metrics;
mod policy;
pub mod process;
mod quota;
pub mod registration;
mod session;
mod shutdown;
pub mod store;
pub mod tls;
mod wire;

pub use config::{Config, Database, PasswordPolicy, RawConfig, RegistrationMode};
pub use error::ServerError;

use auth::{
    password::Hasher,
    ratelimit::{AddressLimiter, KeyedLimiter},
    secretbox::SecretBox,
};
use conclave_proto::UserId;
use std::{future::Future, os::unix::fs::DirBuilderExt, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// State shared by every connection. Fields are either immutable or internally
/// synchronised without locks held across `.await`.
pub(crate) struct Shared {
    config: Config,
    store: store::Store,
    audit: audit::Audit,
    hasher: Hasher,
    secrets: SecretBox,
    metrics: Arc<metrics::Metrics>,
    live: live::LiveSessions,
    /// The connection caps before login (per address, unauthenticated overall).
    admission: Arc<admission::Admission>,
    /// Login attempts per client address (`auth_attempts_per_minute`).
    address_limiter: AddressLimiter,
    /// Registration attempts per client address (`registrations_per_hour`).
    registration_limiter: AddressLimiter,
    /// Pushes stored entries, Welcomes and presence to bound connections.
    fanout: fanout::Fanout,
    /// Stores and publishes messages in batches (group commit).
    appender: appender::Appender,
    /// Users whose KeyPackages one user claims, per minute
    /// (`key_package_claims_per_minute`).
    claim_limiter: KeyedLimiter<UserId>,
    /// Claims of one user's KeyPackages by one claimer
    /// ([`CLAIMS_PER_USER_PAIR_PER_MINUTE`]).
    claim_pair_limiter: KeyedLimiter<(UserId, UserId)>,
    /// Ephemeral messages per user ([`conclave_proto::limits::SIGNALS_PER_MINUTE`]).
    signal_limiter: KeyedLimiter<UserId>,
    /// Per-account totals and rates, per-user KeyPackage budgets.
    quotas: quota::Quotas,
}

/// Claims of the same user's KeyPackages by one claimer per minute. Adding
/// someone takes one; the bound is what keeps a single account from using up a
/// particular user's one-time packages (a device holds at most 200).
const CLAIMS_PER_USER_PAIR_PER_MINUTE: u32 = 10;

/// A server ready to serve: storage open, TLS identity loaded.
pub struct Server {
    shared: Arc<Shared>,
    tls: tls::Identity,
}

impl Server {
    /// Prepares everything that can fail before accepting connections: creates the
    /// data directory (mode 0700), opens and migrates the database, loads or
    /// creates the certificate, the at-rest key and the audit key (keying the
    /// audit log on first start), and computes the dummy password hash.
    ///
    /// # Errors
    /// Any of those steps failing; the message names the file or setting.
    pub async fn start(config: Config) -> Result<Self, ServerError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .map_err(|source| ServerError::Io { path: config.data_dir.clone(), source })?;
        let store = store::Store::open(&config.database).await?;
        let tls = tls::Identity::load_or_create(&config.data_dir, config.tls_cert.as_ref())?;
        let secrets = SecretBox::load_or_create(&config.secret_key_file)
            .map_err(|source| ServerError::Io { path: config.secret_key_file.clone(), source })?;
        let (audit_key, origin) = audit::ChainKey::load_or_create(&config.audit_key_file)
            .map_err(|source| ServerError::Io { path: config.audit_key_file.clone(), source })?;
        let audit = audit::Audit::open(store.clone(), audit_key, origin)
            .await
            .map_err(|source| ServerError::Audit { path: config.audit_key_file.clone(), source })?;
        let metrics = Arc::new(metrics::Metrics::new());
        let hasher = Hasher::new(config.argon2, config.hash_concurrency, metrics.password_hashes.clone())?;
        let fanout = fanout::Fanout::new(metrics.clone());
        let appender =
            appender::Appender::start(store.clone(), fanout.clone(), metrics.clone(), audit.key().clone());
        let shared = Shared {
            audit,
            admission: Arc::new(admission::Admission::new(
                config.max_connections_per_address,
                config.max_unauthenticated_connections,
                metrics.clone(),
            )),
            address_limiter: AddressLimiter::new(config.auth_attempts_per_minute),
            registration_limiter: AddressLimiter::per_hour(config.registrations_per_hour),
            store,
            hasher,
            secrets,
            fanout,
            appender,
            claim_limiter: KeyedLimiter::new(config.key_package_claims_per_minute),
            claim_pair_limiter: KeyedLimiter::new(CLAIMS_PER_USER_PAIR_PER_MINUTE),
            signal_limiter: KeyedLimiter::new(conclave_proto::limits::SIGNALS_PER_MINUTE),
            quotas: quota::Quotas::new(&config, metrics.clone()),
            metrics,
            live: live::LiveSessions::default(),
            config,
        };
        Ok(Self { shared: Arc::new(shared), tls })
    }

    /// SHA-256 of the served certificate's public key (SubjectPublicKeyInfo),
    /// lower-case hex: what clients pin. Renewals keep it.
    #[must_use]
    pub fn fingerprint(&self) -> &str {
        &self.tls.fingerprint
    }

    /// When the served certificate expires, Unix seconds.
    #[must_use]
    pub fn certificate_expires_at(&self) -> i64 {
        self.tls.not_after
    }

    /// Serves `listener` (TLS: WebSocket and `/healthz`) and `metrics`
    /// (plain HTTP: `/metrics`) until `shutdown` completes, then stops
    /// accepting, tells every session to close and waits (up to 10 s) for them
    /// to finish.
    ///
    /// # Errors
    /// A TLS configuration error. Per-connection failures are logged, not returned.
    pub async fn run(
        self,
        listener: TcpListener,
        metrics: TcpListener,
        shutdown: impl Future,
    ) -> Result<(), ServerError> {
        let (tls, resolver) = self.tls.server_config()?;
        let renewal = (self.tls, resolver);
        let result = listener::serve(
            listener,
            metrics,
            (tls, renewal),
            self.shared.clone(),
            shutdown,
            Duration::from_secs(10),
        )
        .await;
        // The appender keeps a connection of its own: it must end first.
        self.shared.appender.finish().await;
        self.shared.store.close().await;
        result
    }
}
