//! Who may register: the `registration` setting (open, invite, closed), the
//! operator's registration tokens (`conclave admin registration-token`), and
//! the per-address registration rate.

use crate::{PASSWORD, bin, server};
use conclave_proto::{ErrorBody, ErrorCode, Outcome, RegistrationMode, Reply, Request, SecondFactor};
use conclave_testkit::{
    Account, Backend, Home, Output, RawClient, ServerProcess, backend_tests, code_now, leak, new_secret,
};

backend_tests!(
    the_hello_reply_names_the_registration_mode,
    closed_registration_refuses_everyone_before_anything_else,
    invite_registration_needs_a_usable_token,
    registrations_are_rate_limited_per_address_apart_from_logins,
);

/// `register` on a fresh connection, with a fresh TOTP secret and its code.
async fn register(
    server: &ServerProcess,
    username: &str,
    password: &str,
    token: Option<&str>,
) -> Result<Reply, ErrorBody> {
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let secret = new_secret();
    let request = Request::Register {
        username: username.into(),
        password: password.into(),
        totp_code: code_now(&secret),
        totp_secret: secret,
        registration_token: token.map(str::to_owned),
    };
    match client.request(request).await.outcome {
        Outcome::Ok(reply) => Ok(reply),
        Outcome::Error(body) => Err(body),
    }
}

#[track_caller]
fn code(result: &Result<Reply, ErrorBody>) -> ErrorCode {
    match result {
        Err(body) => body.code,
        Ok(reply) => panic!("registration unexpectedly succeeded: {reply:?}"),
    }
}

/// `conclave admin registration-token ARGS` on the server's storage.
fn tokens(server: &ServerProcess, args: &[&str]) -> Output {
    let mut all: Vec<String> = ["admin", "registration-token"].iter().map(|s| (*s).to_owned()).collect();
    all.extend(args.iter().map(|s| (*s).to_owned()));
    all.extend(server.storage_args());
    Home::new(bin()).run(&all.iter().map(String::as_str).collect::<Vec<_>>(), None)
}

/// A new token: (token, id).
fn create_token(server: &ServerProcess, args: &[&str]) -> (String, String) {
    let mut all = vec!["create", "--json"];
    all.extend(args);
    let created = tokens(server, &all).ok().json();
    let token = created["token"].as_str().expect("token").to_owned();
    (token, created["id"].as_str().expect("id").to_owned())
}

fn state_of(server: &ServerProcess, id: &str) -> (serde_json::Value, serde_json::Value) {
    let list = tokens(server, &["list", "--json"]).ok().json();
    let entry = list.as_array().expect("array").iter().find(|t| t["id"] == id).expect("listed").clone();
    (entry["state"].clone(), entry["uses"].clone())
}

/// `conclave register` through the CLI, non-interactively.
fn cli_register(server: &ServerProcess, user: &str, token: Option<&str>) -> Output {
    let secret = new_secret();
    let code = conclave_testkit::code_previous_step(&secret);
    let mut args = vec![
        "register",
        "--server",
        &server.address(),
        "--user",
        user,
        "--totp-secret",
        &secret,
        "--totp-code",
        &code,
        "--accept-fingerprint",
        &server.fingerprint,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    if let Some(token) = token {
        args.extend(["--token".to_owned(), token.to_owned()]);
    }
    Home::new(bin()).run(&args.iter().map(String::as_str).collect::<Vec<_>>(), Some(PASSWORD))
}

/// A client learns from `hello` who may register, before it asks anything.
async fn the_hello_reply_names_the_registration_mode(backend: Backend) {
    for (flag, mode) in [
        ("open", RegistrationMode::Open),
        ("invite", RegistrationMode::Invite),
        ("closed", RegistrationMode::Closed),
    ] {
        let server = server(backend, &["--registration", flag]).await;
        let mut client = RawClient::connect(server.addr, &server.fingerprint).await;
        let hello = Request::Hello { versions: vec![conclave_proto::PROTOCOL_VERSION], client: "e2e".into() };
        let reply = client.ok(hello).await;
        assert!(matches!(reply, Reply::Hello { registration, .. } if registration == mode), "{reply:?}");
    }
}

/// With `registration = "closed"` every registration is refused with
/// `registration_closed` — before the username is even looked at — and the
/// CLI says so before asking for a password or enrolling a secret.
async fn closed_registration_refuses_everyone_before_anything_else(backend: Backend) {
    let server = server(backend, &["--registration", "closed"]).await;
    assert_eq!(code(&register(&server, "alice", PASSWORD, None).await), ErrorCode::RegistrationClosed);
    assert_eq!(
        code(&register(&server, "no spaces allowed", "short", None).await),
        ErrorCode::RegistrationClosed
    );
    let out = cli_register(&server, "alice", None).fails();
    assert!(out.stderr.contains("registration is closed"), "{}", out.stderr);
    assert!(!out.stdout.contains("Recovery codes"), "{}", out.stdout);
}

/// With `registration = "invite"` a registration needs a token the operator
/// created: a missing, wrong, used-up, revoked or expired token gets the one
/// code `invalid_registration_token` with one message; a good one works as
/// many times as it allows (through the CLI's `--token` too). Uses are
/// counted in `list`, every step is audited, and the token is stored only as
/// a hash.
async fn invite_registration_needs_a_usable_token(backend: Backend) {
    let mut server = server(backend, &["--registration", "invite"]).await;
    let (token, id) = create_token(&server, &["--uses", "2"]);
    let (secret_part, wrong) = {
        let (_, secret) = token.split_once('-').expect("id-secret");
        let flipped: String = secret.chars().rev().collect();
        (secret.to_owned(), format!("{id}-{flipped}"))
    };

    let missing = register(&server, "alice", PASSWORD, None).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::InvalidRegistrationToken);
    for bad in [wrong.as_str(), "0a1b2c3d4e5f-abcdefghijklmnopqrstuvwxyz", "nonsense"] {
        let refused = register(&server, "alice", PASSWORD, Some(bad)).await.unwrap_err();
        assert_eq!(refused, missing, "{bad}: one refusal for every unusable token");
    }
    assert!(register(&server, "alice", PASSWORD, Some(&token)).await.is_ok());
    assert_eq!(state_of(&server, &id), ("usable".into(), 1.into()));
    let without = cli_register(&server, "bob", None).fails();
    assert!(without.stderr.contains("--token"), "{}", without.stderr);
    cli_register(&server, "bob", Some(&token)).ok();
    assert_eq!(state_of(&server, &id), ("used up".into(), 2.into()));
    assert_eq!(register(&server, "carol", PASSWORD, Some(&token)).await.unwrap_err(), missing, "used up");

    let (revoked, revoked_id) = create_token(&server, &["--uses", "5"]);
    tokens(&server, &["revoke", &revoked_id]).ok();
    assert_eq!(register(&server, "carol", PASSWORD, Some(&revoked)).await.unwrap_err(), missing, "revoked");
    assert_eq!(state_of(&server, &revoked_id).0, "revoked");
    tokens(&server, &["revoke", &revoked_id]).fails();

    let (expiring, expiring_id) = create_token(&server, &["--expires", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    assert_eq!(register(&server, "carol", PASSWORD, Some(&expiring)).await.unwrap_err(), missing, "expired");
    assert_eq!(state_of(&server, &expiring_id), ("expired".into(), 0.into()));

    let mut args = vec!["admin".to_owned(), "audit".to_owned(), "--json".to_owned()];
    args.extend(server.storage_args());
    let audit = Home::new(bin()).run(&args.iter().map(String::as_str).collect::<Vec<_>>(), None).ok().stdout;
    let count =
        |action: &str| audit.lines().filter(|l| l.contains(&format!("\"action\":\"{action}\""))).count();
    assert_eq!(
        (
            count("registration_token_created"),
            count("registration_token_used"),
            count("registration_token_revoked")
        ),
        (3, 2, 1),
        "{audit}"
    );
    server.stop();
    leak::assert_absent(&server, token.as_bytes()).await;
    leak::assert_absent(&server, secret_part.as_bytes()).await;
}

/// Registration attempts from one address are limited per hour
/// (`registrations_per_hour`), refused with `rate_limited`; logins from the
/// same address are limited apart from them and still work.
async fn registrations_are_rate_limited_per_address_apart_from_logins(backend: Backend) {
    let server = server(backend, &["--registrations-per-hour", "2"]).await;
    let (alice, _) = Account::register(&server, "alice", PASSWORD).await;
    assert_eq!(code(&register(&server, "bob", "short", None).await), ErrorCode::WeakPassword);
    assert_eq!(code(&register(&server, "carol", PASSWORD, None).await), ErrorCode::RateLimited);
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    client
        .ok(Request::Login {
            username: "alice".into(),
            password: PASSWORD.into(),
            second_factor: SecondFactor::Recovery(alice.recovery_codes[0].clone()),
            device_cookie: None,
        })
        .await;
}
