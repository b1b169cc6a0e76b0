//! What one account may take, and what an outsider may learn, against the real
//! server: per-account totals (rooms, devices, KeyPackages) that hold however
//! many requests race, per-account rates (rooms created, messages and bytes a
//! minute) across all of an account's devices and connections, one answer for
//! "does not exist" and "not yours", room names that reveal nothing of private
//! rooms, and KeyPackages that strangers cannot drain — with the client
//! library uploading fresh ones when the server says its last resort is in use.

use crate::{
    PASSWORD,
    harness::{Member, claim_all, committed, create_room, events, fetch, joined, log, mls, send, sent},
    server,
};
use conclave_client::{Home, Messenger, SessionToken, Trust};
use conclave_proto::{
    Bytes, DeviceId, EntryBody, ErrorBody, ErrorCode, Event, MessageId, Outcome, Reply, Request, Response,
    RoomId, RoomInfo, limits::MAX_MESSAGE_BYTES,
};
use conclave_testkit::{Account, Backend, RawClient, ServerProcess, backend_tests};
use std::{collections::BTreeSet, time::Duration};

backend_tests!(
    an_account_owns_at_most_its_room_quota_however_many_creations_race,
    rooms_created_per_minute_are_bounded_per_account,
    concurrent_device_registrations_end_with_exactly_the_cap,
    key_packages_per_device_are_bounded_in_count_and_bytes_even_when_uploads_race,
    messages_and_bytes_per_minute_are_bounded_across_an_accounts_devices,
    outsiders_get_one_answer_for_no_such_room_and_not_yours,
    delete_tells_outsiders_nothing_about_which_seqs_are_messages,
    private_room_names_neither_collide_across_owners_nor_leak,
    strangers_cannot_drain_a_users_one_time_key_packages,
    a_handed_out_last_resort_package_is_replaced_by_the_client_online_and_offline,
    a_client_told_its_one_time_packages_ran_out_uploads_a_fresh_batch,
);

/// The value of the counter line `name` in the server's `/metrics` (0 if absent).
async fn counter(server: &ServerProcess, line: &str) -> u64 {
    let (status, body) = conclave_testkit::http_get(server.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    body.lines().find_map(|l| l.strip_prefix(line).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0)
}

fn quota_refusals(kind: &str) -> String {
    format!("conclave_quota_refusals_total{{kind=\"{kind}\"}} ")
}

/// Another connection of `member`'s user bound to `member`'s device, made
/// from its parts so it can be moved into a task.
async fn bound_connection(
    addr: std::net::SocketAddr,
    fingerprint: &str,
    account: &Account,
    device: DeviceId,
    key: &[u8],
) -> RawClient {
    let mut client = RawClient::greeted(addr, fingerprint).await;
    client.ok(Request::Authenticate { token: account.token.clone() }).await;
    client.bind_device(Some(device), key).await;
    client
}

fn error_of(response: &Response) -> ErrorBody {
    match &response.outcome {
        Outcome::Error(body) => body.clone(),
        Outcome::Ok(reply) => panic!("unexpectedly succeeded: {reply:?}"),
    }
}

fn room_of(reply: Reply) -> RoomInfo {
    match reply {
        Reply::Room { room } => room,
        other => panic!("not a room: {other:?}"),
    }
}

/// However many creations race on separate connections, an account ends up
/// owning exactly `max_rooms_per_account` public and private rooms: the rest
/// get `quota_exceeded` and are counted. Direct conversations are not
/// counted, and another account is not affected.
async fn an_account_owns_at_most_its_room_quota_however_many_creations_race(backend: Backend) {
    let server = server(backend, &["--max-rooms-per-account", "3"]).await;
    let alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (addr, fingerprint) = (server.addr, server.fingerprint.clone());
            let (account, device, key) = (alice.account.clone(), alice.device, alice.key.clone());
            tokio::spawn(async move {
                let mut client = bound_connection(addr, &fingerprint, &account, device, &key).await;
                client.request(Request::CreateRoom { name: format!("room{i}"), public: i % 2 == 0 }).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let response = task.await.expect("creation");
        match response.outcome {
            Outcome::Ok(Reply::Room { .. }) => created += 1,
            Outcome::Error(err) => assert_eq!(err.code, ErrorCode::QuotaExceeded, "{err:?}"),
            Outcome::Ok(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 3, "exactly the quota");
    let mut alice = alice;
    let more = Request::CreateRoom { name: "one-more".into(), public: false };
    assert_eq!(alice.client.fails(more).await, ErrorCode::QuotaExceeded);
    room_of(alice.client.ok(Request::OpenDirect { username: "bob".into() }).await);
    room_of(bob.client.ok(Request::CreateRoom { name: "bobs".into(), public: true }).await);
    assert_eq!(counter(&server, &quota_refusals("rooms")).await, 6);
}

/// An account creates at most `rooms_per_minute` rooms a minute, direct
/// conversations included (`rate_limited` after that); opening a direct
/// conversation that exists creates nothing and is not counted, and other
/// accounts have rates of their own.
async fn rooms_created_per_minute_are_bounded_per_account(backend: Backend) {
    let server = server(backend, &["--rooms-per-minute", "3"]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let _carol = Member::new(&server, "carol").await;
    for name in ["first", "second"] {
        room_of(alice.client.ok(Request::CreateRoom { name: name.into(), public: true }).await);
    }
    let direct = room_of(alice.client.ok(Request::OpenDirect { username: "bob".into() }).await);
    let third = Request::CreateRoom { name: "third".into(), public: false };
    assert_eq!(alice.client.fails(third).await, ErrorCode::RateLimited);
    let new_direct = Request::OpenDirect { username: "carol".into() };
    assert_eq!(alice.client.fails(new_direct).await, ErrorCode::RateLimited);
    let again = room_of(alice.client.ok(Request::OpenDirect { username: "bob".into() }).await);
    assert_eq!(again.id, direct.id, "an existing conversation is found, not created");
    room_of(bob.client.ok(Request::CreateRoom { name: "third".into(), public: false }).await);
    assert_eq!(counter(&server, &quota_refusals("rooms_created")).await, 2);
}

/// 48 registrations of new devices of one account, on 48 connections at once,
/// end with exactly 32 devices (the default cap): 16 get `quota_exceeded`, as
/// does any later one, while resuming a registered device still works.
async fn concurrent_device_registrations_end_with_exactly_the_cap(backend: Backend) {
    let server = server(backend, &[]).await;
    let (alice, _client) = Account::register(&server, "alice", PASSWORD).await;
    let key = |i: usize| format!("concurrent-device-key:{i:03}:0123456789").into_bytes();
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let (addr, fingerprint, account, key) =
                (server.addr, server.fingerprint.clone(), alice.clone(), key(i));
            tokio::spawn(async move {
                let mut client = RawClient::greeted(addr, &fingerprint).await;
                client.ok(Request::Authenticate { token: account.token.clone() }).await;
                let response =
                    client.request(Request::Device { device_id: None, signature_key: Bytes(key) }).await;
                (i, response)
            })
        })
        .collect();
    let mut registered = Vec::new();
    for task in tasks {
        let (i, response) = task.await.expect("registration");
        match response.outcome {
            Outcome::Ok(Reply::Device { device_id, .. }) => registered.push((i, device_id)),
            Outcome::Error(err) => assert_eq!(err.code, ErrorCode::QuotaExceeded, "{err:?}"),
            Outcome::Ok(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(registered.len(), 32, "exactly the cap");
    let ids: BTreeSet<DeviceId> = registered.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), 32);

    let mut late = alice.connect(&server).await;
    let one_more = Request::Device { device_id: None, signature_key: Bytes(key(99)) };
    assert_eq!(late.fails(one_more).await, ErrorCode::QuotaExceeded);
    let (i, id) = registered[0];
    assert_eq!(late.bind_device(Some(id), &key(i)).await.0, id, "a registered device resumes");
    let mut again = alice.connect(&server).await;
    assert_eq!(again.bind_device(None, &key(i)).await.0, id, "re-registering its key resumes it too");
    assert_eq!(counter(&server, &quota_refusals("devices")).await, 17);
}

/// A device holds at most `max_key_packages_per_device` one-time KeyPackages
/// and `max_key_package_bytes_per_device` bytes of packages, last-resort
/// included: an upload that would pass either gets `quota_exceeded` and stores
/// nothing, also when uploads for one device race on several connections.
async fn key_packages_per_device_are_bounded_in_count_and_bytes_even_when_uploads_race(backend: Backend) {
    let flags = ["--max-key-packages-per-device", "5", "--max-key-package-bytes-per-device", "20000"];
    let server = server(backend, &flags).await;
    let mut alice = Member::new(&server, "alice").await;
    let upload = |tags: &[&str], last_resort: Option<Bytes>| Request::UploadKeyPackages {
        key_packages: tags.iter().map(|t| mls(t)).collect(),
        last_resort,
    };
    alice.client.ok(upload(&["kp:1", "kp:2", "kp:3"], None)).await;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let (addr, fingerprint) = (server.addr, server.fingerprint.clone());
            let (account, device, key) = (alice.account.clone(), alice.device, alice.key.clone());
            tokio::spawn(async move {
                let mut client = bound_connection(addr, &fingerprint, &account, device, &key).await;
                let tag = format!("kp:race:{i}");
                client.request(upload(&[&tag], None)).await
            })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.expect("upload").outcome {
            Outcome::Ok(Reply::Done) => stored += 1,
            Outcome::Error(err) => assert_eq!(err.code, ErrorCode::QuotaExceeded, "{err:?}"),
            Outcome::Ok(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(stored, 2, "two of the racing uploads fit");
    assert_eq!(alice.client.bind_device(Some(alice.device), &alice.key).await.1, 5);
    assert_eq!(alice.client.fails(upload(&["kp:6"], None)).await, ErrorCode::QuotaExceeded);
    assert_eq!(alice.client.bind_device(Some(alice.device), &alice.key).await.1, 5, "nothing stored");

    let mut bob = Member::new(&server, "bob").await;
    let big = |n: usize| Bytes(vec![7; n]);
    bob.client.ok(Request::UploadKeyPackages { key_packages: vec![big(16_384)], last_resort: None }).await;
    let over = Request::UploadKeyPackages { key_packages: vec![big(4_000)], last_resort: None };
    assert_eq!(bob.client.fails(over).await, ErrorCode::QuotaExceeded, "20,384 bytes");
    bob.client.ok(upload(&[], Some(big(3_000)))).await;
    bob.client.ok(upload(&[], Some(big(3_500)))).await;
    assert_eq!(
        bob.client.fails(upload(&[], Some(big(4_000)))).await,
        ErrorCode::QuotaExceeded,
        "a replaced last-resort package no longer counts, its replacement does"
    );
    assert_eq!(bob.client.bind_device(Some(bob.device), &bob.key).await.1, 1);
    assert_eq!(counter(&server, &quota_refusals("key_packages")).await, 3);
    assert_eq!(counter(&server, &quota_refusals("key_package_bytes")).await, 2);
}

/// `messages_per_minute` bounds an account's messages across all its devices
/// and connections, and `message_bytes_per_minute` their bytes: past either a
/// send gets `rate_limited` and stores nothing, while other accounts send on.
async fn messages_and_bytes_per_minute_are_bounded_across_an_accounts_devices(backend: Backend) {
    let flags = ["--messages-per-minute", "6", "--message-bytes-per-minute", "100000"];
    let server = server(backend, &flags).await;
    let mut alice = Member::new(&server, "alice").await;
    let room = create_room(&mut alice, "busy", true).await;
    let mut phone = alice.another_device(&server).await;
    joined(&mut phone, &room).await;
    let mut bob = Member::new(&server, "bob").await;
    joined(&mut bob, &room).await;
    for nonce in 1..=3 {
        sent(&mut alice.client, room.id, b"from the laptop", nonce).await;
        sent(&mut phone.client, room.id, b"from the phone", nonce).await;
    }
    assert_eq!(alice.client.fails(send(room.id, b"one more", 4)).await, ErrorCode::RateLimited);
    assert_eq!(phone.client.fails(send(room.id, b"one more", 4)).await, ErrorCode::RateLimited);
    let mut third = alice.reconnect(&server).await;
    assert_eq!(third.fails(send(room.id, b"one more", 5)).await, ErrorCode::RateLimited);

    let big = vec![7; MAX_MESSAGE_BYTES];
    sent(&mut bob.client, room.id, &big, 1).await;
    assert_eq!(bob.client.fails(send(room.id, &big, 2)).await, ErrorCode::RateLimited, "bytes");
    sent(&mut bob.client, room.id, &[7; 1000], 3).await;

    let messages = log(&mut bob.client, room.id, 0).await;
    let stored = messages.iter().filter(|e| matches!(e.body, EntryBody::Message { .. })).count();
    assert_eq!(stored, 8, "six of alice's, two of bob's");
    assert_eq!(counter(&server, &quota_refusals("messages")).await, 3);
    assert_eq!(counter(&server, &quota_refusals("message_bytes")).await, 1);
}

/// Every request that names a room by id gets, from someone who may not know
/// of the room (an outsider of a private or direct room), exactly the answer —
/// code and message — it gets for a room id that does not exist: `members`,
/// `group_info`, `fetch`, `send`, `signal`, `leave`, `delete` and `commit`.
/// A member lacking a permission still hears `forbidden`.
async fn outsiders_get_one_answer_for_no_such_room_and_not_yours(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let mut carol = Member::new(&server, "carol").await;
    let private = create_room(&mut alice, "hideout", false).await;
    crate::harness::add_member(&mut alice, &mut bob, &private, 0).await;
    let (message, _) = sent(&mut alice.client, private.id, b"secret plans", 1).await;
    let direct = room_of(alice.client.ok(Request::OpenDirect { username: "bob".into() }).await);
    let create = alice.create(&direct);
    committed(&mut alice, create).await;
    sent(&mut alice.client, direct.id, b"psst", 2).await;

    for room in [&private, &direct] {
        let nowhere = RoomId(room.id.0 + 1_000);
        let state = alice.mls.group_state(&room.group_id.0).expect("group state");
        let join = carol.join_from(room, &state.group_info, &state.ratchet_tree).request;
        let requests = |id: RoomId| {
            let mut commit = join.clone();
            if let Request::Commit { room, .. } = &mut commit {
                *room = id;
            }
            vec![
                Request::Members { room: id },
                Request::GroupInfo { room: id },
                fetch(id, 0, 10),
                send(id, b"let me in", 7),
                Request::Signal { room: id, ciphertext: Bytes(b"typing".to_vec()) },
                Request::Leave { room: id },
                Request::Delete { room: id, message },
                commit,
            ]
        };
        for (hidden, missing) in requests(room.id).into_iter().zip(requests(nowhere)) {
            let name = hidden.name();
            let (hidden, missing) = (
                error_of(&carol.client.request(hidden).await),
                error_of(&carol.client.request(missing).await),
            );
            assert_eq!(hidden, missing, "{name} in {}", room.name);
            assert_eq!(hidden.code, ErrorCode::NotFound, "{name}");
        }
    }
    let not_the_owners = Request::Delete { room: private.id, message };
    assert_eq!(bob.client.fails(not_the_owners).await, ErrorCode::Forbidden, "a member may know");
}

/// `delete` of a message id answers a non-member the same whether the id is
/// a message of the room, another entry, beyond the log, or of a room that
/// does not exist — even in a public room, whose existence is no secret — so
/// nobody outside learns which sequence numbers are messages.
async fn delete_tells_outsiders_nothing_about_which_seqs_are_messages(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut carol = Member::new(&server, "carol").await;
    let plaza = create_room(&mut alice, "plaza", true).await;
    let (message, seq) = sent(&mut alice.client, plaza.id, b"hello plaza", 1).await;
    let base = message.0 - seq.0;
    let probes =
        [message, MessageId(base + 1), MessageId(base + 1_000), MessageId(message.0 + (1_000 << 32))];
    let mut answers = Vec::new();
    for id in probes {
        let response = carol.client.request(Request::Delete { room: plaza.id, message: id }).await;
        answers.push(error_of(&response));
    }
    let nowhere = Request::Delete { room: RoomId(plaza.id.0 + 1_000), message };
    answers.push(error_of(&carol.client.request(nowhere).await));
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].code, ErrorCode::NotFound);
    assert_eq!(
        carol.client.fails(fetch(plaza.id, 0, 10)).await,
        ErrorCode::Forbidden,
        "a public room is no secret: its refusals name the rule"
    );
    let entries = log(&mut alice.client, plaza.id, 0).await;
    assert!(
        entries
            .iter()
            .any(|e| e.body == EntryBody::Message { id: message, ciphertext: Some(mls("hello plaza")) })
    );
}

/// Private room names live in their owner's namespace: another owner's private
/// room never makes a name taken, and `find_room` answers alike for a private
/// room one is not in and for no room at all (bare or as `owner/name`). Public
/// names stay unique; a name resolves to the room one is in before a public
/// room of the same name, and `owner/name` to exactly one room.
async fn private_room_names_neither_collide_across_owners_nor_leak(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut carol = Member::new(&server, "carol").await;
    let mut dave = Member::new(&server, "dave").await;
    let mut erin = Member::new(&server, "erin").await;
    let create = |name: &str, public| Request::CreateRoom { name: name.into(), public };
    let find = |name: &str| Request::FindRoom { name: name.into() };
    let alices = room_of(alice.client.ok(create("plans", false)).await);

    let mut answers = Vec::new();
    for name in ["plans", "no-such-room", "alice/plans", "alice/no-such-room", "nobody/plans"] {
        answers.push(error_of(&carol.client.request(find(name)).await));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].code, ErrorCode::NotFound);

    let carols = room_of(carol.client.ok(create("plans", false)).await);
    assert_ne!(carols.id, alices.id, "each owner has a namespace of their own");
    assert_eq!(carol.client.fails(create("plans", true)).await, ErrorCode::NameTaken, "her own");
    let daves = room_of(dave.client.ok(create("plans", true)).await);
    assert_eq!(erin.client.fails(create("plans", false)).await, ErrorCode::NameTaken, "a public name");
    assert_eq!(erin.client.fails(create("plans", true)).await, ErrorCode::NameTaken);
    assert_eq!(erin.client.fails(create("lobby", false)).await, ErrorCode::NameTaken);

    for (member, expected) in
        [(&mut alice, &alices), (&mut carol, &carols), (&mut dave, &daves), (&mut erin, &daves)]
    {
        let found = room_of(member.client.ok(find("plans")).await);
        assert_eq!(found.id, expected.id, "{} finds the room they are in first", member.name());
    }
    assert_eq!(room_of(alice.client.ok(find("dave/plans")).await).id, daves.id);
    assert_eq!(room_of(alice.client.ok(find("Alice/plans")).await).id, alices.id);
    assert_eq!(erin.client.fails(find("bad/Name")).await, ErrorCode::InvalidName);
}

/// Strangers — any number of fresh accounts sharing no private or direct room
/// with a user — together take at most `stranger_key_package_claims_per_hour`
/// of the user's one-time KeyPackages; their further claims get the
/// last-resort package, so adding still works but nothing is used up. The
/// user's device hears once that its last-resort package was handed out. A
/// contact (here: the other side of a direct conversation) still gets
/// one-time packages from a budget of its own.
async fn strangers_cannot_drain_a_users_one_time_key_packages(backend: Backend) {
    let server = server(backend, &["--stranger-key-package-claims-per-hour", "3"]).await;
    let mut bob = Member::new(&server, "bob").await;
    let mut packages = bob.mls.key_packages(30, true).expect("KeyPackages");
    let last_resort = packages.pop().expect("last resort");
    let upload = Request::UploadKeyPackages {
        key_packages: packages.iter().cloned().map(Bytes).collect(),
        last_resort: Some(Bytes(last_resort.clone())),
    };
    bob.client.ok(upload).await;

    let mut claimed = Vec::new();
    for name in ["mallory", "trudy", "eve", "oscar"] {
        let mut stranger = Member::new(&server, name).await;
        for _ in 0..4 {
            let (got, unavailable) = claim_all(&mut stranger.client, &["bob"]).await;
            assert!(unavailable.is_empty());
            claimed.extend(got.into_iter().map(|(_, _, package)| package));
        }
    }
    let one_time: Vec<&Vec<u8>> = claimed.iter().filter(|p| **p != last_resort).collect();
    assert_eq!(one_time.len(), 3, "16 claims by strangers took 3 one-time packages");
    assert!(one_time.iter().all(|p| packages.contains(p)));
    let status =
        bob.client.ok(Request::Device { device_id: Some(bob.device), signature_key: Bytes(bob.key.clone()) });
    assert_eq!(
        status.await,
        Reply::Device { device_id: bob.device, key_packages_left: 27, last_resort_used: true }
    );
    let told: Vec<Event> = events(&mut bob.client, Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|e| matches!(e, Event::LastResortUsed { .. }))
        .collect();
    assert_eq!(told, [Event::LastResortUsed { key_packages_left: 27 }], "told exactly once");

    let mut alice = Member::new(&server, "alice").await;
    room_of(alice.client.ok(Request::OpenDirect { username: "bob".into() }).await);
    let (got, _) = claim_all(&mut alice.client, &["bob"]).await;
    assert!(packages.contains(&got[0].2), "a contact gets a one-time package");
    assert_eq!(counter(&server, &quota_refusals("stranger_key_package_claims")).await, 13);
    assert_eq!(counter(&server, "conclave_last_resort_claims_total ").await, 13);
}

/// Bob's device as the client library runs it, in `home`.
async fn messenger(server: &ServerProcess, account: &Account, home: &Home) -> Messenger {
    let trust = Trust::Pinned(server.fingerprint.parse().expect("fingerprint"));
    let mut client =
        conclave_client::Client::connect(&server.address(), trust, "abuse-test").await.expect("connect");
    client.authenticate(&SessionToken::new(account.token.clone())).await.expect("authenticate");
    Messenger::start(client, home, &account.username).await.expect("messenger")
}

/// Lets the messenger handle every event that arrives before a quiet moment.
async fn settle(messenger: &mut Messenger) {
    while let Ok(handled) = tokio::time::timeout(Duration::from_millis(500), messenger.next_updates()).await {
        handled.expect("event handled");
    }
}

/// One claim of `user`'s only device's package.
async fn claim_one(claimer: &mut Member, user: &str) -> Vec<u8> {
    let (mut got, _) = claim_all(&mut claimer.client, &[user]).await;
    assert_eq!(got.len(), 1);
    got.remove(0).2
}

/// When the server hands out a device's last-resort KeyPackage, the client
/// library uploads a fresh one: at once when it is connected (told by the
/// `last_resort_used` event), and at its next start when it was not (told by
/// the `device` reply). Claims over the strangers' budget then get the fresh
/// package.
async fn a_handed_out_last_resort_package_is_replaced_by_the_client_online_and_offline(backend: Backend) {
    let server = server(backend, &["--stranger-key-package-claims-per-hour", "1"]).await;
    let (bob, _raw) = Account::register(&server, "bob", PASSWORD).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let home = Home::open(dir.path()).expect("home");
    let mut device = messenger(&server, &bob, &home).await;
    let mut mallory = Member::new(&server, "mallory").await;

    let one_time = claim_one(&mut mallory, "bob").await;
    let first = claim_one(&mut mallory, "bob").await;
    assert_ne!(first, one_time, "over the budget: the last-resort package");
    assert_eq!(claim_one(&mut mallory, "bob").await, first, "which is kept");
    settle(&mut device).await;
    let second = claim_one(&mut mallory, "bob").await;
    assert_ne!(second, first, "the connected client uploaded a fresh last-resort package");

    device.close().await.expect("close");
    let mut device = messenger(&server, &bob, &home).await;
    let third = claim_one(&mut mallory, "bob").await;
    assert_ne!(third, second, "the client replaced it when it started again");
    settle(&mut device).await;
}

/// A client whose one-time KeyPackages were all claimed is told so with its
/// last-resort package's first hand-out, and uploads a fresh batch: the
/// claims after that get a new package each time again.
async fn a_client_told_its_one_time_packages_ran_out_uploads_a_fresh_batch(backend: Backend) {
    let server = server(backend, &[]).await;
    let (bob, _raw) = Account::register(&server, "bob", PASSWORD).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let home = Home::open(dir.path()).expect("home");
    let mut device = messenger(&server, &bob, &home).await;
    // Strangers share 10 one-time packages an hour by default; bob's contacts
    // 100, and the client uploads 30.
    let mut contacts = Vec::new();
    for name in ["carol", "dave", "erin", "frank"] {
        let mut contact = Member::new(&server, name).await;
        room_of(contact.client.ok(Request::OpenDirect { username: "bob".into() }).await);
        contacts.push(contact);
    }
    let mut seen = BTreeSet::new();
    for contact in contacts.iter_mut().take(3) {
        for _ in 0..10 {
            assert!(seen.insert(claim_one(contact, "bob").await), "each one-time package once");
        }
    }
    let last_resort = claim_one(&mut contacts[3], "bob").await;
    assert_eq!(claim_one(&mut contacts[3], "bob").await, last_resort, "none left but the last resort");
    settle(&mut device).await;
    let (a, b) = (claim_one(&mut contacts[3], "bob").await, claim_one(&mut contacts[3], "bob").await);
    assert!(a != b && a != last_resort && !seen.contains(&a), "a fresh batch of one-time packages");
}
