//! Fingerprints: how a user recognises a server.
//!
//! A Conclave server usually runs with a self-signed certificate, so the client
//! identifies it the way ssh identifies a host key: by the SHA-256 digest of the
//! certificate's public key (its DER SubjectPublicKeyInfo, as HPKP's
//! `pin-sha256`), which the server prints at start-up and the user compares
//! once. The key survives the certificate's renewal, so the pin does too.
//! Clients before this version pinned the SHA-256 of the whole certificate's
//! DER; such a pin still matches that exact certificate ([`Fingerprint::matches`]).

use sha2::{Digest, Sha256};
use std::{fmt, str::FromStr};

/// A SHA-256 digest that identifies a server: of its certificate's public key
/// ([`Fingerprint::of_public_key`], what is pinned now) or of a whole
/// certificate ([`Fingerprint::of_der`], what earlier versions pinned).
///
/// Displayed as 64 lower-case hex characters; parsed from hex with or without `:`
/// between the bytes, in any case, so a value copied from `openssl x509
/// -fingerprint -sha256` works as well as one copied from `conclave serve`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// Why a fingerprint could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// Not 32 bytes (64 hex characters).
    #[error("a SHA-256 fingerprint has 64 hex characters (32 bytes), found {found}")]
    Length {
        /// How many hex digits were given.
        found: usize,
    },
    /// Something other than hex digits and `:` separators.
    #[error("a fingerprint contains only hex digits, optionally separated by ':' between bytes")]
    Characters,
}

/// A certificate whose public key cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the certificate cannot be parsed: {0}")]
pub struct CertificateParseError(String);

impl Fingerprint {
    /// SHA-256 of the whole DER encoding (of a certificate: the pin of
    /// earlier versions, and what `openssl x509 -fingerprint -sha256` shows).
    #[must_use]
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// SHA-256 of the SubjectPublicKeyInfo of the DER certificate `cert`:
    /// what clients pin and `conclave serve` prints.
    ///
    /// # Errors
    /// If `cert` is not an X.509 certificate.
    pub fn of_public_key(cert: &[u8]) -> Result<Self, CertificateParseError> {
        let der = rustls::pki_types::CertificateDer::from(cert);
        let parsed =
            webpki::EndEntityCert::try_from(&der).map_err(|err| CertificateParseError(err.to_string()))?;
        Ok(Self::of_der(parsed.subject_public_key_info().as_ref()))
    }

    /// Whether this pin names the DER certificate `cert`: its public key, or
    /// (a pin from an earlier version) the whole certificate.
    #[must_use]
    pub fn matches(&self, cert: &[u8]) -> bool {
        Self::of_public_key(cert).is_ok_and(|key| key == *self) || Self::of_der(cert) == *self
    }

    /// Wraps a digest that was computed elsewhere.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let digits: String = if s.contains(':') {
            // With separators every group must be exactly one byte, so a stray or
            // doubled ':' is an error rather than silently ignored.
            let groups: Vec<&str> = s.split(':').collect();
            if groups.iter().any(|group| group.len() != 2) {
                return Err(if groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())) {
                    FingerprintError::Length { found: groups.iter().map(|g| g.len()).sum() }
                } else {
                    FingerprintError::Characters
                });
            }
            groups.concat()
        } else {
            s.to_owned()
        };
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FingerprintError::Characters);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&digits, &mut bytes)
            .map_err(|_| FingerprintError::Length { found: digits.len() })?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn digest_of_der_is_sha256() {
        // SHA-256("test"), a well-known vector.
        assert_eq!(Fingerprint::of_der(b"test").to_string(), HEX);
    }

    #[test]
    fn parses_plain_and_colon_separated_hex_in_any_case() {
        let plain: Fingerprint = HEX.parse().unwrap();
        let upper: Fingerprint = HEX.to_ascii_uppercase().parse().unwrap();
        let colons = HEX
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).unwrap().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        let colon: Fingerprint = colons.parse().unwrap();
        let padded: Fingerprint = format!("  {HEX}\n").parse().unwrap();
        assert_eq!(plain, upper);
        assert_eq!(plain, colon);
        assert_eq!(plain, padded);
        assert_eq!(plain.to_string(), HEX);
    }

    #[test]
    fn a_pin_matches_the_certificate_by_key_or_by_whole_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let issue = || {
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap()
        };
        let (first, renewed) = (issue(), issue());
        assert_ne!(first.der().as_ref(), renewed.der().as_ref());
        let key_pin = Fingerprint::of_public_key(first.der()).unwrap();
        assert_eq!(key_pin, Fingerprint::of_der(&rcgen::PublicKeyData::subject_public_key_info(&key)));
        assert!(key_pin.matches(first.der()) && key_pin.matches(renewed.der()), "the key survives renewal");
        let certificate_pin = Fingerprint::of_der(first.der());
        assert!(certificate_pin.matches(first.der()), "an earlier version's pin still works");
        assert!(!certificate_pin.matches(renewed.der()));
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        assert!(!key_pin.matches(other.cert.der()));
        assert!(Fingerprint::of_public_key(b"not a certificate").is_err());
    }

    #[test]
    fn refuses_wrong_length_and_junk() {
        assert_eq!("abcd".parse::<Fingerprint>(), Err(FingerprintError::Length { found: 4 }));
        assert_eq!(format!("{HEX}00").parse::<Fingerprint>(), Err(FingerprintError::Length { found: 66 }));
        assert_eq!("".parse::<Fingerprint>(), Err(FingerprintError::Length { found: 0 }));
        assert_eq!(HEX.replace('9', "g").parse::<Fingerprint>(), Err(FingerprintError::Characters));
        assert!("9f:86d0".parse::<Fingerprint>().is_err());
        assert!(format!("{HEX}:").parse::<Fingerprint>().is_err());
    }
}
