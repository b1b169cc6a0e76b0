//! Fresh databases per test, so runs never see each other's data.

use rand::Rng;
use sqlx::{Connection, PgConnection};

/// Which storage backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite database in the server's data directory.
    Sqlite,
    /// PostgreSQL at `CONCLAVE_TEST_POSTGRES` (default
    /// `postgres://postgres@127.0.0.1:5432/test`), in a new database per test.
    Postgres,
}

/// The admin URL used to create and drop per-test databases.
#[must_use]
pub fn admin_url() -> String {
    std::env::var("CONCLAVE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database for one test. For PostgreSQL a new database is created and dropped
/// again when this is dropped; for SQLite the server makes its own file.
#[derive(Debug)]
pub struct TestDb {
    /// `--database-url` to pass to the server, if any.
    pub url: Option<String>,
    name: Option<String>,
}

impl TestDb {
    /// Creates the database for `backend`.
    ///
    /// # Panics
    /// If PostgreSQL is unreachable: a test that needs it must fail, never skip.
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self { url: None, name: None },
            Backend::Postgres => {
                let name = format!("conclave_t_{:016x}", rand::rng().random::<u64>());
                let admin = admin_url();
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
                Self { url: Some(format!("{base}/{name}")), name: Some(name) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else { return };
        // Drop runs outside any async context we can rely on: use a thread with
        // its own small runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url()).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                Some(())
            })
        })
        .join()
        .ok();
    }
}
