//! What an attacker tried against a release build through the documented
//! protocol, and what an operator does about a room broken before the server
//! checked commits. Every handshake here is real MLS; the server checks each one
//! against the group it claims to be for, and refuses it with nothing stored.

use crate::{PASSWORD, bin, harness::*, server};
use conclave_proto::{Bytes, ErrorCode, Reply, Request, RoomInfo};
use conclave_testkit::{Backend, Home, ServerProcess, backend_tests};

backend_tests!(
    a_join_replayed_into_another_room_or_the_lobby_is_refused_and_every_room_keeps_working,
    a_group_info_or_tree_that_is_not_the_commits_is_refused,
    a_remove_of_a_member_declared_as_a_leaver_is_refused,
    a_broken_room_does_not_stop_a_client_and_an_operator_repairs_it,
);

/// The lobby, with its group created by `first`.
async fn lobby(first: &mut Member) -> RoomInfo {
    let Reply::Room { room } = first.client.ok(Request::FindRoom { name: "lobby".into() }).await else {
        panic!("no lobby")
    };
    let create = first.create(&room);
    committed(first, create).await;
    room
}

/// The GroupInfo and tree the server serves for `room`.
async fn served(member: &mut Member, room: &RoomInfo) -> (Option<u64>, Option<Bytes>, Option<Bytes>) {
    match member.client.ok(Request::GroupInfo { room: room.id }).await {
        Reply::GroupInfo { epoch, group_info, ratchet_tree, .. } => (epoch, group_info, ratchet_tree),
        other => panic!("unexpected reply to group_info: {other:?}"),
    }
}

/// `pending`'s commit, sent for another room (and that room's epoch).
fn aimed_at(mut pending: Pending, room: &RoomInfo, epoch: u64) -> Pending {
    if let Request::Commit { room: target, epoch: declared, .. } = &mut pending.request {
        *target = room.id;
        *declared = epoch;
    }
    pending
}

/// A valid external commit joining public room A, replayed into public room B
/// and into the lobby, is refused as `invalid_commit` (another MLS group), and
/// nothing of it is stored: B's and the lobby's GroupInfo are unchanged, their
/// members go on committing and sending, and a new user still joins the lobby.
async fn a_join_replayed_into_another_room_or_the_lobby_is_refused_and_every_room_keeps_working(
    backend: Backend,
) {
    let server = server(backend, &[]).await;
    let mut dave = Member::new(&server, "dave").await;
    let lobby = lobby(&mut dave).await;
    let mut alice = Member::new(&server, "alice").await;
    let room_a = create_room(&mut alice, "alpha", true).await;
    let mut carol = Member::new(&server, "carol").await;
    let room_b = create_room(&mut carol, "bravo", true).await;
    let lobby_before = served(&mut dave, &lobby).await;
    let b_before = served(&mut carol, &room_b).await;

    let mut mallory = Member::new(&server, "mallory").await;
    let join_a = mallory.join(&room_a).await;
    let replay = aimed_at(join_a, &room_b, 0);
    assert_eq!(refused(&mut mallory, replay).await, ErrorCode::InvalidCommit);
    let join_a = mallory.join(&room_a).await;
    let replay = aimed_at(join_a, &lobby, 0);
    assert_eq!(refused(&mut mallory, replay).await, ErrorCode::InvalidCommit);
    // The commit was valid for A all along: sent there, it is accepted.
    joined(&mut mallory, &room_a).await;

    assert_eq!(served(&mut dave, &lobby).await, lobby_before, "the lobby's group state is untouched");
    assert_eq!(served(&mut carol, &room_b).await, b_before, "room B's group state is untouched");
    let update = carol.update(&room_b);
    committed(&mut carol, update).await;
    sent(&mut carol.client, room_b.id, b"ciphertext in B", 1).await;
    let mut erin = Member::new(&server, "erin").await;
    joined(&mut erin, &lobby).await;
    dave.catch_up(&lobby).await;
    sent(&mut erin.client, lobby.id, b"ciphertext in the lobby", 2).await;
    let update = dave.update(&lobby);
    committed(&mut dave, update).await;
}

/// A commit sent with a GroupInfo that is garbage, or that is a valid GroupInfo
/// of the epoch before, or with a ratchet tree that is not the one the commit
/// produces, is refused (`invalid_commit`) and changes nothing; the same commit
/// with its own GroupInfo and tree is accepted.
async fn a_group_info_or_tree_that_is_not_the_commits_is_refused(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let room = create_room(&mut alice, "alpha", true).await;
    let mut bob = Member::new(&server, "bob").await;
    joined(&mut bob, &room).await;
    alice.catch_up(&room).await;
    let before = served(&mut alice, &room).await;

    let garbage = |mut pending: Pending| {
        if let Request::Commit { group_info, .. } = &mut pending.request {
            *group_info = Bytes(b"GARBAGE-GROUPINFO".to_vec());
        }
        pending
    };
    let update = alice.update(&room);
    assert_eq!(refused(&mut alice, garbage(update)).await, ErrorCode::InvalidCommit);
    let stale_info = before.1.clone().expect("a GroupInfo");
    let mut update = alice.update(&room);
    if let Request::Commit { group_info, .. } = &mut update.request {
        *group_info = stale_info;
    }
    assert_eq!(refused(&mut alice, update).await, ErrorCode::InvalidCommit);
    let stale_tree = before.2.clone().expect("a tree");
    let mut update = alice.update(&room);
    if let Request::Commit { ratchet_tree, .. } = &mut update.request {
        *ratchet_tree = stale_tree;
    }
    assert_eq!(refused(&mut alice, update).await, ErrorCode::InvalidCommit);
    assert_eq!(served(&mut alice, &room).await, before, "nothing was stored");

    let update = alice.update(&room);
    let (_, epoch) = committed(&mut alice, update).await;
    assert_eq!(Some(epoch), before.0.map(|e| e + 1));
    let after = served(&mut alice, &room).await;
    assert_ne!(after.1, before.1, "the accepted commit's GroupInfo is served now");
}

/// Any member may remove a user who left. A commit declared as removing the
/// leaver but really removing another member's device is refused (`forbidden`):
/// that member stays in the group and goes on sending; the honest removal of the
/// leaver is accepted.
async fn a_remove_of_a_member_declared_as_a_leaver_is_refused(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let room = create_room(&mut alice, "alpha", true).await;
    let mut bob = Member::new(&server, "bob").await;
    let mut carol = Member::new(&server, "carol").await;
    let mut dave = Member::new(&server, "dave").await;
    for member in [&mut bob, &mut carol, &mut dave] {
        joined(member, &room).await;
    }
    bob.catch_up(&room).await;
    carol.client.ok(Request::Leave { room: room.id }).await;

    let forged = bob.remove(&room, &[carol.name()], &[dave.identity()]);
    assert_eq!(refused(&mut bob, forged).await, ErrorCode::Forbidden);
    dave.catch_up(&room).await;
    sent(&mut dave.client, room.id, b"dave is still here", 3).await;
    let honest = bob.remove(&room, &[carol.name()], &[carol.identity()]);
    committed(&mut bob, honest).await;
}

fn admin(server: &ServerProcess, args: &[&str]) -> conclave_testkit::Output {
    let data_dir = server.data_dir.display().to_string();
    let mut all = vec!["admin"];
    all.extend(args);
    all.extend(["--data-dir", &data_dir]);
    if let Some(url) = &server.db.url {
        all.extend(["--database-url", url]);
    }
    Home::new(bin()).run(&all, None)
}

/// Breaks a room's stored group state as a server that did not check commits
/// let an attacker do: a garbage GroupInfo and no public state.
async fn break_room(server: &ServerProcess, room: &str) {
    use sqlx::Connection as _;
    let sql = "UPDATE rooms SET group_info = $1, public_group = NULL WHERE name = $2";
    let garbage = b"GARBAGE-GROUPINFO".to_vec();
    if let Some(url) = &server.db.url {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query(sql).bind(garbage).bind(room).execute(&mut conn).await.expect("break");
    } else {
        let url = format!("sqlite://{}", server.data_dir.join("conclave.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open SQLite file");
        sqlx::query(sql).bind(garbage).bind(room).execute(&mut conn).await.expect("break");
    }
}

fn texts(home: &Home, target: &str) -> Vec<String> {
    let out = home.run(&["history", target, "--json"], None).ok();
    out.stdout
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            format!(
                "{}: {}",
                v["sender"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap_or("<unreadable>")
            )
        })
        .collect()
}

/// A room whose stored group state is garbage (as an older server let an
/// attacker leave it) stops nobody from using the other rooms: a new device of a
/// member logs in, is told the room cannot be used, and sends to the lobby. The
/// operator's `conclave admin repair-room` resets the group; then the members'
/// clients rejoin by themselves and the room works again for all of them.
async fn a_broken_room_does_not_stop_a_client_and_an_operator_repairs_it(backend: Backend) {
    let server = server(backend, &[]).await;
    let alice = Home::new(bin());
    alice.register(&server, "alice", PASSWORD);
    let bob = Home::new(bin());
    let registered = bob.register(&server, "bob", PASSWORD);
    alice.run(&["room", "create", "team"], None).ok();
    alice.run(&["room", "invite", "team", "bob"], None).ok();
    alice.run(&["send", "#team", "before"], None).ok();
    assert_eq!(texts(&bob, "#team"), ["alice: before"]);
    break_room(&server, "team").await;

    // Bob's new device cannot join #team, says so, and works everywhere else.
    let laptop = Home::new(bin());
    let code = conclave_testkit::code_now(&registered.secret);
    laptop.login(&server, "bob", PASSWORD, &code).ok();
    laptop.run(&["send", "#lobby", "the lobby still works"], None).ok();
    let out = laptop.run(&["history", "#lobby"], None).ok();
    assert!(out.stdout.contains("the lobby still works"), "{}", out.stdout);
    assert!(
        out.stdout.contains("note: team: this room cannot be used now") && out.stdout.contains("repair-room"),
        "the broken room is named, with what to do: {}",
        out.stdout
    );

    let repaired = admin(&server, &["repair-room", "team", "--json"]).ok().json();
    assert_eq!(repaired["name"], "team", "{repaired}");
    assert!(repaired["devices_removed"].as_u64().unwrap_or(0) >= 2, "{repaired}");
    let audited = admin(&server, &["audit", "--json"]).ok().stdout;
    assert!(audited.contains("room_repaired"), "{audited}");

    alice.run(&["send", "#team", "after"], None).ok();
    bob.run(&["send", "#team", "bob is back"], None).ok();
    for home in [&alice, &bob] {
        let seen = texts(home, "#team");
        assert_eq!(seen.first().map(String::as_str), Some("alice: before"), "{seen:?}");
        assert_eq!(&seen[seen.len() - 2..], ["alice: after", "bob: bob is back"], "{seen:?}");
    }
    let seen = texts(&laptop, "#team");
    assert_eq!(seen.last().map(String::as_str), Some("bob: bob is back"), "{seen:?}");
}
