//! Checkpoints: an entry's number and hash, exported to be kept somewhere the
//! database's attacker cannot reach.
//!
//! With the audit key, someone can rewrite the log and recompute every MAC,
//! and the chain checks out again. But the MAC of entry N commits to every
//! entry up to N: a checkpoint taken before the rewrite no longer matches, and
//! [`verify`](super::verify) says so. Written as `SEQ:MAC` (hex), one per line,
//! so a cron job can append them to a file; the JSON form that
//! `conclave admin audit checkpoint --json` prints is read as well.

use super::{VerifyError, chain::plain_hash};
use crate::{audit::ChainKey, store::Store};
use std::{fmt, str::FromStr};

/// Entry `seq` had hash (or MAC) `mac` when the checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Checkpoint {
    /// The entry's sequence number.
    pub seq: i64,
    /// Its hash: a MAC in the keyed chain, a plain SHA-256 before it.
    pub mac: [u8; 32],
}

/// Text that is not a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: not an audit checkpoint (expected SEQ:MAC, or the JSON of `checkpoint --json`)")]
pub struct CheckpointError {
    /// The line (from 1) that could not be read.
    pub line: usize,
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, hex::encode(self.mac))
    }
}

impl FromStr for Checkpoint {
    type Err = CheckpointError;

    /// `SEQ:MAC` or `{"seq": SEQ, "mac": "MAC", …}`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (seq, mac) = if text.starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|_| CheckpointError { line: 1 })?;
            (value["seq"].as_i64(), value["mac"].as_str().map(str::to_owned))
        } else {
            let (seq, mac) = text.split_once(':').ok_or(CheckpointError { line: 1 })?;
            (seq.parse().ok(), Some(mac.to_owned()))
        };
        let mac = mac.and_then(|mac| hex::decode(mac).ok()).and_then(|mac| <[u8; 32]>::try_from(mac).ok());
        match (seq, mac) {
            (Some(seq), Some(mac)) if seq >= 1 => Ok(Self { seq, mac }),
            _ => Err(CheckpointError { line: 1 }),
        }
    }
}

impl Checkpoint {
    /// The checkpoints in `text`: one per line, blank lines and `#` comments
    /// skipped.
    ///
    /// # Errors
    /// [`CheckpointError`] naming the first line that is not a checkpoint.
    pub fn parse_lines(text: &str) -> Result<Vec<Self>, CheckpointError> {
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map(|(index, line)| line.parse().map_err(|_| CheckpointError { line: index + 1 }))
            .collect()
    }

    /// The machine-readable form, with the entry's time for people.
    #[must_use]
    pub fn to_json(&self, at_ms: i64) -> serde_json::Value {
        serde_json::json!({ "seq": self.seq, "mac": hex::encode(self.mac), "at_ms": at_ms })
    }
}

/// The newest entry as a checkpoint, with its time; `None` while the log is
/// empty. Only the newest entry is checked (against the head and, once the log
/// is keyed, the key): a full check is [`verify`](super::verify)'s.
///
/// # Errors
/// [`VerifyError::KeyMissing`] or [`VerifyError::WrongKey`] when the log is
/// keyed and `key` cannot check it; [`VerifyError::Newest`] when the newest
/// entry does not check out.
pub async fn latest(store: &Store, key: Option<&ChainKey>) -> Result<Option<(Checkpoint, i64)>, VerifyError> {
    let head = store.audit_head().await?;
    if head.seq == 0 {
        return Ok(None);
    }
    let key = match (&head.key_id, key) {
        (None, _) => None,
        (Some(_), None) => return Err(VerifyError::KeyMissing),
        (Some(id), Some(key)) if id.as_slice() != key.id() => return Err(VerifyError::WrongKey),
        (Some(_), Some(key)) => Some(key),
    };
    let newest = store.audit_entries(head.seq - 1, 1).await?.pop();
    let broken = |reason: &str| VerifyError::Newest { seq: head.seq, reason: reason.to_owned() };
    let Some(row) = newest.filter(|row| row.seq == head.seq) else {
        return Err(broken("it is missing"));
    };
    if row.hash != head.hash {
        return Err(broken("it does not match the chain head"));
    }
    let checks = match key {
        Some(key) => key.verifies(&row.prev_hash, row.seq, &row.entry(), &row.hash),
        None => plain_hash(&row.prev_hash, row.seq, &row.entry()).as_slice() == row.hash,
    };
    if !checks {
        return Err(broken("its content does not match its hash"));
    }
    let mac = <[u8; 32]>::try_from(row.hash.as_slice()).map_err(|_| broken("its hash is not 32 bytes"))?;
    Ok(Some((Checkpoint { seq: row.seq, mac }, row.at_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_read_back_in_both_forms_and_bad_lines_are_named() {
        let checkpoint = Checkpoint { seq: 42, mac: [0xab; 32] };
        let text = checkpoint.to_string();
        assert_eq!(text, format!("42:{}", "ab".repeat(32)));
        assert_eq!(text.parse(), Ok(checkpoint));
        let json = checkpoint.to_json(7).to_string();
        assert_eq!(json.parse(), Ok(checkpoint));
        let file = format!("# exported hourly\n{text}\n\n{json}\n");
        assert_eq!(Checkpoint::parse_lines(&file), Ok(vec![checkpoint, checkpoint]));
        assert_eq!(Checkpoint::parse_lines(&format!("{text}\n42:abcd\n")), Err(CheckpointError { line: 2 }));
        assert!("0:".parse::<Checkpoint>().is_err());
        assert!(format!("0:{}", "ab".repeat(32)).parse::<Checkpoint>().is_err(), "entries start at 1");
    }
}
