//! Random credentials: session tokens, session ids, recovery codes, device
//! cookies and registration tokens. All come from the operating system's
//! CSPRNG; only their SHA-256 is ever stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use conclave_proto::SessionId;
use rand::{TryRngCore, rngs::OsRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::Secret;

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Without an OS random source no credential can be made safely: stop.
    OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// A new 256-bit session token (base64url) and its hash for storage.
#[must_use]
pub fn new_token() -> (String, [u8; 32]) {
    let token = URL_SAFE_NO_PAD.encode(random::<32>());
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token.
#[must_use]
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new public session id: 96 random bits as 24 hex digits. (Not base64url: an
/// id starting with `-` would read as an option on a command line.)
#[must_use]
pub fn new_session_id() -> SessionId {
    SessionId(hex::encode(random::<12>()))
}

/// A new recovery code as shown to the user (`abcd-efgh-ijkl-mnop`, 80 random
/// bits in base32) and its hash for storage.
#[must_use]
pub fn new_recovery_code() -> (String, [u8; 32]) {
    let raw = Secret::Raw(random::<10>().to_vec()).to_encoded().to_string().to_ascii_lowercase();
    let hash = hash_recovery_code(&raw);
    let shown = raw
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    (shown, hash)
}

/// The stored form of a normalised recovery code (see
/// [`conclave_proto::validate::normalize_recovery_code`]).
#[must_use]
pub fn hash_recovery_code(normalized: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"conclave-recovery-v1:");
    h.update(normalized.as_bytes());
    h.finalize().into()
}

/// A new 256-bit device cookie (base64url) and its hash for storage.
#[must_use]
pub fn new_device_cookie() -> (String, [u8; 32]) {
    let cookie = URL_SAFE_NO_PAD.encode(random::<32>());
    let hash = hash_device_cookie(&cookie);
    (cookie, hash)
}

/// The stored form of a device cookie (domain-separated from session tokens).
#[must_use]
pub fn hash_device_cookie(cookie: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"conclave-device-cookie-v1:");
    h.update(cookie.as_bytes());
    h.finalize().into()
}

/// A new registration token: the text shown once (`<id>-<secret>`: a
/// 48-bit public id in hex and a 128-bit secret in base32), its id, and the
/// hash of its secret for storage.
#[must_use]
pub fn new_registration_token() -> (String, String, [u8; 32]) {
    let id = hex::encode(random::<6>());
    let secret = Secret::Raw(random::<16>().to_vec()).to_encoded().to_string().to_ascii_lowercase();
    let secret = secret.trim_end_matches('=').to_owned();
    let hash = hash_registration_secret(&secret);
    (format!("{id}-{secret}"), id, hash)
}

/// The stored form of a registration token's secret (lower case).
#[must_use]
pub fn hash_registration_secret(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"conclave-registration-token-v1:");
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Whether `secret` is the one whose hash is `stored`, compared in constant
/// time.
#[must_use]
pub fn registration_secret_matches(secret: &str, stored: &[u8]) -> bool {
    bool::from(hash_registration_secret(secret).as_slice().ct_eq(stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_proto::validate::{is_token_shape, normalize_recovery_code};

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert!(is_token_shape(&a));
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), ha);
    }

    #[test]
    fn session_ids_are_hex_and_never_look_like_options() {
        for _ in 0..64 {
            let id = new_session_id().0;
            assert_eq!(id.len(), 24);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }

    #[test]
    fn device_cookies_are_256_bit_and_not_session_token_hashes() {
        let (cookie, hash) = new_device_cookie();
        assert_eq!(URL_SAFE_NO_PAD.decode(&cookie).unwrap().len(), 32);
        assert!(is_token_shape(&cookie));
        assert_eq!(hash_device_cookie(&cookie), hash);
        assert_ne!(hash_token(&cookie), hash);
    }

    #[test]
    fn registration_tokens_carry_128_secret_bits_and_match_only_their_hash() {
        let (shown, id, hash) = new_registration_token();
        assert_eq!(shown.len(), conclave_proto::limits::REGISTRATION_TOKEN_CHARS);
        let (parsed_id, secret) = conclave_proto::validate::split_registration_token(&shown).unwrap();
        assert_eq!(parsed_id, id);
        assert_eq!(Secret::Encoded(secret.to_uppercase()).to_bytes().unwrap().len(), 16);
        assert!(registration_secret_matches(&secret, &hash));
        let (_, _, other) = new_registration_token();
        assert!(!registration_secret_matches(&secret, &other));
        assert!(!registration_secret_matches(&secret, &hash[..31]));
    }

    #[test]
    fn recovery_codes_round_trip_through_normalisation() {
        let (shown, hash) = new_recovery_code();
        assert_eq!(shown.len(), conclave_proto::limits::RECOVERY_CODE_CHARS);
        let normalized = normalize_recovery_code(&shown.to_uppercase()).unwrap();
        assert_eq!(hash_recovery_code(&normalized), hash);
    }
}
