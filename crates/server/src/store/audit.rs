//! The audit log table. Appends lock the one-row chain head, so appends from any
//! number of connections or server nodes form a single chain without gaps.

use super::{Result, Store, with_pool};

/// An entry to append; the store assigns sequence number and hashes.
#[derive(Debug, Clone, Copy)]
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

/// An audit entry with its place in the chain, ready to insert.
#[derive(Debug)]
pub(super) struct Chained<'a> {
    /// Position in the chain.
    pub seq: i64,
    /// The entry.
    pub entry: NewAuditEntry<'a>,
    /// Hash of the entry before it.
    pub prev: Vec<u8>,
    /// Hash of this entry.
    pub hash: [u8; 32],
}

/// The statement that inserts `rows` (one or a message batch's worth) in one go.
pub(super) fn insert_audit<'a, DB>(rows: &'a [Chained<'a>]) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    DB::Arguments: Default,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a [u8]: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut insert = sqlx::QueryBuilder::new(
        "INSERT INTO audit_log (seq, at_ms, actor, action, detail, prev_hash, hash) ",
    );
    insert.push_values(rows, |mut row, chained| {
        let Chained { seq, entry, prev, hash } = chained;
        row.push_bind(*seq)
            .push_bind(entry.at_ms)
            .push_bind(entry.actor)
            .push_bind(entry.action)
            .push_bind(entry.detail)
            .push_bind(prev.as_slice())
            .push_bind(hash.as_slice());
    });
    insert
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
            let row = [Chained { seq, entry: *entry, prev, hash }];
            insert_audit(&row).build().execute(&mut *tx).await?;
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
