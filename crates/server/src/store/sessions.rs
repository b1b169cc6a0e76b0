//! Login sessions. Only the SHA-256 of a token is stored: a copy of the database
//! does not let anyone log in.

use super::{Result, Store, with_pool};
use conclave_proto::{SessionId, UserId};

/// What a login writes.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// Public id.
    pub id: &'a SessionId,
    /// Owner.
    pub user: UserId,
    /// SHA-256 of the token.
    pub token_hash: &'a [u8; 32],
    /// Client name from `hello`.
    pub client: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// Absolute expiry, Unix seconds.
    pub expires_at: i64,
}

/// A live session with its owner.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Public id.
    pub id: SessionId,
    /// Owner.
    pub user: UserId,
    /// Owner's username.
    pub username: String,
    /// Client name.
    pub client: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_seen_at: i64,
    /// Absolute expiry, Unix seconds.
    pub expires_at: i64,
}

type SessionRow = (String, i64, String, String, i64, i64, i64);

fn record(row: SessionRow) -> SessionRecord {
    let (id, user, username, client, created_at, last_seen_at, expires_at) = row;
    SessionRecord {
        id: SessionId(id),
        user: UserId(user),
        username,
        client,
        created_at,
        last_seen_at,
        expires_at,
    }
}

impl Store {
    /// Stores a new session.
    pub async fn create_session(&self, new: &NewSession<'_>) -> Result<()> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, client, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(&new.id.0)
        .bind(new.user.0)
        .bind(new.token_hash.as_slice())
        .bind(new.client)
        .bind(new.now)
        .bind(new.expires_at)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Finds the live session for a token hash: not ended, not past its absolute
    /// expiry, used within `idle_secs`, and its user not disabled.
    pub async fn session_by_token(
        &self,
        token_hash: &[u8; 32],
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<SessionRecord>> {
        let row: Option<SessionRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT s.id, s.user_id, u.username, s.client, s.created_at, s.last_seen_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 \
               AND s.last_seen_at > $2 - $3 AND NOT u.disabled",
        )
        .bind(token_hash.as_slice())
        .bind(now)
        .bind(idle_secs)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(record))
    }

    /// Records use of a session (for the idle timeout) and reports whether it is
    /// still live: `false` once it was ended (here or on another node) or its
    /// absolute lifetime passed.
    pub async fn refresh_session(&self, id: &SessionId, now: i64) -> Result<bool> {
        let live = with_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(&id.0)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(live == 1)
    }

    /// Ends a session of `user`. Returns `false` if there was no such live session.
    pub async fn end_session(&self, user: UserId, id: &SessionId, now: i64) -> Result<bool> {
        let done = with_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET ended_at = $3 WHERE id = $1 AND user_id = $2 AND ended_at IS NULL",
        )
        .bind(&id.0)
        .bind(user.0)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// The user's live sessions, newest first.
    pub async fn sessions_of(&self, user: UserId, now: i64, idle_secs: i64) -> Result<Vec<SessionRecord>> {
        let rows: Vec<SessionRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT s.id, s.user_id, u.username, s.client, s.created_at, s.last_seen_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.user_id = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND s.last_seen_at > $2 - $3 \
             ORDER BY s.created_at DESC, s.id",
        )
        .bind(user.0)
        .bind(now)
        .bind(idle_secs)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(record).collect())
    }
}
