//! What a password is, and the policy for new ones.
//!
//! A password is hashed in its [`canonical`] form: Unicode NFC, as NIST SP
//! 800-63B (5.1.1.2) asks, so a password typed where accents arrive composed
//! (`é`) and where they arrive decomposed (`e` + `◌́`) is one password. It is
//! otherwise used as typed: no truncation, no case folding, any Unicode but NUL.
//!
//! The policy, by default as NIST SP 800-63B and OWASP ASVS 5.0 ask: 8 to 1,024
//! characters (counted after normalisation), not one of the 10,000 most common
//! passwords, and not containing the username. Operators who must can add the
//! classic composition rule (upper, lower, digit, symbol).
//!
//! The common-password list is the top 10,000 of the frequency-ordered list that
//! Django ships (`common-passwords.txt.gz`, after Royce Williams' compilation);
//! it is compared case-insensitively, so `Password1` counts as `password1`.

use crate::config::PasswordPolicy;
use conclave_proto::limits::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use std::{collections::HashSet, sync::LazyLock};
use unicode_normalization::UnicodeNormalization;

/// Input longer than this many bytes is refused without being normalised. No
/// character's canonical decomposition has more than 4 code points (checked
/// in the tests), so NFC is at least a quarter as long as its input, in
/// characters; and a character has at most 4 bytes. Input of more bytes than
/// this has more than `4 × PASSWORD_MAX_CHARS` characters and cannot normalise
/// to `PASSWORD_MAX_CHARS` or fewer.
const MAX_INPUT_BYTES: usize = 16 * PASSWORD_MAX_CHARS;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt").lines().map(str::trim).filter(|l| !l.is_empty()).collect()
});

/// Why a password is refused. The text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Fewer than 8 characters.
    #[error("the password must have at least {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    /// More than 1,024 characters.
    #[error("the password must have at most {PASSWORD_MAX_CHARS} characters")]
    TooLong,
    /// Contains a NUL character (which many systems would cut the password at).
    #[error("the password must not contain a NUL character")]
    ContainsNul,
    /// On the common-password list.
    #[error("the password is one of the 10,000 most common passwords")]
    Common,
    /// Contains the username.
    #[error("the password must not contain the username")]
    ContainsUsername,
    /// The composition policy is on and a class is missing.
    #[error("the password must contain an upper-case letter, a lower-case letter, a digit and a symbol")]
    Composition,
}

/// The form of `raw` that is hashed and checked: NFC, refused when it holds a
/// NUL or has more than [`PASSWORD_MAX_CHARS`] characters. Cheap next to a
/// hash, and done before any: an unusable password costs no hashing.
///
/// # Errors
/// [`PolicyViolation::ContainsNul`] or [`PolicyViolation::TooLong`].
pub fn canonical(raw: &str) -> Result<String, PolicyViolation> {
    if raw.len() > MAX_INPUT_BYTES {
        return Err(PolicyViolation::TooLong);
    }
    if raw.contains('\0') {
        return Err(PolicyViolation::ContainsNul);
    }
    let nfc: String = raw.nfc().collect();
    if nfc.chars().count() > PASSWORD_MAX_CHARS {
        return Err(PolicyViolation::TooLong);
    }
    Ok(nfc)
}

/// Checks the [`canonical`] form of a new password for `username` (lower
/// case) under `policy`.
///
/// # Errors
/// The first rule the password breaks.
pub fn check(policy: PasswordPolicy, password: &str, username: &str) -> Result<(), PolicyViolation> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(PolicyViolation::TooShort);
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(PolicyViolation::TooLong);
    }
    let folded = password.to_lowercase();
    if COMMON.contains(folded.as_str()) {
        return Err(PolicyViolation::Common);
    }
    if !username.is_empty() && folded.contains(username) {
        return Err(PolicyViolation::ContainsUsername);
    }
    if policy == PasswordPolicy::Composition {
        let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
        let symbol = |c: &char| !c.is_alphanumeric() && !c.is_whitespace();
        if !(has(|c| c.is_uppercase())
            && has(|c| c.is_lowercase())
            && has(char::is_ascii_digit)
            && has(symbol))
        {
            return Err(PolicyViolation::Composition);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PasswordPolicy::{Composition, Default};

    #[test]
    fn default_policy() {
        assert_eq!(COMMON.len(), 10_000);
        assert_eq!(check(Default, "short", "alice"), Err(PolicyViolation::TooShort));
        assert_eq!(check(Default, &"x".repeat(1025), "alice"), Err(PolicyViolation::TooLong));
        assert!(check(Default, &"xy".repeat(512), "alice").is_ok(), "1,024 characters are fine");
        assert_eq!(check(Default, "Password1", "alice"), Err(PolicyViolation::Common));
        assert_eq!(check(Default, "qwertyuiop", "alice"), Err(PolicyViolation::Common));
        assert_eq!(check(Default, "my-ALICE-pass-2024", "alice"), Err(PolicyViolation::ContainsUsername));
        assert!(check(Default, "violet staple orbit", "alice").is_ok());
        assert!(check(Default, "пароль-длинный-очень", "alice").is_ok(), "any Unicode counts");
        assert!(check(Default, "🔒🔒🔒🔒🔒🔒🔒🔒", "alice").is_ok(), "characters, not bytes");
    }

    #[test]
    fn passwords_are_compared_in_nfc_and_bounded_before_any_work() {
        let composed = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e";
        let decomposed = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e";
        assert_ne!(composed, decomposed);
        assert_eq!(canonical(decomposed).unwrap(), composed);
        assert_eq!(canonical(composed).unwrap(), composed);
        assert_eq!(canonical("plain ascii stays").unwrap(), "plain ascii stays");
        assert_eq!(canonical("nul\0inside"), Err(PolicyViolation::ContainsNul));
        assert_eq!(canonical(&"x".repeat(1_000_000)), Err(PolicyViolation::TooLong));
        assert_eq!(canonical(&"x".repeat(1025)), Err(PolicyViolation::TooLong));
        assert!(canonical(&"x".repeat(1024)).is_ok());
        // 1,024 characters composed from 2,048 typed ones fit.
        assert_eq!(canonical(&"e\u{301}".repeat(1024)).unwrap().chars().count(), 1024);
    }

    #[test]
    fn no_canonical_decomposition_is_longer_than_four_characters() {
        let longest = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .map(|c| {
                let mut n = 0;
                unicode_normalization::char::decompose_canonical(c, |_| n += 1);
                n
            })
            .max();
        assert_eq!(longest, Some(4), "MAX_INPUT_BYTES relies on this");
    }

    #[test]
    fn composition_policy() {
        assert_eq!(check(Composition, "violet staple orbit", "alice"), Err(PolicyViolation::Composition));
        assert!(check(Composition, "Violet-staple-0rbit", "alice").is_ok());
    }
}
