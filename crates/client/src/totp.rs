//! Enrolment in two-factor authentication: the TOTP secret, its codes, and the
//! QR code an authenticator app scans.
//!
//! The client generates the secret at registration (RFC 6238: SHA-1, 6 digits,
//! 30-second steps, as Google Authenticator expects) and proves the user's app
//! holds it by sending a current code along with it. The server stores the secret;
//! the client keeps nothing.

use crate::error::{ClientError, Result};
use conclave_proto::limits::{TOTP_DIGITS, TOTP_SECRET_MAX_BYTES, TOTP_SECRET_MIN_BYTES, TOTP_STEP_SECONDS};
use qrcode::{QrCode, render::unicode::Dense1x2};
use std::{fmt, time::SystemTime};
use totp_rs::{Algorithm, Secret, TOTP};

/// Issuer shown in authenticator apps, so the entry says what it is for.
pub const ISSUER: &str = "Conclave";

/// A TOTP shared secret.
///
/// `Debug` does not show the bytes: the secret is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A new random 160-bit secret (the size RFC 4226 recommends) from the
    /// operating system's CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        match Secret::generate_secret() {
            Secret::Raw(bytes) => Self(bytes),
            // `generate_secret` always returns raw bytes; re-encode defensively.
            encoded @ Secret::Encoded(_) => Self(encoded.to_bytes().unwrap_or_default()),
        }
    }

    /// Parses a base32 secret (RFC 4648). Case, spaces, dashes and `=` padding
    /// are ignored, so a secret copied from any authenticator export works.
    ///
    /// # Errors
    /// [`ClientError::TotpSecret`] when it is not base32 or its length is outside
    /// what the server accepts (20 to 64 bytes).
    pub fn from_base32(text: &str) -> Result<Self> {
        let cleaned: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '=' | '\t' | '\n'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if cleaned.is_empty()
            || !cleaned.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(ClientError::TotpSecret("not base32 (letters A-Z and digits 2-7)".into()));
        }
        let bytes = Secret::Encoded(cleaned)
            .to_bytes()
            .map_err(|_| ClientError::TotpSecret("not valid base32".into()))?;
        if !(TOTP_SECRET_MIN_BYTES..=TOTP_SECRET_MAX_BYTES).contains(&bytes.len()) {
            return Err(ClientError::TotpSecret(format!(
                "{} bytes; a secret has {TOTP_SECRET_MIN_BYTES} to {TOTP_SECRET_MAX_BYTES} bytes \
                 ({} to {} base32 characters)",
                bytes.len(),
                TOTP_SECRET_MIN_BYTES * 8 / 5,
                TOTP_SECRET_MAX_BYTES * 8 / 5,
            )));
        }
        Ok(Self(bytes))
    }

    /// Wraps raw secret bytes without checking their length (tests use the
    /// 20-byte RFC 6238 secret this way).
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Base32 (RFC 4648, upper case, no padding): the form sent to the server and
    /// typed into an authenticator by hand.
    #[must_use]
    pub fn to_base32(&self) -> String {
        match Secret::Raw(self.0.clone()).to_encoded() {
            Secret::Encoded(text) => text,
            Secret::Raw(_) => String::new(),
        }
    }

    /// The code for the 30-second step containing `unix_secs`.
    #[must_use]
    pub fn code_at(&self, unix_secs: u64) -> String {
        self.totp(None, String::new()).generate(unix_secs)
    }

    /// The code for the current time.
    #[must_use]
    pub fn current_code(&self) -> String {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.code_at(now)
    }

    /// The `otpauth://totp/…` URI that authenticator apps import (usually from a
    /// QR code). The label is `ISSUER:USERNAME`; when `host` is given and has no
    /// `:` (which the URI format forbids in the issuer), the issuer becomes
    /// `Conclave (HOST)` so accounts on several servers are told apart.
    #[must_use]
    pub fn otpauth_uri(&self, username: &str, host: Option<&str>) -> String {
        let issuer = match host {
            Some(host) if !host.is_empty() && !host.contains(':') => format!("{ISSUER} ({host})"),
            _ => ISSUER.to_owned(),
        };
        self.totp(Some(issuer), username.replace(':', "")).get_url()
    }

    /// Builds the totp-rs generator without its length check (our own check ran
    /// at parse time; the RFC test vector secret is exactly 20 bytes anyway).
    fn totp(&self, issuer: Option<String>, account: String) -> TOTP {
        TOTP::new_unchecked(
            Algorithm::SHA1,
            TOTP_DIGITS,
            1,
            TOTP_STEP_SECONDS,
            self.0.clone(),
            issuer,
            account,
        )
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// Renders `data` (an otpauth URI) as a QR code of Unicode half blocks for a
/// terminal, two modules per character cell, with the quiet zone the scanners
/// need.
///
/// Colours are inverted relative to the characters: dark modules are blank cells
/// and light modules are full blocks in the terminal's foreground colour. On the
/// usual light-on-dark terminal this shows dark modules on a light field, which
/// is what phone cameras expect.
///
/// # Errors
/// [`ClientError::QrCode`] when the data does not fit in a QR code.
pub fn qr_code(data: &str) -> Result<String> {
    let code = QrCode::new(data.as_bytes()).map_err(|err| ClientError::QrCode(err.to_string()))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 secret is the ASCII string
    /// "12345678901234567890"; at T=59 the 8-digit code is 94287082, so the
    /// 6-digit code is its last six digits.
    #[test]
    fn code_at_matches_rfc6238_vector() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(secret.code_at(59), "287082");
        assert_eq!(secret.code_at(1_111_111_109), "081804");
        assert_eq!(secret.code_at(2_000_000_000), "279037");
    }

    #[test]
    fn base32_round_trips_and_accepts_sloppy_input() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let text = secret.to_base32();
        assert_eq!(text, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::from_base32(&text).unwrap(), secret);
        assert_eq!(TotpSecret::from_base32("gezd gnbv-gy3t qojq gezd gnbv gy3t qojq").unwrap(), secret);
    }

    #[test]
    fn base32_refuses_junk_and_wrong_sizes() {
        assert!(TotpSecret::from_base32("").is_err());
        assert!(TotpSecret::from_base32("GEZDGNBVGY3TQOJQ1").is_err());
        // 10 bytes: too short for the server.
        assert!(TotpSecret::from_base32("GEZDGNBVGY3TQOJQ").is_err());
    }

    #[test]
    fn generated_secrets_are_160_bits_and_distinct() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.0.len(), 20);
        assert_ne!(a, b);
        assert_eq!(a.to_base32().len(), 32);
        assert_eq!(a.current_code().len(), 6);
        assert_eq!(format!("{a:?}"), "TotpSecret(<redacted>)");
    }

    #[test]
    fn otpauth_uri_names_issuer_and_account() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(
            secret.otpauth_uri("alice", None),
            "otpauth://totp/Conclave:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Conclave"
        );
        let with_host = secret.otpauth_uri("alice", Some("chat.example.org"));
        assert!(
            with_host.starts_with("otpauth://totp/Conclave%20%28chat.example.org%29:alice?"),
            "{with_host}"
        );
        assert!(with_host.ends_with("&issuer=Conclave%20%28chat.example.org%29"), "{with_host}");
        assert!(secret.otpauth_uri("alice", Some("::1")).ends_with("&issuer=Conclave"));
    }

    #[test]
    fn qr_code_renders_half_blocks() {
        let qr = qr_code("otpauth://totp/Conclave:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        let lines: Vec<&str> = qr.lines().collect();
        assert!(lines.len() > 10);
        // The quiet zone is light, so it is drawn as full blocks.
        assert!(lines[0].chars().all(|c| c == '\u{2588}'));
    }
}
