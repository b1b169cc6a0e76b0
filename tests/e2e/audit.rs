//! The audit log: every account action is recorded in a hash chain that
//! `conclave admin audit --verify` checks, naming the first altered entry.

use crate::{PASSWORD, bin, server};
use conclave_testkit::{Backend, Home, ServerProcess, backend_tests, code_now};
use sqlx::{Connection, PgConnection, SqliteConnection};

backend_tests!(audit_log_lists_actions_and_detects_tampering);

fn admin(server: &ServerProcess, extra: &[&str]) -> conclave_testkit::Output {
    let data_dir = server.data_dir.display().to_string();
    let mut args = vec!["admin", "audit", "--data-dir", &data_dir];
    if let Some(url) = &server.db.url {
        args.extend(["--database-url", url]);
    }
    args.extend(extra);
    Home::new(bin()).run(&args, None)
}

async fn tamper(server: &ServerProcess, sql: &'static str) {
    if let Some(url) = &server.db.url {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        sqlx::query(sql).execute(&mut conn).await.expect("tamper");
    } else {
        let url = format!("sqlite://{}", server.data_dir.join("conclave.db").display());
        let mut conn = SqliteConnection::connect(&url).await.expect("open SQLite file");
        sqlx::query(sql).execute(&mut conn).await.expect("tamper");
    }
}

/// Registration, a failed and a successful login, and a logout are listed; the
/// chain verifies; after one row is altered in the database, `--verify` exits
/// non-zero naming that entry; after the newest row is deleted, too.
async fn audit_log_lists_actions_and_detects_tampering(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let reg = Home::new(bin()).register(&server, "peggy", PASSWORD);
    let other = Home::new(bin());
    other.login(&server, "peggy", "wrong password here", &code_now(&reg.secret)).fails();
    other.login(&server, "peggy", PASSWORD, &code_now(&reg.secret)).ok();
    other.run(&["logout"], None).ok();
    server.stop();

    let listed = admin(&server, &[]).ok().stdout;
    for action in ["registered", "login_failed", "login_ok", "logout"] {
        assert!(listed.contains(action), "missing {action} in\n{listed}");
    }
    assert!(listed.contains("wrong_password"), "failure reasons are audited:\n{listed}");
    let lines = admin(&server, &["--json"]).ok().stdout;
    let entries: Vec<serde_json::Value> =
        lines.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let account: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| ["registered", "login_ok", "login_failed", "logout"].contains(a))
        .collect();
    assert_eq!(account, ["registered", "login_ok", "login_failed", "login_ok", "logout"], "{lines}");
    assert!(entries.iter().any(|e| e["action"] == "device_added"), "devices are audited: {lines}");
    assert!(entries.iter().all(|e| e["actor"] == "peggy"));
    let total = entries.len();
    let verified = admin(&server, &["--verify"]).ok().stdout;
    assert!(verified.contains(&format!("intact: {total} entries")), "{verified}");

    let failed_seq =
        entries.iter().find(|e| e["action"] == "login_failed").expect("login_failed")["seq"].clone();
    tamper(
        &server,
        "UPDATE audit_log SET detail = '{\"reason\":\"nothing to see\"}' WHERE action = 'login_failed'",
    )
    .await;
    let broken = admin(&server, &["--verify"]).fails();
    assert!(broken.stderr.contains(&format!("entry {failed_seq}")), "{}", broken.stderr);

    let mut fresh = crate::server(backend, &[]).await;
    Home::new(bin()).register(&fresh, "trent", PASSWORD);
    fresh.stop();
    let before = admin(&fresh, &["--json"]).ok().stdout.lines().count();
    admin(&fresh, &["--verify"]).ok();
    tamper(&fresh, "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)").await;
    let truncated = admin(&fresh, &["--verify"]).fails();
    assert!(truncated.stderr.contains(&format!("entry {before}")), "{}", truncated.stderr);
}
