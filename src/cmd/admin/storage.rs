//! Where an admin command finds the server's data: the same data directory or
//! database URL (and audit key) as `conclave serve`.

use anyhow::{Context, bail};
use conclave_server::{
    Config, Database, RawConfig,
    audit::{Audit, ChainKey, KeyOrigin},
    store::Store,
};
use std::path::PathBuf;

/// Flags naming the server's storage.
#[derive(Debug, clap::Args)]
pub(super) struct StorageArgs {
    /// The server's data directory (its SQLite database and audit key are used).
    #[arg(long, env = "CONCLAVE_DATA_DIR", value_name = "DIR", default_value = "conclave-data")]
    data_dir: PathBuf,
    /// The server's PostgreSQL URL, instead of the data directory's SQLite file.
    #[arg(long, env = "CONCLAVE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The audit key file [default: DATA_DIR/audit.key].
    #[arg(long, env = "CONCLAVE_AUDIT_KEY_FILE", value_name = "FILE")]
    audit_key_file: Option<PathBuf>,
}

impl StorageArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let raw = RawConfig {
            data_dir: Some(self.data_dir.clone()),
            database_url: self.database_url.clone(),
            audit_key_file: self.audit_key_file.clone(),
            ..RawConfig::default()
        };
        Ok(Config::resolve(RawConfig::default(), raw)?)
    }

    /// Opens the server's database (never creating an SQLite file that is not
    /// there).
    pub(super) async fn open(&self) -> anyhow::Result<Store> {
        let config = self.config()?;
        if let Database::Sqlite(path) = &config.database
            && !path.exists()
        {
            bail!("no database at {}: is --data-dir the server's data directory?", path.display());
        }
        Store::open(&config.database).await.context("cannot open the database")
    }

    /// Opens the database and the audit log with the server's key, for commands
    /// that record what they do. The key must exist: the server made it at its
    /// first start.
    pub(super) async fn open_with_audit(&self) -> anyhow::Result<(Store, Audit)> {
        let config = self.config()?;
        let path = &config.audit_key_file;
        let key = ChainKey::load(path)
            .with_context(|| format!("cannot read the audit key {}", path.display()))?
            .with_context(|| {
                format!("no audit key at {}: is --data-dir the server's data directory?", path.display())
            })?;
        let store = self.open().await?;
        let audit = Audit::open(store.clone(), key, KeyOrigin::Found).await?;
        Ok((store, audit))
    }
}
