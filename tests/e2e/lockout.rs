//! Login back-offs that an attacker cannot turn against the account's owner:
//! device cookies, the untrusted back-off, each cookie's own back-off, and the
//! hourly bound on judged guesses.

use crate::{PASSWORD, bin, server};
use conclave_proto::{ErrorBody, ErrorCode, Outcome, Reply, Request, SecondFactor};
use conclave_testkit::{Account, Backend, Home, RawClient, ServerProcess, backend_tests, code_now};
use std::os::unix::fs::PermissionsExt;

backend_tests!(
    a_known_device_logs_in_while_an_attacker_keeps_the_account_in_back_off,
    attempts_during_a_back_off_are_refused_alike_and_do_not_extend_it,
    racing_guesses_cannot_slip_past_a_back_off,
    a_device_cookie_has_its_own_back_off_apart_from_the_account,
    the_hourly_cap_bounds_judged_guesses_on_each_side,
    revoking_a_session_forgets_its_device_cookie,
);

/// The one answer every refused login gets.
const AUTH_FAILED: &str = "login failed: the username, password or code is wrong, or there were too many attempts (try again later)";

/// A login on a fresh connection; returns the reply or the error.
async fn login(
    server: &ServerProcess,
    username: &str,
    password: &str,
    second_factor: SecondFactor,
    device_cookie: Option<&str>,
) -> Result<Reply, ErrorBody> {
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let request = Request::Login {
        username: username.into(),
        password: password.into(),
        second_factor,
        device_cookie: device_cookie.map(str::to_owned),
    };
    match client.request(request).await.outcome {
        Outcome::Ok(reply) => Ok(reply),
        Outcome::Error(body) => Err(body),
    }
}

/// Asserts the generic refusal: `auth_failed` with the one message.
#[track_caller]
fn refused(result: &Result<Reply, ErrorBody>) {
    match result {
        Err(body) => assert_eq!((body.code, body.message.as_str()), (ErrorCode::AuthFailed, AUTH_FAILED)),
        Ok(reply) => panic!("login unexpectedly succeeded: {reply:?}"),
    }
}

/// The device cookie of a successful login.
#[track_caller]
fn cookie_of(result: Result<Reply, ErrorBody>) -> String {
    match result {
        Ok(Reply::LoggedIn { device_cookie: Some(cookie), .. }) => cookie,
        other => panic!("expected a login with a device cookie, got {other:?}"),
    }
}

fn recovery(account: &Account, i: usize) -> SecondFactor {
    SecondFactor::Recovery(account.recovery_codes[i].clone())
}

/// The audit log as JSON entries (`conclave admin audit --json`).
fn audit(server: &ServerProcess) -> Vec<serde_json::Value> {
    let mut args = vec!["admin".to_owned(), "audit".to_owned(), "--json".to_owned()];
    args.extend(server.storage_args());
    let out = Home::new(bin()).run(&args.iter().map(String::as_str).collect::<Vec<_>>(), None).ok();
    out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn failures_by_reason(entries: &[serde_json::Value], reason: &str) -> usize {
    entries.iter().filter(|e| e["action"] == "login_failed" && e["detail"]["reason"] == reason).count()
}

/// The attack from the field: an attacker fails again and again. Without a
/// device cookie even the right password and code are refused (the account's
/// untrusted logins are in back-off), with the same message as every failure;
/// the laptop that registered the account, which kept its device cookie
/// (mode 0600) across a logout, logs in all the same.
async fn a_known_device_logs_in_while_an_attacker_keeps_the_account_in_back_off(backend: Backend) {
    let server = server(
        backend,
        &["--login-max-failures", "5", "--login-backoff-secs", "600", "--login-backoff-max-secs", "600"],
    )
    .await;
    let laptop = Home::new(bin());
    let reg = laptop.register(&server, "alice", PASSWORD);
    let cookies = laptop.path().join("device_cookies.json");
    let mode = std::fs::metadata(&cookies).expect("a device cookie file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    laptop.run(&["logout"], None).ok();
    let issued = std::fs::read_to_string(&cookies).unwrap();

    let attacker = Home::new(bin());
    let first = attacker.login(&server, "alice", "guess number 0", "000000").fails().stderr;
    assert!(first.contains(AUTH_FAILED), "{first}");
    for guess in 1..7 {
        let out = attacker.login(&server, "alice", &format!("guess number {guess}"), "000000").fails();
        assert_eq!(out.stderr, first, "every failure reads the same");
    }
    let newcomer = Home::new(bin()).login(&server, "alice", PASSWORD, &code_now(&reg.secret)).fails();
    assert_eq!(newcomer.stderr, first, "an unknown device is in the back-off, and told nothing more");

    let back = laptop.login(&server, "alice", PASSWORD, &code_now(&reg.secret)).ok().json();
    assert_eq!(back["user"]["username"], "alice");
    let rotated = std::fs::read_to_string(&cookies).unwrap();
    assert_ne!(rotated, issued, "each login replaces the cookie");
}

/// After the failures that start a back-off, further attempts — wrong ones
/// and the owner's correct one — are refused with the same code and message,
/// are audited as refused unjudged (`backed_off`), and leave the back-off's
/// end where the failures put it: exactly one lockout, and the stored end
/// unchanged. A known device's success does not lift the untrusted back-off.
async fn attempts_during_a_back_off_are_refused_alike_and_do_not_extend_it(backend: Backend) {
    let server = server(
        backend,
        &["--login-max-failures", "2", "--login-backoff-secs", "600", "--login-backoff-max-secs", "3600"],
    )
    .await;
    let (alice, _) = Account::register(&server, "alice", PASSWORD).await;
    for guess in ["first guess here", "second guess here"] {
        refused(&login(&server, "alice", guess, recovery(&alice, 0), None).await);
    }
    let locked = server.query_i64("SELECT locked_until FROM login_failures WHERE username = 'alice'").await;
    let lockouts = |entries: &[serde_json::Value]| -> Vec<i64> {
        entries
            .iter()
            .filter(|e| e["action"] == "lockout")
            .filter_map(|e| e["detail"]["until"].as_i64())
            .collect()
    };
    assert_eq!(lockouts(&audit(&server)), [locked]);

    refused(&login(&server, "alice", "third guess here", recovery(&alice, 0), None).await);
    refused(&login(&server, "alice", PASSWORD, recovery(&alice, 0), None).await);
    refused(&login(&server, "alice", "fourth guess here", recovery(&alice, 0), None).await);
    let known = alice.device_cookie.as_deref();
    cookie_of(login(&server, "alice", PASSWORD, recovery(&alice, 1), known).await);
    refused(&login(&server, "alice", PASSWORD, recovery(&alice, 2), None).await);

    let entries = audit(&server);
    assert_eq!(lockouts(&entries), [locked], "no attempt during the back-off extended it");
    assert_eq!(failures_by_reason(&entries, "wrong_password"), 2);
    assert_eq!(failures_by_reason(&entries, "backed_off"), 4);
    let still = server.query_i64("SELECT locked_until FROM login_failures WHERE username = 'alice'").await;
    assert_eq!(still, locked);
}

/// Guesses sent all at once, on many connections, are counted one after
/// another before any password is checked: exactly as many are judged as
/// start the back-off, and the rest are refused unjudged.
async fn racing_guesses_cannot_slip_past_a_back_off(backend: Backend) {
    let server = server(
        backend,
        &["--login-max-failures", "3", "--login-backoff-secs", "600", "--hash-concurrency", "4"],
    )
    .await;
    let (alice, _) = Account::register(&server, "alice", PASSWORD).await;
    let mut guesses = tokio::task::JoinSet::new();
    for guess in 0..20 {
        let (addr, fingerprint, code) = (server.addr, server.fingerprint.clone(), recovery(&alice, 0));
        guesses.spawn(async move {
            let mut client = RawClient::greeted(addr, &fingerprint).await;
            let request = Request::Login {
                username: "alice".into(),
                password: format!("racing guess {guess}"),
                second_factor: code,
                device_cookie: None,
            };
            client.request(request).await.outcome
        });
    }
    while let Some(outcome) = guesses.join_next().await {
        match outcome.expect("task") {
            Outcome::Error(body) => {
                assert_eq!((body.code, body.message.as_str()), (ErrorCode::AuthFailed, AUTH_FAILED))
            }
            Outcome::Ok(reply) => panic!("{reply:?}"),
        }
    }
    let entries = audit(&server);
    assert_eq!(failures_by_reason(&entries, "wrong_password"), 3, "only the first three were judged");
    assert_eq!(failures_by_reason(&entries, "backed_off"), 17);
}

/// A device cookie does not buy unlimited guesses: failures with it put that
/// cookie into its own back-off (even the right password is then refused with
/// it), while the account's untrusted logins are untouched and work.
async fn a_device_cookie_has_its_own_back_off_apart_from_the_account(backend: Backend) {
    let server = server(backend, &["--login-max-failures", "2", "--login-backoff-secs", "600"]).await;
    let (alice, _) = Account::register(&server, "alice", PASSWORD).await;
    let stolen = alice.device_cookie.as_deref();
    refused(&login(&server, "alice", "a wrong password", recovery(&alice, 0), stolen).await);
    refused(&login(&server, "alice", "another wrong one", recovery(&alice, 0), stolen).await);
    refused(&login(&server, "alice", PASSWORD, recovery(&alice, 0), stolen).await);
    cookie_of(login(&server, "alice", PASSWORD, recovery(&alice, 0), None).await);
    let entries = audit(&server);
    let lockout = entries.iter().find(|e| e["action"] == "lockout").expect("a lockout");
    assert_eq!(lockout["detail"]["scope"], "known_device");
}

/// Whatever the back-off allows, at most `login_failures_per_hour` guesses are
/// judged in an hour from unknown devices, and as many from the account's
/// known devices together: here 3 and 3, then both sides wait. (The default
/// and highest setting, 50, bounds an account to 100 wrong guesses an hour.)
async fn the_hourly_cap_bounds_judged_guesses_on_each_side(backend: Backend) {
    let server = server(
        backend,
        &["--login-max-failures", "1000", "--login-backoff-secs", "1", "--login-failures-per-hour", "3"],
    )
    .await;
    let (alice, _) = Account::register(&server, "alice", PASSWORD).await;
    for guess in 0..3 {
        refused(
            &login(&server, "alice", &format!("untrusted guess {guess}"), recovery(&alice, 0), None).await,
        );
    }
    refused(&login(&server, "alice", PASSWORD, recovery(&alice, 0), None).await);

    let cookie = cookie_of(
        login(&server, "alice", PASSWORD, recovery(&alice, 0), alice.device_cookie.as_deref()).await,
    );
    for guess in 0..3 {
        refused(
            &login(&server, "alice", &format!("known guess {guess}"), recovery(&alice, 1), Some(&cookie))
                .await,
        );
    }
    refused(&login(&server, "alice", PASSWORD, recovery(&alice, 1), Some(&cookie)).await);

    let entries = audit(&server);
    assert_eq!(failures_by_reason(&entries, "wrong_password"), 6, "3 judged on each side");
    assert_eq!(failures_by_reason(&entries, "backed_off"), 2);
}

/// Revoking a session (a lost phone) also forgets the device cookie issued
/// with it: that device is unknown from then on and shares the account's
/// untrusted back-off, while the other devices stay known.
async fn revoking_a_session_forgets_its_device_cookie(backend: Backend) {
    let server = server(backend, &["--login-max-failures", "1", "--login-backoff-secs", "600"]).await;
    let (alice, mut laptop) = Account::register(&server, "alice", PASSWORD).await;
    let phone = login(&server, "alice", PASSWORD, recovery(&alice, 0), None).await;
    let Ok(Reply::LoggedIn { session_id, device_cookie: Some(phone_cookie), .. }) = phone else {
        panic!("{phone:?}")
    };
    laptop.ok(Request::RevokeSession { session_id }).await;

    refused(&login(&server, "alice", "the attacker's guess", recovery(&alice, 1), None).await);
    refused(&login(&server, "alice", PASSWORD, recovery(&alice, 1), Some(&phone_cookie)).await);
    cookie_of(login(&server, "alice", PASSWORD, recovery(&alice, 1), alice.device_cookie.as_deref()).await);
}
