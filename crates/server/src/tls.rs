//! The server's TLS identity and rustls configuration.
//!
//! **What clients pin.** The SHA-256 of the leaf certificate's
//! SubjectPublicKeyInfo (its public key, as HPKP's `pin-sha256` did), not of the
//! whole certificate: a certificate renewed for the same key keeps the pin, so
//! renewal never makes a pinned client refuse the server. That value is what
//! `conclave serve` prints as the fingerprint.
//!
//! **Self-signed certificates.** Unless an operator supplies a certificate, the
//! server makes one on first start (`cert.pem`, and `key.pem` with mode 0600,
//! in the data directory), valid for [`SELF_SIGNED_VALIDITY_DAYS`] from an hour
//! before it was made (clocks that lag a little still accept it). When fewer
//! than [`RENEW_BEFORE_DAYS`] remain — checked at start and every
//! [`REFRESH_EVERY`] while running — it issues a new certificate for the same
//! key, replaces `cert.pem` and serves it to new handshakes at once. Deleting
//! `cert.pem` (keeping `key.pem`) has the same effect at the next start.
//! Certificates made by earlier versions (valid until 4096) are kept as they
//! are: clients that pinned one by its certificate hash keep working, and move
//! their pin to the key on their next connection.
//!
//! **Operator certificates** (`tls_cert`/`tls_key`) are renewed by whoever
//! issues them; the server re-reads the files every [`REFRESH_EVERY`] and serves
//! a changed pair to new handshakes, and warns when the served one has fewer
//! than [`RENEW_BEFORE_DAYS`] left.
//!
//! Only TLS 1.3 is offered: a TLS 1.2 client fails the handshake.

use crate::{error::ServerError, shutdown::Shutdown};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber};
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use sha2::{Digest, Sha256};
use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

/// How long a self-signed certificate is valid: a year, the span public CAs
/// issue at most (398 days), renewed by the server itself.
pub const SELF_SIGNED_VALIDITY_DAYS: i64 = 365;

/// A certificate with fewer days left than this is renewed (self-signed) or
/// warned about (operator's).
pub const RENEW_BEFORE_DAYS: i64 = 30;

/// How often a running server checks its certificate.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);

/// How far before its creation a self-signed certificate is valid.
const BACKDATE_SECS: i64 = 3600;

const DAY_SECS: i64 = 86_400;

/// Certificate chain, key and what clients see of them.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf's SubjectPublicKeyInfo, lower-case hex: what clients pin.
    pub fingerprint: String,
    /// When the leaf certificate expires, Unix seconds.
    pub not_after: i64,
    /// Where it came from, so that it can be renewed or reloaded.
    source: Source,
}

/// Where an identity comes from.
#[derive(Debug, Clone)]
enum Source {
    /// Made and renewed by the server, in the data directory.
    SelfSigned { cert: PathBuf, key: PathBuf },
    /// Files the operator named.
    Configured { cert: PathBuf, key: PathBuf },
    /// In memory only (tests and benchmarks).
    Ephemeral,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .field("not_after", &self.not_after)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, lower-case hex: what clients pin.
///
/// # Errors
/// If the certificate cannot be parsed.
pub fn fingerprint(cert: &CertificateDer<'_>) -> Result<String, ServerError> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| ServerError::Tls(format!("cannot parse the certificate: {e}")))?;
    Ok(hex::encode(Sha256::digest(parsed.subject_public_key_info().as_ref())))
}

/// When `cert` expires, Unix seconds.
fn not_after(cert: &CertificateDer<'_>) -> Result<i64, ServerError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| ServerError::Tls(format!("cannot parse the certificate: {e}")))?;
    Ok(parsed.validity().not_after.timestamp())
}

impl Identity {
    /// Loads the operator's certificate, or the self-signed one from `data_dir`,
    /// creating it on first start and renewing it when it is due.
    ///
    /// # Errors
    /// Unreadable or invalid PEM files, or failure to write new ones.
    pub fn load_or_create(
        data_dir: &Path,
        configured: Option<&(PathBuf, PathBuf)>,
    ) -> Result<Self, ServerError> {
        Self::load_or_create_at(data_dir, configured, crate::clock::now_secs())
    }

    fn load_or_create_at(
        data_dir: &Path,
        configured: Option<&(PathBuf, PathBuf)>,
        now: i64,
    ) -> Result<Self, ServerError> {
        let source = match configured {
            Some((cert, key)) => Source::Configured { cert: cert.clone(), key: key.clone() },
            None => {
                let (cert, key) = (data_dir.join("cert.pem"), data_dir.join("key.pem"));
                if !key.exists() {
                    create_key(&key)?;
                }
                if !cert.exists() {
                    issue_self_signed(&cert, &key, now)?;
                }
                Source::SelfSigned { cert, key }
            }
        };
        let identity = Self::load(source)?;
        match identity.refreshed(now)? {
            Some(renewed) => Ok(renewed),
            None => Ok(identity),
        }
    }

    /// Reads the identity's files.
    fn load(source: Source) -> Result<Self, ServerError> {
        let (Source::SelfSigned { cert: cert_path, key: key_path }
        | Source::Configured { cert: cert_path, key: key_path }) = &source
        else {
            return Err(ServerError::Tls("an ephemeral identity has no files".into()));
        };
        let tls_err =
            |path: &Path, e: &dyn std::fmt::Display| ServerError::Tls(format!("{}: {e}", path.display()));
        let chain = CertificateDer::pem_file_iter(cert_path)
            .map_err(|e| tls_err(cert_path, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_err(cert_path, &e))?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| tls_err(key_path, &e))?;
        let leaf = chain.first().ok_or_else(|| tls_err(cert_path, &"no certificate in file"))?;
        let fingerprint = fingerprint(leaf)?;
        let not_after = not_after(leaf)?;
        Ok(Self { chain, key, fingerprint, not_after, source })
    }

    /// A fresh self-signed identity held in memory only: for loopback tests and
    /// benchmarks of what writes to connections.
    pub(crate) fn ephemeral() -> Result<Self, ServerError> {
        let key_pair = KeyPair::generate().map_err(|e| ServerError::Tls(e.to_string()))?;
        let now = crate::clock::now_secs();
        let leaf = CertificateDer::from(self_signed(&key_pair, now)?.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let fingerprint = fingerprint(&leaf)?;
        let not_after = not_after(&leaf)?;
        Ok(Self { chain: vec![leaf], key, fingerprint, not_after, source: Source::Ephemeral })
    }

    /// The leaf certificate, for a client that trusts exactly this server.
    pub(crate) fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// Days left before the certificate expires at `now` (negative once expired).
    #[must_use]
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(DAY_SECS)
    }

    /// What should replace this identity at `now`, if anything: a self-signed
    /// certificate due for renewal is renewed (same key, `cert.pem` replaced);
    /// an operator's files that changed are read again (and a certificate close
    /// to expiry is warned about).
    ///
    /// # Errors
    /// Files that cannot be read, parsed or written.
    fn refreshed(&self, now: i64) -> Result<Option<Self>, ServerError> {
        match &self.source {
            Source::SelfSigned { cert, key } if self.not_after - now < RENEW_BEFORE_DAYS * DAY_SECS => {
                issue_self_signed(cert, key, now)?;
                let renewed = Self::load(self.source.clone())?;
                tracing::info!(
                    path = %cert.display(),
                    fingerprint = %renewed.fingerprint,
                    days_left = renewed.days_left(now),
                    "renewed the self-signed TLS certificate for the same key: pins stay valid"
                );
                Ok(Some(renewed))
            }
            Source::Configured { .. } => {
                let current = Self::load(self.source.clone())?;
                if current.days_left(now) < RENEW_BEFORE_DAYS {
                    tracing::warn!(
                        days_left = current.days_left(now),
                        "the configured TLS certificate expires soon: renew it (the server reads the \
                         files again every hour)"
                    );
                }
                if current.chain == self.chain && current.key == self.key {
                    return Ok(None);
                }
                tracing::info!(fingerprint = %current.fingerprint, "serving the changed TLS certificate files");
                Ok(Some(current))
            }
            Source::SelfSigned { .. } | Source::Ephemeral => Ok(None),
        }
    }

    fn certified_key(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, ServerError> {
        CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), provider)
            .map(Arc::new)
            .map_err(|e| ServerError::Tls(e.to_string()))
    }

    /// A TLS 1.3-only rustls server configuration (ring provider), ALPN
    /// `http/1.1` (WebSocket upgrades need HTTP/1.1), and the handle through
    /// which a renewed certificate replaces this one for new handshakes.
    ///
    /// # Errors
    /// If the key does not match the certificate or is unsupported.
    pub fn server_config(&self) -> Result<(Arc<ServerConfig>, Arc<Resolver>), ServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = Arc::new(Resolver {
            current: RwLock::new(self.certified_key(&provider)?),
            provider: provider.clone(),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((Arc::new(config), resolver))
    }
}

/// The certificate served to new handshakes; replaced on renewal.
#[derive(Debug)]
pub struct Resolver {
    /// A `std` lock: read once per handshake, written once a renewal.
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// Keeps the served certificate fresh: every [`REFRESH_EVERY`] until shutdown,
/// renews or reloads `identity` as [`Identity::refreshed`] says and serves the
/// result. Failures are logged; the current certificate stays.
pub(crate) async fn keep_fresh(mut identity: Identity, resolver: Arc<Resolver>, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    // The first tick is immediate; start-up has just checked.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.recv() => return,
        }
        let refreshed = identity.refreshed(crate::clock::now_secs()).and_then(|next| match next {
            Some(next) => Ok(Some((next.certified_key(&resolver.provider)?, next))),
            None => Ok(None),
        });
        match refreshed {
            Ok(Some((certified, next))) => {
                *resolver.current.write().unwrap_or_else(PoisonError::into_inner) = certified;
                identity = next;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "could not refresh the TLS certificate"),
        }
    }
}

/// A self-signed certificate for `key_pair` and the names a local server
/// answers to, valid from shortly before `now` for [`SELF_SIGNED_VALIDITY_DAYS`].
/// Each has a random serial number, so a renewal is never confused with the
/// certificate it replaces.
fn self_signed(key_pair: &KeyPair, now: i64) -> Result<rcgen::Certificate, ServerError> {
    let tls_err = |e: &dyn std::fmt::Display| ServerError::Tls(e.to_string());
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let mut params = CertificateParams::new(names).map_err(|e| tls_err(&e))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "conclave");
    params.distinguished_name = name;
    let at = |secs: i64| time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| tls_err(&e));
    params.not_before = at(now - BACKDATE_SECS)?;
    params.not_after = at(now + SELF_SIGNED_VALIDITY_DAYS * DAY_SECS)?;
    let mut serial = [0u8; 16];
    rand::fill(&mut serial);
    // A positive INTEGER of at most 20 octets (RFC 5280 section 4.1.2.2).
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.self_signed(key_pair).map_err(|e| tls_err(&e))
}

/// Makes a key pair (ECDSA P-256) and writes it to `key_path`, mode 0600.
fn create_key(key_path: &Path) -> Result<(), ServerError> {
    let key_pair = KeyPair::generate().map_err(|e| ServerError::Tls(e.to_string()))?;
    let io_err = |e: std::io::Error| ServerError::Io { path: key_path.to_owned(), source: e };
    let mut key =
        fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(key_path).map_err(io_err)?;
    key.write_all(key_pair.serialize_pem().as_bytes()).map_err(io_err)?;
    key.sync_all().map_err(io_err)?;
    Ok(())
}

/// Issues a self-signed certificate for the key in `key_path` and puts it in
/// `cert_path`, replacing any there in one rename (a crash leaves the old
/// certificate or the new one, never half of one).
fn issue_self_signed(cert_path: &Path, key_path: &Path, now: i64) -> Result<(), ServerError> {
    let io_err = |path: &Path, e: std::io::Error| ServerError::Io { path: path.to_owned(), source: e };
    let pem = fs::read_to_string(key_path).map_err(|e| io_err(key_path, e))?;
    let key_pair =
        KeyPair::from_pem(&pem).map_err(|e| ServerError::Tls(format!("{}: {e}", key_path.display())))?;
    let cert = self_signed(&key_pair, now)?;
    let temporary = cert_path.with_extension("pem.new");
    let mut file = fs::File::create(&temporary).map_err(|e| io_err(&temporary, e))?;
    file.write_all(cert.pem().as_bytes()).map_err(|e| io_err(&temporary, e))?;
    file.sync_all().map_err(|e| io_err(&temporary, e))?;
    fs::rename(&temporary, cert_path).map_err(|e| io_err(cert_path, e))?;
    tracing::info!(path = %cert_path.display(), "issued a self-signed TLS certificate");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_new_certificate_is_valid_for_a_year_from_an_hour_ago() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::load_or_create_at(dir.path(), None, NOW).unwrap();
        assert_eq!(identity.not_after, NOW + SELF_SIGNED_VALIDITY_DAYS * DAY_SECS);
        let (_, parsed) = x509_parser::parse_x509_certificate(identity.leaf().as_ref()).unwrap();
        assert_eq!(parsed.validity().not_before.timestamp(), NOW - BACKDATE_SECS);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join("key.pem")).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_certificate_due_for_renewal_is_reissued_for_the_same_key_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create_at(dir.path(), None, NOW).unwrap();
        let key = fs::read(dir.path().join("key.pem")).unwrap();

        // Not yet due: kept.
        let later = NOW + (SELF_SIGNED_VALIDITY_DAYS - RENEW_BEFORE_DAYS - 1) * DAY_SECS;
        let kept = Identity::load_or_create_at(dir.path(), None, later).unwrap();
        assert_eq!(kept.leaf(), first.leaf());

        // Due: a new certificate, the same key and so the same pin.
        let due = NOW + (SELF_SIGNED_VALIDITY_DAYS - RENEW_BEFORE_DAYS + 1) * DAY_SECS;
        let renewed = Identity::load_or_create_at(dir.path(), None, due).unwrap();
        assert_ne!(renewed.leaf(), first.leaf());
        assert_eq!(renewed.fingerprint, first.fingerprint);
        assert_eq!(renewed.not_after, due + SELF_SIGNED_VALIDITY_DAYS * DAY_SECS);
        assert_eq!(fs::read(dir.path().join("key.pem")).unwrap(), key);
        let on_disk = Identity::load_or_create_at(dir.path(), None, due).unwrap();
        assert_eq!(on_disk.leaf(), renewed.leaf(), "cert.pem was replaced");
        assert!(!dir.path().join("cert.pem.new").exists());
    }

    #[test]
    fn a_running_server_renews_only_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::load_or_create_at(dir.path(), None, NOW).unwrap();
        assert!(identity.refreshed(NOW + DAY_SECS).unwrap().is_none());
        let due = identity.not_after - DAY_SECS;
        let renewed = identity.refreshed(due).unwrap().expect("renewed");
        assert_eq!(renewed.fingerprint, identity.fingerprint);
        assert!(renewed.not_after > identity.not_after);
    }

    #[test]
    fn the_pin_is_the_public_key_hash_not_the_certificate_hash() {
        let identity = Identity::ephemeral().unwrap();
        let key_pair = {
            let PrivateKeyDer::Pkcs8(der) = &identity.key else { panic!("pkcs8") };
            KeyPair::try_from(der.secret_pkcs8_der()).unwrap()
        };
        assert_eq!(
            identity.fingerprint,
            hex::encode(Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key_pair)))
        );
        assert_ne!(identity.fingerprint, hex::encode(Sha256::digest(identity.leaf().as_ref())));
    }
}
