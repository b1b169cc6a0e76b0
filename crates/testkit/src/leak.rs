//! Searches for plaintext where it must never be: the server's database (files or
//! tables) and its log.

use crate::server::ServerProcess;
use sqlx::{Connection, PgConnection, Row};
use std::path::Path;

/// Asserts that `secret` appears nowhere in the server's data directory files
/// (SQLite database, WAL, keys), its log, or (for PostgreSQL) any table row — as
/// raw bytes or hex.
///
/// # Panics
/// Naming where the secret was found.
pub async fn assert_absent(server: &ServerProcess, secret: &[u8]) {
    assert!(secret.len() >= 6, "search for something specific");
    let hex = hex::encode(secret);
    for entry in walk(&server.data_dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(!contains(&bytes, secret), "secret found in {}", entry.display());
        assert!(!contains(&bytes, hex.as_bytes()), "hex of secret found in {}", entry.display());
    }
    let log = server.log_text();
    assert!(!contains(log.as_bytes(), secret), "secret found in the server log");
    if let Some(url) = &server.db.url {
        let mut conn = PgConnection::connect(url).await.expect("connect to test database");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .expect("list tables");
        assert!(tables.iter().any(|t| t == "users"), "schema not found: {tables:?}");
        for table in tables {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT t::text FROM \"{table}\" t")))
                .fetch_all(&mut conn)
                .await
                .expect("read table");
            for row in rows {
                let text: String = row.get(0);
                assert!(!contains(text.as_bytes(), secret), "secret found in table {table}");
                assert!(!text.contains(&hex), "hex of secret found in table {table}");
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
