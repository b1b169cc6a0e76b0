//! Smoke test of `conclave-bench`: a tiny `room` run against a server started in
//! this test process, checking that the bench completes, reports the figures it
//! promises, and finds no loss. Timing figures are not asserted: targets are
//! shown by the benchmark, never by timed assertions in tests.

use conclave_server::{Config, RawConfig, Server};
use serde_json::Value;
use std::process::Command;

/// A 3-member room with one sender at 5 msg/s for 1 s: every member gets every
/// message exactly once and in order, the verifying members decrypt and check
/// content, and the JSON report carries latency, throughput and server figures,
/// the server's commit times among them. The server's process is known here
/// (it is this test's), so its figures come from `/proc`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_run_reports_no_loss() {
    let pid = std::process::id();
    let report = room_run(Some(pid)).await;
    assert_eq!(report["server"]["figures_from"], format!("/proc/{pid}"), "{report:#}");
}

/// The same run as a load generator on another machine does it: without the
/// server's process id, its memory, CPU time and open files come from the
/// `process_*` figures on its `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_elsewhere_is_measured_through_its_metrics() {
    let report = room_run(None).await;
    assert_eq!(report["server"]["figures_from"], "/metrics", "{report:#}");
    let server = &report["result"]["server"];
    assert!(server["peak_rss_kib"].as_u64().is_some_and(|v| v > 0), "{report:#}");
    assert!(server["threads"].as_u64().is_some_and(|v| v > 0), "{report:#}");
}

/// Runs the 3-member room against a server in this process, checks everything
/// but where the server's figures came from, and returns the report.
async fn room_run(server_pid: Option<u32>) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = RawConfig {
        data_dir: Some(dir.path().join("data")),
        auth_attempts_per_minute: Some(100_000),
        registrations_per_hour: Some(100_000),
        requests_per_second: Some(100_000),
        ..RawConfig::default()
    };
    let config = Config::resolve(RawConfig::default(), flags).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics_addr = metrics.local_addr().expect("address");
    let server = Server::start(config).await.expect("server start");
    let fingerprint = server.fingerprint().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(listener, metrics, async move {
        stopped.await.ok();
    }));

    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_conclave-bench"))
            .args(["--json", "--server", &addr.to_string(), "--fingerprint", &fingerprint])
            .args(["--metrics", &metrics_addr.to_string()])
            .args(server_pid.map(|pid| format!("--server-pid={pid}")))
            .args(["room", "--members", "3", "--senders", "1", "--rate", "5", "--duration", "1"])
            .args(["--verifiers", "2", "--sample", "2", "--deliver-within-s", "10"])
            .output()
            .expect("run conclave-bench")
    })
    .await
    .expect("bench task");
    stop.send(()).ok();
    serving.await.expect("server task").expect("server");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "conclave-bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    assert_eq!(report["scenario"], "room");
    let result = &report["result"];
    assert_eq!(result["offered"], 5, "{report:#}");
    assert_eq!(result["acked"], 5, "{report:#}");
    assert_eq!(result["deliveries"], 15, "3 receivers x 5 messages: {report:#}");
    assert_eq!(result["loss"]["exactly_once_in_order"], true, "{report:#}");
    assert_eq!(result["loss"]["complete_receivers"], 3, "{report:#}");
    assert!(result["content"]["decrypted"].as_u64().unwrap_or(0) >= 2, "{report:#}");
    assert_eq!(result["content"]["decrypt_failures"], 0, "{report:#}");
    assert_eq!(result["content"]["content_errors"], 0, "{report:#}");
    for field in ["p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"] {
        assert!(result["latency"][field].as_f64().is_some_and(|v| v > 0.0), "{field}: {report:#}");
    }
    assert!(result["delivered_per_s"].as_f64().is_some_and(|v| v > 0.0), "{report:#}");
    assert!(result["server"]["rss_after_kib"].as_u64().is_some_and(|v| v > 0), "{report:#}");
    assert!(result["server_cpu_us_per_delivery"].as_f64().is_some(), "{report:#}");
    // The server's own timing of the window's commits, from its /metrics: the 5
    // messages went into at least one and at most 5 commits (none before the
    // window is counted), each well within the histogram's last bucket.
    let commits = &result["server_commits"];
    assert!(commits["commits"].as_u64().is_some_and(|n| (1..=5).contains(&n)), "{report:#}");
    assert!(commits["mean_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{report:#}");
    assert!(commits["all_within_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{report:#}");
    assert!(report["machine"]["cpus"].as_u64().is_some_and(|v| v > 0), "{report:#}");
    report
}

/// `floor` needs no server: 10 connections, 20 rounds of 200 bytes each. Every
/// write is received (the scenario fails otherwise), and the report carries the
/// writer's CPU per write and the round times; then 50 page syncs in the given
/// directory, which it leaves as it found it.
#[test]
fn floor_run_writes_every_round_to_every_connection() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_conclave-bench"))
        .args(["--json", "floor", "--connections", "10", "--rate", "20", "--duration", "1", "--sync-dir"])
        .arg(dir.path())
        .output()
        .expect("run conclave-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "conclave-bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    assert_eq!(report["scenario"], "floor");
    assert_eq!(report["server"]["address"], "none", "{report:#}");
    assert_eq!(report["writes"], 200, "20 rounds x 10 connections: {report:#}");
    assert!(report["writer_cpu_us_per_write"].as_f64().is_some_and(|v| v > 0.0), "{report:#}");
    assert!(report["round_max_ms"].as_f64().is_some_and(|v| v >= 0.0), "{report:#}");
    assert_eq!(report["sync"]["count"], 50, "50 syncs a second for 1 s: {report:#}");
    assert!(report["sync"]["p50_ms"].as_f64().is_some_and(|v| v > 0.0), "{report:#}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("read the directory").collect();
    assert!(left.is_empty(), "the synced file is removed: {left:?}");
}
