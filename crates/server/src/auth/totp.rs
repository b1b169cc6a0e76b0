//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps), as Google
//! Authenticator and every common authenticator app implement it.
//!
//! A code is accepted for the current step and the previous one (a code typed just
//! before the step turned). Which step matched is returned so the caller can
//! record it: the store refuses any step at or before the last one used, so every
//! code works once.

use conclave_proto::limits::{TOTP_SECRET_MAX_BYTES, TOTP_SECRET_MIN_BYTES, TOTP_STEP_SECONDS};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

/// Why a TOTP secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not base32.
    #[error("the TOTP secret is not valid base32")]
    Encoding,
    /// Too short or too long.
    #[error(
        "the TOTP secret must be {TOTP_SECRET_MIN_BYTES} to {TOTP_SECRET_MAX_BYTES} bytes (at least 160 bits)"
    )]
    Length,
}

/// Decodes a base32 secret (case, spaces and `=` padding ignored) and checks its
/// size.
///
/// # Errors
/// [`SecretError`] naming the problem.
pub fn decode_secret(base32: &str) -> Result<Vec<u8>, SecretError> {
    let cleaned: String =
        base32.chars().filter(|c| !c.is_whitespace() && *c != '=').map(|c| c.to_ascii_uppercase()).collect();
    if cleaned.len() > TOTP_SECRET_MAX_BYTES * 2 {
        return Err(SecretError::Length);
    }
    let bytes = Secret::Encoded(cleaned).to_bytes().map_err(|_| SecretError::Encoding)?;
    if !(TOTP_SECRET_MIN_BYTES..=TOTP_SECRET_MAX_BYTES).contains(&bytes.len()) {
        return Err(SecretError::Length);
    }
    Ok(bytes)
}

/// The step a Unix time falls in.
#[must_use]
pub fn step_at(unix_secs: u64) -> i64 {
    i64::try_from(unix_secs / TOTP_STEP_SECONDS).unwrap_or(i64::MAX)
}

/// Returns the step `code` is valid for — the current step at `unix_secs` or the
/// one before — or `None`. Comparison is constant-time.
#[must_use]
pub fn matching_step(secret: &[u8], code: &str, unix_secs: u64) -> Option<i64> {
    let totp =
        TOTP::new_unchecked(Algorithm::SHA1, 6, 0, TOTP_STEP_SECONDS, secret.to_vec(), None, String::new());
    let current = step_at(unix_secs);
    let mut found = None;
    for step in [current - 1, current] {
        let Ok(time) = u64::try_from(step) else { continue };
        let expected = totp.generate(time * TOTP_STEP_SECONDS);
        // Check both steps always, so timing does not depend on which matched.
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", truncated to 6 digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors() {
        assert_eq!(matching_step(RFC_SECRET, "287082", 59), Some(1));
        assert_eq!(matching_step(RFC_SECRET, "081804", 1_111_111_109), Some(37_037_036));
        assert_eq!(matching_step(RFC_SECRET, "050471", 1_111_111_111), Some(37_037_037));
        assert_eq!(matching_step(RFC_SECRET, "005924", 1_234_567_890), Some(41_152_263));
    }

    #[test]
    fn previous_step_accepted_older_and_next_refused() {
        let t = 1_234_567_890;
        assert_eq!(matching_step(RFC_SECRET, "005924", t + 30), Some(41_152_263), "previous step");
        assert_eq!(matching_step(RFC_SECRET, "005924", t + 60), None, "two steps old");
        assert_eq!(matching_step(RFC_SECRET, "005924", t - 30), None, "a future code");
        assert_eq!(matching_step(RFC_SECRET, "00592", t), None);
    }

    #[test]
    fn secrets_are_base32_of_160_bits_or_more() {
        let b32 = Secret::Raw(RFC_SECRET.to_vec()).to_encoded().to_string();
        assert_eq!(decode_secret(&b32.to_lowercase()).unwrap(), RFC_SECRET);
        assert_eq!(decode_secret("GEZDGNBV"), Err(SecretError::Length));
        assert_eq!(decode_secret("not base32!"), Err(SecretError::Encoding));
    }
}
