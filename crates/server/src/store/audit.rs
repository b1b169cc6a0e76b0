//! The audit log table. Appends lock the one-row chain head, so appends from any
//! number of connections or server nodes form a single chain without gaps.
//! The store links entries with the function its caller gives (see
//! `crate::audit`); it knows no key.

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

impl AuditRow {
    /// The entry's own fields, as they were appended (for recomputing its link).
    #[must_use]
    pub fn entry(&self) -> NewAuditEntry<'_> {
        NewAuditEntry {
            at_ms: self.at_ms,
            actor: self.actor.as_deref(),
            action: &self.action,
            detail: &self.detail,
        }
    }
}

/// The chain head: where the next entry links on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// Sequence number of the newest entry (0 while the log is empty).
    pub seq: i64,
    /// Hash of the newest entry (zeros while the log is empty).
    pub hash: Vec<u8>,
    /// Identifies the key the log is keyed with; `None` until it is keyed.
    pub key_id: Option<Vec<u8>>,
}

/// What [`Store::key_audit_log`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keying {
    /// The log was already keyed with this key.
    Keyed,
    /// The log was not keyed; it is now, from entry `seq` (just appended).
    Switched {
        /// The entry that records the switch.
        seq: i64,
    },
    /// The log is keyed with another key.
    OtherKey,
    /// The log is not keyed and `may_switch` refused to key it.
    Unkeyed {
        /// Entries in the log.
        entries: i64,
    },
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

    /// The chain head: last sequence number and hash, and the key's id.
    pub async fn audit_head(&self) -> Result<AuditHead> {
        let (seq, hash, key_id) = with_pool!(self, pool => sqlx::query_as(
            "SELECT seq, hash, key_id FROM audit_head WHERE id = 1",
        )
        .fetch_one(pool)
        .await?);
        Ok(AuditHead { seq, hash, key_id })
    }

    /// Keys the log at start-up, once for all nodes: under the head's lock,
    /// if the log is not keyed yet and `may_switch` (given the number
    /// of entries) allows it, appends `switch` linked by `link` and records
    /// `key_id` as the log's key, in one transaction. Nodes starting together
    /// queue on the lock, so at most one of them keys the log.
    pub async fn key_audit_log(
        &self,
        key_id: &[u8],
        switch: &NewAuditEntry<'_>,
        may_switch: impl FnOnce(i64) -> bool + Send,
        link: impl Fn(&[u8], i64) -> [u8; 32] + Send,
    ) -> Result<Keying> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let (head, prev, current): (i64, Vec<u8>, Option<Vec<u8>>) = sqlx::query_as(
                "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash, key_id",
            )
            .fetch_one(&mut *tx)
            .await?;
            let keying = match current {
                Some(current) if current == key_id => Keying::Keyed,
                Some(_) => Keying::OtherKey,
                None if !may_switch(head) => Keying::Unkeyed { entries: head },
                None => {
                    let seq = head + 1;
                    let hash = link(&prev, seq);
                    let row = [Chained { seq, entry: *switch, prev, hash }];
                    insert_audit(&row).build().execute(&mut *tx).await?;
                    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, key_id = $3 WHERE id = 1")
                        .bind(seq)
                        .bind(hash.as_slice())
                        .bind(key_id)
                        .execute(&mut *tx)
                        .await?;
                    Keying::Switched { seq }
                }
            };
            tx.commit().await?;
            Ok(keying)
        })
    }
}
