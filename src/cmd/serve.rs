//! `conclave serve`: runs the server until SIGINT or SIGTERM.

use anyhow::Context;
use conclave_server::{Config, PasswordPolicy, RawConfig, RegistrationMode, Server};
use std::{io::Write, net::SocketAddr, path::PathBuf};

/// Flags of `conclave serve`. Each also reads `CONCLAVE_<NAME>` from the
/// environment (flags win) and the same name from the `--config` TOML file.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Every setting, its default and its unit: docs/conclave.example.toml")]
pub struct ServeArgs {
    /// TOML configuration file (settings as in docs/conclave.example.toml).
    #[arg(long, env = "CONCLAVE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7443].
    #[arg(long, env = "CONCLAVE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database, certificate and keys [default: ./conclave-data].
    #[arg(long, env = "CONCLAVE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL (postgres://…) instead of the embedded SQLite database. A
    /// host that is not loopback needs sslmode=verify-full.
    #[arg(long, env = "CONCLAVE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PEM certificate chain to serve instead of the self-signed certificate.
    #[arg(long, env = "CONCLAVE_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "CONCLAVE_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Key file encrypting TOTP secrets at rest [default: DATA_DIR/secret.key].
    #[arg(long, env = "CONCLAVE_SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Key file of the audit log's chain [default: DATA_DIR/audit.key].
    #[arg(long, env = "CONCLAVE_AUDIT_KEY_FILE", value_name = "FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// Largest WebSocket frame or message in bytes [default: 1048576].
    #[arg(long, env = "CONCLAVE_MAX_FRAME_BYTES", value_name = "BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Most simultaneous connections [default: 20000].
    #[arg(long, env = "CONCLAVE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Password policy: default (NIST 800-63B) or composition (also upper, lower,
    /// digit, symbol) [default: default].
    #[arg(long, env = "CONCLAVE_PASSWORD_POLICY", value_name = "POLICY")]
    pub password_policy: Option<PasswordPolicy>,
    /// argon2id memory per hash in KiB [default: 19456].
    #[arg(long, env = "CONCLAVE_ARGON2_MEMORY_KIB", value_name = "KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// argon2id iterations [default: 2].
    #[arg(long, env = "CONCLAVE_ARGON2_ITERATIONS", value_name = "N")]
    pub argon2_iterations: Option<u32>,
    /// Password hashes computed at once [default: CPU cores].
    #[arg(long, env = "CONCLAVE_HASH_CONCURRENCY", value_name = "N")]
    pub hash_concurrency: Option<usize>,
    /// Failed logins for an account before back-off starts [default: 5].
    #[arg(long, env = "CONCLAVE_LOGIN_MAX_FAILURES", value_name = "N")]
    pub login_max_failures: Option<u32>,
    /// First back-off in seconds, doubling per further failure [default: 30].
    #[arg(long, env = "CONCLAVE_LOGIN_BACKOFF_SECS", value_name = "SECS")]
    pub login_backoff_secs: Option<u64>,
    /// Longest back-off in seconds [default: 900].
    #[arg(long, env = "CONCLAVE_LOGIN_BACKOFF_MAX_SECS", value_name = "SECS")]
    pub login_backoff_max_secs: Option<u64>,
    /// Failed logins judged per account in any 60 minutes, from unknown devices
    /// and again from known ones; at most 50 [default: 50].
    #[arg(long, env = "CONCLAVE_LOGIN_FAILURES_PER_HOUR", value_name = "N")]
    pub login_failures_per_hour: Option<u32>,
    /// How long a device cookie keeps a client home known, in seconds
    /// [default: 31536000, 365 days].
    #[arg(long, env = "CONCLAVE_DEVICE_COOKIE_LIFETIME_SECS", value_name = "SECS")]
    pub device_cookie_lifetime_secs: Option<u64>,
    /// Login attempts per client address per minute [default: 30].
    #[arg(long, env = "CONCLAVE_AUTH_ATTEMPTS_PER_MINUTE", value_name = "N")]
    pub auth_attempts_per_minute: Option<u32>,
    /// Who may register: open, invite (with a token from `conclave admin
    /// registration-token create`) or closed [default: open].
    #[arg(long, env = "CONCLAVE_REGISTRATION", value_name = "MODE")]
    pub registration: Option<RegistrationMode>,
    /// Registration attempts per client address per hour [default: 20].
    #[arg(long, env = "CONCLAVE_REGISTRATIONS_PER_HOUR", value_name = "N")]
    pub registrations_per_hour: Option<u32>,
    /// Requests per connection per second [default: 50].
    #[arg(long, env = "CONCLAVE_REQUESTS_PER_SECOND", value_name = "N")]
    pub requests_per_second: Option<u32>,
    /// Users whose KeyPackages one user may claim per minute [default: 1000].
    #[arg(long, env = "CONCLAVE_KEY_PACKAGE_CLAIMS_PER_MINUTE", value_name = "N")]
    pub key_package_claims_per_minute: Option<u32>,
    /// Session idle timeout in seconds [default: 1209600, 14 days].
    #[arg(long, env = "CONCLAVE_SESSION_IDLE_SECS", value_name = "SECS")]
    pub session_idle_secs: Option<u64>,
    /// Session absolute lifetime in seconds [default: 7776000, 90 days].
    #[arg(long, env = "CONCLAVE_SESSION_ABSOLUTE_SECS", value_name = "SECS")]
    pub session_absolute_secs: Option<u64>,
    /// TLS handshake and upgrade deadline in seconds [default: 10].
    #[arg(long, env = "CONCLAVE_HANDSHAKE_TIMEOUT_SECS", value_name = "SECS")]
    pub handshake_timeout_secs: Option<u64>,
    /// Public and private rooms one account may own [default: 500].
    #[arg(long, env = "CONCLAVE_MAX_ROOMS_PER_ACCOUNT", value_name = "N")]
    pub max_rooms_per_account: Option<u32>,
    /// Rooms one account may create per minute, direct conversations included
    /// [default: 30].
    #[arg(long, env = "CONCLAVE_ROOMS_PER_MINUTE", value_name = "N")]
    pub rooms_per_minute: Option<u32>,
    /// Devices one account may register, 1 to 32 [default: 32].
    #[arg(long, env = "CONCLAVE_MAX_DEVICES_PER_ACCOUNT", value_name = "N")]
    pub max_devices_per_account: Option<u32>,
    /// One-time KeyPackages one device may hold [default: 200].
    #[arg(long, env = "CONCLAVE_MAX_KEY_PACKAGES_PER_DEVICE", value_name = "N")]
    pub max_key_packages_per_device: Option<u32>,
    /// Bytes of KeyPackages one device may hold [default: 262144].
    #[arg(long, env = "CONCLAVE_MAX_KEY_PACKAGE_BYTES_PER_DEVICE", value_name = "BYTES")]
    pub max_key_package_bytes_per_device: Option<u32>,
    /// Messages one account may send per minute, per server node [default: 600].
    #[arg(long, env = "CONCLAVE_MESSAGES_PER_MINUTE", value_name = "N")]
    pub messages_per_minute: Option<u32>,
    /// Message bytes one account may send per minute, per server node
    /// [default: 16777216].
    #[arg(long, env = "CONCLAVE_MESSAGE_BYTES_PER_MINUTE", value_name = "BYTES")]
    pub message_bytes_per_minute: Option<u32>,
    /// One-time KeyPackages of a user handed out per hour to people who share a
    /// private or direct room with them [default: 100].
    #[arg(long, env = "CONCLAVE_CONTACT_KEY_PACKAGE_CLAIMS_PER_HOUR", value_name = "N")]
    pub contact_key_package_claims_per_hour: Option<u32>,
    /// One-time KeyPackages of a user handed out per hour to everyone else
    /// [default: 10].
    #[arg(long, env = "CONCLAVE_STRANGER_KEY_PACKAGE_CLAIMS_PER_HOUR", value_name = "N")]
    pub stranger_key_package_claims_per_hour: Option<u32>,
    /// Close a WebSocket that has not sent `hello` within this many seconds of its
    /// upgrade [default: 10].
    #[arg(long, env = "CONCLAVE_HELLO_TIMEOUT_SECS", value_name = "SECS")]
    pub hello_timeout_secs: Option<u64>,
    /// Close a WebSocket that has not logged in within this many seconds of its
    /// upgrade [default: 60].
    #[arg(long, env = "CONCLAVE_AUTH_TIMEOUT_SECS", value_name = "SECS")]
    pub auth_timeout_secs: Option<u64>,
    /// Most open connections from one IPv4 address or IPv6 /64 [default: 256].
    #[arg(long, env = "CONCLAVE_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Most connections not yet logged in, from all addresses [default: 1000].
    #[arg(long, env = "CONCLAVE_MAX_UNAUTHENTICATED_CONNECTIONS", value_name = "N")]
    pub max_unauthenticated_connections: Option<usize>,
    /// Plain-HTTP address serving /metrics; keep it on loopback or a private
    /// network [default: 127.0.0.1:7444].
    #[arg(long, env = "CONCLAVE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl ServeArgs {
    /// The flag/environment layer of the configuration.
    fn raw(&self) -> RawConfig {
        RawConfig {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            secret_key_file: self.secret_key_file.clone(),
            audit_key_file: self.audit_key_file.clone(),
            max_frame_bytes: self.max_frame_bytes,
            max_connections: self.max_connections,
            password_policy: self.password_policy,
            argon2_memory_kib: self.argon2_memory_kib,
            argon2_iterations: self.argon2_iterations,
            hash_concurrency: self.hash_concurrency,
            login_max_failures: self.login_max_failures,
            login_backoff_secs: self.login_backoff_secs,
            login_backoff_max_secs: self.login_backoff_max_secs,
            login_failures_per_hour: self.login_failures_per_hour,
            device_cookie_lifetime_secs: self.device_cookie_lifetime_secs,
            auth_attempts_per_minute: self.auth_attempts_per_minute,
            registration: self.registration,
            registrations_per_hour: self.registrations_per_hour,
            requests_per_second: self.requests_per_second,
            key_package_claims_per_minute: self.key_package_claims_per_minute,
            session_idle_secs: self.session_idle_secs,
            session_absolute_secs: self.session_absolute_secs,
            handshake_timeout_secs: self.handshake_timeout_secs,
            max_rooms_per_account: self.max_rooms_per_account,
            rooms_per_minute: self.rooms_per_minute,
            max_devices_per_account: self.max_devices_per_account,
            max_key_packages_per_device: self.max_key_packages_per_device,
            max_key_package_bytes_per_device: self.max_key_package_bytes_per_device,
            messages_per_minute: self.messages_per_minute,
            message_bytes_per_minute: self.message_bytes_per_minute,
            contact_key_package_claims_per_hour: self.contact_key_package_claims_per_hour,
            stranger_key_package_claims_per_hour: self.stranger_key_package_claims_per_hour,
            hello_timeout_secs: self.hello_timeout_secs,
            auth_timeout_secs: self.auth_timeout_secs,
            max_connections_per_address: self.max_connections_per_address,
            max_unauthenticated_connections: self.max_unauthenticated_connections,
            metrics_listen: self.metrics_listen,
        }
    }

    /// Resolves flags, environment, file and defaults into one validated config.
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => RawConfig::from_toml_file(path)?,
            None => RawConfig::default(),
        };
        Ok(Config::resolve(file, self.raw())?)
    }
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    check_open_files_limit(config.max_connections);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics_listen).await.with_context(|| {
        format!("cannot listen on {} for metrics (metrics_listen)", config.metrics_listen)
    })?;
    let metrics_addr = metrics_listener.local_addr()?;
    if !metrics_addr.ip().is_loopback() {
        tracing::warn!(
            %metrics_addr,
            "/metrics is served in plain HTTP without authentication on an address that is not loopback: \
             let only your scraper reach it (firewall, private network)"
        );
    }
    let data_dir = config.data_dir.clone();
    let server = Server::start(config).await.context("cannot start the server")?;
    // Printed on stdout for people and scripts (tests read the address from here).
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "conclave {} listening on https://{addr} (WebSocket wss://{addr}/ws)",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out, "metrics on http://{metrics_addr}/metrics")?;
    writeln!(out, "data directory: {}", data_dir.display())?;
    writeln!(out, "public key fingerprint (SHA-256): {}", server.fingerprint())?;
    let expires = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(server.certificate_expires_at()).unwrap_or(0));
    writeln!(out, "certificate valid until {}", humantime::format_rfc3339_seconds(expires))?;
    out.flush()?;
    drop(out);
    tracing::info!(%addr, fingerprint = server.fingerprint(), "serving");
    server.run(listener, metrics_listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// File descriptors the server holds besides connections: the listener, the
/// database and its journal, the log, the runtime's own.
const RESERVED_FDS: u64 = 64;

/// Raises the open-files limit as far as the hard limit allows, and warns when
/// that still leaves fewer descriptors than `max_connections` needs: past the
/// limit, new connections are refused (and retried by the accept loop) until
/// others close.
fn check_open_files_limit(max_connections: usize) {
    let needed = u64::try_from(max_connections).unwrap_or(u64::MAX).saturating_add(RESERVED_FDS);
    match conclave_server::process::raise_open_files_limit() {
        Ok(limit) if limit < needed => tracing::warn!(
            limit,
            max_connections,
            "the open-files limit is below max_connections: connections past about {} will wait until \
             others close; raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd unit) or lower \
             max_connections",
            limit.saturating_sub(RESERVED_FDS)
        ),
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-files limit"),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending().await,
            }
        } => {}
    }
    tracing::info!("shutdown requested");
}
