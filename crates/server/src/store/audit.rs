//! The audit log table. Appends lock the one-row chain head, so appends from any
//! number of connections or server nodes form a single chain without gaps.

use super::{Result, Store, with_pool};

/// An entry to append; the store assigns sequence number and hashes.
#[derive(Debug)]
pub struct NewAuditEntry<'a> {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Username, when known.
    pub actor: Option<&'a str>,
    /// What happened (`login_ok`, `login_failed`, …).
    pub action: &'a str,
    /// JSON metadata; never secrets.
    pub detail: &'a str,
}

/// The statement that inserts `entry` at `seq` in the chain, after `prev`. One
/// place for single appends and for the message batches, which chain many.
pub(super) fn insert_audit<'a, DB: sqlx::Database>(
    seq: i64,
    entry: &NewAuditEntry<'a>,
    prev: &'a [u8],
    hash: &'a [u8],
) -> sqlx::query::Query<'a, DB, DB::Arguments>
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a [u8]: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO audit_log (seq, at_ms, actor, action, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(seq)
    .bind(entry.at_ms)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.detail)
    .bind(prev)
    .bind(hash)
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Username, when known.
    pub actor: Option<String>,
    /// What happened.
    pub action: String,
    /// JSON metadata.
    pub detail: String,
    /// Hash of the previous entry (zeros for the first).
    pub prev_hash: Vec<u8>,
    /// Hash of this entry.
    pub hash: Vec<u8>,
}

impl Store {
    /// Appends one entry. `link` computes the entry's hash from the previous hash
    /// and the sequence number it receives.
    pub async fn append_audit(
        &self,
        entry: &NewAuditEntry<'_>,
        link: impl Fn(&[u8], i64) -> [u8; 32] + Send,
    ) -> Result<i64> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // The UPDATE takes the head's row lock (PostgreSQL) or the write lock
            // (SQLite) before anything is read, so concurrent appends queue here.
            let (seq, prev): (i64, Vec<u8>) =
                sqlx::query_as("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                    .fetch_one(&mut *tx)
                    .await?;
            let hash = link(&prev, seq);
            insert_audit(seq, entry, &prev, &hash).execute(&mut *tx).await?;
            sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(hash.as_slice()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(seq)
        })
    }

    /// Entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>> {
        type Row = (i64, i64, Option<String>, String, String, Vec<u8>, Vec<u8>);
        let rows: Vec<Row> = with_pool!(self, pool => sqlx::query_as(
            "SELECT seq, at_ms, actor, action, detail, prev_hash, hash FROM audit_log \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(seq, at_ms, actor, action, detail, prev_hash, hash)| AuditRow {
                seq,
                at_ms,
                actor,
                action,
                detail,
                prev_hash,
                hash,
            })
            .collect())
    }

    /// The chain head: last sequence number and hash.
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>)> {
        Ok(with_pool!(self, pool => sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(pool)
            .await?))
    }
}
