//! The at-rest key for TOTP secrets.
//!
//! The server must know each TOTP secret to check codes, so it cannot store a
//! hash. It stores the secret encrypted with ChaCha20-Poly1305 under a key kept in
//! a file beside (not inside) the database: a copy of the database alone does not
//! reveal any secret. Each ciphertext is bound to its username as associated data,
//! so a row cannot be moved onto another account.

use crate::keyfile;
use chacha20poly1305::{
    ChaCha20Poly1305, Key, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng, Payload},
};
use std::{io, path::Path};

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts small secrets with the server's at-rest key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// A ciphertext that does not decrypt (wrong key, altered, or moved).
#[derive(Debug, thiserror::Error)]
#[error("an encrypted secret could not be decrypted (wrong secret key file?)")]
pub struct OpenError;

impl SecretBox {
    /// Loads the key from `path`, creating it (mode 0600) on first start.
    ///
    /// # Errors
    /// I/O errors, or a key file of the wrong size.
    pub fn load_or_create(path: &Path) -> io::Result<Self> {
        let (key, _) = keyfile::load_or_create(path, "secret key for data at rest")?;
        Ok(Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) })
    }

    /// Encrypts `plaintext` bound to `context`; returns nonce || ciphertext.
    #[must_use]
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: context.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption of a small buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts what [`seal`](Self::seal) produced for the same `context`.
    ///
    /// # Errors
    /// [`OpenError`] if the data was altered, moved or sealed with another key.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{fs, os::unix::fs::PermissionsExt};

    #[test]
    fn round_trip_is_bound_to_context_and_key_file_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let sb = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = sb.seal(b"JBSWY3DPEHPK3PXP", "alice");
        assert!(!sealed.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
        assert_eq!(sb.open(&sealed, "alice").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert!(sb.open(&sealed, "mallory").is_err());
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed, "alice").unwrap(), b"JBSWY3DPEHPK3PXP");
    }
}
