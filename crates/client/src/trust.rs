//! How the client decides that it is talking to the right server.
//!
//! Conclave servers usually have a self-signed certificate, so the default is to
//! pin it the way ssh pins host keys: the first time, show the user the SHA-256
//! fingerprint of its public key and remember it once they accept; afterwards
//! accept only certificates for that key (a renewed certificate keeps it). Servers with a certificate from a CA can be verified against a CA
//! file instead. Every mode still checks the TLS 1.3 handshake signature, so a
//! server must hold the private key of the certificate it presents.

use crate::{
    error::{ClientError, Result},
    fingerprint::Fingerprint,
};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use std::{
    io,
    path::PathBuf,
    sync::{Arc, OnceLock},
};

/// How to authenticate the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Accept only a certificate this fingerprint names (from `known_hosts`,
    /// or given by the user): one for that public key, or (a pin of an earlier
    /// version) exactly that certificate ([`Fingerprint::matches`]). Any other
    /// certificate fails with [`ClientError::CertificateChanged`].
    Pinned(Fingerprint),
    /// First contact: accept nothing. The handshake is aborted as soon as the
    /// server's certificate arrives, before any request is sent, and the connect
    /// fails with [`ClientError::UnknownServer`] carrying the fingerprint to show
    /// the user.
    FirstUse,
    /// Normal `WebPKI` verification (chain and host name) against the CA
    /// certificates in this PEM file.
    CaFile(PathBuf),
}

/// What the certificate check saw during one handshake, so a failed handshake can
/// be turned into a precise error. rustls reports verifier failures only as
/// generic certificate errors; the fingerprint travels through here instead.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// Fingerprint of the public key of the end-entity certificate the server
    /// presented.
    presented: Arc<OnceLock<Fingerprint>>,
    /// Whether the pin accepted it (a later failure is then not a changed
    /// certificate).
    accepted: Arc<std::sync::atomic::AtomicBool>,
}

impl Trust {
    /// The rustls client configuration for this trust mode: TLS 1.3 only, the
    /// ring provider, ALPN `http/1.1` (the WebSocket upgrade is HTTP/1.1).
    pub(crate) fn client_config(&self) -> Result<(ClientConfig, Observed)> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?;
        let observed = Observed::default();
        let mut config = match self {
            Self::Pinned(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinVerifier::new(
                    Some(*pin),
                    &provider,
                    &observed,
                )))
                .with_no_client_auth(),
            Self::FirstUse => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinVerifier::new(None, &provider, &observed)))
                .with_no_client_auth(),
            Self::CaFile(path) => {
                let ca_error = |reason: String| ClientError::CaFile { path: path.clone(), reason };
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path).map_err(|err| ca_error(err.to_string()))? {
                    let cert = cert.map_err(|err| ca_error(err.to_string()))?;
                    roots.add(cert).map_err(|err| ca_error(err.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(ca_error("no certificates in the file".into()));
                }
                let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|err| ca_error(err.to_string()))?;
                builder.with_webpki_verifier(verifier).with_no_client_auth()
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((config, observed))
    }

    /// Turns a failed TLS handshake into the error the caller can act on.
    pub(crate) fn handshake_error(&self, err: io::Error, observed: &Observed) -> ClientError {
        match (self, observed.presented.get()) {
            (Self::FirstUse, Some(&fingerprint)) => return ClientError::UnknownServer { fingerprint },
            (Self::Pinned(expected), Some(&presented))
                if !observed.accepted.load(std::sync::atomic::Ordering::Acquire) =>
            {
                return ClientError::CertificateChanged { expected: *expected, presented };
            }
            _ => {}
        }
        match err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => ClientError::Tls(tls.clone()),
            None => ClientError::Io(err),
        }
    }
}

/// Accepts the certificates one pin names, or (with no pin) none at all while
/// recording what was presented.
///
/// Host name, validity dates and issuer are deliberately not checked: the user
/// trusted this key, as ssh trusts a host key. The handshake signature is still
/// verified, which proves the server holds the key.
#[derive(Debug)]
struct PinVerifier {
    /// The accepted fingerprint; `None` for first contact.
    pin: Option<Fingerprint>,
    /// Where the presented fingerprint is reported.
    observed: Observed,
    /// Signature algorithms of the crypto provider, for the handshake signature.
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    fn new(pin: Option<Fingerprint>, provider: &CryptoProvider, observed: &Observed) -> Self {
        Self { pin, observed: observed.clone(), algorithms: provider.signature_verification_algorithms }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_public_key(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        self.observed.presented.get_or_init(|| presented);
        match self.pin {
            Some(pin) if pin.matches(end_entity.as_ref()) => {
                self.observed.accepted.store(true, std::sync::atomic::Ordering::Release);
                Ok(ServerCertVerified::assertion())
            }
            Some(_) => {
                Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
            }
            None => Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable with a TLS 1.3-only config; verified properly all the same.
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
