//! How an entry is linked to the one before it: by a plain SHA-256 hash (entries
//! written before the log was keyed) or by HMAC-SHA-256 under the audit key
//! (every entry from the one that records the switch on).
//!
//! A plain hash proves only that the chain is consistent: anyone who can write
//! the database can change an entry and recompute every hash after it. A MAC
//! can be recomputed only with the key, which lives in a file outside the
//! database ([`ChainKey`]).

use super::KeyOrigin;
use crate::{keyfile, store::NewAuditEntry};
use hmac::{Hmac, Mac};
use sha2::{Sha256, digest::Update};
use std::{io, path::Path};

/// Domain tag of plain-hashed entries (the original format, still verified).
const PLAIN_TAG: &[u8] = b"conclave-audit-v1";
/// Domain tag of keyed entries: a MAC of one format can never pass as the other.
const KEYED_TAG: &[u8] = b"conclave-audit-v2";
/// What the key's id is the MAC of; no entry's encoding starts with it.
const KEY_ID_TEXT: &[u8] = b"conclave-audit-key-id";

/// The key of the audit chain, loaded from `audit_key_file`.
///
/// Holds the HMAC state with the key already absorbed, so each entry costs one
/// clone and the hashing of its own bytes (appends stay as cheap as with the
/// plain hash: two extra SHA-256 blocks per entry).
#[derive(Clone)]
pub struct ChainKey {
    mac: Hmac<Sha256>,
    /// Identifies the key in the database without revealing it (see
    /// [`id`](Self::id)).
    id: [u8; 32],
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl ChainKey {
    /// A key from its 32 bytes (the content of an audit key file).
    #[must_use]
    pub fn from_bytes(key: &[u8; keyfile::KEY_LEN]) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts a key of any length");
        let id = Mac::chain_update(mac.clone(), KEY_ID_TEXT).finalize().into_bytes().into();
        Self { mac, id }
    }

    /// Reads the key file at `path`; `None` if there is none.
    ///
    /// # Errors
    /// I/O errors, or a file that does not hold exactly 32 bytes.
    pub fn load(path: &Path) -> io::Result<Option<Self>> {
        Ok(keyfile::load(path)?.map(|key| Self::from_bytes(&key)))
    }

    /// Reads the key file at `path`, creating it on first start.
    pub(crate) fn load_or_create(path: &Path) -> io::Result<(Self, KeyOrigin)> {
        let (key, origin) = keyfile::load_or_create(path, "audit log key")?;
        Ok((Self::from_bytes(&key), origin))
    }

    /// The key's id: its MAC of a fixed text. Stored with the chain head, so a
    /// node or a verifier holding another key is told so instead of finding
    /// every entry "altered". It reveals nothing about the key and is public
    /// (it is in the database), so it is compared as plain data.
    #[must_use]
    pub fn id(&self) -> &[u8; 32] {
        &self.id
    }

    /// The MAC of the entry numbered `seq` that follows the entry whose
    /// hash is `prev`.
    #[must_use]
    pub fn link(&self, prev: &[u8], seq: i64, entry: &NewAuditEntry<'_>) -> [u8; 32] {
        self.keyed(prev, seq, entry).finalize().into_bytes().into()
    }

    /// Whether `mac` is the entry's MAC (compared in constant time by `hmac`).
    pub(crate) fn verifies(&self, prev: &[u8], seq: i64, entry: &NewAuditEntry<'_>, mac: &[u8]) -> bool {
        self.keyed(prev, seq, entry).verify_slice(mac).is_ok()
    }

    fn keyed(&self, prev: &[u8], seq: i64, entry: &NewAuditEntry<'_>) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        encode(&mut mac, KEYED_TAG, prev, seq, entry);
        mac
    }
}

/// The plain hash of an entry, as entries were linked before the log was
/// keyed: SHA-256 over the previous hash and the entry's fields.
#[must_use]
pub fn plain_hash(prev: &[u8], seq: i64, entry: &NewAuditEntry<'_>) -> [u8; 32] {
    use sha2::Digest;
    let mut hash = Sha256::new();
    encode(&mut hash, PLAIN_TAG, prev, seq, entry);
    hash.finalize().into()
}

/// Feeds the tag, the previous hash and the entry's fields, each
/// length-prefixed so that no two different entries encode alike. Both formats
/// share it; only the tag and the function differ.
fn encode(h: &mut impl Update, tag: &[u8], prev: &[u8], seq: i64, entry: &NewAuditEntry<'_>) {
    h.update(tag);
    for part in [prev, &seq.to_be_bytes(), &entry.at_ms.to_be_bytes()] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    match entry.actor {
        Some(actor) => {
            h.update(&[1]);
            h.update(&(actor.len() as u64).to_be_bytes());
            h.update(actor.as_bytes());
        }
        None => h.update(&[0]),
    }
    for part in [entry.action, entry.detail] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: NewAuditEntry<'static> =
        NewAuditEntry { at_ms: 5, actor: Some("alice"), action: "login_ok", detail: "{}" };

    /// Both formats, pinned to values computed outside this code (Python's
    /// `hashlib` and `hmac` over the documented encoding): the plain one is
    /// what logs were written in before keying, so they keep verifying; the
    /// keyed one is what `docs/audit.md` describes.
    #[test]
    fn both_link_formats_are_pinned() {
        assert_eq!(
            hex::encode(plain_hash(&[0; 32], 1, &ENTRY)),
            "1f17d3e4c4d072010a0f7ef633d0ddf57eac533b6ec303a491ddbd341adfcc50"
        );
        assert_eq!(
            hex::encode(ChainKey::from_bytes(&[1; 32]).link(&[0; 32], 1, &ENTRY)),
            "29630512f432ba15d169e114ec6d1b07cca4769cf89940cf8594fec6a7d466a1"
        );
    }

    #[test]
    fn a_mac_depends_on_the_key_and_differs_from_the_plain_hash() {
        let key = ChainKey::from_bytes(&[1; 32]);
        let other = ChainKey::from_bytes(&[2; 32]);
        let mac = key.link(&[0; 32], 1, &ENTRY);
        assert!(key.verifies(&[0; 32], 1, &ENTRY, &mac));
        assert!(!other.verifies(&[0; 32], 1, &ENTRY, &mac));
        assert_ne!(mac, plain_hash(&[0; 32], 1, &ENTRY));
        let changed = NewAuditEntry { detail: "{ }", ..ENTRY };
        assert!(!key.verifies(&[0; 32], 1, &changed, &mac));
        assert!(!key.verifies(&[0; 32], 2, &ENTRY, &mac));
        assert_ne!(key.id(), other.id());
        assert_eq!(key.id(), ChainKey::from_bytes(&[1; 32]).id());
    }
}
