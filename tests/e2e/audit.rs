//! The audit log: every account action is recorded in a chain keyed by the
//! audit key file (outside the database), which `conclave admin audit --verify`
//! checks, naming the first bad entry; checkpoints exported with
//! `conclave admin audit checkpoint` catch even a rewrite by someone holding the
//! key. The attacks are made as the attacker made them: SQL on the database,
//! with every hash recomputed.

use crate::{PASSWORD, bin, server};
use conclave_server::{
    audit::{ChainKey, plain_hash},
    store::NewAuditEntry,
};
use conclave_testkit::{Backend, Home, Output, ServerProcess, backend_tests, code_now};
use sqlx::{Connection, PgConnection, SqliteConnection};

backend_tests!(
    an_intact_log_lists_every_action_and_verifies_with_its_key_only,
    an_entry_changed_in_the_database_fails_verify,
    a_rewrite_with_recomputed_sha256_hashes_fails_verify_at_the_rewritten_entry,
    a_rewrite_with_the_audit_key_fails_against_an_exported_checkpoint,
    a_log_from_before_keying_keeps_verifying_and_is_keyed_on_the_next_start,
);

/// `conclave admin audit --data-dir … [--database-url …] EXTRA`.
fn admin(server: &ServerProcess, extra: &[&str]) -> Output {
    let data_dir = server.data_dir.display().to_string();
    let mut args = vec!["admin", "audit", "--data-dir", &data_dir];
    if let Some(url) = &server.db.url {
        args.extend(["--database-url", url]);
    }
    args.extend(extra);
    Home::new(bin()).run(&args, None)
}

/// `conclave serve` on the stopped server's data directory and database with
/// `extra` flags, which must refuse to start.
fn serve_refused(server: &ServerProcess, extra: &[&str]) -> Output {
    let data_dir = server.data_dir.display().to_string();
    // Ports of its own: the defaults may be taken by another server.
    let mut args =
        vec!["serve", "--data-dir", &data_dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"];
    if let Some(url) = &server.db.url {
        args.extend(["--database-url", url]);
    }
    args.extend(extra);
    Home::new(bin()).run(&args, None).fails()
}

/// Registration, a failed and a successful login and a logout, by `user`.
fn account_actions(server: &ServerProcess, user: &str) {
    let reg = Home::new(bin()).register(server, user, PASSWORD);
    let other = Home::new(bin());
    other.login(server, user, "wrong password here", &code_now(&reg.secret)).fails();
    other.login(server, user, PASSWORD, &code_now(&reg.secret)).ok();
    other.run(&["logout"], None).ok();
}

/// One `audit_log` row as stored.
#[derive(Debug, Clone)]
struct Row {
    seq: i64,
    at_ms: i64,
    actor: Option<String>,
    action: String,
    detail: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

type RowTuple = (i64, i64, Option<String>, String, String, Vec<u8>, Vec<u8>);

/// A direct connection to the server's database: the attacker's access.
enum Db {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs `$body` with `$conn` bound to whichever connection `$db` holds.
macro_rules! on_db {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            Db::Postgres($conn) => $body,
            Db::Sqlite($conn) => $body,
        }
    };
}

impl Db {
    async fn open(server: &ServerProcess) -> Self {
        match &server.db.url {
            Some(url) => Self::Postgres(PgConnection::connect(url).await.expect("connect")),
            None => {
                let url = format!("sqlite://{}", server.data_dir.join("conclave.db").display());
                Self::Sqlite(SqliteConnection::connect(&url).await.expect("open SQLite file"))
            }
        }
    }

    async fn execute(&mut self, sql: &'static str) {
        on_db!(self, conn => {
            sqlx::query(sql).execute(&mut *conn).await.expect("tamper");
        });
    }

    async fn rows(&mut self) -> Vec<Row> {
        const SQL: &str =
            "SELECT seq, at_ms, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq";
        let rows: Vec<RowTuple> =
            on_db!(self, conn => sqlx::query_as(SQL).fetch_all(&mut *conn).await.expect("read"));
        rows.into_iter()
            .map(|(seq, at_ms, actor, action, detail, prev_hash, hash)| Row {
                seq,
                at_ms,
                actor,
                action,
                detail,
                prev_hash,
                hash,
            })
            .collect()
    }

    /// The id of the key the log is keyed with, as the head records it.
    async fn key_id(&mut self) -> Option<Vec<u8>> {
        const SQL: &str = "SELECT key_id FROM audit_head WHERE id = 1";
        let (id,): (Option<Vec<u8>>,) =
            on_db!(self, conn => sqlx::query_as(SQL).fetch_one(&mut *conn).await.expect("head"));
        id
    }

    /// Replaces the whole log with `rows`, the head pointing at the last of
    /// them and recording `key_id`.
    async fn write(&mut self, rows: &[Row], key_id: Option<&[u8]>) {
        let (seq, hash) = rows.last().map_or((0, vec![0; 32]), |last| (last.seq, last.hash.clone()));
        on_db!(self, conn => {
            let mut tx = conn.begin().await.expect("begin");
            sqlx::query("DELETE FROM audit_log").execute(&mut *tx).await.expect("delete");
            for row in rows {
                sqlx::query(
                    "INSERT INTO audit_log (seq, at_ms, actor, action, detail, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(row.seq)
                .bind(row.at_ms)
                .bind(row.actor.as_deref())
                .bind(&row.action)
                .bind(&row.detail)
                .bind(&row.prev_hash)
                .bind(&row.hash)
                .execute(&mut *tx)
                .await
                .expect("insert");
            }
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, key_id = $3 WHERE id = 1")
                .bind(seq)
                .bind(&hash)
                .bind(key_id)
                .execute(&mut *tx)
                .await
                .expect("head");
            tx.commit().await.expect("commit");
        });
    }
}

/// Renumbers `rows` from 1 and recomputes every link from index `from` on with
/// `link`: what someone who rewrites the log does so that its chain checks out.
fn rechain(rows: &mut [Row], from: usize, link: impl Fn(&[u8], i64, &NewAuditEntry<'_>) -> [u8; 32]) {
    for (index, row) in rows.iter_mut().enumerate() {
        row.seq = i64::try_from(index).unwrap() + 1;
    }
    for index in from..rows.len() {
        let prev = if index == 0 { vec![0; 32] } else { rows[index - 1].hash.clone() };
        let row = &rows[index];
        let entry = NewAuditEntry {
            at_ms: row.at_ms,
            actor: row.actor.as_deref(),
            action: &row.action,
            detail: &row.detail,
        };
        let hash = link(&prev, row.seq, &entry).to_vec();
        rows[index].prev_hash = prev;
        rows[index].hash = hash;
    }
}

/// The audit key, read from the data directory as someone who got hold of the
/// file would.
fn stolen_key(server: &ServerProcess) -> ChainKey {
    let bytes = std::fs::read(server.data_dir.join("audit.key")).expect("audit key file");
    ChainKey::from_bytes(&bytes.try_into().expect("32 bytes"))
}

fn index_of(rows: &[Row], action: &str) -> usize {
    rows.iter().position(|r| r.action == action).unwrap_or_else(|| panic!("no {action} in {rows:?}"))
}

/// The log lists registration, the failed and the successful login and the
/// logout, opened by the entry that keyed it; `--verify` checks every MAC from
/// entry 1 with the data directory's audit key. Without that key, or with
/// another, it refuses to vouch for the log, and a node with another key
/// refuses to start rather than write entries no one could check.
async fn an_intact_log_lists_every_action_and_verifies_with_its_key_only(backend: Backend) {
    let mut server = server(backend, &[]).await;
    account_actions(&server, "peggy");
    server.stop();

    let listed = admin(&server, &[]).ok().stdout;
    for action in ["audit_keyed", "registered", "login_failed", "login_ok", "logout"] {
        assert!(listed.contains(action), "missing {action} in\n{listed}");
    }
    assert!(listed.contains("wrong_password"), "failure reasons are audited:\n{listed}");
    let lines = admin(&server, &["--json"]).ok().stdout;
    let entries: Vec<serde_json::Value> =
        lines.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!((&entries[0]["seq"], &entries[0]["action"]), (&1.into(), &"audit_keyed".into()), "{lines}");
    let account: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| ["registered", "login_ok", "login_failed", "logout"].contains(a))
        .collect();
    assert_eq!(account, ["registered", "login_ok", "login_failed", "login_ok", "logout"], "{lines}");
    assert!(entries.iter().any(|e| e["action"] == "device_added"), "devices are audited: {lines}");
    assert!(entries[1..].iter().all(|e| e["actor"] == "peggy"), "{lines}");
    let total = entries.len();
    let verified = admin(&server, &["--verify"]).ok().stdout;
    assert_eq!(
        verified.trim(),
        format!("audit log intact: {total} entries, keyed chain verified from entry 1")
    );
    let verdict = admin(&server, &["--verify", "--json"]).ok().json();
    assert_eq!(
        verdict,
        serde_json::json!({ "intact": true, "entries": total, "keyed_from": 1, "checkpoints": 0 })
    );

    let missing = server.data_dir.join("elsewhere.key").display().to_string();
    let keyless = admin(&server, &["--verify", "--audit-key-file", &missing]).fails();
    assert!(keyless.stderr.contains("the audit log is keyed: its key file"), "{}", keyless.stderr);
    let other = server.data_dir.join("other.key").display().to_string();
    let refused = serve_refused(&server, &["--audit-key-file", &other]);
    assert!(refused.stderr.contains("not the key the audit log is keyed with"), "{}", refused.stderr);
    let wrong = admin(&server, &["--verify", "--audit-key-file", &other]).fails();
    assert!(wrong.stderr.contains("not the key this audit log is keyed with"), "{}", wrong.stderr);
    assert_eq!(admin(&server, &["--verify"]).ok().stdout, verified, "nothing was written meanwhile");
}

/// After one row is altered in the database (its hash left as it was),
/// `--verify` exits non-zero naming that entry; after the newest row is
/// deleted, it names the missing one; a row added past the chain head is
/// named too.
async fn an_entry_changed_in_the_database_fails_verify(backend: Backend) {
    let mut server = server(backend, &[]).await;
    account_actions(&server, "peggy");
    server.stop();
    let mut db = Db::open(&server).await;
    let rows = db.rows().await;
    let key_id = db.key_id().await;
    let failed = rows[index_of(&rows, "login_failed")].seq;
    db.execute(
        "UPDATE audit_log SET detail = '{\"reason\":\"nothing to see\"}' WHERE action = 'login_failed'",
    )
    .await;
    let broken = admin(&server, &["--verify"]).fails();
    assert!(broken.stderr.contains(&format!("broken at entry {failed}: its content")), "{}", broken.stderr);
    let verdict = admin(&server, &["--verify", "--json"]).fails().json();
    assert_eq!(
        (&verdict["intact"], &verdict["first_bad_entry"]),
        (&false.into(), &failed.into()),
        "{verdict}"
    );

    db.write(&rows, key_id.as_deref()).await;
    admin(&server, &["--verify"]).ok();
    db.execute("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)").await;
    let truncated = admin(&server, &["--verify"]).fails();
    let newest = rows.len();
    assert!(
        truncated
            .stderr
            .contains(&format!("broken at entry {newest}: entries {newest} to {newest} are missing")),
        "{}",
        truncated.stderr
    );

    let mut extra = rows.clone();
    let newest = rows[rows.len() - 1].clone();
    extra.push(Row { seq: newest.seq + 1, prev_hash: newest.hash.clone(), ..newest });
    db.write(&extra, key_id.as_deref()).await;
    db.execute("UPDATE audit_head SET seq = seq - 1").await;
    let past = admin(&server, &["--verify"]).fails();
    let added = extra.len();
    assert!(
        past.stderr.contains(&format!("broken at entry {added}: its content does not match its MAC")),
        "{}",
        past.stderr
    );
}

/// What the attacker did: change entries with SQL and recompute the SHA-256
/// chain after them (the published format), head included. Whether an entry
/// is altered, one is inserted or one is removed, `--verify` names the first
/// entry touched: its MAC cannot be recomputed without the key. A log stripped
/// of its keyed entries altogether and recomputed as plain hashes fails too,
/// and the server refuses to start on it rather than key it afresh.
async fn a_rewrite_with_recomputed_sha256_hashes_fails_verify_at_the_rewritten_entry(backend: Backend) {
    let mut server = server(backend, &[]).await;
    account_actions(&server, "peggy");
    server.stop();
    let mut db = Db::open(&server).await;
    let pristine = db.rows().await;
    let key_id = db.key_id().await;
    let target = index_of(&pristine, "login_failed");
    let seq = pristine[target].seq;
    let fails_at = |what: &str, seq: i64| {
        let out = admin(&server, &["--verify"]).fails();
        assert!(
            out.stderr.contains(&format!("broken at entry {seq}: its content does not match its MAC")),
            "{what}: {}",
            out.stderr
        );
    };

    let mut altered = pristine.clone();
    altered[target].detail = r#"{"reason":"nothing to see"}"#.into();
    rechain(&mut altered, target, plain_hash);
    db.write(&altered, key_id.as_deref()).await;
    fails_at("altered", seq);

    let mut inserted = pristine.clone();
    let forged = Row { actor: Some("mallory".into()), action: "login_ok".into(), ..pristine[target].clone() };
    inserted.insert(target, forged);
    rechain(&mut inserted, target, plain_hash);
    db.write(&inserted, key_id.as_deref()).await;
    fails_at("inserted", seq);

    let mut removed = pristine.clone();
    removed.remove(target);
    rechain(&mut removed, target, plain_hash);
    db.write(&removed, key_id.as_deref()).await;
    fails_at("removed", seq);

    let mut stripped: Vec<Row> = pristine.iter().filter(|r| r.action != "audit_keyed").cloned().collect();
    rechain(&mut stripped, 0, plain_hash);
    db.write(&stripped, None).await;
    let out = admin(&server, &["--verify"]).fails();
    assert!(
        out.stderr.contains(&format!(
            "broken at entry {}: no entry is keyed although the audit key exists",
            stripped.len()
        )),
        "{}",
        out.stderr
    );
    let refused = serve_refused(&server, &[]);
    assert!(
        refused.stderr.contains("entries are not keyed, yet this key already existed"),
        "{}",
        refused.stderr
    );

    db.write(&pristine, key_id.as_deref()).await;
    admin(&server, &["--verify"]).ok();
}

/// Someone holding the audit key as well as the database can rewrite an entry
/// and recompute every MAC after it: `--verify` alone cannot tell. Checkpoints
/// exported before (one per line in a file, as cron would append them) can:
/// the first one taken after the rewritten entry no longer matches, and the
/// range between the last matching checkpoint and it is named. Cutting the
/// log short after a checkpoint is caught the same way.
async fn a_rewrite_with_the_audit_key_fails_against_an_exported_checkpoint(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let reg = Home::new(bin()).register(&server, "peggy", PASSWORD);
    let first = admin(&server, &["checkpoint"]).ok().stdout.trim().to_owned();
    let other = Home::new(bin());
    other.login(&server, "peggy", "wrong password here", &code_now(&reg.secret)).fails();
    other.login(&server, "peggy", PASSWORD, &code_now(&reg.secret)).ok();
    let second = admin(&server, &["checkpoint", "--json"]).ok().json();
    other.run(&["logout"], None).ok();
    server.stop();

    let (first_seq, _) = first.split_once(':').expect("SEQ:MAC");
    let first_seq: i64 = first_seq.parse().expect("SEQ");
    let second_seq = second["seq"].as_i64().expect("seq");
    assert!(first_seq < second_seq, "{first} {second}");
    let exported = server.data_dir.parent().unwrap().join("checkpoints");
    std::fs::write(&exported, format!("# conclave audit checkpoints\n{first}\n{second}\n")).unwrap();
    let exported = exported.display().to_string();
    let matched = admin(&server, &["--verify", "--checkpoint", &exported]).ok().stdout;
    assert!(matched.contains(", 2 checkpoints matched"), "{matched}");

    let mut db = Db::open(&server).await;
    let pristine = db.rows().await;
    let key_id = db.key_id().await;
    let key = stolen_key(&server);
    let mut rewritten = pristine.clone();
    let target = index_of(&rewritten, "login_failed");
    assert!(first_seq < rewritten[target].seq && rewritten[target].seq <= second_seq);
    rewritten[target].detail = r#"{"reason":"nothing to see"}"#.into();
    rechain(&mut rewritten, target, |prev, seq, entry| key.link(prev, seq, entry));
    db.write(&rewritten, key_id.as_deref()).await;

    admin(&server, &["--verify"]).ok();
    admin(&server, &["--verify", "--checkpoint", &first]).ok();
    let caught = admin(&server, &["--verify", "--checkpoint", &exported]).fails();
    assert!(
        caught.stderr.contains(&format!(
            "broken at entry {second_seq}: it no longer matches the checkpoint taken at it: an entry from {} to \
             {second_seq} was rewritten by someone holding the audit key",
            first_seq + 1
        )),
        "{}",
        caught.stderr
    );

    db.write(&pristine[..usize::try_from(second_seq).unwrap() - 1], key_id.as_deref()).await;
    admin(&server, &["--verify"]).ok();
    let cut = admin(&server, &["--verify", "--checkpoint", &exported]).fails();
    assert!(
        cut.stderr.contains(&format!(
            "broken at entry {second_seq}: entries {second_seq} to {second_seq} are missing: the log was cut short"
        )),
        "{}",
        cut.stderr
    );
    let junk = admin(&server, &["--verify", "--checkpoint", "12:abcd"]).fails();
    assert!(junk.stderr.contains("neither a checkpoint (SEQ:MAC) nor a readable file"), "{}", junk.stderr);
}

/// A database written before the log was keyed (plain SHA-256 hashes, no
/// audit key yet) verifies as it is, with a warning that it proves only
/// consistency. The next start creates the key and keys the log with an entry
/// recording the switch; the old entries keep verifying under it, and one of
/// them altered with its plain hashes recomputed is caught at the switch,
/// whose MAC covers them.
async fn a_log_from_before_keying_keeps_verifying_and_is_keyed_on_the_next_start(backend: Backend) {
    let mut server = server(backend, &[]).await;
    server.stop();
    // What an earlier version left: its entries, plain hashes, no key.
    std::fs::remove_file(server.data_dir.join("audit.key")).unwrap();
    let mut db = Db::open(&server).await;
    let old = |seq: i64, action: &str, detail: &str| Row {
        seq,
        at_ms: 1_700_000_000_000 + seq,
        actor: Some("olivia".into()),
        action: action.into(),
        detail: detail.into(),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    };
    let mut legacy = vec![
        old(1, "registered", r#"{"user_id":1}"#),
        old(2, "login_failed", r#"{"reason":"wrong_password"}"#),
        old(3, "logout", r#"{"session":"s"}"#),
    ];
    rechain(&mut legacy, 0, plain_hash);
    db.write(&legacy, None).await;
    let before = admin(&server, &["--verify"]).ok();
    assert_eq!(before.stdout.trim(), "audit log intact: 3 entries, hash chain verified");
    assert!(before.stderr.contains("the log is not keyed yet"), "{}", before.stderr);

    server.restart();
    Home::new(bin()).register(&server, "peggy", PASSWORD);
    server.stop();
    assert!(server.data_dir.join("audit.key").exists());
    let verified = admin(&server, &["--verify"]).ok().stdout;
    let entries = db.rows().await;
    assert_eq!(
        verified.trim(),
        format!("audit log intact: {} entries, keyed chain verified from entry 4", entries.len())
    );
    assert_eq!(
        (entries[3].seq, entries[3].action.as_str(), entries[3].actor.as_deref()),
        (4, "audit_keyed", None)
    );
    assert!(entries[..3].iter().zip(&legacy).all(|(now, then)| now.hash == then.hash), "old entries kept");

    let key_id = db.key_id().await;
    let mut rewritten = entries.clone();
    rewritten[1].detail = r#"{"reason":"nothing to see"}"#.into();
    rechain(&mut rewritten[..3], 1, plain_hash);
    rewritten[3].prev_hash = rewritten[2].hash.clone();
    db.write(&rewritten, key_id.as_deref()).await;
    let caught = admin(&server, &["--verify"]).fails();
    assert!(
        caught.stderr.contains("broken at entry 4: its content does not match its MAC"),
        "{}",
        caught.stderr
    );
}
