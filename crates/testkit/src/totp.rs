//! TOTP codes as an authenticator app computes them (RFC 6238, SHA-1, 6 digits,
//! 30 s), for any moment.

use std::time::{SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, Secret, TOTP};

/// A fresh 160-bit secret in base32.
#[must_use]
pub fn new_secret() -> String {
    Secret::generate_secret().to_encoded().to_string()
}

/// The code for `secret` at Unix time `unix_secs`.
///
/// # Panics
/// If `secret` is not base32.
#[must_use]
pub fn code_at(secret: &str, unix_secs: u64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().expect("base32 secret");
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, bytes, None, String::new()).generate(unix_secs)
}

/// Unix seconds now, after waiting out the last three seconds of a step: a code
/// computed here must still be inside its window when the server (another
/// process, a TLS handshake away) checks it.
fn now() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    let into_step = since.as_millis() % 30_000;
    if into_step >= 27_000 {
        let wait = u64::try_from(30_000 - into_step).unwrap_or(0) + 50;
        std::thread::sleep(std::time::Duration::from_millis(wait));
        return SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs();
    }
    since.as_secs()
}

/// The code for the current step.
#[must_use]
pub fn code_now(secret: &str) -> String {
    code_at(secret, now())
}

/// The code for the previous step, which the server still accepts. Registering
/// with it leaves the current step free for an immediate login, so tests need
/// not wait for the clock.
#[must_use]
pub fn code_previous_step(secret: &str) -> String {
    code_at(secret, now() - 30)
}
