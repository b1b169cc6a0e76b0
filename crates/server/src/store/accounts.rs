//! Users and their second factors.

use super::{Result, Store, StoreError, with_pool};
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
    /// Whether `password_hash` is of the NFC form of the password; `false` for
    /// hashes made before passwords were normalised (of the password as sent).
    pub password_nfc: bool,
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
    /// The id of the registration token this registration uses up one use of,
    /// if the server's registration mode asks for one.
    pub registration_token: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
}

/// Why [`Store::create_user`] created no account.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The username is taken.
    #[error("username taken")]
    UsernameTaken,
    /// The registration token was used up, expired or revoked meanwhile.
    #[error("the registration token cannot be used")]
    TokenUnusable,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CreateUserError {
    fn from(err: sqlx::Error) -> Self {
        match StoreError::from(err) {
            StoreError::Conflict => Self::UsernameTaken,
            other => Self::Store(other),
        }
    }
}

type UserRow = (i64, String, String, Vec<u8>, bool, bool);

impl Store {
    /// Creates a user (its password hash of the NFC form) with its recovery
    /// codes, using up one use of the registration token if one is named, all
    /// in one transaction: a refused registration uses up nothing.
    ///
    /// # Errors
    /// [`CreateUserError::UsernameTaken`], [`CreateUserError::TokenUnusable`]
    /// when the token has no use left, has expired or was revoked, else storage
    /// errors.
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<UserId, CreateUserError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(token) = new.registration_token {
                let used = sqlx::query(
                    "UPDATE registration_tokens SET uses = uses + 1 \
                     WHERE id = $1 AND uses < max_uses AND revoked_at IS NULL AND expires_at > $2",
                )
                .bind(token)
                .bind(new.now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if used != 1 {
                    return Err(CreateUserError::TokenUnusable);
                }
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, totp_secret, totp_last_step, created_at, password_nfc) \
                 VALUES ($1, $2, $3, $4, $5, TRUE) RETURNING id",
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
            "SELECT id, username, password_hash, totp_secret, disabled, password_nfc FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(id, username, password_hash, totp_secret, disabled, password_nfc)| UserRecord {
            id: UserId(id),
            username,
            password_hash,
            totp_secret,
            disabled,
            password_nfc,
        }))
    }

    /// Replaces the user's password hash with one of the NFC form of the same
    /// password (after a login matched the old, un-normalised hash).
    pub async fn set_nfc_password_hash(&self, user: UserId, password_hash: &str) -> Result<()> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE users SET password_hash = $2, password_nfc = TRUE WHERE id = $1",
        )
        .bind(user.0)
        .bind(password_hash)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
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
}
