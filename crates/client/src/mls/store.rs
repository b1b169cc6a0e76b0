//! The MLS store: one SQLite file holding OpenMLS's key material and group state
//! (through `openmls_sqlite_storage`) plus this module's own small tables, and the
//! [`Provider`] that hands it to OpenMLS.
//!
//! The file holds private keys unencrypted, so it is created with mode 0600 (SQLite
//! gives its `-wal`/`-shm` files the same mode). Deleted rows are overwritten
//! (`secure_delete`) so that secrets of past epochs do not linger in free pages:
//! forward secrecy is only as good as the deletion.
//!
//! Every operation of [`MlsState`](super::MlsState) runs in one transaction: OpenMLS
//! writes a group's state in many small steps, and a crash or an error half-way must
//! not leave a mix of two epochs behind. A failed operation (a message that does not
//! verify, a Welcome for someone else) therefore leaves the store exactly as it was —
//! including KeyPackages that OpenMLS deletes before it finds out. State is read from
//! the store at the start of each operation and never cached, so two processes that
//! share a store (the CLI next to a running TUI) see each other's changes.

use super::error::{MlsError, Result};
use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::{Codec, SqliteStorageProvider};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::{fs, path::Path, time::Duration};

/// How long a write waits for another process holding the store's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many epochs the digest of a sent commit is kept to recognise its echo. The
/// server forwards a commit right after accepting it, so a handful would do.
const SENT_COMMIT_EPOCHS: u64 = 16;

/// Serialises OpenMLS's storage entities. JSON: the store is local and small, and
/// JSON is the format `openmls_sqlite_storage` is tested with.
#[derive(Debug, Default)]
pub(crate) struct JsonCodec;

impl Codec for JsonCodec {
    type Error = serde_json::Error;

    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        serde_json::to_vec(value)
    }

    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        serde_json::from_slice(slice)
    }
}

/// OpenMLS's storage over one connection (or open transaction).
pub(crate) type Storage<'a> = SqliteStorageProvider<JsonCodec, &'a Connection>;

/// What OpenMLS needs for one operation: crypto and randomness (RustCrypto) and the
/// store, borrowed for the length of one transaction.
pub(crate) struct Provider<'a> {
    /// Crypto and randomness.
    crypto: &'a RustCrypto,
    /// The store inside the operation's transaction.
    storage: Storage<'a>,
}

impl<'a> openmls::prelude::OpenMlsProvider for Provider<'a> {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = Storage<'a>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        self.crypto
    }
}

/// The open store: the SQLite connection and the crypto provider.
pub(crate) struct Store {
    /// The one connection; `rusqlite::Connection` is `Send` but not `Sync`, which is
    /// what makes [`MlsState`](super::MlsState) `Send` but not `Sync`.
    conn: Connection,
    /// Crypto and randomness for OpenMLS; holds no state worth persisting.
    crypto: RustCrypto,
}

/// One open transaction: OpenMLS's provider plus this module's own tables.
pub(crate) struct Tx<'a> {
    /// What OpenMLS calls are given.
    pub(crate) provider: Provider<'a>,
    /// The same connection, for this module's tables.
    conn: &'a Connection,
}

/// This module's own tables, next to OpenMLS's (which its migrations create).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conclave_mls_device (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    signature_public_key BLOB NOT NULL,
    identity TEXT
);
CREATE TABLE IF NOT EXISTS conclave_mls_sent_commits (
    group_id BLOB NOT NULL,
    digest BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    PRIMARY KEY (group_id, digest)
);
CREATE TABLE IF NOT EXISTS conclave_mls_pending_joins (
    group_id BLOB PRIMARY KEY
);
";

impl Store {
    /// Opens the store at `path`, creating it (mode 0600) and its tables if needed.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| MlsError::Open {
            path: path.to_owned(),
            source,
        };
        create_private_file(path).map_err(|e| fail(Box::new(e)))?;
        let conn = Connection::open(path).map_err(|e| fail(Box::new(e)))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail(Box::new(e)))?;
        // WAL: one fsync per transaction; synchronous=FULL keeps that fsync, so an
        // acknowledged operation (a ratchet step, a merged commit) survives power loss
        // and no message key is ever used twice after a crash.
        let pragmas = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;";
        conn.execute_batch(pragmas).map_err(|e| fail(Box::new(e)))?;
        Self::init(conn).map_err(fail)
    }

    /// A store in memory only, gone with the process.
    pub(crate) fn in_memory() -> Result<Self> {
        let fail = |source| MlsError::Open { path: ":memory:".into(), source };
        Self::init(Connection::open_in_memory().map_err(|e| fail(Box::new(e)))?).map_err(fail)
    }

    /// Creates OpenMLS's tables and this module's.
    fn init(mut conn: Connection) -> std::result::Result<Self, super::error::BoxError> {
        SqliteStorageProvider::<JsonCodec, &mut Connection>::new(&mut conn).run_migrations()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn, crypto: RustCrypto::default() })
    }

    /// Runs `f` in a write transaction (taken at once, so two processes sharing the
    /// store queue instead of deadlocking); commits if it returns `Ok`, else rolls
    /// everything back.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run(TransactionBehavior::Immediate, f)
    }

    /// Runs `f` in a read transaction: one consistent snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run(TransactionBehavior::Deferred, f)
    }

    fn run<T>(&self, behavior: TransactionBehavior, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = Transaction::new_unchecked(&self.conn, behavior)?;
        let out = f(&Tx {
            provider: Provider { crypto: &self.crypto, storage: SqliteStorageProvider::new(&tx) },
            conn: &tx,
        })?;
        tx.commit()?;
        Ok(out)
    }
}

impl<'a> Tx<'a> {
    /// OpenMLS's storage inside this transaction.
    pub(crate) fn storage(&self) -> &Storage<'a> {
        &self.provider.storage
    }

    /// The device row: signature public key and identity (`user/device`), if created.
    pub(crate) fn device(&self) -> Result<Option<(Vec<u8>, Option<String>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT signature_public_key, identity FROM conclave_mls_device WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Creates the device row with its signature public key.
    pub(crate) fn insert_device(&self, signature_public_key: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO conclave_mls_device (id, signature_public_key) VALUES (1, ?1)",
            params![signature_public_key],
        )?;
        Ok(())
    }

    /// Binds the device row to an identity, unless it is bound to another one
    /// already; returns whether it is bound to `identity` now.
    pub(crate) fn set_identity(&self, identity: &str) -> Result<bool> {
        let changed = self.conn.execute(
            "UPDATE conclave_mls_device SET identity = ?1 \
             WHERE id = 1 AND (identity IS NULL OR identity = ?1)",
            params![identity],
        )?;
        Ok(changed == 1)
    }

    /// Remembers the digest of a commit this device sent, to recognise its echo.
    pub(crate) fn record_sent(&self, group_id: &[u8], digest: &[u8], epoch: u64) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO conclave_mls_sent_commits (group_id, digest, epoch) VALUES (?1, ?2, ?3)",
            params![group_id, digest, to_sql(epoch)],
        )?;
        Ok(())
    }

    /// Whether a digest is one of a commit this device sent.
    pub(crate) fn is_sent(&self, group_id: &[u8], digest: &[u8]) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM conclave_mls_sent_commits WHERE group_id = ?1 AND digest = ?2",
                params![group_id, digest],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Forgets the commits sent for `epoch` (the server refused them).
    pub(crate) fn forget_sent(&self, group_id: &[u8], epoch: u64) -> Result<()> {
        self.conn.execute(
            "DELETE FROM conclave_mls_sent_commits WHERE group_id = ?1 AND epoch = ?2",
            params![group_id, to_sql(epoch)],
        )?;
        Ok(())
    }

    /// Forgets the digests of commits far behind the group's `current` epoch.
    pub(crate) fn prune_sent(&self, group_id: &[u8], current: u64) -> Result<()> {
        self.conn.execute(
            "DELETE FROM conclave_mls_sent_commits WHERE group_id = ?1 AND epoch < ?2",
            params![group_id, to_sql(current.saturating_sub(SENT_COMMIT_EPOCHS))],
        )?;
        Ok(())
    }

    /// Whether the group was joined by an external commit the server has not
    /// accepted yet.
    pub(crate) fn is_pending_join(&self, group_id: &[u8]) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM conclave_mls_pending_joins WHERE group_id = ?1",
                params![group_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Marks the group as joined by a not yet accepted external commit.
    pub(crate) fn set_pending_join(&self, group_id: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO conclave_mls_pending_joins (group_id) VALUES (?1)",
            params![group_id],
        )?;
        Ok(())
    }

    /// The external join was settled (accepted or given up).
    pub(crate) fn clear_pending_join(&self, group_id: &[u8]) -> Result<()> {
        self.conn.execute("DELETE FROM conclave_mls_pending_joins WHERE group_id = ?1", params![group_id])?;
        Ok(())
    }

    /// Forgets everything this module keeps about a group.
    pub(crate) fn forget_group(&self, group_id: &[u8]) -> Result<()> {
        self.clear_pending_join(group_id)?;
        self.conn.execute("DELETE FROM conclave_mls_sent_commits WHERE group_id = ?1", params![group_id])?;
        Ok(())
    }
}

/// An epoch as an SQLite integer. Epochs never get near `i64::MAX`; saturate rather
/// than fail if one ever did.
fn to_sql(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(i64::MAX)
}

/// Creates `path` if missing, readable and writable by the owner only; tightens the
/// mode of an existing file.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}
