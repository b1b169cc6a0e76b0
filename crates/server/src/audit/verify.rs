//! Checking the log: every link, every hash or MAC, the head, and any
//! checkpoints kept elsewhere.
//!
//! Entries before the one whose action is `audit_keyed` carry plain hashes
//! (logs written before keying); that entry and every one after carry MACs.
//! Whoever lacks the key cannot recompute a MAC, so a keyed entry that was
//! altered, inserted or removed fails on the spot; an altered plain entry
//! fails the plain chain, or, if its hashes were recomputed, the switch
//! entry's MAC (which covers the last plain hash). Stripping the keyed part
//! and recomputing everything as plain hashes leaves a log with no keyed entry
//! at all, which fails as long as the verifier has the key: a log is keyed on
//! the server's first start with the key.

use super::{AuditAction, ChainKey, Checkpoint, chain::plain_hash};
use crate::store::{AuditRow, Store, StoreError};

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry checks out.
    Intact {
        /// Number of entries.
        entries: i64,
        /// The entry from which on the log is keyed; `None` if it is not
        /// (a log from before keying, verified without a key).
        keyed_from: Option<i64>,
        /// How many checkpoints matched.
        checkpoints: usize,
    },
    /// The log is broken at `seq`.
    Broken {
        /// The first entry that does not check out.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// Why the log could not be checked (as opposed to [`Verdict::Broken`]: checked,
/// and found wrong).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Storage errors.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log is keyed and no audit key was given.
    #[error("the audit log is keyed: its key file (audit_key_file) is needed to check it")]
    KeyMissing,
    /// The key given is not the one the log is keyed with.
    #[error(
        "the audit key file is not the key this audit log is keyed with (or the record of that key in \
         the database was altered)"
    )]
    WrongKey,
    /// The newest entry does not check out (when taking a checkpoint).
    #[error(
        "the newest audit entry, {seq}, does not check out: {reason}; run `conclave admin audit --verify`"
    )]
    Newest {
        /// The newest entry.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// Walks the whole log and reports the first entry that was altered, inserted
/// or removed, or the first of `checkpoints` it no longer matches.
///
/// `key` is the audit key; without it only a log that was never keyed can be
/// checked (and then only for consistency).
///
/// # Errors
/// Storage errors; [`VerifyError::KeyMissing`] or [`VerifyError::WrongKey`]
/// when `key` cannot check a keyed log.
pub async fn verify(
    store: &Store,
    key: Option<&ChainKey>,
    checkpoints: &[Checkpoint],
) -> Result<Verdict, VerifyError> {
    const PAGE: i64 = 1000;
    match (&store.audit_head().await?.key_id, key) {
        (Some(_), None) => return Err(VerifyError::KeyMissing),
        (Some(id), Some(key)) if id.as_slice() != key.id() => return Err(VerifyError::WrongKey),
        _ => {}
    }
    let mut checkpoints = checkpoints.to_vec();
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let mut walk =
        Walk { key, prev: vec![0; 32], expected: 1, keyed_from: None, pending: &checkpoints, matched: None };
    // The server may be appending meanwhile. An entry and the head that
    // points at it are committed together, so a head further on than where
    // the walk ended means entries were appended since: walk on to it.
    let head = loop {
        let mut walked = 0;
        loop {
            let rows = store.audit_entries(walk.expected - 1, PAGE).await?;
            let count = rows.len();
            walked += count;
            for row in rows {
                if let Some(broken) = walk.step(row)? {
                    return Ok(broken);
                }
            }
            if count < PAGE as usize {
                break;
            }
        }
        let head = store.audit_head().await?;
        if head.seq < walk.expected || walked == 0 {
            break head;
        }
    };
    let last = walk.expected - 1;
    let broken = |seq, reason: String| Ok(Verdict::Broken { seq, reason });
    if head.seq > last {
        return broken(last + 1, format!("entries {} to {} are missing", last + 1, head.seq));
    }
    if head.seq < last {
        return broken(
            head.seq + 1,
            format!(
                "entries {} to {last} lie past the chain head (they were added without it)",
                head.seq + 1
            ),
        );
    }
    if head.hash != walk.prev {
        return broken(head.seq, "the newest entry does not match the chain head".into());
    }
    if let Some(beyond) = walk.pending.last() {
        return broken(
            last + 1,
            format!(
                "entries {} to {} are missing: the log was cut short after a checkpoint was taken at entry {}",
                last + 1,
                beyond.seq,
                beyond.seq
            ),
        );
    }
    if key.is_some() && walk.keyed_from.is_none() && last > 0 {
        return broken(
            last,
            "no entry is keyed although the audit key exists (the server keys the log when it creates \
             the key): the log was rewritten and its hashes recomputed without the key"
                .into(),
        );
    }
    Ok(Verdict::Intact { entries: last, keyed_from: walk.keyed_from, checkpoints: checkpoints.len() })
}

/// The state of one walk along the log.
struct Walk<'a> {
    key: Option<&'a ChainKey>,
    /// Hash of the entry before the next one.
    prev: Vec<u8>,
    /// Sequence number of the next entry.
    expected: i64,
    /// The entry that switched the log to MACs, once seen.
    keyed_from: Option<i64>,
    /// Checkpoints not reached yet, in order.
    pending: &'a [Checkpoint],
    /// The last checkpoint that matched.
    matched: Option<i64>,
}

impl Walk<'_> {
    /// Checks the next entry; `Some` verdict if it is broken.
    fn step(&mut self, row: AuditRow) -> Result<Option<Verdict>, VerifyError> {
        let expected = self.expected;
        let broken = |seq, reason: String| Ok(Some(Verdict::Broken { seq, reason }));
        if row.seq != expected {
            return broken(expected.min(row.seq), format!("entry {expected} is missing"));
        }
        if row.prev_hash != self.prev {
            return broken(
                row.seq,
                "its link to the previous entry is wrong (an entry before it was removed or changed)".into(),
            );
        }
        if self.keyed_from.is_none() && row.action == AuditAction::ChainKeyed.as_str() {
            self.keyed_from = Some(row.seq);
        }
        if self.keyed_from.is_some() {
            let key = self.key.ok_or(VerifyError::KeyMissing)?;
            if !key.verifies(&self.prev, row.seq, &row.entry(), &row.hash) {
                return broken(
                    row.seq,
                    "its content does not match its MAC (the entry was altered, or its hash recomputed \
                     without the audit key)"
                        .into(),
                );
            }
        } else if plain_hash(&self.prev, row.seq, &row.entry()).as_slice() != row.hash {
            return broken(row.seq, "its content does not match its hash (the entry was altered)".into());
        }
        while let Some((checkpoint, rest)) = self.pending.split_first()
            && checkpoint.seq == row.seq
        {
            if checkpoint.mac.as_slice() != row.hash {
                let first = self.matched.map_or(1, |seq| seq + 1);
                return broken(
                    row.seq,
                    format!(
                        "it no longer matches the checkpoint taken at it: an entry from {first} to {} was \
                         rewritten by someone holding the audit key",
                        row.seq
                    ),
                );
            }
            self.matched = Some(row.seq);
            self.pending = rest;
        }
        self.prev = row.hash;
        self.expected += 1;
        Ok(None)
    }
}
