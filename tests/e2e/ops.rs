//! What an operator sees: TLS 1.3 only, health and metrics (on their own
//! listener), clean shutdown, restarts that keep everything, a certificate
//! renewed for the same key kept by clients, and a changed key refused.

use crate::{PASSWORD, bin, server};
use conclave_proto::{Event, Request, ServerFrame};
use conclave_server::process::ProcessSample;
use conclave_testkit::{
    Backend, Home, RawClient, ServerProcess, backend_tests, code_now, http_get, https_get, tls12_handshake,
};
use sha2::{Digest, Sha256};

backend_tests!(
    only_tls13_is_spoken,
    health_and_metrics_are_served,
    shutdown_is_clean_and_restart_keeps_accounts_sessions_and_certificate,
    a_changed_certificate_is_a_hard_error,
    first_contact_needs_an_accepted_fingerprint,
    metrics_are_not_on_the_public_port,
    the_self_signed_certificate_is_valid_for_a_year,
    a_certificate_reissued_for_the_same_key_keeps_pinned_clients_working,
    a_certificate_pin_of_an_earlier_version_moves_to_the_key,
);

/// A TLS 1.2-only client cannot connect; TLS 1.3 works.
async fn only_tls13_is_spoken(backend: Backend) {
    let server = server(backend, &[]).await;
    let err = tls12_handshake(server.addr, &server.fingerprint).await.expect_err("TLS 1.2 must be refused");
    assert!(err.to_lowercase().contains("version") || err.contains("alert"), "{err}");
    assert_eq!(https_get(server.addr, &server.fingerprint, "/healthz").await, (200, "ok\n".to_owned()));
}

/// `/healthz` answers 200 on the public port, and `/metrics`, on the metrics
/// listener, counts connections, logins, frames and stored messages, and times
/// their storage, in the Prometheus text format.
async fn health_and_metrics_are_served(backend: Backend) {
    let server = server(backend, &[]).await;
    let judy = Home::new(bin());
    let reg = judy.register(&server, "judy", PASSWORD);
    Home::new(bin()).login(&server, "judy", "wrong password here", &code_now(&reg.secret)).fails();
    judy.run(&["room", "create", "notes"], None).ok();
    judy.run(&["send", "#notes", "counted, not read"], None).ok();
    let (status, body) = http_get(server.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "conclave_registrations_total 1",
        "conclave_logins_total{result=\"failed\"} 1",
        "conclave_connections 0",
        // register (which asks the registration mode first, on a connection of
        // its own), the failed login, room create, send.
        "conclave_connections_accepted_total 5",
        "conclave_connections_unauthenticated",
        "conclave_messages_total 1",
        "conclave_message_batches_total 1",
        "conclave_message_batch_seconds_count 1",
        // The one batch took less than about 4 s: it is in the last finite bucket.
        "conclave_message_batch_seconds_bucket{le=\"4.096\"} 1",
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
    assert!(body.contains("conclave_frames_in_total"), "{body}");
    // The process's own figures, under the names every exporter uses, read by
    // the kernel: a load generator elsewhere divides the CPU time by what it
    // delivered.
    let process = ProcessSample::parse(&body).unwrap_or_else(|| panic!("process_* figures in\n{body}"));
    assert!(process.cpu_secs > 0.0 && process.rss_kib > 0, "{process:?}");
    assert!(process.peak_rss_kib >= process.rss_kib && process.threads > 1 && process.fds > 3, "{process:?}");
    assert!(!body.contains("conclave_process_"), "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
}

/// Started with the soft open-files limit a shell usually gives (here 256)
/// under a hard limit of 4,096, `conclave serve` raises its soft limit to the
/// hard one, since every connection holds a descriptor; and as 4,096 is still
/// below the default `max_connections` (20,000), it says so in its log.
#[tokio::test]
async fn serve_raises_its_open_files_limit_and_warns_when_the_hard_limit_is_too_low() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let wrapper = dir.path().join("conclave-with-limits");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nulimit -Sn 256 && ulimit -Hn 4096 && exec '{}' \"$@\"\n", bin().display()),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let server = ServerProcess::start(&wrapper, Backend::Sqlite, &[]).await;
    let pid = server.pid().expect("server pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "soft limit raised to the hard one: {open_files}");
    let log = server.log_text();
    assert!(
        log.contains("the open-files limit is below max_connections") && log.contains("limit=4096"),
        "{log}"
    );
}

/// SIGTERM tells connected clients the server is going away and exits 0; after a
/// restart on the same data, the certificate is the same and sessions still work.
async fn shutdown_is_clean_and_restart_keeps_accounts_sessions_and_certificate(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let home = Home::new(bin());
    home.register(&server, "mallory", PASSWORD);
    let mut connected = RawClient::greeted(server.addr, &server.fingerprint).await;
    let before = server.fingerprint.clone();
    assert!(server.stop(), "server exits cleanly on SIGTERM");
    assert_eq!(connected.next_frame().await, Some(ServerFrame::Event { event: Event::ServerShutdown }));
    server.restart();
    assert_eq!(server.fingerprint, before, "the certificate is kept");
    let who = home.run(&["whoami", "--json"], None).ok().json();
    assert_eq!(who["user"]["username"], "mallory");
    let mut client = RawClient::greeted(server.addr, &server.fingerprint).await;
    assert_eq!(
        client.request(Request::Ping {}).await.outcome,
        conclave_proto::Outcome::Ok(conclave_proto::Reply::Pong)
    );
}

/// When the server at a known address presents another certificate, the client
/// refuses to talk to it and names both fingerprints.
async fn a_changed_certificate_is_a_hard_error(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let home = Home::new(bin());
    home.register(&server, "niaj", PASSWORD);
    server.stop();
    let impostor = server.impostor(backend).await;
    assert_ne!(impostor.fingerprint, server.fingerprint);
    let out = home.run(&["whoami"], None).fails();
    assert!(out.stderr.contains(&server.fingerprint), "{}", out.stderr);
    assert!(out.stderr.contains(&impostor.fingerprint), "{}", out.stderr);
    let again = home.login(&impostor, "niaj", PASSWORD, "123456").fails();
    assert!(again.stderr.contains(&impostor.fingerprint), "{}", again.stderr);
}

/// Without a terminal to ask and without `--accept-fingerprint`, a client does
/// not talk to an unknown server; it says how to proceed and shows the
/// fingerprint.
async fn first_contact_needs_an_accepted_fingerprint(backend: Backend) {
    let server = server(backend, &[]).await;
    let out = Home::new(bin())
        .run(
            &["login", "--server", &server.address(), "--user", "olivia", "--totp-code", "123456"],
            Some(PASSWORD),
        )
        .fails();
    assert!(out.stderr.contains("--accept-fingerprint"), "{}", out.stderr);
    assert!(out.stderr.contains(&server.fingerprint), "{}", out.stderr);
}

/// The public port no longer serves `/metrics` (404, as any unknown path),
/// while `/healthz` stays there; the metrics listener serves only `/metrics`.
async fn metrics_are_not_on_the_public_port(backend: Backend) {
    let server = server(backend, &[]).await;
    let (status, body) = https_get(server.addr, &server.fingerprint, "/metrics").await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("conclave_"), "{body}");
    assert_eq!(https_get(server.addr, &server.fingerprint, "/healthz").await.0, 200);
    let (status, body) = http_get(server.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("conclave_connections_accepted_total"), "{body}");
    assert_eq!(http_get(server.metrics_addr, "/healthz").await.0, 404);
}

/// The DER certificate in the server's `cert.pem`.
fn certificate(server: &ServerProcess) -> Vec<u8> {
    let pem = std::fs::read(server.data_dir.join("cert.pem")).expect("cert.pem");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    pem.contents
}

/// The self-signed certificate made on first start is valid from an hour
/// before it was made for 365 days (read from `cert.pem` with an X.509
/// parser), and the fingerprint the server prints is the SHA-256 of its public
/// key (SubjectPublicKeyInfo), which is what clients pin.
async fn the_self_signed_certificate_is_valid_for_a_year(backend: Backend) {
    let server = server(backend, &[]).await;
    let der = certificate(&server);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
    let validity = cert.validity();
    let span = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(span, 365 * 86_400 + 3_600, "a year, from an hour before it was made");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let now = i64::try_from(now).expect("time");
    assert!((validity.not_before.timestamp() - (now - 3_600)).abs() < 120, "made just now");
    assert_eq!(hex::encode(Sha256::digest(cert.public_key().raw)), server.fingerprint);
    assert_ne!(hex::encode(Sha256::digest(&der)), server.fingerprint, "the key, not the certificate");
}

/// The renewal path: a client pins the server, then the server's certificate
/// is issued anew for the same key — what the server does by itself 30 days
/// before expiry, and at start when `cert.pem` is gone but `key.pem` is kept.
/// The new certificate differs, the printed fingerprint does not, and the
/// client's saved session works with no question asked.
async fn a_certificate_reissued_for_the_same_key_keeps_pinned_clients_working(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let home = Home::new(bin());
    home.register(&server, "wilhelmina", PASSWORD);
    let (before, fingerprint) = (certificate(&server), server.fingerprint.clone());
    assert!(server.stop());
    std::fs::remove_file(server.data_dir.join("cert.pem")).expect("remove cert.pem");
    server.restart();
    assert_ne!(certificate(&server), before, "a new certificate");
    assert_eq!(server.fingerprint, fingerprint, "for the same key");
    let who = home.run(&["whoami", "--json"], None).ok().json();
    assert_eq!(who["user"]["username"], "wilhelmina");
}

/// A `known_hosts` line written by an earlier version holds the SHA-256 of the
/// whole certificate. It still connects to that certificate, and the
/// connection replaces it with the key's fingerprint, so the client keeps
/// working once the certificate is renewed.
async fn a_certificate_pin_of_an_earlier_version_moves_to_the_key(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let home = Home::new(bin());
    home.register(&server, "xavier", PASSWORD);
    let known_hosts = home.path().join("known_hosts");
    let certificate_pin = hex::encode(Sha256::digest(certificate(&server)));
    std::fs::write(&known_hosts, format!("{} {certificate_pin}\n", server.address())).expect("write");
    let who = home.run(&["whoami", "--json"], None).ok().json();
    assert_eq!(who["user"]["username"], "xavier");
    let line = std::fs::read_to_string(&known_hosts).expect("known_hosts");
    assert_eq!(line, format!("{} {}\n", server.address(), server.fingerprint), "moved to the key");
    assert!(server.stop());
    std::fs::remove_file(server.data_dir.join("cert.pem")).expect("remove cert.pem");
    server.restart();
    home.run(&["whoami"], None).ok();
}
