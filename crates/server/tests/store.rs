//! The storage layer against real SQLite and PostgreSQL: both backends reach the
//! same schema, and the audit chain stays whole under concurrent appends and
//! concurrent starts.

use conclave_server::{
    Database,
    audit::{self, Audit, AuditAction, AuditError, ChainKey, KeyOrigin, Verdict},
    store::Store,
};
use conclave_testkit::{Backend, TestDb};
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::collections::BTreeSet;

async fn open(backend: Backend, dir: &tempfile::TempDir) -> (Store, TestDb) {
    let db = TestDb::create(backend).await;
    let database = match &db.url {
        Some(url) => Database::Postgres(url.clone()),
        None => Database::Sqlite(dir.path().join("conclave.db")),
    };
    (Store::open(&database).await.expect("open store"), db)
}

/// The SQLite and PostgreSQL migrations create the same tables with the same
/// columns, so the one set of queries means the same on both.
#[tokio::test]
async fn both_backends_reach_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, _) = open(Backend::Sqlite, &dir).await;
    let (postgres, pg) = open(Backend::Postgres, &dir).await;
    sqlite.close().await;
    postgres.close().await;

    let url = format!("sqlite://{}", dir.path().join("conclave.db").display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let lite: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();

    let mut conn = PgConnection::connect(pg.url.as_deref().unwrap()).await.unwrap();
    let post: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();

    assert!(lite.contains(&("users".into(), "totp_last_step".into())), "{lite:?}");
    assert_eq!(lite, post);
}

async fn concurrent_appends_form_one_chain(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _db) = open(backend, &dir).await;
    let key = ChainKey::from_bytes(&[3; 32]);
    let audit = Audit::open(store.clone(), key.clone(), KeyOrigin::Created).await.expect("key the log");
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let audit = audit.clone();
            tokio::spawn(async move {
                audit
                    .record(Some("alice"), AuditAction::LoginFailed, serde_json::json!({ "attempt": i }))
                    .await
                    .expect("append")
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        audit::verify(&store, Some(&key), &[]).await.unwrap(),
        Verdict::Intact { entries: 25, keyed_from: Some(1), checkpoints: 0 },
        "the entry that keyed the log, then the 24 appends"
    );
}

async fn nodes_starting_at_once_key_the_log_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = open(backend, &dir).await;
    let database = match &db.url {
        Some(url) => Database::Postgres(url.clone()),
        None => Database::Sqlite(dir.path().join("conclave.db")),
    };
    let other = Store::open(&database).await.expect("a second node's store");
    let keys: Vec<ChainKey> = (0..2).map(|i| ChainKey::from_bytes(&[i; 32])).collect();
    let (first, second) = tokio::join!(
        Audit::open(store.clone(), keys[0].clone(), KeyOrigin::Created),
        Audit::open(other, keys[1].clone(), KeyOrigin::Created),
    );
    let winner = match (first, second) {
        (Ok(_), Err(AuditError::OtherKey)) => &keys[0],
        (Err(AuditError::OtherKey), Ok(_)) => &keys[1],
        (first, second) => panic!("exactly one node keys the log: {first:?} {second:?}"),
    };
    assert_eq!(
        audit::verify(&store, Some(winner), &[]).await.unwrap(),
        Verdict::Intact { entries: 1, keyed_from: Some(1), checkpoints: 0 }
    );
}

/// Appends racing from many tasks (as from many connections or nodes) never fork
/// or break the hash chain: every append locks the chain head first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_audit_appends_form_one_chain_sqlite() {
    concurrent_appends_form_one_chain(Backend::Sqlite).await;
}

/// As above, on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_audit_appends_form_one_chain_postgres() {
    concurrent_appends_form_one_chain(Backend::Postgres).await;
}

/// Two nodes with different new key files starting at once on one empty
/// database: one keys the log, the other is refused (instead of appending a
/// second switch under a key no verifier has), and the log verifies under
/// the winner's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_key_the_log_once_sqlite() {
    nodes_starting_at_once_key_the_log_once(Backend::Sqlite).await;
}

/// As above, on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_key_the_log_once_postgres() {
    nodes_starting_at_once_key_the_log_once(Backend::Postgres).await;
}
