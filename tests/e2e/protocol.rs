//! The wire protocol under malformed, hostile and concurrent input, spoken
//! directly to the real server.

use crate::{PASSWORD, bin, server};
use conclave_client::{Client, ClientError, Trust};
use conclave_proto::{
    ErrorCode, Event, Outcome, PROTOCOL_VERSION, Reply, Request, Response, SecondFactor, ServerFrame,
    event::SessionEndReason, limits::MAX_FRAME_BYTES,
};
use conclave_testkit::{
    Account, Backend, Home, RawClient, ServerProcess, backend_tests, code_now, http_get, https_get,
};
use std::time::Duration;

backend_tests!(
    hello_comes_first_and_negotiates_the_version,
    malformed_frames_get_typed_errors_and_the_connection_survives,
    oversized_messages_close_the_connection_and_the_server_survives,
    clients_refuse_requests_over_the_announced_limit,
    requests_need_authentication,
    one_code_wins_one_concurrent_login,
    logout_closes_every_connection_of_the_session,
    reconnecting_records_session_use_once_per_interval,
    requests_per_connection_are_rate_limited,
    connections_that_miss_the_hello_or_login_deadline_are_closed,
    malformed_frames_count_toward_the_rate_limit,
    invalid_utf8_closes_the_connection_with_1007,
    messages_before_login_are_bounded_to_16_kib,
);

fn error_code(response: &Response) -> Option<ErrorCode> {
    match &response.outcome {
        Outcome::Error(body) => Some(body.code),
        Outcome::Ok(_) => None,
    }
}

fn hello(versions: Vec<u32>) -> Request {
    Request::Hello { versions, client: "e2e".into() }
}

/// Nothing but `hello` is accepted first; a client with no common version is
/// told so; `hello` cannot be repeated.
async fn hello_comes_first_and_negotiates_the_version(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut client = RawClient::connect(server.addr, &server.fingerprint).await;
    assert_eq!(error_code(&client.request(Request::Whoami {}).await), Some(ErrorCode::HelloRequired));
    assert_eq!(error_code(&client.request(hello(vec![99, 100])).await), Some(ErrorCode::UnsupportedVersion));
    let ok = client.request(hello(vec![99, PROTOCOL_VERSION])).await;
    assert!(matches!(ok.outcome, Outcome::Ok(Reply::Hello { version: PROTOCOL_VERSION, .. })), "{ok:?}");
    assert_eq!(
        error_code(&client.request(hello(vec![PROTOCOL_VERSION])).await),
        Some(ErrorCode::AlreadyGreeted)
    );
}

/// Invalid JSON, unknown request types, unknown fields and binary messages each
/// get a `bad_request` (with the request id when it could be read), and the same
/// connection keeps working.
async fn malformed_frames_get_typed_errors_and_the_connection_survives(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let cases = [
        ("not json at all".to_owned(), 0),
        (r#"{"id":5,"request":{"type":"launch_missiles"}}"#.to_owned(), 5),
        (r#"{"id":6,"request":{"type":"ping","extra":true}}"#.to_owned(), 6),
        (r#"{"id":7,"request":{"type":"ping"}} trailing"#.to_owned(), 0),
        (r#"{"id":8}"#.to_owned(), 8),
    ];
    for (text, id) in cases {
        client.send_text(text.clone()).await;
        match client.next_frame().await {
            Some(ServerFrame::Response(response)) => {
                assert_eq!(response.id, id, "{text}");
                assert_eq!(error_code(&response), Some(ErrorCode::BadRequest), "{text}");
            }
            other => panic!("{text}: unexpected {other:?}"),
        }
    }
    client.send_binary(vec![0, 1, 2, 3]).await;
    let Some(ServerFrame::Response(response)) = client.next_frame().await else {
        panic!("no response to binary")
    };
    assert_eq!(error_code(&response), Some(ErrorCode::BadRequest));
    let pong = client.request(Request::Ping {}).await;
    assert_eq!(pong.outcome, Outcome::Ok(Reply::Pong));
}

/// A message over the 1 MiB limit closes that connection with code 1009
/// (message too big); the server keeps serving everyone else.
async fn oversized_messages_close_the_connection_and_the_server_survives(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut bystander = RawClient::greeted(server.addr, &server.fingerprint).await;
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let huge = format!(
        r#"{{"id":1,"request":{{"type":"hello","versions":[1],"client":"{}"}}}}"#,
        "x".repeat(MAX_FRAME_BYTES + 64 * 1024)
    );
    // The server stops reading at the frame header and closes with 1009; when it
    // does so before the client has written everything, the client sees a reset
    // instead, which may swallow the close frame.
    match client.try_send_text(huge).await {
        Ok(()) => assert!(matches!(client.close_code().await, Some(1009) | None)),
        Err(err) => assert!(err.contains("Broken pipe") || err.contains("reset"), "{err}"),
    }
    assert!(client.next_frame().await.is_none(), "the oversized connection is closed");
    assert_eq!(bystander.request(Request::Ping {}).await.outcome, Outcome::Ok(Reply::Pong));
    let mut fresh = RawClient::greeted(server.addr, &server.fingerprint).await;
    assert_eq!(fresh.request(Request::Ping {}).await.outcome, Outcome::Ok(Reply::Pong));
    assert_eq!(https_get(server.addr, &server.fingerprint, "/healthz").await.0, 200);
}

/// `hello` announces the server's frame limit, and the client library refuses a
/// larger request itself with a clear error: nothing is sent, and the connection
/// stays open and usable (the server would have closed it with 1009).
async fn clients_refuse_requests_over_the_announced_limit(backend: Backend) {
    let server = server(backend, &["--max-frame-bytes", "4096"]).await;
    let mut raw = RawClient::connect(server.addr, &server.fingerprint).await;
    let reply = raw.request(hello(vec![PROTOCOL_VERSION])).await;
    assert!(matches!(reply.outcome, Outcome::Ok(Reply::Hello { max_frame_bytes: 4096, .. })), "{reply:?}");
    let address = server.addr.to_string();
    let trust = Trust::Pinned(server.fingerprint.parse().expect("fingerprint"));
    let mut client = Client::connect(&address, trust, "e2e").await.expect("connect");
    let oversized = Request::Login {
        username: "alice".into(),
        password: "x".repeat(5000),
        second_factor: SecondFactor::Totp("000000".into()),
        device_cookie: None,
    };
    match client.request(oversized).await {
        Err(ClientError::FrameTooLarge { bytes, limit: 4096 }) => assert!(bytes > 5000, "{bytes}"),
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    client.ping().await.expect("the connection is still usable");
}

/// Account requests need a login; a junk or unknown token is refused.
async fn requests_need_authentication(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    assert_eq!(error_code(&client.request(Request::Whoami {}).await), Some(ErrorCode::NotAuthenticated));
    assert_eq!(
        error_code(&client.request(Request::ListSessions {}).await),
        Some(ErrorCode::NotAuthenticated)
    );
    for token in ["", "not a token!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let response = client.request(Request::Authenticate { token: token.into() }).await;
        assert_eq!(error_code(&response), Some(ErrorCode::SessionInvalid), "{token:?}");
    }
}

/// Two logins racing with the same TOTP code: exactly one succeeds.
async fn one_code_wins_one_concurrent_login(backend: Backend) {
    let server = server(backend, &[]).await;
    let reg = Home::new(bin()).register(&server, "heidi", PASSWORD);
    let mut a = RawClient::greeted(server.addr, &server.fingerprint).await;
    let mut b = RawClient::greeted(server.addr, &server.fingerprint).await;
    let code = code_now(&reg.secret);
    let login = || Request::Login {
        username: "heidi".into(),
        password: PASSWORD.into(),
        second_factor: SecondFactor::Totp(code.clone()),
        device_cookie: None,
    };
    let (ra, rb) = tokio::join!(a.request(login()), b.request(login()));
    let wins = [&ra, &rb].iter().filter(|r| matches!(r.outcome, Outcome::Ok(Reply::LoggedIn { .. }))).count();
    assert_eq!(wins, 1, "{ra:?} / {rb:?}");
    let loser = if error_code(&ra).is_some() { ra } else { rb };
    assert_eq!(error_code(&loser), Some(ErrorCode::AuthFailed));
}

/// `logout` on one connection ends the session on every connection using its
/// token: they receive `session_ended` and are closed.
async fn logout_closes_every_connection_of_the_session(backend: Backend) {
    let server = server(backend, &[]).await;
    let (mut first, token) = registered_and_logged_in(&server, "ivan").await;
    let mut second = RawClient::greeted(server.addr, &server.fingerprint).await;
    let auth = second.request(Request::Authenticate { token: token.clone() }).await;
    assert!(matches!(auth.outcome, Outcome::Ok(Reply::Authenticated { .. })), "{auth:?}");

    assert_eq!(first.request(Request::Logout {}).await.outcome, Outcome::Ok(Reply::Done));
    assert_eq!(
        second.next_frame().await,
        Some(ServerFrame::Event { event: Event::SessionEnded { reason: SessionEndReason::LoggedOut } })
    );
    assert_eq!(second.close_code().await, Some(1000));
    let mut third = RawClient::greeted(server.addr, &server.fingerprint).await;
    assert_eq!(
        error_code(&third.request(Request::Authenticate { token }).await),
        Some(ErrorCode::SessionInvalid)
    );
}

/// `authenticate` records use of the session (for the idle timeout) only when the
/// last record is older than half the idle timeout (at most five minutes), so a
/// crowd of clients reconnecting costs no database writes, and a session in use
/// still never idles out.
async fn reconnecting_records_session_use_once_per_interval(backend: Backend) {
    let server = server(backend, &["--session-idle-secs", "6"]).await;
    let (mut first, token) = registered_and_logged_in(&server, "judy").await;
    let logged_in_at = last_seen(&mut first).await;
    // Reconnects with a fresh connection each time; returns the recorded use.
    let reconnect = || async {
        let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
        let auth = client.request(Request::Authenticate { token: token.clone() }).await;
        assert!(matches!(auth.outcome, Outcome::Ok(Reply::Authenticated { .. })), "{auth:?}");
        last_seen(&mut client).await
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(reconnect().await, logged_in_at, "use recorded 1-2 s ago is not written again");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refreshed = reconnect().await;
    assert!(refreshed >= logged_in_at + 3, "use older than half the idle timeout is recorded");
    // Past the idle timeout counted from the login, within it from the refresh.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    reconnect().await;
}

/// Registers `username` (with the CLI) and logs in on a fresh connection;
/// returns the connection and the session token.
async fn registered_and_logged_in(server: &ServerProcess, username: &str) -> (RawClient, String) {
    let reg = Home::new(bin()).register(server, username, PASSWORD);
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let response = client
        .request(Request::Login {
            username: username.into(),
            password: PASSWORD.into(),
            second_factor: SecondFactor::Totp(code_now(&reg.secret)),
            device_cookie: None,
        })
        .await;
    let Outcome::Ok(Reply::LoggedIn { token, .. }) = response.outcome else {
        panic!("login failed: {response:?}")
    };
    (client, token)
}

/// The session's recorded last use, as `list_sessions` shows it.
async fn last_seen(client: &mut RawClient) -> i64 {
    match client.request(Request::ListSessions {}).await.outcome {
        Outcome::Ok(Reply::Sessions { sessions }) => {
            sessions.iter().find(|s| s.current).expect("the current session is listed").last_seen_at
        }
        other => panic!("list_sessions failed: {other:?}"),
    }
}

/// A connection that floods requests is told to slow down; it is not dropped.
async fn requests_per_connection_are_rate_limited(backend: Backend) {
    let server = server(backend, &["--requests-per-second", "5"]).await;
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let mut limited = 0;
    for _ in 0..40 {
        if error_code(&client.request(Request::Ping {}).await) == Some(ErrorCode::RateLimited) {
            limited += 1;
        }
    }
    assert!(limited > 0, "40 requests at once on a 5/s connection must hit the limit");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(client.request(Request::Ping {}).await.outcome, Outcome::Ok(Reply::Pong));
}

/// With a 1 s hello deadline and a 2 s login deadline, counted from the
/// upgrade: a connection that sends nothing is closed with 1008 (policy
/// violation), and so is one that greeted but did not log in, once its
/// deadline passes; a connection that logged in in time is still served after
/// both. `/metrics` counts each closing by phase.
async fn connections_that_miss_the_hello_or_login_deadline_are_closed(backend: Backend) {
    // The login deadline leaves the registration's own connection time for its
    // password hash even on a loaded machine.
    let server = server(backend, &["--hello-timeout-secs", "1", "--auth-timeout-secs", "5"]).await;
    let (account, mut registered) = Account::register(&server, "ursula", PASSWORD).await;
    let mut silent = RawClient::connect(server.addr, &server.fingerprint).await;
    let mut greeted = RawClient::greeted(server.addr, &server.fingerprint).await;
    let mut logged_in = account.connect(&server).await;
    assert_eq!(silent.close_code().await, Some(1008));
    assert_eq!(greeted.close_code().await, Some(1008));
    // Both deadlines have passed for the connections opened with these.
    assert_eq!(logged_in.request(Request::Ping {}).await.outcome, Outcome::Ok(Reply::Pong));
    assert_eq!(registered.request(Request::Ping {}).await.outcome, Outcome::Ok(Reply::Pong));
    let (_, metrics) = http_get(server.metrics_addr, "/metrics").await;
    for line in [
        "conclave_connections_timed_out_total{phase=\"hello\"} 1",
        "conclave_connections_timed_out_total{phase=\"authentication\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

/// Malformed frames cost the server a parse and an answer, so they count
/// toward the per-connection rate limit like requests: past it, garbage is
/// answered `rate_limited` instead of `bad_request`, and so is the next valid
/// request; after a pause the connection works again.
async fn malformed_frames_count_toward_the_rate_limit(backend: Backend) {
    let server = server(backend, &["--requests-per-second", "5"]).await;
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    let (mut bad_request, mut rate_limited) = (0, 0);
    for _ in 0..40 {
        client.send_text("not json at all".to_owned()).await;
        let Some(ServerFrame::Response(response)) = client.next_frame().await else { panic!("no response") };
        match error_code(&response) {
            Some(ErrorCode::BadRequest) => bad_request += 1,
            Some(ErrorCode::RateLimited) => rate_limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(bad_request > 0 && rate_limited > 0, "{bad_request} bad_request, {rate_limited} rate_limited");
    assert_eq!(error_code(&client.request(Request::Ping {}).await), Some(ErrorCode::RateLimited));
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(client.request(Request::Ping {}).await.outcome, Outcome::Ok(Reply::Pong));
}

/// A text message that is not UTF-8 closes the connection with 1007 (invalid
/// frame payload data, RFC 6455 section 8.1), before and after `hello`; the
/// server goes on serving others.
async fn invalid_utf8_closes_the_connection_with_1007(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut fresh = RawClient::connect(server.addr, &server.fingerprint).await;
    fresh.send_raw_text(vec![b'{', 0xff, 0xfe, b'}']).await;
    assert_eq!(fresh.close_code().await, Some(1007));
    let mut greeted = RawClient::greeted(server.addr, &server.fingerprint).await;
    greeted.send_raw_text(b"{\"id\":1,\"request\":{\"type\":\"ping\"}}\xc3".to_vec()).await;
    assert_eq!(greeted.close_code().await, Some(1007));
    let mut other = RawClient::greeted(server.addr, &server.fingerprint).await;
    assert_eq!(other.request(Request::Ping {}).await.outcome, Outcome::Ok(Reply::Pong));
}

/// Before login a connection may send messages of at most 16 KiB (everything
/// sent then fits in a few); a larger one closes it with 1009, while after
/// login the server's `max_frame_bytes` applies again.
async fn messages_before_login_are_bounded_to_16_kib(backend: Backend) {
    let server = server(backend, &[]).await;
    let oversized =
        |id: u64| format!(r#"{{"id":{id},"request":{{"type":"ping","pad":"{}"}}}}"#, "x".repeat(17 * 1024));
    let mut stranger = RawClient::greeted(server.addr, &server.fingerprint).await;
    stranger.send_text(oversized(2)).await;
    assert_eq!(stranger.close_code().await, Some(1009));
    let (_, mut member) = Account::register(&server, "valentin", PASSWORD).await;
    member.send_text(oversized(9)).await;
    let Some(ServerFrame::Response(response)) = member.next_frame().await else { panic!("no response") };
    assert_eq!((response.id, error_code(&response)), (9, Some(ErrorCode::BadRequest)));
}
