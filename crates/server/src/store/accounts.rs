//! Users, their second factors and the login back-off counters.

use super::{Result, Store, with_pool};
use conclave_proto::UserId;

/// A user row as the authentication code needs it.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Permanent id.
    pub id: UserId,
    /// Lower-case username.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Encrypted TOTP secret.
    pub totp_secret: Vec<u8>,
    /// Disabled by an operator.
    pub disabled: bool,
}

/// What registration writes, all in one transaction.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Lower-case username.
    pub username: &'a str,
    /// argon2id PHC string.
    pub password_hash: &'a str,
    /// Encrypted TOTP secret.
    pub totp_secret: &'a [u8],
    /// The step of the confirming code: it counts as used.
    pub totp_step: i64,
    /// Hashes of the recovery codes.
    pub recovery_hashes: &'a [[u8; 32]],
    /// Unix seconds.
    pub now: i64,
}

type UserRow = (i64, String, String, Vec<u8>, bool);

impl Store {
    /// Creates a user with its recovery codes.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] if the username is taken.
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<UserId> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, totp_secret, totp_last_step, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(new.username)
            .bind(new.password_hash)
            .bind(new.totp_secret)
            .bind(new.totp_step)
            .bind(new.now)
            .fetch_one(&mut *tx)
            .await?;
            for hash in new.recovery_hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(id)
                    .bind(hash.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(UserId(id))
        })
    }

    /// Looks a user up by lower-case username.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>> {
        let row: Option<UserRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, username, password_hash, totp_secret, disabled FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(id, username, password_hash, totp_secret, disabled)| UserRecord {
            id: UserId(id),
            username,
            password_hash,
            totp_secret,
            disabled,
        }))
    }

    /// Marks TOTP `step` as used if it is later than the last used one. Returns
    /// `false` when the step (or a later one) was already used: a replay. Atomic,
    /// so two concurrent logins with one code cannot both succeed.
    pub async fn consume_totp_step(&self, user: UserId, step: i64) -> Result<bool> {
        let done = with_pool!(self, pool => sqlx::query(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
        )
        .bind(user.0)
        .bind(step)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Marks a recovery code used. Returns `false` if it is unknown or used.
    pub async fn consume_recovery_code(&self, user: UserId, hash: &[u8; 32], now: i64) -> Result<bool> {
        let done = with_pool!(self, pool => sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user.0)
        .bind(hash.as_slice())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// How many recovery codes the user has left.
    pub async fn recovery_codes_left(&self, user: UserId) -> Result<u32> {
        let left: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user.0)
        .fetch_one(pool)
        .await?);
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }

    /// End of the back-off for `username` (Unix seconds; 0 when none).
    pub async fn login_locked_until(&self, username: &str) -> Result<i64> {
        let until: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT locked_until FROM login_failures WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?);
        Ok(until.unwrap_or(0))
    }

    /// Counts one more failed login for `username` (whether or not it exists) and
    /// returns the new count.
    pub async fn record_login_failure(&self, username: &str, now: i64) -> Result<i64> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO login_failures (username, failures, last_failure_at) VALUES ($1, 1, $2) \
             ON CONFLICT (username) DO UPDATE SET failures = login_failures.failures + 1, last_failure_at = $2 \
             RETURNING failures",
        )
        .bind(username)
        .bind(now)
        .fetch_one(pool)
        .await?))
    }

    /// Extends the back-off of `username` to `until` (never shortens it).
    pub async fn lock_until(&self, username: &str, until: i64) -> Result<()> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE login_failures SET locked_until = $2 WHERE username = $1 AND locked_until < $2",
        )
        .bind(username)
        .bind(until)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Forgets the failures of `username` after a successful login.
    pub async fn reset_login_failures(&self, username: &str) -> Result<()> {
        with_pool!(self, pool => sqlx::query("DELETE FROM login_failures WHERE username = $1")
            .bind(username)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Deletes failure records whose last failure is older than `before` and
    /// whose back-off has ended, so the table stays bounded.
    pub async fn prune_login_failures(&self, before: i64) -> Result<u64> {
        Ok(with_pool!(self, pool => sqlx::query(
            "DELETE FROM login_failures WHERE last_failure_at < $1 AND locked_until < $1",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
