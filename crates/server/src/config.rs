//! Server configuration: raw layers in, one validated [`Config`] out.
//!
//! Precedence is decided in exactly one place, [`Config::resolve`]:
//! defaults < TOML file < `CONCLAVE_*` environment < command-line flags. The binary
//! folds environment and flags into one [`RawConfig`] (clap reads both, flags
//! winning), reads the optional file into another, and hands both here. After
//! start-up the server only ever sees the validated [`Config`].

use crate::auth::lockout::MAX_FAILURES_PER_HOUR;
pub use conclave_proto::RegistrationMode;
use conclave_proto::limits;
use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// One layer of configuration as written by a person: every field optional.
/// The same names are used in the TOML file, as `CONCLAVE_<NAME>` environment
/// variables and as `--<name>` flags (with `-` for `_`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on. Default: `127.0.0.1:7443`.
    pub listen: Option<SocketAddr>,
    /// Directory for the database, certificate and keys. Default: `./conclave-data`.
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite database.
    /// A host that is not loopback must use `sslmode=verify-full`. Default: none.
    pub database_url: Option<String>,
    /// PEM certificate chain to serve instead of the self-signed one. Default: none.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`. Default: none.
    pub tls_key: Option<PathBuf>,
    /// Key that encrypts TOTP secrets at rest. Nodes sharing one database must share
    /// it. Default: `<data_dir>/secret.key`, created on first start.
    pub secret_key_file: Option<PathBuf>,
    /// Key of the audit log's chain (HMAC-SHA-256): without it, entries cannot be
    /// rewritten unnoticed. Nodes sharing one database must share it; keep a copy
    /// where `conclave admin audit --verify` runs. Default: `<data_dir>/audit.key`,
    /// created on first start.
    pub audit_key_file: Option<PathBuf>,
    /// Largest WebSocket frame or message, bytes. Default: 1048576 (1 MiB).
    pub max_frame_bytes: Option<usize>,
    /// Most simultaneous connections; further ones wait to be accepted. Default: 20000.
    pub max_connections: Option<usize>,
    /// `default` (length, common-password and username checks, as NIST 800-63B) or
    /// `composition` (additionally upper, lower, digit and symbol). Default: `default`.
    pub password_policy: Option<PasswordPolicy>,
    /// argon2id memory per hash, KiB. Default: 19456 (19 MiB, the OWASP minimum).
    pub argon2_memory_kib: Option<u32>,
    /// argon2id iterations. Default: 2.
    pub argon2_iterations: Option<u32>,
    /// Password hashes computed at once; bounds memory under a login flood to
    /// this times `argon2_memory_kib`. Default: the number of CPU cores.
    pub hash_concurrency: Option<usize>,
    /// Failed logins for one account before back-off starts. Default: 5.
    pub login_max_failures: Option<u32>,
    /// First back-off, seconds; doubles with each further failure. Default: 30.
    pub login_backoff_secs: Option<u64>,
    /// Longest back-off, seconds: a back-off always ends. Default: 900 (15 minutes).
    pub login_backoff_max_secs: Option<u64>,
    /// Failed logins judged for one account in any 60 minutes: from untrusted
    /// clients, and as many again from its known devices together; beyond it,
    /// logins of that kind wait. At most 50, so an account never sees more than
    /// 100 wrong guesses an hour whatever the back-off settings. Default: 50.
    pub login_failures_per_hour: Option<u32>,
    /// How long a device cookie marks a client home as a known device after its
    /// last login, seconds. Longer than `session_absolute_secs`, so a device whose
    /// session ran out is still known when it logs in again. Default: 31536000
    /// (365 days).
    pub device_cookie_lifetime_secs: Option<u64>,
    /// Login attempts allowed per client IP address per minute. Default: 30.
    pub auth_attempts_per_minute: Option<u32>,
    /// Who may register: `open` (anyone), `invite` (only with a registration
    /// token from `conclave admin registration-token create`) or `closed`.
    /// Default: `open`.
    pub registration: Option<RegistrationMode>,
    /// Registration attempts allowed per client IP address per hour (bursts as
    /// large). Default: 20.
    pub registrations_per_hour: Option<u32>,
    /// Requests allowed per connection per second (bursts of twice that). Default: 50.
    pub requests_per_second: Option<u32>,
    /// Users whose KeyPackages one user may claim per minute, in bursts as
    /// large: adding a person to a room takes one. Default: 1000 (a 1,000-member
    /// room filled in seconds; an account using up others' packages is bounded).
    pub key_package_claims_per_minute: Option<u32>,
    /// A session unused for this long ends, seconds. Default: 1209600 (14 days):
    /// chat devices stay signed in, as with Signal or Element, but a forgotten one
    /// stops working on its own.
    pub session_idle_secs: Option<u64>,
    /// A session ends this long after login whatever its use, seconds. Default:
    /// 7776000 (90 days), so a stolen token has a bounded life.
    pub session_absolute_secs: Option<u64>,
    /// Time allowed for the TLS handshake and WebSocket upgrade, seconds. Default: 10.
    pub handshake_timeout_secs: Option<u64>,
    /// Public and private rooms one account may own, in total (direct
    /// conversations are bounded by the number of accounts and not counted).
    /// Default: 500 — a person who runs many groups owns dozens.
    pub max_rooms_per_account: Option<u32>,
    /// Rooms one account may create per minute, direct conversations included,
    /// in bursts as large. Default: 30 — nobody creates rooms by hand that fast.
    pub rooms_per_minute: Option<u32>,
    /// Devices one account may register, 1 to 32 (an `add` commit is sized for
    /// 32 devices per user). Default: 32 — phones, laptops and reinstalls for
    /// years.
    pub max_devices_per_account: Option<u32>,
    /// One-time KeyPackages one device may hold on the server. Default: 200 —
    /// clients keep about 30.
    pub max_key_packages_per_device: Option<u32>,
    /// Bytes of KeyPackages (one-time and last-resort) one device may hold on
    /// the server, at least 16384 (one KeyPackage of the largest size). Default:
    /// 262144 (256 KiB) — 200 typical packages of under 1 KiB each fit, while an
    /// account cannot store more than 32 devices × 256 KiB.
    pub max_key_package_bytes_per_device: Option<u32>,
    /// Messages one account may send per minute, all its devices and
    /// connections together, in bursts as large (per server node). Default:
    /// 600 — ten a second, far beyond typing; a bot that needs more gets a
    /// raised limit.
    pub messages_per_minute: Option<u32>,
    /// Message bytes (ciphertext) one account may send per minute, in bursts as
    /// large (per server node); at least 65536, the largest message. Default:
    /// 16777216 (16 MiB) — 256 messages of the largest size a minute.
    pub message_bytes_per_minute: Option<u32>,
    /// One-time KeyPackages of one user handed out per hour to claimers who
    /// share a private or direct room with them, all such claimers together, in
    /// bursts as large; further claims get the user's last-resort package.
    /// Default: 100 — many times what being added to rooms by the people one
    /// talks with takes.
    pub contact_key_package_claims_per_hour: Option<u32>,
    /// One-time KeyPackages of one user handed out per hour to claimers who
    /// share no private or direct room with them, all such claimers together,
    /// in bursts as large; further claims get the last-resort package, so
    /// strangers can never use up someone's one-time packages. Default: 10 —
    /// an owner filling a new room claims each person once.
    pub stranger_key_package_claims_per_hour: Option<u32>,
    /// A WebSocket connection that has not completed `hello` this long after its
    /// upgrade is closed, seconds. Default: 10.
    pub hello_timeout_secs: Option<u64>,
    /// A WebSocket connection that has not logged in (`register`, `login` or
    /// `authenticate`) this long after its upgrade is closed, seconds. Default: 60.
    pub auth_timeout_secs: Option<u64>,
    /// Most open connections from one IPv4 address or one IPv6 /64 network,
    /// authenticated or not; further ones are closed at once. Default: 256 (a
    /// household or an office behind one NAT address).
    pub max_connections_per_address: Option<usize>,
    /// Most connections, from all addresses together, that have not logged in yet
    /// (from the TCP accept to a successful login); further ones are closed at
    /// once. Default: 1000.
    pub max_unauthenticated_connections: Option<usize>,
    /// Address of the plain-HTTP listener that serves `/metrics` (the public port
    /// does not). Keep it on loopback or a private network. Default: `127.0.0.1:7444`.
    pub metrics_listen: Option<SocketAddr>,
}

/// The password composition policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordPolicy {
    /// NIST 800-63B / OWASP ASVS 5.0: length, not common, not containing the username.
    #[default]
    Default,
    /// The default rules plus upper case, lower case, digit and symbol.
    Composition,
}

impl std::str::FromStr for PasswordPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(Self::Default),
            "composition" => Ok(Self::Composition),
            other => Err(format!("unknown password policy {other:?} (expected default or composition)")),
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

/// Validated configuration; see [`RawConfig`] for each field's meaning and default.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    pub tls_cert: Option<(PathBuf, PathBuf)>,
    pub secret_key_file: PathBuf,
    pub audit_key_file: PathBuf,
    pub max_frame_bytes: usize,
    pub max_connections: usize,
    pub password_policy: PasswordPolicy,
    pub argon2: Argon2Params,
    pub hash_concurrency: usize,
    pub login_max_failures: u32,
    pub login_backoff: Duration,
    pub login_backoff_max: Duration,
    pub login_failures_per_hour: u32,
    pub device_cookie_lifetime: Duration,
    pub auth_attempts_per_minute: u32,
    pub registration: RegistrationMode,
    pub registrations_per_hour: u32,
    pub requests_per_second: u32,
    pub key_package_claims_per_minute: u32,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub handshake_timeout: Duration,
    pub max_rooms_per_account: u32,
    pub rooms_per_minute: u32,
    pub max_devices_per_account: u32,
    pub max_key_packages_per_device: u32,
    pub max_key_package_bytes_per_device: u32,
    pub messages_per_minute: u32,
    pub message_bytes_per_minute: u32,
    pub contact_key_package_claims_per_hour: u32,
    pub stranger_key_package_claims_per_hour: u32,
    pub hello_timeout: Duration,
    pub auth_timeout: Duration,
    pub max_connections_per_address: usize,
    pub max_unauthenticated_connections: usize,
    pub metrics_listen: SocketAddr,
}

/// Devices per account an `add` commit is sized for: the highest
/// `max_devices_per_account` allowed.
pub const DEVICES_PER_ACCOUNT_CEILING: u32 = 32;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory per hash, KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl RawConfig {
    /// Reads a TOML file.
    ///
    /// # Errors
    /// If the file cannot be read or has unknown or mistyped keys.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses the text of a TOML file (what [`from_toml_file`](Self::from_toml_file)
    /// reads; the `config_parse` fuzz target feeds it directly).
    ///
    /// # Errors
    /// If the text is not TOML or has unknown or mistyped keys.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }
}

impl Config {
    /// Merges the layers (`flags` over `file` over defaults) and validates once.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first value that is out of range.
    pub fn resolve(file: RawConfig, flags: RawConfig) -> Result<Self, ConfigError> {
        macro_rules! pick {
            ($field:ident, $default:expr) => {
                flags.$field.clone().or(file.$field.clone()).unwrap_or_else(|| $default)
            };
        }
        let data_dir: PathBuf = pick!(data_dir, PathBuf::from("conclave-data"));
        let database = match flags.database_url.clone().or(file.database_url.clone()) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url)
            }
            Some(url) if url.starts_with("sqlite:") => Database::Sqlite(PathBuf::from(
                url.trim_start_matches("sqlite://").trim_start_matches("sqlite:"),
            )),
            Some(_) => {
                return Err(ConfigError("database_url must start with postgres:// or sqlite:".into()));
            }
            None => Database::Sqlite(data_dir.join("conclave.db")),
        };
        let tls_cert = match (
            flags.tls_cert.clone().or(file.tls_cert.clone()),
            flags.tls_key.clone().or(file.tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(ConfigError("tls_cert and tls_key must be given together".into())),
        };
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let config = Self {
            listen: pick!(listen, SocketAddr::from(([127, 0, 0, 1], 7443))),
            secret_key_file: pick!(secret_key_file, data_dir.join("secret.key")),
            audit_key_file: pick!(audit_key_file, data_dir.join("audit.key")),
            data_dir,
            database,
            tls_cert,
            max_frame_bytes: pick!(max_frame_bytes, limits::MAX_FRAME_BYTES),
            max_connections: pick!(max_connections, 20_000),
            password_policy: pick!(password_policy, PasswordPolicy::Default),
            argon2: Argon2Params {
                memory_kib: pick!(argon2_memory_kib, 19_456),
                iterations: pick!(argon2_iterations, 2),
            },
            hash_concurrency: pick!(hash_concurrency, cores),
            login_max_failures: pick!(login_max_failures, 5),
            login_backoff: Duration::from_secs(pick!(login_backoff_secs, 30)),
            login_backoff_max: Duration::from_secs(pick!(login_backoff_max_secs, 900)),
            login_failures_per_hour: pick!(login_failures_per_hour, MAX_FAILURES_PER_HOUR),
            device_cookie_lifetime: Duration::from_secs(pick!(device_cookie_lifetime_secs, 365 * 24 * 3600)),
            auth_attempts_per_minute: pick!(auth_attempts_per_minute, 30),
            registration: pick!(registration, RegistrationMode::Open),
            registrations_per_hour: pick!(registrations_per_hour, 20),
            requests_per_second: pick!(requests_per_second, 50),
            key_package_claims_per_minute: pick!(key_package_claims_per_minute, 1_000),
            session_idle: Duration::from_secs(pick!(session_idle_secs, 14 * 24 * 3600)),
            session_absolute: Duration::from_secs(pick!(session_absolute_secs, 90 * 24 * 3600)),
            handshake_timeout: Duration::from_secs(pick!(handshake_timeout_secs, 10)),
            max_rooms_per_account: pick!(max_rooms_per_account, 500),
            rooms_per_minute: pick!(rooms_per_minute, 30),
            max_devices_per_account: pick!(max_devices_per_account, DEVICES_PER_ACCOUNT_CEILING),
            max_key_packages_per_device: pick!(
                max_key_packages_per_device,
                u32::try_from(limits::MAX_KEY_PACKAGES_PER_DEVICE).unwrap_or(u32::MAX)
            ),
            max_key_package_bytes_per_device: pick!(max_key_package_bytes_per_device, 256 * 1024),
            messages_per_minute: pick!(messages_per_minute, 600),
            message_bytes_per_minute: pick!(message_bytes_per_minute, 16 * 1024 * 1024),
            contact_key_package_claims_per_hour: pick!(contact_key_package_claims_per_hour, 100),
            stranger_key_package_claims_per_hour: pick!(stranger_key_package_claims_per_hour, 10),
            hello_timeout: Duration::from_secs(pick!(hello_timeout_secs, 10)),
            auth_timeout: Duration::from_secs(pick!(auth_timeout_secs, 60)),
            max_connections_per_address: pick!(max_connections_per_address, 256),
            max_unauthenticated_connections: pick!(max_unauthenticated_connections, 1_000),
            metrics_listen: pick!(metrics_listen, SocketAddr::from(([127, 0, 0, 1], 7444))),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: &str| Err(ConfigError(msg.to_owned()));
        if !(4096..=16 * 1024 * 1024).contains(&self.max_frame_bytes) {
            return fail("max_frame_bytes must be between 4096 and 16777216");
        }
        if self.max_connections == 0 {
            return fail("max_connections must be at least 1");
        }
        if self.argon2.memory_kib < 19_456 || self.argon2.iterations < 2 {
            return fail("argon2 needs at least 19456 KiB and 2 iterations (OWASP minimum)");
        }
        if self.argon2.memory_kib > 4 * 1024 * 1024 || self.argon2.iterations > 100 {
            return fail("argon2 parameters are unreasonably large");
        }
        if self.hash_concurrency == 0
            || self.auth_attempts_per_minute == 0
            || self.registrations_per_hour == 0
            || self.requests_per_second == 0
            || self.key_package_claims_per_minute == 0
        {
            return fail(
                "hash_concurrency, auth_attempts_per_minute, registrations_per_hour, requests_per_second \
                 and key_package_claims_per_minute must be at least 1",
            );
        }
        if !(1..=MAX_FAILURES_PER_HOUR).contains(&self.login_failures_per_hour) {
            return fail("login_failures_per_hour must be between 1 and 50");
        }
        if self.device_cookie_lifetime.is_zero() {
            return fail("device_cookie_lifetime_secs must be at least 1");
        }
        if self.login_max_failures == 0 {
            return fail("login_max_failures must be at least 1");
        }
        if self.login_backoff.is_zero() || self.login_backoff > self.login_backoff_max {
            return fail("login_backoff_secs must be at least 1 and at most login_backoff_max_secs");
        }
        if self.session_idle.is_zero() || self.session_idle > self.session_absolute {
            return fail("session_idle_secs must be at least 1 and at most session_absolute_secs");
        }
        if self.handshake_timeout.is_zero() {
            return fail("handshake_timeout_secs must be at least 1");
        }
        if self.hello_timeout.is_zero() || self.hello_timeout > self.auth_timeout {
            return fail("hello_timeout_secs must be at least 1 and at most auth_timeout_secs");
        }
        if self.max_connections_per_address == 0 || self.max_unauthenticated_connections == 0 {
            return fail(
                "max_connections_per_address and max_unauthenticated_connections must be at least 1",
            );
        }
        if self.metrics_listen.port() != 0 && self.metrics_listen == self.listen {
            return fail("metrics_listen must differ from listen");
        }
        self.validate_quotas()
    }

    fn validate_quotas(&self) -> Result<(), ConfigError> {
        let fail = |msg: &str| Err(ConfigError(msg.to_owned()));
        if [
            self.max_rooms_per_account,
            self.rooms_per_minute,
            self.max_key_packages_per_device,
            self.messages_per_minute,
            self.contact_key_package_claims_per_hour,
            self.stranger_key_package_claims_per_hour,
        ]
        .contains(&0)
        {
            return fail(
                "max_rooms_per_account, rooms_per_minute, max_key_packages_per_device, \
                 messages_per_minute, contact_key_package_claims_per_hour and \
                 stranger_key_package_claims_per_hour must be at least 1",
            );
        }
        if !(1..=DEVICES_PER_ACCOUNT_CEILING).contains(&self.max_devices_per_account) {
            return fail("max_devices_per_account must be between 1 and 32");
        }
        if usize::try_from(self.max_key_package_bytes_per_device).unwrap_or(usize::MAX)
            < limits::MAX_KEY_PACKAGE_BYTES
        {
            return fail("max_key_package_bytes_per_device must be at least 16384 (one KeyPackage)");
        }
        if usize::try_from(self.message_bytes_per_minute).unwrap_or(usize::MAX) < limits::MAX_MESSAGE_BYTES {
            return fail("message_bytes_per_minute must be at least 65536 (one message of the largest size)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_which_beats_defaults() {
        let file: RawConfig = toml::from_str("listen = \"127.0.0.1:9000\"\nmax_connections = 7\n").unwrap();
        let flags = RawConfig { listen: Some("127.0.0.1:9001".parse().unwrap()), ..RawConfig::default() };
        let config = Config::resolve(file, flags).unwrap();
        assert_eq!(config.listen.port(), 9001);
        assert_eq!(config.max_connections, 7);
        assert_eq!(config.max_frame_bytes, 1024 * 1024);
        assert_eq!(config.database, Database::Sqlite(PathBuf::from("conclave-data/conclave.db")));
    }

    #[test]
    fn quotas_that_would_refuse_normal_use_are_refused() {
        let resolve = |raw: RawConfig| Config::resolve(RawConfig::default(), raw);
        assert!(resolve(RawConfig { max_devices_per_account: Some(33), ..RawConfig::default() }).is_err());
        assert!(resolve(RawConfig { max_devices_per_account: Some(0), ..RawConfig::default() }).is_err());
        assert!(
            resolve(RawConfig { message_bytes_per_minute: Some(65_535), ..RawConfig::default() }).is_err()
        );
        assert!(
            resolve(RawConfig { max_key_package_bytes_per_device: Some(16_383), ..RawConfig::default() })
                .is_err()
        );
        assert!(resolve(RawConfig { messages_per_minute: Some(0), ..RawConfig::default() }).is_err());
        let config = resolve(RawConfig::default()).unwrap();
        assert_eq!((config.max_devices_per_account, config.max_key_packages_per_device), (32, 200));
    }

    #[test]
    fn registration_modes_and_the_hourly_login_cap_are_checked() {
        let invite: RawConfig = toml::from_str("registration = \"invite\"").unwrap();
        let config = Config::resolve(invite, RawConfig::default()).unwrap();
        assert_eq!(config.registration, RegistrationMode::Invite);
        assert_eq!(
            Config::resolve(RawConfig::default(), RawConfig::default()).unwrap().registration,
            RegistrationMode::Open
        );
        assert!(toml::from_str::<RawConfig>("registration = \"sometimes\"").is_err());
        let lax = RawConfig { login_failures_per_hour: Some(51), ..RawConfig::default() };
        assert!(Config::resolve(RawConfig::default(), lax).is_err(), "more than 100 guesses an hour");
    }

    #[test]
    fn unknown_keys_and_weak_argon2_are_refused() {
        assert!(toml::from_str::<RawConfig>("lisen = \"x\"").is_err());
        let weak = RawConfig { argon2_memory_kib: Some(1024), ..RawConfig::default() };
        assert!(Config::resolve(RawConfig::default(), weak).is_err());
    }

    #[test]
    fn the_example_file_names_every_setting() {
        let example = include_str!("../../../docs/conclave.example.toml");
        // Settings are the commented lines of the form `# name = value`.
        let is_setting = |l: &&str| {
            l.split_once(" = ").is_some_and(|(k, _)| {
                k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
        };
        let uncommented: String = example
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(is_setting)
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: toml::Table = toml::from_str(&uncommented).unwrap();
        let raw: RawConfig = toml::from_str(&uncommented).unwrap();
        Config::resolve(RawConfig::default(), raw).unwrap();
        for field in [
            "listen",
            "data_dir",
            "database_url",
            "tls_cert",
            "tls_key",
            "secret_key_file",
            "audit_key_file",
            "max_frame_bytes",
            "max_connections",
            "password_policy",
            "argon2_memory_kib",
            "argon2_iterations",
            "hash_concurrency",
            "login_max_failures",
            "login_backoff_secs",
            "login_backoff_max_secs",
            "login_failures_per_hour",
            "device_cookie_lifetime_secs",
            "auth_attempts_per_minute",
            "registration",
            "registrations_per_hour",
            "requests_per_second",
            "key_package_claims_per_minute",
            "session_idle_secs",
            "session_absolute_secs",
            "handshake_timeout_secs",
            "max_rooms_per_account",
            "rooms_per_minute",
            "max_devices_per_account",
            "max_key_packages_per_device",
            "max_key_package_bytes_per_device",
            "messages_per_minute",
            "message_bytes_per_minute",
            "contact_key_package_claims_per_hour",
            "stranger_key_package_claims_per_hour",
            "hello_timeout_secs",
            "auth_timeout_secs",
            "max_connections_per_address",
            "max_unauthenticated_connections",
            "metrics_listen",
        ] {
            assert!(parsed.contains_key(field), "example config lacks {field}");
        }
    }
}
