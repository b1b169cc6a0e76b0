//! The password policy.
//!
//! Default, as NIST SP 800-63B and OWASP ASVS 5.0 ask: 8 to 1,024 characters,
//! used exactly as typed (no truncation, no case folding, any Unicode), not one of
//! the 10,000 most common passwords, and not containing the username. Operators
//! who must can add the classic composition rule (upper, lower, digit, symbol).
//!
//! The common-password list is the top 10,000 of the frequency-ordered list that
//! Django ships (`common-passwords.txt.gz`, after Royce Williams' compilation);
//! it is compared case-insensitively, so `Password1` counts as `password1`.

use crate::config::PasswordPolicy;
use conclave_proto::limits::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use std::{collections::HashSet, sync::LazyLock};

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

/// Checks `password` for `username` (lower case) under `policy`.
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
    fn composition_policy() {
        assert_eq!(check(Composition, "violet staple orbit", "alice"), Err(PolicyViolation::Composition));
        assert!(check(Composition, "Violet-staple-0rbit", "alice").is_ok());
    }
}
