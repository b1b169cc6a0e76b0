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
    /// Consecutive failed logins.
    pub failed_logins: i64,
    /// End of the current back-off, Unix seconds (0: none).
    pub locked_until: i64,
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

type UserRow = (i64, String, String, Vec<u8>, i64, i64, bool);

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
            "SELECT id, username, password_hash, totp_secret, failed_logins, locked_until, disabled \
             FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(id, username, password_hash, totp_secret, failed_logins, locked_until, disabled)| {
            UserRecord {
                id: UserId(id),
                username,
                password_hash,
                totp_secret,
                failed_logins,
                locked_until,
                disabled,
            }
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

    /// Counts one more failed login and returns the new count.
    pub async fn record_login_failure(&self, user: UserId) -> Result<i64> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
        )
        .bind(user.0)
        .fetch_one(pool)
        .await?))
    }

    /// Extends the back-off to `until` (never shortens it).
    pub async fn lock_until(&self, user: UserId, until: i64) -> Result<()> {
        with_pool!(self, pool => sqlx::query("UPDATE users SET locked_until = $2 WHERE id = $1 AND locked_until < $2")
            .bind(user.0)
            .bind(until)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Clears the failure count and back-off after a successful login.
    pub async fn reset_login_failures(&self, user: UserId) -> Result<()> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = $1 AND (failed_logins <> 0 OR locked_until <> 0)",
        )
        .bind(user.0)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }
}
