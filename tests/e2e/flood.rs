//! Floods before login: connections that never say `hello`, from one address
//! or from several, against the real server's caps. The whole 127.0.0.0/8
//! reaches a server on 127.0.0.1, so the flood comes from 127.0.0.2 and up
//! while the legitimate client connects from 127.0.0.1.

use crate::{PASSWORD, bin, server};
use conclave_proto::{Outcome, PROTOCOL_VERSION, Reply, Request};
use conclave_testkit::{Account, Backend, Home, RawClient, ServerProcess, backend_tests, code_now, http_get};
use std::net::IpAddr;

backend_tests!(one_address_is_capped_and_another_client_still_logs_in);

/// Deadlines long enough that no flood connection times out during a test:
/// what is held, is held by the caps alone.
const NO_DEADLINES: [&str; 4] = ["--hello-timeout-secs", "600", "--auth-timeout-secs", "600"];

/// Opens `count` WebSocket connections from `source` that send nothing, 50 at
/// a time; returns the ones the server kept and the errors of the others.
async fn flood(server: &ServerProcess, source: IpAddr, count: usize) -> (Vec<RawClient>, Vec<String>) {
    let (mut held, mut refused) = (Vec::new(), Vec::new());
    let mut left = count;
    while left > 0 {
        let batch = left.min(50);
        left -= batch;
        let attempts =
            (0..batch).map(|_| RawClient::try_connect_from(Some(source), server.addr, &server.fingerprint));
        for attempt in futures_util::future::join_all(attempts).await {
            match attempt {
                Ok(client) => held.push(client),
                Err(err) => refused.push(err),
            }
        }
    }
    (held, refused)
}

/// A connection the server closed before its TLS handshake: the handshake
/// sees the connection end (or reset), never a certificate or an HTTP answer.
fn closed_before_tls(error: &str) -> bool {
    error.starts_with("TLS: ")
}

/// The value of the metric line starting with `name ` in `/metrics`.
async fn metric(server: &ServerProcess, name: &str) -> Option<u64> {
    let (status, body) = http_get(server.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    body.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// 2,000 idle pre-hello connections from one address, with a per-address cap
/// of 50: the server keeps exactly 50, and closes each of the other 1,950
/// right after accepting it, before its TLS handshake. Meanwhile a client on
/// another address registers and logs in with the CLI; the server logs the
/// cap once (the warning is rate-limited, with the number refused meanwhile)
/// and counts every refusal in `/metrics`.
async fn one_address_is_capped_and_another_client_still_logs_in(backend: Backend) {
    conclave_server::process::raise_open_files_limit().expect("open-files limit");
    let mut flags = vec!["--max-connections-per-address", "50"];
    flags.extend(NO_DEADLINES);
    let server = server(backend, &flags).await;
    let attacker: IpAddr = "127.0.0.2".parse().expect("address");

    let (held, refused) = flood(&server, attacker, 2_000).await;
    assert_eq!(held.len(), 50, "{:?}", refused.first());
    assert_eq!(refused.len(), 1_950);
    assert!(
        refused.iter().all(|e| closed_before_tls(e)),
        "{:?}",
        refused.iter().find(|e| !closed_before_tls(e))
    );

    let home = Home::new(bin());
    let reg = home.register(&server, "rosalind", PASSWORD);
    let login = home.login(&server, "rosalind", PASSWORD, &code_now(&reg.secret)).ok().json();
    assert_eq!(login["user"]["username"], "rosalind", "{login}");

    let log = server.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refusing connections: an address reached max_connections_per_address"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per 10 s, however many refusals:\n{log}");
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains("address=127.0.0.2")
            && warnings[0].contains("limit=50"),
        "{}",
        warnings[0]
    );
    assert_eq!(
        metric(&server, "conclave_connections_refused_total{reason=\"address_limit\"}").await,
        Some(1_950)
    );
    drop(held);
}

/// At the default caps (256 per address), 2,000 idle pre-hello connections
/// from one address hold 256 connections and no more, and a client elsewhere
/// still registers. (SQLite only: the caps are in front of storage.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_default_caps_one_address_holds_256_connections() {
    conclave_server::process::raise_open_files_limit().expect("open-files limit");
    let server = server(Backend::Sqlite, &NO_DEADLINES).await;
    let (held, refused) = flood(&server, "127.0.0.3".parse().expect("address"), 2_000).await;
    assert_eq!((held.len(), refused.len()), (256, 1_744), "{:?}", refused.first());
    assert!(refused.iter().all(|e| closed_before_tls(e)));
    Home::new(bin()).register(&server, "sabine", PASSWORD);
    assert_eq!(metric(&server, "conclave_connections_unauthenticated").await, Some(256));
    drop(held);
}

/// The cap on connections not logged in counts every address together: with
/// 20 allowed, ten idle connections from each of two addresses fill it and a
/// third address is refused too (before TLS, with its own warning). Logging
/// in frees a connection's slot at once: the next connection is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unauthenticated_cap_counts_all_addresses_and_a_login_frees_a_slot() {
    let mut flags = vec!["--max-unauthenticated-connections", "20"];
    flags.extend(NO_DEADLINES);
    let server = server(Backend::Sqlite, &flags).await;
    // Registered first: this connection is logged in and no longer counts.
    let (account, _registered) = Account::register(&server, "tobias", PASSWORD).await;
    let (mut first, none) = flood(&server, "127.0.0.4".parse().expect("address"), 10).await;
    let (second, _) = flood(&server, "127.0.0.5".parse().expect("address"), 10).await;
    assert!(none.is_empty() && second.len() == 10);
    let third: IpAddr = "127.0.0.6".parse().expect("address");
    let (nothing, refused) = flood(&server, third, 3).await;
    assert!(nothing.is_empty() && refused.iter().all(|e| closed_before_tls(e)), "{refused:?}");
    assert!(server.log_text().contains("refusing connections: max_unauthenticated_connections"));

    let mut one = first.pop().expect("a held connection");
    let hello = one.request(Request::Hello { versions: vec![PROTOCOL_VERSION], client: "e2e".into() }).await;
    assert!(matches!(hello.outcome, Outcome::Ok(Reply::Hello { .. })), "{hello:?}");
    one.ok(Request::Authenticate { token: account.token.clone() }).await;
    let (admitted, _) = flood(&server, third, 1).await;
    assert_eq!(admitted.len(), 1, "the login gave its slot back");
    assert_eq!(
        metric(&server, "conclave_connections_refused_total{reason=\"unauthenticated_limit\"}").await,
        Some(3)
    );
    drop((first, second, admitted, one));
}
