//! Input rules that both the client (to fail early with a clear message) and the
//! server (to enforce) apply. Pure functions, no I/O.

use crate::limits::{
    CLIENT_NAME_MAX_CHARS, REGISTRATION_TOKEN_ID_CHARS, REGISTRATION_TOKEN_SECRET_CHARS, TOKEN_MAX_CHARS,
    TOTP_DIGITS, USERNAME_MAX_CHARS, USERNAME_MIN_CHARS,
};

/// Why a username is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Shorter than [`USERNAME_MIN_CHARS`] or longer than [`USERNAME_MAX_CHARS`].
    #[error("a username has {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters")]
    Length,
    /// Contains something outside `a-z 0-9 _ . -`.
    #[error("a username may contain only letters a-z, digits, '_', '.' and '-'")]
    Characters,
}

/// Folds a username to its canonical lower-case form and checks it.
/// Usernames are case-insensitive: `Alice` and `alice` are the same account.
///
/// # Errors
/// [`UsernameError`] naming the rule that failed.
pub fn normalize_username(raw: &str) -> Result<String, UsernameError> {
    let name = raw.to_ascii_lowercase();
    let len = name.chars().count();
    if !(USERNAME_MIN_CHARS..=USERNAME_MAX_CHARS).contains(&len) {
        return Err(UsernameError::Length);
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)) {
        return Err(UsernameError::Characters);
    }
    Ok(name)
}

/// Whether `name` is an acceptable room name: 1–32 characters `a-z 0-9 _ -`.
#[must_use]
pub fn is_room_name(name: &str) -> bool {
    (1..=crate::limits::ROOM_NAME_MAX_CHARS).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `code` has the shape of a TOTP code (exactly six ASCII digits).
#[must_use]
pub fn is_totp_code(code: &str) -> bool {
    code.len() == TOTP_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// Canonical form of a recovery code as typed by a person: lower case, spaces and
/// dashes removed. Returns `None` if what remains is not 16 base32 characters.
#[must_use]
pub fn normalize_recovery_code(raw: &str) -> Option<String> {
    let code: String =
        raw.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_lowercase()).collect();
    let valid =
        code.len() == 16 && code.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    valid.then_some(code)
}

/// Whether a session token has a plausible shape (base64url, bounded length).
/// Checked before any lookup so junk never reaches the database.
#[must_use]
pub fn is_token_shape(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= TOKEN_MAX_CHARS
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A registration token as typed, split into its public id and its secret
/// (both lower case), or `None` if it does not have the shape
/// `<12 hex digits>-<26 base32 characters>`. Surrounding whitespace and case
/// are ignored.
#[must_use]
pub fn split_registration_token(raw: &str) -> Option<(String, String)> {
    let token = raw.trim().to_ascii_lowercase();
    let (id, secret) = token.split_once('-')?;
    let id_ok = id.len() == REGISTRATION_TOKEN_ID_CHARS && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == REGISTRATION_TOKEN_SECRET_CHARS
        && secret.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    (id_ok && secret_ok).then(|| (id.to_owned(), secret.to_owned()))
}

/// Whether a client name is acceptable: bounded and free of control characters.
#[must_use]
pub fn is_client_name(name: &str) -> bool {
    name.chars().count() <= CLIENT_NAME_MAX_CHARS && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_fold_case_and_refuse_bad_characters() {
        assert_eq!(normalize_username("Alice_1.x-y").unwrap(), "alice_1.x-y");
        assert_eq!(normalize_username("ab"), Err(UsernameError::Length));
        assert_eq!(normalize_username(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(normalize_username("al ice"), Err(UsernameError::Characters));
        assert_eq!(normalize_username("alice\u{1b}"), Err(UsernameError::Characters));
        assert_eq!(normalize_username("älice"), Err(UsernameError::Characters));
    }

    #[test]
    fn totp_codes_are_six_digits() {
        assert!(is_totp_code("012345"));
        assert!(!is_totp_code("12345"));
        assert!(!is_totp_code("12345a"));
        assert!(!is_totp_code("١٢٣٤٥٦"));
    }

    #[test]
    fn recovery_codes_are_normalized() {
        assert_eq!(normalize_recovery_code("ABCD-EFGH-2345-67ab").as_deref(), Some("abcdefgh234567ab"));
        assert_eq!(normalize_recovery_code("abcd-efgh-2345-67a"), None);
        assert_eq!(normalize_recovery_code("abcd-efgh-2345-67a1"), None);
    }

    #[test]
    fn registration_tokens_split_into_id_and_secret() {
        let token = " 0A1B2C3D4E5F-ABCDEFGHIJKLMNOPQRSTUVWXYZ ";
        assert_eq!(
            split_registration_token(token),
            Some(("0a1b2c3d4e5f".to_owned(), "abcdefghijklmnopqrstuvwxyz".to_owned()))
        );
        assert_eq!(split_registration_token("0a1b2c3d4e5f-abcdefghijklmnopqrstuvwxy"), None);
        assert_eq!(split_registration_token("0a1b2c3d4e5g-abcdefghijklmnopqrstuvwxyz"), None);
        assert_eq!(split_registration_token("0a1b2c3d4e5f-abcdefghijklmnopqrstuvwxy1"), None);
        assert_eq!(split_registration_token("0a1b2c3d4e5fabcdefghijklmnopqrstuvwxyz"), None);
    }

    #[test]
    fn tokens_and_client_names_are_bounded() {
        assert!(is_token_shape("abcDEF-_09"));
        assert!(!is_token_shape(""));
        assert!(!is_token_shape(&"a".repeat(65)));
        assert!(!is_token_shape("a b"));
        assert!(is_client_name("conclave-cli/0.1.0"));
        assert!(!is_client_name("x\ny"));
    }
}
