//! [`PublicState`]: a group's public MLS state as the server stores it.
//!
//! OpenMLS keeps a [`PublicGroup`] in a storage provider (its ratchet tree, group
//! context, interim transcript hash and confirmation tag). The server gives it an
//! in-memory [`MemoryStorage`] for the length of one check and stores that storage's
//! few entries as one value: the TLS encoding of the entries sorted by key, after a
//! format version. Loading it needs no signature to be verified again, so checking a
//! commit costs the same however long ago the group was verified as a whole.

use crate::error::{Error, Result};
use openmls::prelude::{
    GroupId, PublicGroup,
    tls_codec::{Deserialize as _, Serialize as _, VLBytes},
};
use openmls_memory_storage::MemoryStorage;

/// The encoding's version: a value of another version is refused as corrupt.
const VERSION: u16 = 1;

/// The encoded public state of one group, at one epoch.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicState(Vec<u8>);

impl std::fmt::Debug for PublicState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicState({} bytes)", self.0.len())
    }
}

impl PublicState {
    /// A state as stored.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes to store.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Encodes what `storage` holds.
    pub(crate) fn encode(storage: &MemoryStorage) -> Result<Self> {
        let values = storage.values.read().map_err(|_| Error::CorruptState("storage lock poisoned"))?;
        let mut entries: Vec<(VLBytes, VLBytes)> =
            values.iter().map(|(k, v)| (VLBytes::from(k.clone()), VLBytes::from(v.clone()))).collect();
        entries.sort_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()));
        (VERSION, entries).tls_serialize_detached().map(Self).map_err(Error::internal("encode public group"))
    }

    /// Loads the group `group_id` into a fresh storage.
    pub(crate) fn load(&self, group_id: &GroupId) -> Result<(MemoryStorage, PublicGroup)> {
        let corrupt = Error::CorruptState;
        let (version, entries) = <(u16, Vec<(VLBytes, VLBytes)>)>::tls_deserialize_exact(&self.0)
            .map_err(|_| corrupt("undecodable"))?;
        if version != VERSION {
            return Err(corrupt("unknown encoding version"));
        }
        let storage = MemoryStorage::default();
        {
            let mut values = storage.values.write().map_err(|_| corrupt("storage lock poisoned"))?;
            for (key, value) in entries {
                check_entry(key.as_slice(), value.as_slice())?;
                values.insert(key.as_slice().to_vec(), value.as_slice().to_vec());
            }
        }
        let group = PublicGroup::load(&storage, group_id)
            .map_err(|_| corrupt("unreadable public group"))?
            .ok_or(corrupt("no public group for this group id"))?;
        Ok((storage, group))
    }
}

/// Checks that one stored entry is of a kind [`PublicState::encode`] writes
/// and that its value decodes as that kind. The memory storage panics on a
/// value it cannot decode (it unwraps), so a state that is not what `encode`
/// wrote must be refused here, as corrupt, before OpenMLS reads it.
fn check_entry(key: &[u8], value: &[u8]) -> Result<()> {
    use openmls::{
        group::{GroupContext, InterimTranscriptHash},
        messages::ConfirmationTag,
        treesync::TreeSync,
    };
    /// Whether a value decodes as one kind of entry.
    type Decodes = fn(&[u8]) -> bool;
    fn decodes<T: serde::de::DeserializeOwned>(value: &[u8]) -> bool {
        serde_json::from_slice::<T>(value).is_ok()
    }
    // The entries of a public group: its storage label, then the group id
    // (JSON), then the storage version.
    let kinds: [(&[u8], Decodes); 4] = [
        (b"Tree", decodes::<TreeSync>),
        (b"GroupContext", decodes::<GroupContext>),
        (b"InterimTranscriptHash", decodes::<InterimTranscriptHash>),
        (b"ConfirmationTag", decodes::<ConfirmationTag>),
    ];
    let (_, decodes) = kinds
        .iter()
        .find(|(label, _)| key.strip_prefix(*label).is_some_and(|rest| rest.first() == Some(&b'{')))
        .ok_or(Error::CorruptState("an entry of an unknown kind"))?;
    if !decodes(value) {
        return Err(Error::CorruptState("an entry that does not decode"));
    }
    Ok(())
}
