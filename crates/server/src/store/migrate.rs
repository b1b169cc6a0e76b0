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
        6,
        "public groups",
        include_str!("../../migrations/sqlite/0006_public_groups.sql"),
        include_str!("../../migrations/postgres/0006_public_groups.sql"),
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
