//! Several processes on one client home at once — a running `listen` or
//! `chat` next to CLI commands, as people use it. Every process reads the
//! device's MLS state inside one write transaction of its MLS store before it
//! encrypts or applies anything, and writes it back in the same transaction,
//! so two processes can never encrypt with the same ratchet generation (which
//! would reuse an AES-GCM key and nonce), and each log entry is applied by
//! exactly one of them.

use crate::{PASSWORD, bin, server};
use conclave_testkit::{Backend, Home, backend_tests};
use serde_json::Value;

backend_tests!(two_processes_on_one_home_never_reuse_a_secret_and_every_message_is_read);

/// `history --json` of `target` as `sender: text` lines, in room order.
fn texts(home: &Home, target: &str) -> Vec<String> {
    let out = home.run(&["history", target, "--limit", "500", "--json"], None).ok();
    out.stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("JSON line");
            format!(
                "{}: {}",
                v["sender"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap_or("<unreadable>")
            )
        })
        .collect()
}

/// Alice's home runs `listen` while two more of its processes send and a
/// third sends typing signals, all at once, round after round, between Bob's
/// messages. Bob (one process, logging every decryption failure) reads every
/// one of Alice's messages, none undecryptable and no secret used twice; both
/// homes' histories hold the whole conversation in one order.
async fn two_processes_on_one_home_never_reuse_a_secret_and_every_message_is_read(backend: Backend) {
    let server = server(backend, &[]).await;
    let (alice, bob) = (Home::new(bin()), Home::new(bin()));
    alice.register(&server, "alice", PASSWORD);
    bob.register(&server, "bob", PASSWORD);
    alice.run(&["room", "create", "team"], None).ok();
    alice.run(&["room", "invite", "team", "bob"], None).ok();
    let alice_listens = alice.spawn(&["--log-level", "debug", "listen", "--json"]);
    let bob_listens = bob.spawn(&["--log-level", "debug", "listen", "--json"]);
    const ROUNDS: usize = 6;
    let mut expected = Vec::new();
    for round in 0..ROUNDS {
        let (first, second) = (format!("a{round}-first"), format!("a{round}-second"));
        std::thread::scope(|threads| {
            threads.spawn(|| alice.run(&["send", "#team", &first], None).ok());
            threads.spawn(|| alice.run(&["send", "#team", &second], None).ok());
            threads.spawn(|| alice.run(&["typing", "#team"], None).ok());
        });
        expected.push(format!("alice: {first}"));
        expected.push(format!("alice: {second}"));
        let reply = format!("b{round}");
        bob.run(&["send", "#team", &reply], None).ok();
        expected.push(format!("bob: {reply}"));
    }
    // Each listen shows the other's messages (a device's own come back unshown).
    let last = ROUNDS - 1;
    let finals = [format!("a{last}-first"), format!("a{last}-second")];
    let mut shown = std::collections::HashSet::new();
    while shown.len() < finals.len() {
        let line = bob_listens
            .wait_for(60, |line| finals.iter().any(|text| line.contains(text.as_str())))
            .unwrap_or_else(|| {
                panic!("bob's listen never showed {finals:?}; stderr:\n{}", bob_listens.stderr())
            });
        shown.extend(finals.iter().filter(|text| line.contains(text.as_str())).cloned());
    }
    let text = format!("b{last}");
    alice_listens
        .wait_for(60, |line| line.contains(&text))
        .unwrap_or_else(|| panic!("alice's listen never showed {text}; stderr:\n{}", alice_listens.stderr()));

    let seen_by_bob = texts(&bob, "#team");
    let seen_by_alice = texts(&alice, "#team");
    assert_eq!(seen_by_bob, seen_by_alice, "one order for both");
    let mut sorted_seen = seen_by_bob.clone();
    sorted_seen.sort();
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(sorted_seen, sorted_expected, "every message once, each readable");
    for (who, listener) in [("bob", &bob_listens), ("alice", &alice_listens)] {
        let log = listener.stderr();
        for failure in ["cannot decrypt", "SecretReuse", "out of bounds", "unreadable signal", "broken"] {
            assert!(!log.contains(failure), "{who}'s listen logged {failure:?}:\n{log}");
        }
    }
}
