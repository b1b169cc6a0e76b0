//! The server's TLS identity and rustls configuration.
//!
//! On first start, unless an operator supplies a certificate, the server makes a
//! self-signed one (`cert.pem`, `key.pem` in the data directory, the key mode
//! 0600). Clients pin its SHA-256 fingerprint on first use, as ssh does, so no CA
//! is needed. Only TLS 1.3 is offered: a TLS 1.2 client fails the handshake.

use crate::error::ServerError;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject},
};
use sha2::{Digest, Sha256};
use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

/// Certificate chain, key and the leaf's fingerprint.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf certificate's DER, lower-case hex.
    pub fingerprint: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

/// SHA-256 of a certificate, lower-case hex: what clients pin.
#[must_use]
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

impl Identity {
    /// Loads the operator's certificate, or the self-signed one from `data_dir`,
    /// creating it on first start.
    ///
    /// # Errors
    /// Unreadable or invalid PEM files, or failure to write new ones.
    pub fn load_or_create(
        data_dir: &Path,
        configured: Option<&(PathBuf, PathBuf)>,
    ) -> Result<Self, ServerError> {
        let (cert_path, key_path) = match configured {
            Some((cert, key)) => (cert.clone(), key.clone()),
            None => {
                let paths = (data_dir.join("cert.pem"), data_dir.join("key.pem"));
                if !paths.0.exists() {
                    create_self_signed(&paths.0, &paths.1)?;
                }
                paths
            }
        };
        let tls_err =
            |path: &Path, e: &dyn std::fmt::Display| ServerError::Tls(format!("{}: {e}", path.display()));
        let chain = CertificateDer::pem_file_iter(&cert_path)
            .map_err(|e| tls_err(&cert_path, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_err(&cert_path, &e))?;
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| tls_err(&key_path, &e))?;
        let leaf = chain.first().ok_or_else(|| tls_err(&cert_path, &"no certificate in file"))?;
        let fingerprint = fingerprint(leaf);
        Ok(Self { chain, key, fingerprint })
    }

    /// A fresh self-signed identity held in memory only: for loopback tests and
    /// benchmarks of what writes to connections.
    pub(crate) fn ephemeral() -> Result<Self, ServerError> {
        let generated = self_signed()?;
        let leaf = CertificateDer::from(generated.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
        let fingerprint = fingerprint(&leaf);
        Ok(Self { chain: vec![leaf], key, fingerprint })
    }

    /// The leaf certificate, for a client that trusts exactly this server.
    pub(crate) fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// A TLS 1.3-only rustls server configuration (ring provider), ALPN
    /// `http/1.1` (WebSocket upgrades need HTTP/1.1).
    ///
    /// # Errors
    /// If the key does not match the certificate or is unsupported.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, ServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A self-signed certificate for the names a local server answers to.
fn self_signed() -> Result<rcgen::CertifiedKey<rcgen::KeyPair>, ServerError> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    rcgen::generate_simple_self_signed(names).map_err(|e| ServerError::Tls(e.to_string()))
}

fn create_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), ServerError> {
    let generated = self_signed()?;
    let io_err = |path: &Path, e: std::io::Error| ServerError::Io { path: path.to_owned(), source: e };
    let mut key = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(key_path)
        .map_err(|e| io_err(key_path, e))?;
    key.write_all(generated.signing_key.serialize_pem().as_bytes()).map_err(|e| io_err(key_path, e))?;
    key.sync_all().map_err(|e| io_err(key_path, e))?;
    fs::write(cert_path, generated.cert.pem()).map_err(|e| io_err(cert_path, e))?;
    tracing::info!(path = %cert_path.display(), "created self-signed TLS certificate");
    Ok(())
}
