//! `conclave chat`, the terminal UI, driven in a pseudo-terminal: what it
//! shows is read back through a terminal emulator, and checked against what
//! CLI users send and see.

use crate::{PASSWORD, bin, server};
use conclave_testkit::{Backend, Home, ServerProcess, Terminal, backend_tests, code_now};
use serde_json::Value;

backend_tests!(chat_sends_receives_and_survives_a_server_restart, chat_logs_in_after_the_fingerprint_prompt);

/// Registers `name` in a fresh home with the CLI.
fn user(server: &ServerProcess, name: &str) -> (Home, String) {
    let home = Home::new(bin());
    let secret = home.register(server, name, PASSWORD).secret;
    (home, secret)
}

/// `conclave chat` for `home` in an 80×24 terminal.
fn chat(home: &Home, args: &[&str]) -> Terminal {
    let mut all = vec!["chat"];
    all.extend_from_slice(args);
    let dir = home.path().to_str().expect("utf-8 path");
    Terminal::spawn(bin(), &all, &[("CONCLAVE_HOME", dir)], home.path(), 24, 80)
}

fn history(home: &Home, target: &str) -> Vec<Value> {
    let out = home.run(&["history", target, "--limit", "500", "--json"], None).ok();
    out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

/// Polls `history` until a message with `text` from `sender` is there.
#[track_caller]
fn wait_in_history(home: &Home, target: &str, sender: &str, text: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let lines = history(home, target);
        if let Some(line) = lines.iter().find(|l| l["sender"] == sender && l["text"] == text) {
            return line.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{sender}: {text} never reached {target}: {lines:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The whole day of a TUI user against CLI users: send and receive in the
/// lobby, see presence and typing change, watch a deletion vanish, receive a
/// message full of escape sequences without the screen being disturbed, keep
/// typed input across a server restart and send it afterwards, and leave with
/// the terminal restored.
async fn chat_sends_receives_and_survives_a_server_restart(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let (alice, _) = user(&server, "alice");
    let (bob, _) = user(&server, "bob");
    let mut tui = chat(&alice, &[]);
    tui.wait_for(60, "the chat with the lobby", |s| s.contains("#lobby") && s.contains("● connected"));
    assert!(tui.alternate_screen(), "a full-screen UI");

    // Alice types in the TUI; bob reads it with the CLI.
    tui.type_text("hello from the tui");
    tui.enter();
    wait_in_history(&bob, "#lobby", "alice", "hello from the tui");

    // Bob writes with the CLI; it appears on alice's screen.
    let sent = bob.run(&["send", "#lobby", "hi alice, from the cli", "--json"], None).ok().json();
    tui.wait_for(20, "bob's message", |s| s.contains("bob: hi alice, from the cli"));

    // Presence: bob comes online while listening, and goes offline after.
    tui.wait_for(5, "bob offline", |s| s.contains("○ bob"));
    let listener = bob.spawn(&["listen"]);
    tui.wait_for(20, "bob online", |s| s.contains("● bob"));

    // Typing: an ephemeral signal shows "bob is typing…".
    bob.run(&["typing", "#lobby"], None).ok();
    tui.wait_for(20, "the typing indicator", |s| s.contains("bob is typing…"));
    drop(listener);
    tui.wait_for(20, "bob offline again", |s| s.contains("○ bob"));

    // A deletion by anyone disappears live.
    let id = sent["id"].as_i64().expect("id").to_string();
    bob.run(&["delete", "#lobby", &id], None).ok();
    tui.wait_for(20, "the deletion", |s| !s.contains("hi alice, from the cli"));

    // Escape sequences arrive as harmless text: nothing is cleared, no title,
    // hyperlink or clipboard write reaches the terminal.
    let evil = "\x1b[2J\x1b[Hwiped?\x1b]0;pwned\x07 \x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\ \x1b]52;c;cm0gLXJmIC8K\x07end";
    bob.run(&["send", "#lobby", evil], None).ok();
    let screen = tui.wait_for(20, "the hostile message", |s| s.contains("bob: wiped? link end"));
    assert!(screen.contains("alice: hello from the tui"), "the screen was not cleared:\n{screen}");
    let raw = String::from_utf8_lossy(&tui.raw_output()).into_owned();
    for forbidden in ["pwned", "\x1b]52", "\x1b]8;;https", "cm0gLXJmIC8K"] {
        assert!(!raw.contains(forbidden), "{forbidden:?} reached the terminal");
    }

    // The server goes away: the TUI says so and keeps what is being typed.
    server.kill();
    tui.wait_for(30, "the reconnection count-down", |s| s.contains("reconnecting in"));
    tui.type_text("typed during the outage");
    tui.enter();
    tui.wait_for(5, "the kept input", |s| s.contains("> typed during the outage"));
    server.restart();
    tui.wait_for(60, "the reconnection", |s| s.contains("● connected"));
    assert!(tui.screen().contains("> typed during the outage"), "input survives:\n{}", tui.screen());
    bob.run(&["send", "#lobby", "sent while you were away"], None).ok();
    tui.wait_for(30, "the message after the restart", |s| s.contains("bob: sent while you were away"));
    tui.enter();
    wait_in_history(&bob, "#lobby", "alice", "typed during the outage");

    // Resizing redraws at the new size.
    tui.resize(40, 120);
    tui.wait_for(10, "the wider layout", |s| {
        s.lines().any(|l| l.chars().count() > 90 && l.contains("connected"))
    });

    // /quit leaves with the terminal restored.
    tui.type_text("/quit");
    tui.enter();
    assert_eq!(tui.wait_exit(10), Some(0), "exit status");
    assert!(!tui.alternate_screen(), "back on the normal screen");
}

/// Without a saved session, `conclave chat` starts on the login screen; on
/// first contact it shows the server's fingerprint and asks, then logs in and
/// opens the lobby. SIGTERM ends it with the terminal restored.
async fn chat_logs_in_after_the_fingerprint_prompt(backend: Backend) {
    let server = server(backend, &[]).await;
    let (_, secret) = user(&server, "carol");
    let home = Home::new(bin());
    let address = server.address();
    let mut tui = chat(&home, &["--server", &address, "--user", "carol"]);
    tui.wait_for(20, "the login form", |s| s.contains("Conclave — log in") && s.contains(&address));
    tui.type_text(PASSWORD);
    tui.enter();
    tui.type_text(&code_now(&secret));
    tui.enter();
    let prompt = tui.wait_for(20, "the fingerprint prompt", |s| s.contains("can't be established"));
    let shown: String = prompt.split_whitespace().collect();
    assert!(shown.contains(&server.fingerprint), "the real fingerprint is shown:\n{prompt}");
    tui.send(b"y");
    tui.wait_for(60, "the chat", |s| {
        s.contains("#lobby") && s.contains("● connected") && s.contains("carol@")
    });
    let known_hosts = std::fs::read_to_string(home.path().join("known_hosts")).expect("known_hosts");
    assert!(known_hosts.contains(&server.fingerprint), "{known_hosts}");
    tui.terminate();
    assert_eq!(tui.wait_exit(10), Some(0), "SIGTERM exits cleanly");
    assert!(!tui.alternate_screen(), "the terminal is restored");
}
