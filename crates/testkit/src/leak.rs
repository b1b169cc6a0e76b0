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
    let found = places(server, secret).await;
    assert!(found.is_empty(), "secret found in {}", found.join(", "));
}

/// Asserts that `bytes` are stored somewhere [`assert_absent`] looks, so that a
/// test can show its search would have found what it then proves is gone.
///
/// # Panics
/// If they are found nowhere.
pub async fn assert_stored(server: &ServerProcess, bytes: &[u8]) {
    assert!(!places(server, bytes).await.is_empty(), "bytes not found in the server's storage");
}

/// Everywhere `needle` (raw or as hex) appears.
async fn places(server: &ServerProcess, needle: &[u8]) -> Vec<String> {
    assert!(needle.len() >= 6, "search for something specific");
    let hex = hex::encode(needle);
    let mut found = Vec::new();
    for entry in walk(&server.data_dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        if contains(&bytes, needle) {
            found.push(entry.display().to_string());
        }
        if contains(&bytes, hex.as_bytes()) {
            found.push(format!("{} (hex)", entry.display()));
        }
    }
    if contains(server.log_text().as_bytes(), needle) {
        found.push("the server log".to_owned());
    }
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
                if contains(text.as_bytes(), needle) {
                    found.push(format!("table {table}"));
                }
                if text.contains(&hex) {
                    found.push(format!("table {table} (hex)"));
                }
            }
        }
        conn.close().await.ok();
    }
    found
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
