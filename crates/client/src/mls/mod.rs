//! The MLS (RFC 9420) layer: the only module of Conclave that talks to OpenMLS.
//!
//! Every conversation is one MLS group and every device one leaf. [`MlsState`] is one
//! device's MLS state: its Ed25519 signature key, its [`Identity`] (`user/device`, in a
//! basic credential), its KeyPackages and its groups, all kept in one SQLite file
//! ([`MlsState::open`]). The server is the Delivery Service; this module produces and
//! consumes the opaque bytes it stores and forwards, each a TLS-serialized `MLSMessage`
//! (the ratchet tree: a TLS-serialized tree):
//!
//! | bytes | made by | consumed by |
//! |---|---|---|
//! | KeyPackage | [`MlsState::key_packages`] | [`MlsState::add_members`] |
//! | GroupInfo + ratchet tree | [`GroupState`], [`Outgoing`] | [`MlsState::external_join`] |
//! | commit (PublicMessage) | [`Outgoing::commit`] | [`MlsState::process`], [`inspect_handshake`] |
//! | Welcome (+ ratchet tree) | [`Outgoing::welcome`] | [`MlsState::join_welcome`] |
//! | application message (PrivateMessage) | [`MlsState::encrypt`] | [`MlsState::process`] |
//!
//! # Group configuration
//! Ciphersuite MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519. Handshake messages
//! (commits, proposals) are sent as signed PublicMessages, and only PublicMessages are
//! accepted as handshake messages, so every membership change is visible in the
//! clear and no member can slip an encrypted one past the others; application
//! messages are always PrivateMessages.
//! Secrets of [`MAX_PAST_EPOCHS`] past epochs are kept so that a message that raced a
//! commit still decrypts. The ratchet tree never travels inside a Welcome or GroupInfo:
//! the server serves it separately.
//!
//! # Commits: build, send, then confirm or discard
//! The server accepts one commit per epoch. A commit this device builds
//! ([`MlsState::add_members`], [`MlsState::remove_members`], [`MlsState::external_join`])
//! stays *pending* until the server answers: [`MlsState::confirm`] when it was accepted,
//! [`MlsState::discard`] when another commit won the race — then process the winner
//! from the log and build the commit again. A Welcome is only sent once its commit was
//! accepted. Everything in the group's log goes through [`MlsState::process`], including
//! this device's own commits and messages coming back ([`Processed::Own`]); if the own
//! pending commit comes back before the server's answer, it is merged then (a later
//! `confirm` is a no-op).
//!
//! # Not done here
//! Nothing checks that a member's signature key is the one the server bound to that
//! device: [`MlsState::member_keys`] gives the keys for the caller to compare. Room
//! policy (who may add, remove or join) is the caller's, using [`Processed::Commit`].
//! What a commit does is read by `conclave_mls::commit::effects`, the same function
//! the server runs on its public view of the group before it accepts the commit.

mod error;
mod group;
mod store;

#[cfg(test)]
mod tests;

pub use conclave_mls::{
    CIPHERSUITE, HandshakeKind, HandshakeSender, HandshakeSummary, Identity, InvalidIdentity, LeafSummary,
    ProposalSummary, inspect_handshake,
};
pub use error::{BoxError, MlsError, Result};

use openmls::prelude::{
    BasicCredential, Capabilities, Credential, CredentialWithKey, ExtensionType, KeyPackage,
    MlsGroupCreateConfig, MlsGroupJoinConfig, MlsMessageOut, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
    SignatureScheme, tls_codec::Serialize as _,
};
use openmls_basic_credential::SignatureKeyPair;
use std::path::Path;
use store::Store;

/// How many past epochs' message secrets are kept, so that an application message
/// sent just before a commit still decrypts after it. Each one kept weakens forward
/// secrecy a little; the server delivers in order, so races span few epochs.
pub const MAX_PAST_EPOCHS: usize = 3;

/// The signature scheme of [`CIPHERSUITE`].
const SIGNATURE_SCHEME: SignatureScheme = SignatureScheme::ED25519;

/// What the server stores for a group so that others can join it by external commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The signed GroupInfo (TLS-serialized `MLSMessage`), with the `external_pub`
    /// extension and without the ratchet tree.
    pub group_info: Vec<u8>,
    /// The public ratchet tree (TLS-serialized), served next to the GroupInfo.
    pub ratchet_tree: Vec<u8>,
    /// The epoch both describe.
    pub epoch: u64,
}

/// A commit this device made, to send to the server. It is pending until
/// [`MlsState::confirm`] or [`MlsState::discard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The group.
    pub group_id: Vec<u8>,
    /// The commit (TLS-serialized `MLSMessage`, a PublicMessage) for the group's log.
    pub commit: Vec<u8>,
    /// The Welcome for the added devices (when the commit adds any), to deliver once
    /// the commit is accepted.
    pub welcome: Option<Vec<u8>>,
    /// The GroupInfo of the epoch the commit creates, for the server to keep.
    pub group_info: Vec<u8>,
    /// The ratchet tree of the epoch the commit creates, for the server to keep.
    pub ratchet_tree: Vec<u8>,
    /// The epoch the commit is for (the current one; the commit creates `epoch + 1`).
    /// The server accepts one commit per epoch.
    pub epoch: u64,
    /// The devices the commit adds (for an external join: this device).
    pub added: Vec<Identity>,
    /// The devices the commit removes (for an external join: this device's old leaf,
    /// if it was still in the tree).
    pub removed: Vec<Identity>,
}

impl Outgoing {
    /// What a group's creation sends to the server: no commit (epoch 0 starts
    /// here), only the new group's GroupInfo and ratchet tree.
    #[must_use]
    pub fn creation(group_id: &[u8], state: GroupState) -> Self {
        Self {
            group_id: group_id.to_vec(),
            commit: Vec::new(),
            welcome: None,
            group_info: state.group_info,
            ratchet_tree: state.ratchet_tree,
            epoch: 0,
            added: Vec::new(),
            removed: Vec::new(),
        }
    }
}

/// What [`MlsState::process`] made of one message of a group's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// An application message from another member.
    Application {
        /// Who sent it (authenticated by its signature).
        sender: Identity,
        /// The decrypted content.
        plaintext: Vec<u8>,
        /// The epoch it was sent in.
        epoch: u64,
    },
    /// Another member's commit, now merged.
    Commit {
        /// Who committed; for an external commit the joiner.
        sender: Identity,
        /// The devices it added; for an external commit the joiner.
        added: Vec<Identity>,
        /// The devices it removed.
        removed: Vec<Identity>,
        /// Whether it is an external commit (a device joining by itself).
        external: bool,
        /// The group's new epoch.
        epoch: u64,
        /// Whether it removed this device: the group is dead for it now; forget it.
        removed_me: bool,
    },
    /// A standalone proposal, stored for the next commit. Until a commit covers it, no
    /// application message can be sent ([`MlsError::PendingProposals`]).
    Proposal {
        /// Who proposed.
        sender: Identity,
    },
    /// This device's own message or commit came back; nothing to show. (If it was the
    /// pending commit, it is merged now.)
    Own,
}

/// One device's MLS state: signature key, identity, KeyPackages and groups, in one
/// SQLite file.
///
/// Every method is one transaction on that file: it either completes or leaves the
/// store untouched. `MlsState` is `Send` but not `Sync`: one task owns it.
pub struct MlsState {
    /// The SQLite store and the crypto provider.
    store: Store,
    /// The device's Ed25519 key pair; signs every leaf, KeyPackage and message.
    signer: SignatureKeyPair,
    /// `user/device`, once the server assigned the device id.
    identity: Option<Identity>,
}

impl std::fmt::Debug for MlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlsState").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl MlsState {
    /// Opens the MLS store at `path`, or creates it (mode 0600) with a fresh Ed25519
    /// signature key pair. The parent directory must exist and should be private.
    ///
    /// # Errors
    /// [`MlsError::Open`] if the file cannot be created, opened or migrated;
    /// [`MlsError::CorruptStore`] if the stored key pair is missing.
    pub fn open(path: &Path) -> Result<Self> {
        Self::with_store(Store::open(path)?)
    }

    /// Deletes the MLS store at `path` (with SQLite's journal files): the keys
    /// of a device the server retired, which are of no use any more. Close
    /// every [`MlsState`] on it first.
    ///
    /// # Errors
    /// [`MlsError::Open`] if a file exists and cannot be removed.
    pub fn delete(path: &Path) -> Result<()> {
        let mut files = vec![path.to_owned()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(MlsError::Open { path: file, source: Box::new(e) }),
            }
        }
        Ok(())
    }

    /// A state kept in memory only, with a fresh signature key: for tests, bots and
    /// the load generator. Nothing survives the process. It is also the fast path:
    /// no fsync per operation.
    ///
    /// # Errors
    /// [`MlsError::Open`] if SQLite cannot set up its tables.
    pub fn in_memory() -> Result<Self> {
        Self::with_store(Store::in_memory()?)
    }

    /// Loads (or creates) the device's key pair and identity from a store.
    fn with_store(store: Store) -> Result<Self> {
        let (signer, identity) = store.write(|tx| match tx.device()? {
            Some((public_key, identity)) => {
                let signer = SignatureKeyPair::read(tx.storage(), &public_key, SIGNATURE_SCHEME)
                    .ok_or(MlsError::CorruptStore("the device's signature key pair is missing"))?;
                let identity = identity.map(|text| text.parse::<Identity>()).transpose()?;
                Ok((signer, identity))
            }
            None => {
                let signer = SignatureKeyPair::new(SIGNATURE_SCHEME)
                    .map_err(MlsError::internal("generate signature key"))?;
                signer.store(tx.storage())?;
                tx.insert_device(signer.public())?;
                Ok((signer, None))
            }
        })?;
        Ok(Self { store, signer, identity })
    }

    /// The device's Ed25519 signature public key (32 bytes). The key pair was created
    /// with the store and never changes, so the server can bind it to the device.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for keys kept elsewhere.
    pub fn signature_public_key(&self) -> Result<Vec<u8>> {
        Ok(self.signer.to_public_vec())
    }

    /// Binds the device to its identity, once the server assigned the device id. The
    /// binding is persisted. It is needed before making KeyPackages, groups, commits
    /// and external joins (everything that creates a leaf). Setting the same identity
    /// again is a no-op.
    ///
    /// # Errors
    /// [`MlsError::IdentityMismatch`] if the store is bound to another identity.
    pub fn set_identity(&mut self, identity: Identity) -> Result<()> {
        match &self.identity {
            Some(current) if *current == identity => return Ok(()),
            Some(current) => return Err(MlsError::IdentityMismatch { current: current.clone() }),
            None => {}
        }
        let text = identity.to_string();
        // Refuse what could not be read back (an empty or control-character username).
        text.parse::<Identity>()?;
        self.store.write(|tx| {
            if tx.set_identity(&text)? {
                return Ok(());
            }
            // Another process sharing the store bound it first.
            let current = tx.device()?.and_then(|(_, current)| current).unwrap_or_default();
            Err(MlsError::IdentityMismatch { current: current.parse()? })
        })?;
        self.identity = Some(identity);
        Ok(())
    }

    /// The identity this device is bound to, if any.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// `count` fresh one-time KeyPackages, followed — when `last_resort` is set — by one
    /// KeyPackage marked last-resort (which stays usable after a Welcome used it), each
    /// a TLS-serialized `MLSMessage` ready to upload. Their private keys stay in the
    /// store until a Welcome uses them.
    ///
    /// # Errors
    /// [`MlsError::NoIdentity`] before [`set_identity`](Self::set_identity); store errors.
    pub fn key_packages(&self, count: usize, last_resort: bool) -> Result<Vec<Vec<u8>>> {
        let credential = self.credential_with_key()?;
        self.store.write(|tx| {
            (0..count)
                .map(|_| false)
                .chain(last_resort.then_some(true))
                .map(|last_resort| {
                    let mut builder = KeyPackage::builder().leaf_node_capabilities(capabilities());
                    if last_resort {
                        builder = builder.mark_as_last_resort();
                    }
                    let bundle = builder
                        .build(CIPHERSUITE, &tx.provider, &self.signer, credential.clone())
                        .map_err(MlsError::internal("create KeyPackage"))?;
                    MlsMessageOut::from(bundle.key_package().clone())
                        .tls_serialize_detached()
                        .map_err(MlsError::internal("serialize KeyPackage"))
                })
                .collect()
        })
    }

    /// The identity, or [`MlsError::NoIdentity`].
    fn require_identity(&self) -> Result<&Identity> {
        self.identity.as_ref().ok_or(MlsError::NoIdentity)
    }

    /// This device's credential and signature key, as every new leaf carries them.
    fn credential_with_key(&self) -> Result<CredentialWithKey> {
        let identity = self.require_identity()?;
        Ok(CredentialWithKey {
            credential: BasicCredential::new(identity.to_credential_bytes()).into(),
            signature_key: self.signer.to_public_vec().into(),
        })
    }
}

/// The identity in a leaf's credential.
fn identity_of(credential: &Credential) -> Result<Identity> {
    Ok(conclave_mls::identity_of(credential)?)
}

/// The capabilities of every leaf this device creates: Conclave's ciphersuite, and
/// the last-resort KeyPackage extension (which a KeyPackage may only carry if its leaf
/// lists it).
fn capabilities() -> Capabilities {
    Capabilities::builder()
        .ciphersuites(vec![CIPHERSUITE])
        .extensions(vec![ExtensionType::LastResort])
        .build()
}

/// The configuration of a group this device creates.
fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(false)
        .capabilities(capabilities())
        .build()
}

/// The configuration of a group this device joins (Welcome or external commit).
fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(false)
        .build()
}
