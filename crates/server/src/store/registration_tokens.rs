//! Registration tokens, for a server whose registration mode is `invite`.
//! Only the SHA-256 of a token's secret is stored. A use is taken in the
//! transaction that creates the account ([`Store::create_user`]).

use super::{Result, Store, with_pool};

/// A registration token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationTokenRecord {
    /// Public id (the part of the token before `-`).
    pub id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Registrations it allows in all.
    pub max_uses: i64,
    /// Registrations it was used for.
    pub uses: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; unusable from then on.
    pub expires_at: i64,
    /// Unix seconds, once revoked.
    pub revoked_at: Option<i64>,
}

impl RegistrationTokenRecord {
    /// Whether it can still be used at `now`.
    #[must_use]
    pub fn usable(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.uses < self.max_uses && self.expires_at > now
    }
}

type TokenRow = (String, Vec<u8>, i64, i64, i64, i64, Option<i64>);

fn record(row: TokenRow) -> RegistrationTokenRecord {
    let (id, secret_hash, max_uses, uses, created_at, expires_at, revoked_at) = row;
    RegistrationTokenRecord { id, secret_hash, max_uses, uses, created_at, expires_at, revoked_at }
}

impl Store {
    /// Stores a new token (no uses yet).
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] if the id exists.
    pub async fn create_registration_token(
        &self,
        id: &str,
        secret_hash: &[u8; 32],
        max_uses: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO registration_tokens (id, secret_hash, max_uses, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(secret_hash.as_slice())
        .bind(max_uses)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// The token with this id, whatever its state.
    pub async fn registration_token(&self, id: &str) -> Result<Option<RegistrationTokenRecord>> {
        let row: Option<TokenRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, secret_hash, max_uses, uses, created_at, expires_at, revoked_at \
             FROM registration_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(record))
    }

    /// Every token, newest first.
    pub async fn registration_tokens(&self) -> Result<Vec<RegistrationTokenRecord>> {
        let rows: Vec<TokenRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, secret_hash, max_uses, uses, created_at, expires_at, revoked_at \
             FROM registration_tokens ORDER BY created_at DESC, id",
        )
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(record).collect())
    }

    /// Revokes a token. Returns `false` if there is no such token or it was
    /// revoked already.
    pub async fn revoke_registration_token(&self, id: &str, now: i64) -> Result<bool> {
        let done = with_pool!(self, pool => sqlx::query(
            "UPDATE registration_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }
}
