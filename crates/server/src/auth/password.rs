//! argon2id password hashing.
//!
//! Hashing costs ~19 MiB of memory and tens of milliseconds of CPU, so it runs on
//! blocking threads behind a semaphore: at most `hash_concurrency` hashes exist at
//! once, and a login flood queues instead of exhausting memory. Unknown users are
//! checked against a dummy hash with the same parameters, so the time a failed
//! login takes does not reveal whether the user exists.
//!
//! Each slot's ~19 MiB of argon2 memory is allocated once and reused. Left to
//! argon2, every hash allocates its own on whichever blocking thread runs it, and
//! the C allocator keeps such freed blocks in that thread's arena: after a burst
//! of logins the server held hundreds of megabytes it no longer used.

use crate::config::Argon2Params;
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, Salt, SaltString, rand_core::OsRng},
};
use prometheus_client::metrics::counter::Counter;
use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
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
    /// argon2 working memory of the slots not hashing now (at most one per slot).
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A hash of a random password, verified against when the user is unknown.
    dummy: Arc<str>,
    /// Hashes computed (new and verified): what shows that an unusable
    /// password at login is refused without one.
    hashes: Counter,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher with the given cost and at most `concurrency` hashes at once,
    /// counting each hash it computes in `hashes`.
    ///
    /// # Errors
    /// If the parameters are invalid for argon2.
    pub fn new(cost: Argon2Params, concurrency: usize, hashes: Counter) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy = hash_blocking(&params, &token_like(), &mut Vec::new())?;
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(concurrency)),
            memory: Arc::default(),
            dummy: dummy.into(),
            hashes,
        })
    }

    /// Hashes a new password with a fresh random salt; returns the PHC string.
    ///
    /// # Errors
    /// [`HashError::Busy`] when no slot frees up in time.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(move |memory| hash_blocking(&params, &password, memory)).await?
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
        let ok = self.run(move |memory| verify_blocking(&stored, &password, memory)).await?;
        Ok(ok && real)
    }

    /// Runs `job` on a blocking thread once a slot is free, with that slot's
    /// argon2 memory.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        self.hashes.inc();
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = pool.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
            let out = job(&mut memory);
            pool.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
            drop(permit);
            out
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

fn hash_blocking(params: &Params, password: &str, memory: &mut Vec<Block>) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let failed = |e: argon2::password_hash::Error| HashError::Failed(e.to_string());
    let hash = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(derive(&argon2, password, salt.as_salt(), memory).map_err(failed)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored`, compared in constant time.
fn verify_blocking(stored: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let mut check = || -> argon2::password_hash::Result<bool> {
        let hash = PasswordHash::new(stored)?;
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return Ok(false) };
        let algorithm = Algorithm::try_from(hash.algorithm)?;
        let version = hash.version.map(Version::try_from).transpose()?.unwrap_or_default();
        let argon2 = Argon2::new(algorithm, version, Params::try_from(&hash)?);
        // `Output`'s equality is constant-time.
        Ok(derive(&argon2, password, salt, memory)? == expected)
    };
    check().unwrap_or(false)
}

/// argon2's output for `password` and `salt`, computed in `memory` (grown to
/// the parameters' size the first time).
fn derive(
    argon2: &Argon2<'_>,
    password: &str,
    salt: Salt<'_>,
    memory: &mut Vec<Block>,
) -> argon2::password_hash::Result<Output> {
    let mut salt_bytes = [0; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let params = argon2.params();
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    Output::init_with(params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN), |out| {
        Ok(argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..])?)
    })
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
        let hashes = Counter::default();
        let hasher =
            Hasher::new(Argon2Params { memory_kib: 19_456, iterations: 2 }, 2, hashes.clone()).unwrap();
        let stored = hasher.hash("correct horse battery").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("correct horse battery", Some(&stored)).await.unwrap());
        assert!(!hasher.verify("correct horse batter", Some(&stored)).await.unwrap());
        assert!(!hasher.verify("correct horse battery", None).await.unwrap());
        let again = hasher.hash("correct horse battery").await.unwrap();
        assert_ne!(stored, again, "each hash has its own salt");
        assert!(hasher.verify("correct horse battery", Some(&again)).await.unwrap());
        assert_eq!(hashes.get(), 6, "every hash and check is counted");
    }

    #[test]
    fn reads_hashes_made_by_the_argon2_crate_itself() {
        use argon2::{PasswordHasher, password_hash::SaltString};
        let params = Params::new(1024, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        let mut memory = Vec::new();
        assert!(verify_blocking(&theirs, "correct horse battery", &mut memory));
        assert!(!verify_blocking(&theirs, "correct horse batter", &mut memory));
        assert!(!verify_blocking("$argon2id$v=19$not-a-hash", "correct horse battery", &mut memory));
        // Ours verify with the crate's own verifier too.
        let ours = hash_blocking(&params, "correct horse battery", &mut memory).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2::PasswordVerifier::verify_password(&Argon2::default(), b"correct horse battery", &parsed)
                .is_ok()
        );
    }
}
