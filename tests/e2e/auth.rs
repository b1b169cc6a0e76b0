//! Accounts through the CLI: registration, login with TOTP or recovery codes,
//! generic failures, back-off, sessions and logout; what a password is (NFC,
//! bounded, no NUL).

use crate::{PASSWORD, bin, server};
use conclave_proto::{ErrorCode, Request, SecondFactor};
use conclave_testkit::{
    Account, Backend, Home, RawClient, ServerProcess, backend_tests, code_now, code_previous_step, new_secret,
};

backend_tests!(
    register_login_whoami_logout,
    failures_are_generic_and_codes_work_once,
    backoff_refuses_even_correct_logins_and_ends,
    recovery_codes_work_once,
    sessions_are_listed_and_revoked,
    registration_validates_everything,
    composition_policy_is_a_setting,
    a_password_is_the_same_password_in_any_unicode_normalisation,
    a_hash_made_before_normalisation_is_upgraded_at_its_next_login,
    unusable_passwords_are_refused_without_hashing,
);

/// A user registers (and is logged in), a second device logs in with password and
/// a fresh TOTP code, both see who they are, and after `logout` the session no
/// longer works.
async fn register_login_whoami_logout(backend: Backend) {
    let server = server(backend, &[]).await;
    let laptop = Home::new(bin());
    let reg = laptop.register(&server, "Alice", PASSWORD);
    assert_eq!(reg.recovery_codes.len(), 10);
    assert!(reg.recovery_codes.iter().all(|c| c.len() == 19));

    let who = laptop.run(&["whoami", "--json"], None).ok().json();
    assert_eq!(who["user"]["username"], "alice", "usernames are case-insensitive, stored in lower case");

    let phone = Home::new(bin());
    let login = phone.login(&server, "ALICE", PASSWORD, &code_now(&reg.secret)).ok().json();
    assert_eq!(login["user"]["username"], "alice");
    assert_eq!(login["recovery_codes_left"], 10);
    let phone_who = phone.run(&["whoami", "--json"], None).ok().json();
    assert_eq!(phone_who["session_id"], login["session_id"]);
    assert_ne!(phone_who["session_id"], who["session_id"], "each login is a new session");

    phone.run(&["logout"], None).ok();
    let after = phone.run(&["whoami"], None).fails();
    assert!(after.stderr.contains("not logged in") || after.stderr.contains("log in"), "{}", after.stderr);
    laptop.run(&["whoami"], None).ok();
}

/// Unknown user, wrong password and wrong code all fail with one identical
/// message; a TOTP code that was used once is refused the second time.
async fn failures_are_generic_and_codes_work_once(backend: Backend) {
    let server = server(backend, &[]).await;
    let home = Home::new(bin());
    let reg = home.register(&server, "bob", PASSWORD);
    let other = Home::new(bin());

    let code = code_now(&reg.secret);
    let unknown = other.login(&server, "nobody", PASSWORD, &code).fails().stderr;
    let wrong_password = other.login(&server, "bob", "not the password", &code).fails().stderr;
    let wrong_code = other.login(&server, "bob", PASSWORD, &wrong(&code)).fails().stderr;
    assert_eq!(unknown, wrong_password);
    assert_eq!(unknown, wrong_code);
    assert!(unknown.contains("login failed"), "{unknown}");

    other.login(&server, "bob", PASSWORD, &code).ok();
    let replay = Home::new(bin()).login(&server, "bob", PASSWORD, &code).fails().stderr;
    assert_eq!(replay, unknown, "a reused code fails like any other failure");
    let older =
        Home::new(bin()).login(&server, "bob", PASSWORD, &code_previous_step(&reg.secret)).fails().stderr;
    assert_eq!(older, unknown, "a step before the last used one is refused");
}

/// After the configured number of failures, even a correct login is refused
/// (with the same generic message), and the back-off ends by itself.
async fn backoff_refuses_even_correct_logins_and_ends(backend: Backend) {
    let server = server(
        backend,
        &["--login-max-failures", "3", "--login-backoff-secs", "3", "--login-backoff-max-secs", "3"],
    )
    .await;
    let reg = Home::new(bin()).register(&server, "carol", PASSWORD);
    let home = Home::new(bin());
    let generic = home.login(&server, "carol", "wrong password 1", "000000").fails().stderr;
    for attempt in 2..=3 {
        let out = home.login(&server, "carol", &format!("wrong password {attempt}"), "000000").fails();
        assert_eq!(out.stderr, generic);
    }
    let refused = home.login(&server, "carol", PASSWORD, &code_now(&reg.secret)).fails();
    assert_eq!(refused.stderr, generic, "a backed-off account looks like any failure");

    std::thread::sleep(std::time::Duration::from_millis(4_500));
    home.login(&server, "carol", PASSWORD, &code_now(&reg.secret)).ok();
}

/// A recovery code replaces the TOTP code once; the second use fails.
async fn recovery_codes_work_once(backend: Backend) {
    let server = server(backend, &[]).await;
    let reg = Home::new(bin()).register(&server, "dave", PASSWORD);
    let code = reg.recovery_codes[3].to_uppercase();
    let first = Home::new(bin()).login_recovery(&server, "dave", PASSWORD, &code).ok().json();
    assert_eq!(first["recovery_codes_left"], 9);
    let second = Home::new(bin()).login_recovery(&server, "dave", PASSWORD, &code).fails();
    assert!(second.stderr.contains("login failed"), "{}", second.stderr);
    Home::new(bin()).login_recovery(&server, "dave", PASSWORD, &reg.recovery_codes[4]).ok();
}

/// A user lists their sessions (the current one marked) and revokes another
/// device's session, which then stops working.
async fn sessions_are_listed_and_revoked(backend: Backend) {
    let server = server(backend, &[]).await;
    let laptop = Home::new(bin());
    let reg = laptop.register(&server, "erin", PASSWORD);
    let phone = Home::new(bin());
    let phone_session =
        phone.login(&server, "erin", PASSWORD, &code_now(&reg.secret)).ok().json()["session_id"].clone();

    let list = laptop.run(&["sessions", "--json"], None).ok().json();
    let list = list.as_array().expect("array of sessions");
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list.iter().any(|s| s["id"] == phone_session));

    let id = phone_session.as_str().expect("id");
    laptop.run(&["sessions", "--revoke", id], None).ok();
    phone.run(&["whoami"], None).fails();
    laptop.run(&["whoami"], None).ok();
    let list = laptop.run(&["sessions", "--json"], None).ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    laptop.run(&["sessions", "--revoke", id], None).fails();
}

/// Registration refuses bad usernames, weak passwords (with the reason), a
/// confirming code that does not match the secret (and then no account exists),
/// and a taken username in any case.
async fn registration_validates_everything(backend: Backend) {
    let server = server(backend, &[]).await;
    let home = Home::new(bin());
    let register = |user: &str, password: &str, secret: &str, code: &str| {
        home.run(
            &[
                "register",
                "--server",
                &server.address(),
                "--user",
                user,
                "--totp-secret",
                secret,
                "--totp-code",
                code,
                "--accept-fingerprint",
                &server.fingerprint,
            ],
            Some(password),
        )
    };
    let secret = new_secret();
    let code = code_previous_step(&secret);
    for (user, password, reason) in [
        ("frank", "short", "at least 8"),
        ("frank", "password123", "common"),
        ("frank", "my frank password", "username"),
        ("frank", &"x".repeat(1025), "at most 1024"),
    ] {
        let out = register(user, password, &secret, &code).fails();
        assert!(out.stderr.contains(reason), "{reason}: {}", out.stderr);
    }
    let bad_name = register("no spaces allowed", PASSWORD, &secret, &code).fails();
    assert!(bad_name.stderr.to_lowercase().contains("username"), "{}", bad_name.stderr);

    let mismatch = register("frank", PASSWORD, &secret, &wrong(&code)).fails();
    assert!(mismatch.stderr.contains("code"), "{}", mismatch.stderr);
    Home::new(bin()).login(&server, "frank", PASSWORD, &code_now(&secret)).fails();

    register("frank", PASSWORD, &secret, &code).ok();
    let taken = Home::new(bin());
    let other_secret = new_secret();
    let out = taken
        .run(
            &[
                "register",
                "--server",
                &server.address(),
                "--user",
                "FRANK",
                "--totp-secret",
                &other_secret,
                "--totp-code",
                &code_previous_step(&other_secret),
                "--accept-fingerprint",
                &server.fingerprint,
            ],
            Some(PASSWORD),
        )
        .fails();
    assert!(out.stderr.contains("taken"), "{}", out.stderr);
}

/// `--password-policy composition` adds the classic rule; the default does not.
async fn composition_policy_is_a_setting(backend: Backend) {
    let server = server(backend, &["--password-policy", "composition"]).await;
    let home = Home::new(bin());
    let secret = new_secret();
    let args = |user: &'static str, code: &str| {
        vec![
            "register".to_owned(),
            "--server".to_owned(),
            server.address(),
            "--user".to_owned(),
            user.to_owned(),
            "--totp-secret".to_owned(),
            secret.clone(),
            "--totp-code".to_owned(),
            code.to_owned(),
            "--accept-fingerprint".to_owned(),
            server.fingerprint.clone(),
        ]
    };
    let code = code_previous_step(&secret);
    let refused = home
        .run(&args("grace", &code).iter().map(String::as_str).collect::<Vec<_>>(), Some(PASSWORD))
        .fails();
    assert!(refused.stderr.contains("upper-case"), "{}", refused.stderr);
    home.run(
        &args("grace", &code).iter().map(String::as_str).collect::<Vec<_>>(),
        Some("Violet-staple-0rbit"),
    )
    .ok();
}

/// A login request with a recovery code and no device cookie.
fn login_request(username: &str, password: &str, account: &Account, code: usize) -> Request {
    Request::Login {
        username: username.into(),
        password: password.into(),
        second_factor: SecondFactor::Recovery(account.recovery_codes[code].clone()),
        device_cookie: None,
    }
}

/// Passwords are compared in Unicode NFC: one registered with its accents
/// decomposed (as some systems type them) logs in typed composed, and the
/// other way round; a different password still fails.
async fn a_password_is_the_same_password_in_any_unicode_normalisation(backend: Backend) {
    let server = server(backend, &[]).await;
    let composed = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e 42";
    let decomposed = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e 42";
    assert_ne!(composed.as_bytes(), decomposed.as_bytes());
    let (nina, _) = Account::register(&server, "nina", decomposed).await;
    let (omar, _) = Account::register(&server, "omar", composed).await;
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    client.ok(login_request("nina", composed, &nina, 0)).await;
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    client.ok(login_request("omar", decomposed, &omar, 0)).await;
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let other = "cafe creme brulee 42";
    assert_eq!(client.fails(login_request("omar", other, &omar, 1)).await, ErrorCode::AuthFailed);
}

/// An account whose hash predates password normalisation — a hash of the
/// password exactly as it was sent, here with decomposed accents — logs in
/// with the password as it was typed then (and, until then, only so); that
/// login replaces the hash with one of the NFC form, so from then on the
/// password works in either form.
async fn a_hash_made_before_normalisation_is_upgraded_at_its_next_login(backend: Backend) {
    use argon2::{PasswordHasher, password_hash::SaltString};
    let server = server(backend, &[]).await;
    let (lena, _) = Account::register(&server, "lena", PASSWORD).await;
    let composed = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e 42";
    let decomposed = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e 42";
    let params = argon2::Params::new(19_456, 2, 1, None).expect("params");
    let argon2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let old = argon2.hash_password(decomposed.as_bytes(), &salt).expect("hash").to_string();
    server
        .execute_sql(&format!(
            "UPDATE users SET password_hash = '{old}', password_nfc = FALSE WHERE username = 'lena'"
        ))
        .await;
    let nfc =
        "SELECT CAST(CASE WHEN password_nfc THEN 1 ELSE 0 END AS BIGINT) FROM users WHERE username = 'lena'";

    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    assert_eq!(client.fails(login_request("lena", composed, &lena, 0)).await, ErrorCode::AuthFailed);
    client.ok(login_request("lena", decomposed, &lena, 0)).await;
    assert_eq!(server.query_i64(nfc).await, 1, "the hash is of the NFC form now");
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    client.ok(login_request("lena", composed, &lena, 1)).await;
}

/// A password with a NUL, or longer than 1,024 characters (a million, say),
/// is refused — `weak_password` at registration, the generic `auth_failed`
/// at login — without a single password hash being computed, as the
/// server's hash counter shows; an ordinary wrong password costs one.
async fn unusable_passwords_are_refused_without_hashing(backend: Backend) {
    let server = server(backend, &[]).await;
    let (alice, _) = Account::register(&server, "alice", PASSWORD).await;
    let hashes = || server.metric("conclave_password_hashes_total");
    let before = hashes().await;
    // Ten times the limit; a frame over 16 KiB before login (a password of a
    // million characters) does not even reach the handler: the connection is
    // closed with 1009 (`protocol::messages_before_login_are_bounded_to_16_kib`).
    let huge = "x".repeat(10_000);
    let unusable = ["with a \0 inside it".to_owned(), huge, "y".repeat(1025)];
    for password in &unusable {
        let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
        let secret = new_secret();
        let register = Request::Register {
            username: "bob".into(),
            password: password.clone(),
            totp_code: code_now(&secret),
            totp_secret: secret,
            registration_token: None,
        };
        assert_eq!(client.fails(register).await, ErrorCode::WeakPassword);
        assert_eq!(client.fails(login_request("alice", password, &alice, 0)).await, ErrorCode::AuthFailed);
    }
    assert_eq!(hashes().await, before, "nothing was hashed");
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    assert_eq!(
        client.fails(login_request("alice", "an ordinary wrong one", &alice, 0)).await,
        ErrorCode::AuthFailed
    );
    assert_eq!(hashes().await, before + 1.0);
    assert_same_message(&server, &alice).await;
}

/// The message of a login refused for an unusable password is the one every
/// failure gets.
async fn assert_same_message(server: &ServerProcess, alice: &Account) {
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let long = client.request(login_request("alice", &"z".repeat(2000), alice, 0)).await;
    let wrong = client.request(login_request("alice", "plainly wrong password", alice, 0)).await;
    assert_eq!(long.outcome, wrong.outcome);
}

/// A six-digit code that differs from `code`.
fn wrong(code: &str) -> String {
    code.chars().map(|c| if c == '9' { '0' } else { char::from(c as u8 + 1) }).collect()
}
