//! argon2id password hashing.
//!
//! Hashing costs ~19 MiB of memory and tens of milliseconds of CPU, so it runs on
//! blocking threads behind a semaphore: at most `hash_concurrency` hashes exist at
//! once, and a login flood queues instead of exhausting memory. Unknown users are
//! checked against a dummy hash with the same parameters, so the time a failed
//! login takes does not reveal whether the user exists.

use crate::config::Argon2Params;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use std::{sync::Arc, time::Duration};
use tokio::sync::Semaphore;

/// How long a request waits for a hashing slot before the server says it is busy.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why hashing did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// All hashing slots stayed busy for too long.
    #[error("the server is busy hashing passwords")]
    Busy,
    /// The hashing thread failed (should not happen).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    slots: Arc<Semaphore>,
    /// A hash of a random password, verified against when the user is unknown.
    dummy: Arc<str>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher with the given cost and at most `concurrency` hashes at once.
    ///
    /// # Errors
    /// If the parameters are invalid for argon2.
    pub fn new(cost: Argon2Params, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy = hash_blocking(&params, &token_like())?;
        Ok(Self { params, slots: Arc::new(Semaphore::new(concurrency)), dummy: dummy.into() })
    }

    /// Hashes a new password with a fresh random salt; returns the PHC string.
    ///
    /// # Errors
    /// [`HashError::Busy`] when no slot frees up in time.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(move || hash_blocking(&params, &password)).await?
    }

    /// Checks `password` against `stored` (or, when `None`, against the dummy hash
    /// so the caller spends the same time). Returns `true` only for a real match.
    ///
    /// # Errors
    /// [`HashError::Busy`] when no slot frees up in time.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, HashError> {
        let real = stored.is_some();
        let stored: Arc<str> = stored.map_or_else(|| self.dummy.clone(), Arc::from);
        let password = password.to_owned();
        let ok = self
            .run(move || {
                PasswordHash::new(&stored)
                    .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
            })
            .await?;
        Ok(ok && real)
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn token_like() -> String {
    let (token, _) = super::token::new_token();
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let hasher = Hasher::new(Argon2Params { memory_kib: 19_456, iterations: 2 }, 2).unwrap();
        let stored = hasher.hash("correct horse battery").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("correct horse battery", Some(&stored)).await.unwrap());
        assert!(!hasher.verify("correct horse batter", Some(&stored)).await.unwrap());
        assert!(!hasher.verify("correct horse battery", None).await.unwrap());
        let again = hasher.hash("correct horse battery").await.unwrap();
        assert_ne!(stored, again, "each hash has its own salt");
    }
}
