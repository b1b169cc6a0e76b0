//! End-to-end encrypted messaging through the CLI: the lobby, private groups and
//! direct messages; ordering, removal, catch-up, deletion, restarts, second
//! devices, and no plaintext on the server.

use crate::{PASSWORD, bin, server};
use conclave_testkit::{Account, Backend, Home, ServerProcess, backend_tests, code_now, leak};
use serde_json::Value;

backend_tests!(
    lobby_group_and_direct_messages_arrive_in_one_order,
    outsiders_cannot_join_or_read_a_private_group,
    a_removed_member_reads_nothing_sent_afterwards,
    one_invite_adds_many_people_and_names_who_could_not_be_added,
    an_invite_names_who_another_member_just_added,
    an_offline_member_receives_every_message_once_in_order,
    a_deleted_message_disappears_everywhere,
    no_plaintext_reaches_the_server,
    a_second_device_reads_new_messages_but_not_old_ones,
    acknowledged_messages_survive_a_killed_server,
    listen_prints_live_events_and_resumes_after_a_restart,
    a_member_can_leave_a_group,
    anyone_can_join_a_public_room,
    a_device_with_broken_group_state_rejoins_and_says_so,
    typing_indicators_reach_listeners_and_are_not_history,
    a_message_with_line_breaks_cannot_pass_for_another_users_message,
);

/// Registers `names` (each in its own home); every one is in the lobby after.
fn users(server: &ServerProcess, names: &[&str]) -> Vec<Home> {
    names
        .iter()
        .map(|name| {
            let home = Home::new(bin());
            home.register(server, name, PASSWORD);
            home
        })
        .collect()
}

fn send(home: &Home, target: &str, text: &str) -> Value {
    home.run(&["send", target, text, "--json"], None).ok().json()
}

/// `history --json` as (sender, text) pairs in order, with the raw lines.
fn history(home: &Home, target: &str) -> Vec<Value> {
    let out = home.run(&["history", target, "--limit", "500", "--json"], None).ok();
    out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn texts(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            format!(
                "{}: {}",
                l["sender"].as_str().unwrap_or(""),
                l["text"].as_str().unwrap_or("<unreadable>")
            )
        })
        .collect()
}

/// Messages in the lobby, a private group and a direct conversation reach every
/// member in the same order, each exactly once.
async fn lobby_group_and_direct_messages_arrive_in_one_order(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob, carol] = <[Home; 3]>::try_from(users(&server, &["alice", "bob", "carol"])).ok().unwrap();
    for (home, text) in [(&alice, "a1"), (&bob, "b1"), (&alice, "a2"), (&carol, "c1"), (&bob, "b2")] {
        let sent = send(home, "#lobby", text);
        assert!(sent["id"].as_i64().is_some() && sent["seq"].as_i64().is_some(), "{sent}");
    }
    let expected = ["alice: a1", "bob: b1", "alice: a2", "carol: c1", "bob: b2"];
    for home in [&alice, &bob, &carol] {
        assert_eq!(texts(&history(home, "#lobby")), expected);
    }
    let seqs: Vec<i64> = history(&alice, "#lobby").iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    alice.run(&["room", "create", "team"], None).ok();
    alice.run(&["room", "invite", "team", "bob"], None).ok();
    send(&alice, "#team", "t1");
    send(&bob, "#team", "t2");
    send(&alice, "#team", "t3");
    for home in [&alice, &bob] {
        assert_eq!(texts(&history(home, "#team")), ["alice: t1", "bob: t2", "alice: t3"]);
    }

    send(&alice, "@carol", "psst");
    send(&carol, "@alice", "hi back");
    for (home, peer) in [(&alice, "@carol"), (&carol, "@alice")] {
        assert_eq!(texts(&history(home, peer)), ["alice: psst", "carol: hi back"]);
    }
    bob.run(&["history", "@carol"], None).ok();
    assert!(texts(&history(&bob, "@carol")).is_empty(), "bob's conversation with carol is his own");
}

/// A user who was not invited can neither join a private group nor read it, nor
/// learn that it exists.
async fn outsiders_cannot_join_or_read_a_private_group(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, mallory] = <[Home; 2]>::try_from(users(&server, &["alice", "mallory"])).ok().unwrap();
    alice.run(&["room", "create", "board"], None).ok();
    send(&alice, "#board", "quarterly numbers");
    let join = mallory.run(&["room", "join", "board"], None).fails();
    // A private room is invisible to outsiders: its existence is not revealed.
    assert!(join.stderr.contains("not_found") || join.stderr.contains("forbidden"), "{}", join.stderr);
    mallory.run(&["history", "#board"], None).fails();
    mallory.run(&["send", "#board", "let me in"], None).fails();
    mallory.run(&["room", "invite", "board", "mallory"], None).fails();
}

/// After the owner removes a member, the removed member can read nothing sent
/// afterwards; the others can.
async fn a_removed_member_reads_nothing_sent_afterwards(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob, carol] = <[Home; 3]>::try_from(users(&server, &["alice", "bob", "carol"])).ok().unwrap();
    alice.run(&["room", "create", "ops"], None).ok();
    alice.run(&["room", "invite", "ops", "bob"], None).ok();
    alice.run(&["room", "invite", "ops", "carol"], None).ok();
    send(&alice, "#ops", "before");
    assert_eq!(texts(&history(&bob, "#ops")), ["alice: before"]);
    bob.run(&["room", "remove", "ops", "carol"], None).fails();
    alice.run(&["room", "remove", "ops", "bob"], None).ok();
    send(&alice, "#ops", "after");
    assert_eq!(texts(&history(&carol, "#ops")), ["alice: before", "alice: after"]);
    bob.run(&["history", "#ops"], None).fails();
    bob.run(&["send", "#ops", "still here?"], None).fails();
}

/// `room invite` takes many users at once (case and `@` as typed, each once):
/// all who have a device are added and read the room; one who never set up a
/// device is named and makes the command fail; a name that is no account
/// refuses the whole invitation before anyone is added.
async fn one_invite_adds_many_people_and_names_who_could_not_be_added(backend: Backend) {
    let server = server(backend, &[]).await;
    let homes = users(&server, &["alice", "bob", "carol", "dave"]);
    let [alice, bob, carol, dave] = <[Home; 4]>::try_from(homes).ok().unwrap();
    let _erin = Account::register(&server, "erin", PASSWORD).await;
    alice.run(&["room", "create", "team"], None).ok();

    let typo = alice.run(&["room", "invite", "team", "bob", "bobb"], None).fails();
    assert!(typo.stderr.contains("no such user: bobb"), "{}", typo.stderr);
    let members = alice.run(&["room", "members", "team", "--json"], None).ok().json();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "nobody was added: {members}");

    let invite = ["room", "invite", "team", "bob", "Carol", "@dave", "erin", "BOB", "--json"];
    let partial = alice.run(&invite, None).fails();
    let result: Value = serde_json::from_str(partial.stdout.trim()).expect("JSON result");
    assert_eq!(result["added"], serde_json::json!(["bob", "carol", "dave"]));
    assert_eq!(result["unavailable"], serde_json::json!(["erin"]));
    assert!(partial.stderr.contains("not added: erin"), "{}", partial.stderr);

    send(&alice, "#team", "welcome, all three");
    for member in [&bob, &carol, &dave] {
        assert_eq!(texts(&history(member, "#team")), ["alice: welcome, all three"]);
    }
    let members = alice.run(&["room", "members", "team", "--json"], None).ok().json();
    assert_eq!(members.as_array().map(Vec::len), Some(4), "{members}");

    // People already in the room are named as such and not added again (MLS
    // refused their devices a second leaf before): each keeps one device in
    // the room, and the room goes on working for everyone.
    let again = alice.run(&["room", "invite", "team", "bob", "alice", "--json"], None).ok().json();
    assert_eq!(again["added"], serde_json::json!([]), "{again}");
    assert_eq!(again["already_members"], serde_json::json!(["bob", "alice"]), "{again}");
    let said = alice.run(&["room", "invite", "team", "@Dave"], None).ok();
    assert!(said.stdout.contains("dave is already in team"), "{}", said.stdout);
    let frank = Home::new(bin());
    frank.register(&server, "frank", PASSWORD);
    let mixed = alice.run(&["room", "invite", "team", "carol", "frank", "--json"], None).ok().json();
    assert_eq!(mixed["added"], serde_json::json!(["frank"]), "{mixed}");
    assert_eq!(mixed["already_members"], serde_json::json!(["carol"]), "{mixed}");
    let members = alice.run(&["room", "members", "team", "--json"], None).ok().json();
    let devices: Vec<usize> = members
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["devices"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(devices, [1; 5], "one device each, none added twice: {members}");
    send(&alice, "#team", "five of us");
    for member in [&bob, &carol, &dave, &frank] {
        assert_eq!(texts(&history(member, "#team")).last().map(String::as_str), Some("alice: five of us"));
    }
}

/// In a public room any member may add people. When the owner, whose device
/// has not seen it yet, invites someone another member has just added, the
/// invite catches up first and names them as already in, instead of failing
/// on MLS's refusal of a second leaf.
async fn an_invite_names_who_another_member_just_added(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob, carol] = <[Home; 3]>::try_from(users(&server, &["alice", "bob", "carol"])).ok().unwrap();
    alice.run(&["room", "create", "open", "--public"], None).ok();
    carol.run(&["room", "join", "open"], None).ok();
    let added = carol.run(&["room", "invite", "open", "bob", "--json"], None).ok().json();
    assert_eq!(added["added"], serde_json::json!(["bob"]), "{added}");

    let again = alice.run(&["room", "invite", "open", "bob", "--json"], None).ok().json();
    assert_eq!(again["added"], serde_json::json!([]), "{again}");
    assert_eq!(again["already_members"], serde_json::json!(["bob"]), "{again}");
    send(&alice, "#open", "hello bob");
    assert_eq!(texts(&history(&bob, "#open")).last().map(String::as_str), Some("alice: hello bob"));
}

/// A member who is offline while 50 messages are sent receives all 50, in
/// order, once — also when catching up twice.
async fn an_offline_member_receives_every_message_once_in_order(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob] = <[Home; 2]>::try_from(users(&server, &["alice", "bob"])).ok().unwrap();
    for i in 0..50 {
        send(&alice, "#lobby", &format!("m{i:02}"));
    }
    let expected: Vec<String> = (0..50).map(|i| format!("alice: m{i:02}")).collect();
    assert_eq!(texts(&history(&bob, "#lobby")), expected);
    assert_eq!(texts(&history(&bob, "#lobby")), expected, "catching up again shows nothing twice");
}

/// A deleted message disappears from every member's history.
async fn a_deleted_message_disappears_everywhere(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob] = <[Home; 2]>::try_from(users(&server, &["alice", "bob"])).ok().unwrap();
    send(&alice, "#lobby", "keep me");
    let doomed = send(&alice, "#lobby", "delete me");
    assert_eq!(texts(&history(&bob, "#lobby")), ["alice: keep me", "alice: delete me"]);
    let id = doomed["id"].as_i64().unwrap().to_string();
    bob.run(&["delete", "#lobby", &id], None).fails();
    alice.run(&["delete", "#lobby", &id], None).ok();
    assert_eq!(texts(&history(&bob, "#lobby")), ["alice: keep me"]);
    assert_eq!(texts(&history(&alice, "#lobby")), ["alice: keep me"]);

    // The audit log records the send and the deletion as metadata (room, id,
    // size), never the content.
    let lines = audit(&server, &alice);
    let sent = lines
        .iter()
        .find(|e| e["action"] == "message_sent" && e["detail"]["id"].as_i64() == doomed["id"].as_i64());
    let sent = sent.unwrap_or_else(|| panic!("message_sent for {id} in {lines:?}"));
    assert!(sent["detail"]["size"].as_u64().is_some_and(|n| n > 0), "{sent}");
    assert!(lines.iter().any(|e| e["action"] == "message_deleted"), "{lines:?}");
    assert!(!lines.iter().any(|e| e.to_string().contains("delete me")), "no content in the audit log");
}

/// `conclave admin audit --json` for the server's storage, parsed.
fn audit(server: &ServerProcess, home: &Home) -> Vec<Value> {
    let data_dir = server.data_dir.display().to_string();
    let mut args = vec!["admin", "audit", "--json", "--data-dir", &data_dir];
    if let Some(url) = &server.db.url {
        args.extend(["--database-url", url]);
    }
    let out = home.run(&args, None).ok();
    out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

/// A unique sentence sent in the lobby, a group and a direct conversation is
/// nowhere in the server's database or logs.
async fn no_plaintext_reaches_the_server(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let [alice, bob] = <[Home; 2]>::try_from(users(&server, &["alice", "bob"])).ok().unwrap();
    let sentence = "the purple elephant dances at midnight 7f3a9c";
    alice.run(&["room", "create", "secret"], None).ok();
    alice.run(&["room", "invite", "secret", "bob"], None).ok();
    for target in ["#lobby", "#secret", "@bob"] {
        send(&alice, target, sentence);
    }
    assert_eq!(texts(&history(&bob, "@alice")), [format!("alice: {sentence}")]);
    server.stop();
    leak::assert_absent(&server, sentence.as_bytes()).await;
    leak::assert_absent(&server, b"purple elephant").await;
}

/// A user's second device joins their conversations, reads what is sent after it
/// joined, and cannot read what was sent before.
async fn a_second_device_reads_new_messages_but_not_old_ones(backend: Backend) {
    let server = server(backend, &[]).await;
    let alice = Home::new(bin());
    let reg = alice.register(&server, "alice", PASSWORD);
    let bob = users(&server, &["bob"]).pop().unwrap();
    alice.run(&["room", "create", "fam"], None).ok();
    alice.run(&["room", "invite", "fam", "bob"], None).ok();
    send(&bob, "#fam", "old news");
    let phone = Home::new(bin());
    phone.login(&server, "alice", PASSWORD, &code_now(&reg.secret)).ok();
    send(&bob, "#fam", "fresh news");
    assert_eq!(texts(&history(&phone, "#fam")), ["bob: fresh news"]);
    let shown = phone.run(&["history", "#fam"], None).ok().stdout;
    assert!(
        shown.contains("not readable on it"),
        "the new device says why older messages are missing: {shown}"
    );
    assert_eq!(texts(&history(&alice, "#fam")), ["bob: old news", "bob: fresh news"]);
    let members = alice.run(&["room", "members", "fam", "--json"], None).ok().json();
    let alice_devices =
        members.as_array().unwrap().iter().find(|m| m["username"] == "alice").unwrap()["devices"].clone();
    assert_eq!(alice_devices.as_array().map(Vec::len), Some(2), "{members}");
}

/// Killing the server with SIGKILL in the middle of a stream of sends loses no
/// message whose send was acknowledged.
async fn acknowledged_messages_survive_a_killed_server(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let [alice, bob] = <[Home; 2]>::try_from(users(&server, &["alice", "bob"])).ok().unwrap();
    let alice = std::sync::Arc::new(alice);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sender = {
        let (alice, acked) = (alice.clone(), acked.clone());
        std::thread::spawn(move || {
            for i in 0..200 {
                let out = alice.run(&["send", "#lobby", &format!("n{i}"), "--json"], None);
                if out.status != 0 {
                    break;
                }
                acked.lock().unwrap().push(format!("alice: n{i}"));
            }
        })
    };
    while acked.lock().unwrap().len() < 6 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill();
    sender.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    server.restart();
    let seen = texts(&history(&bob, "#lobby"));
    assert!(seen.len() >= acked.len() && seen.len() <= acked.len() + 1, "{seen:?} vs {acked:?}");
    assert_eq!(seen[..acked.len()], acked[..], "every acknowledged message survives, in order");
}

/// `conclave listen` shows messages and presence as they happen; when the server
/// restarts it reconnects by itself and shows what was sent meanwhile, once.
async fn listen_prints_live_events_and_resumes_after_a_restart(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let [alice, bob] = <[Home; 2]>::try_from(users(&server, &["alice", "bob"])).ok().unwrap();
    let listener = bob.spawn(&["listen", "--json"]);
    let online = alice.run(&["users", "--online", "--json"], None).ok().json();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut online = online;
    while !online.as_array().unwrap().iter().any(|u| u["username"] == "bob")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
        online = alice.run(&["users", "--online", "--json"], None).ok().json();
    }
    assert!(
        online.as_array().unwrap().iter().any(|u| u["username"] == "bob"),
        "bob is online while listening: {online}"
    );

    send(&alice, "#lobby", "live one");
    let line = listener
        .wait_for(20, |l| l.contains("live one"))
        .unwrap_or_else(|| panic!("listen did not show the message; its stderr:\n{}", listener.stderr()));
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (event["event"].as_str(), event["sender"].as_str(), event["room"].as_str()),
        (Some("message"), Some("alice"), Some("lobby"))
    );

    server.stop();
    server.restart();
    send(&alice, "#lobby", "after restart");
    let line = listener
        .wait_for(60, |l| l.contains("after restart") || l.contains("live one"))
        .unwrap_or_else(|| panic!("listen did not resume; its stderr:\n{}", listener.stderr()));
    assert!(line.contains("after restart"), "nothing is shown twice: {line}");
}

/// A member who leaves a group no longer receives or reads it; the others carry on.
async fn a_member_can_leave_a_group(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob] = <[Home; 2]>::try_from(users(&server, &["alice", "bob"])).ok().unwrap();
    alice.run(&["room", "create", "club"], None).ok();
    alice.run(&["room", "invite", "club", "bob"], None).ok();
    send(&bob, "#club", "bye all");
    bob.run(&["room", "leave", "club"], None).ok();
    bob.run(&["history", "#club"], None).fails();
    send(&alice, "#club", "after bob left");
    // Alice's client removed bob's device from the MLS group after seeing him
    // leave (a `remove` commit, audited by the server), and the leave itself is
    // audited too.
    let lines = audit(&server, &alice);
    assert!(
        lines.iter().any(|e| e["action"] == "member_removed"
            && e["actor"] == "alice"
            && e.to_string().contains("bob")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|e| e["action"] == "room_left" && e["actor"] == "bob"), "{lines:?}");
    for action in ["room_created", "member_added", "room_joined", "device_added"] {
        assert!(lines.iter().any(|e| e["action"] == action), "missing {action}: {lines:?}");
    }
    assert_eq!(texts(&history(&alice, "#club")), ["bob: bye all", "alice: after bob left"]);
    bob.run(&["room", "leave", "lobby"], None).fails();

    // Someone who left is not in the room any more: inviting them again adds
    // them, and they read what is sent from then on, not what they missed.
    let back = alice.run(&["room", "invite", "club", "bob", "--json"], None).ok().json();
    assert_eq!(back["added"], serde_json::json!(["bob"]), "{back}");
    send(&alice, "#club", "welcome back");
    let seen = texts(&history(&bob, "#club"));
    assert_eq!(seen.last().map(String::as_str), Some("alice: welcome back"), "{seen:?}");
    assert!(!seen.iter().any(|line| line == "alice: after bob left"), "{seen:?}");
}

/// A public room can be joined by anyone, who then reads what is sent after.
async fn anyone_can_join_a_public_room(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob] = <[Home; 2]>::try_from(users(&server, &["alice", "bob"])).ok().unwrap();
    alice.run(&["room", "create", "town-square", "--public"], None).ok();
    let rooms = bob.run(&["rooms", "--json"], None).ok().json();
    assert!(
        rooms.as_array().unwrap().iter().any(|r| r["name"] == "town-square" && r["member"] == false),
        "{rooms}"
    );
    bob.run(&["room", "join", "town-square"], None).ok();
    bob.run(&["room", "join", "lobby"], None).ok();
    send(&alice, "#town-square", "welcome");
    send(&bob, "#town-square", "thanks");
    assert_eq!(texts(&history(&bob, "#town-square")), ["alice: welcome", "bob: thanks"]);
}

/// A device whose MLS state went back in time (a restored backup) cannot follow
/// the group's next commit; it drops its copy, rejoins by external commit, says
/// so, and reads what is sent afterwards.
async fn a_device_with_broken_group_state_rejoins_and_says_so(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob, carol, dave] =
        <[Home; 4]>::try_from(users(&server, &["alice", "bob", "carol", "dave"])).ok().unwrap();
    alice.run(&["room", "create", "crew"], None).ok();
    alice.run(&["room", "invite", "crew", "bob"], None).ok();
    send(&alice, "#crew", "one");
    assert_eq!(texts(&history(&bob, "#crew")), ["alice: one"]);
    let files = ["mls.db", "mls.db-wal", "mls.db-shm"];
    let backup = tempfile::tempdir().unwrap();
    for f in files {
        let from = bob.path().join(f);
        if from.exists() {
            std::fs::copy(&from, backup.path().join(f)).unwrap();
        }
    }
    alice.run(&["room", "invite", "crew", "carol"], None).ok();
    assert_eq!(texts(&history(&bob, "#crew")), ["alice: one"]);
    for f in files {
        let saved = backup.path().join(f);
        if saved.exists() {
            std::fs::copy(&saved, bob.path().join(f)).unwrap();
        } else {
            std::fs::remove_file(bob.path().join(f)).ok();
        }
    }
    alice.run(&["room", "invite", "crew", "dave"], None).ok();
    let out = bob.run(&["history", "#crew"], None).ok();
    assert!(out.stdout.contains("broken") && out.stdout.contains("rejoined"), "{}", out.stdout);
    send(&alice, "#crew", "two");
    send(&dave, "#crew", "three");
    let seen = texts(&history(&bob, "#crew"));
    assert_eq!(seen.last().map(String::as_str), Some("dave: three"), "{seen:?}");
    assert!(seen.contains(&"alice: two".to_owned()), "{seen:?}");
    assert_eq!(texts(&history(&carol, "#crew")), ["alice: two", "dave: three"]);
}

/// `conclave typing` shows up in another member's `listen` as a typing event;
/// it is not part of anyone's history, and messages after it read normally.
async fn typing_indicators_reach_listeners_and_are_not_history(backend: Backend) {
    let server = server(backend, &[]).await;
    let [alice, bob] = <[Home; 2]>::try_from(users(&server, &["alice", "bob"])).ok().unwrap();
    send(&alice, "#lobby", "hello before typing");
    let listener = bob.spawn(&["listen", "--json"]);
    listener
        .wait_for(20, |l| l.contains("hello before typing"))
        .unwrap_or_else(|| panic!("listen did not catch up; its stderr:\n{}", listener.stderr()));

    alice.run(&["typing", "#lobby"], None).ok();
    let line = listener
        .wait_for(20, |l| l.contains("\"typing\""))
        .unwrap_or_else(|| panic!("listen showed no typing event; its stderr:\n{}", listener.stderr()));
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!((event["user"].as_str(), event["room"].as_str()), (Some("alice"), Some("lobby")));

    send(&alice, "#lobby", "after typing");
    listener
        .wait_for(20, |l| l.contains("after typing"))
        .unwrap_or_else(|| panic!("the next message did not arrive; its stderr:\n{}", listener.stderr()));
    assert_eq!(texts(&history(&bob, "#lobby")), ["alice: hello before typing", "alice: after typing"]);
}

/// Replaces the `[YYYY-MM-DD HH:MM]` that starts a header line with `[TIME]`;
/// a line that does not start with one is left as it is.
fn mask_time(line: &str) -> String {
    let stamp = line.get(..18).filter(|head| {
        head.bytes().enumerate().all(|(i, b)| match i {
            0 => b == b'[',
            5 | 8 => b == b'-',
            11 => b == b' ',
            14 => b == b':',
            17 => b == b']',
            _ => b.is_ascii_digit(),
        })
    });
    match stamp {
        Some(_) => format!("[TIME]{}", &line[18..]),
        None => line.to_owned(),
    }
}

/// A message that breaks the line and goes on like another user's message
/// (`[time] id (#999) alice: …`) — by a newline, a carriage return, or behind
/// a bidi override — is shown by `history` and `listen` as what it is: its
/// header, then each further line behind the continuation marker, which no
/// sender can put at the start of a line. Only headers start without it; no
/// carriage return or override reaches the terminal; `--json` keeps the text
/// exactly as sent.
async fn a_message_with_line_breaks_cannot_pass_for_another_users_message(backend: Backend) {
    let server = server(backend, &[]).await;
    let [mallory, bob] = <[Home; 2]>::try_from(users(&server, &["mallory", "bob"])).ok().unwrap();
    let listener = bob.spawn(&["listen"]);
    let sent = [
        "hello\n[2026-01-01 12:00] 4294967297 (#999) alice: please send me your recovery codes",
        "fine\r[2026-01-01 12:01] 4294967298 (#1000) alice: and your password\r\n",
        "see\n\u{202e}sedoc yrevocer ruoy em dnes esaelp :ecila )999#( ]00:21[",
        "over and out",
    ];
    let shown: [&[&str]; 4] = [
        &["hello", "  │ [2026-01-01 12:00] 4294967297 (#999) alice: please send me your recovery codes"],
        &["fine", "  │ [2026-01-01 12:01] 4294967298 (#1000) alice: and your password", "  │"],
        &["see", "  │ sedoc yrevocer ruoy em dnes esaelp :ecila )999#( ]00:21["],
        &["over and out"],
    ];
    for text in sent {
        send(&mallory, "#lobby", text);
    }

    let json = history(&bob, "#lobby");
    assert_eq!(json.iter().map(|m| m["text"].as_str().unwrap()).collect::<Vec<_>>(), sent, "--json is exact");
    let expected = |header: &dyn Fn(&Value) -> String| -> Vec<String> {
        json.iter()
            .zip(shown)
            .flat_map(|(m, lines)| {
                let first = format!("{}{}", header(m), lines[0]);
                std::iter::once(first).chain(lines[1..].iter().map(|l| (*l).to_owned()))
            })
            .collect()
    };
    let out = bob.run(&["history", "#lobby"], None).ok().stdout;
    let lines: Vec<String> = out.lines().map(mask_time).skip_while(|l| !l.starts_with("[TIME]")).collect();
    assert_eq!(
        lines,
        expected(&|m| format!("[TIME] {} (#{}) mallory: ", m["id"], m["seq"])),
        "history:\n{out}"
    );

    let mut printed = Vec::new();
    while !printed.last().is_some_and(|l: &String| l.contains("over and out")) {
        let line = listener
            .next_line(30)
            .unwrap_or_else(|| panic!("listen stopped at {printed:#?}; its stderr:\n{}", listener.stderr()));
        printed.push(line);
    }
    // Presence comes and goes with each `send` (a user name, then online or
    // offline); everything else is the messages.
    let lines: Vec<String> = printed
        .iter()
        .map(|l| mask_time(l))
        .skip_while(|l| !l.starts_with("[TIME]"))
        .filter(|l| !(l.ends_with(" is online") || l.ends_with(" is offline")))
        .collect();
    assert_eq!(lines, expected(&|_| "[TIME] lobby mallory: ".to_owned()), "listen:\n{printed:#?}");
    for line in printed.iter().chain(out.lines().map(str::to_owned).collect::<Vec<_>>().iter()) {
        assert!(!line.contains(['\r', '\u{202e}']), "{line:?}");
    }
}
