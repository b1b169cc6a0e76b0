//! Schema migrations, embedded in the binary. The same numbered files exist for
//! both backends; a test checks that both reach the same tables and columns.

use super::{Pool, Result, Store};
use sqlx::{
    SqlSafeStr,
    migrate::{Migration, MigrationType, Migrator},
};
use std::borrow::Cow;

/// `(version, description, SQLite text, PostgreSQL text)`, in order.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "accounts",
        include_str!("../../migrations/sqlite/0001_accounts.sql"),
        include_str!("../../migrations/postgres/0001_accounts.sql"),
    ),
    (
        2,
        "messaging",
        include_str!("../../migrations/sqlite/0002_messaging.sql"),
        include_str!("../../migrations/postgres/0002_messaging.sql"),
    ),
    (
        3,
        "auth hardening",
        include_str!("../../migrations/sqlite/0003_auth_hardening.sql"),
        include_str!("../../migrations/postgres/0003_auth_hardening.sql"),
    ),
    (
        4,
        "audit keyed",
        include_str!("../../migrations/sqlite/0004_audit_keyed.sql"),
        include_str!("../../migrations/postgres/0004_audit_keyed.sql"),
    ),
    (
        5,
        "quotas",
        include_str!("../../migrations/sqlite/0005_quotas.sql"),
        include_str!("../../migrations/postgres/0005_quotas.sql"),
    ),
    (
        6,
        "public groups",
        include_str!("../../migrations/sqlite/0006_public_groups.sql"),
        include_str!("../../migrations/postgres/0006_public_groups.sql"),
    ),
    (
        7,
        "device retirement",
        include_str!("../../migrations/sqlite/0007_device_retirement.sql"),
        include_str!("../../migrations/postgres/0007_device_retirement.sql"),
    ),
];

fn migrator(postgres: bool) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, pg)| {
            let sql = if postgres { pg } else { sqlite };
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

impl Store {
    pub(super) async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => migrator(false).run(pool).await?,
            Pool::Postgres(pool) => migrator(true).run(pool).await?,
        }
        Ok(())
    }
}
