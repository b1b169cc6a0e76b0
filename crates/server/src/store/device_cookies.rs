//! Device cookies: the mark of a client home that logged in as a user before.
//! Only the SHA-256 of a cookie is stored, so a copy of the database does not
//! let anyone pass for a known device.

use super::{Result, Store, with_pool};
use conclave_proto::{SessionId, UserId};

/// A live device cookie, found by its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCookieRecord {
    /// Its row.
    pub id: i64,
    /// The user it was issued to; it counts only for logins as this user.
    pub user: UserId,
}

/// What issuing a cookie writes.
#[derive(Debug)]
pub struct NewDeviceCookie<'a> {
    /// The user.
    pub user: UserId,
    /// SHA-256 of the cookie.
    pub hash: &'a [u8; 32],
    /// The session of the login (or registration) that issues it.
    pub session: &'a SessionId,
    /// The cookie presented at that login, which this one replaces.
    pub replacing: Option<i64>,
    /// Unix seconds.
    pub now: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// How many of the user's cookies to keep, newest first.
    pub keep: i64,
}

impl Store {
    /// The unexpired cookie with this hash.
    pub async fn device_cookie(&self, hash: &[u8; 32], now: i64) -> Result<Option<DeviceCookieRecord>> {
        let row: Option<(i64, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, user_id FROM device_cookies WHERE cookie_hash = $1 AND expires_at > $2",
        )
        .bind(hash.as_slice())
        .bind(now)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(id, user)| DeviceCookieRecord { id, user: UserId(user) }))
    }

    /// Stores a new cookie: in place of the one it replaces (whose failures
    /// start again from none), else as a new row; then forgets the user's
    /// cookies beyond the newest `keep`.
    pub async fn issue_device_cookie(&self, new: &NewDeviceCookie<'_>) -> Result<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let replaced = match new.replacing {
                Some(id) => sqlx::query(
                    "UPDATE device_cookies SET cookie_hash = $3, session_id = $4, failures = 0, \
                     locked_until = 0, issued_at = $5, expires_at = $6 WHERE id = $1 AND user_id = $2",
                )
                .bind(id)
                .bind(new.user.0)
                .bind(new.hash.as_slice())
                .bind(&new.session.0)
                .bind(new.now)
                .bind(new.expires_at)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                None => 0,
            };
            if replaced == 0 {
                sqlx::query(
                    "INSERT INTO device_cookies (user_id, cookie_hash, session_id, issued_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(new.user.0)
                .bind(new.hash.as_slice())
                .bind(&new.session.0)
                .bind(new.now)
                .bind(new.expires_at)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "DELETE FROM device_cookies WHERE user_id = $1 AND id NOT IN \
                 (SELECT id FROM device_cookies WHERE user_id = $1 ORDER BY issued_at DESC, id DESC LIMIT $2)",
            )
            .bind(new.user.0)
            .bind(new.keep)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Forgets the cookie issued with `session` (when that session is revoked:
    /// a lost device stops counting as known).
    pub async fn revoke_device_cookie_of(&self, session: &SessionId) -> Result<()> {
        with_pool!(self, pool => sqlx::query("DELETE FROM device_cookies WHERE session_id = $1")
            .bind(&session.0)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Deletes cookies that expired before `now`.
    pub async fn prune_device_cookies(&self, now: i64) -> Result<u64> {
        Ok(with_pool!(self, pool => sqlx::query("DELETE FROM device_cookies WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
