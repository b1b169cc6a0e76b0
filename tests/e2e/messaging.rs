//! Messaging through the wire protocol against the real server: devices and
//! KeyPackages, rooms and their policy, MLS commits serialized per epoch, ordered
//! delivery, catch-up, deletion, presence, and durability across a crash.
//!
//! Every commit is a real MLS commit, built by the test's devices with the
//! client's MLS layer: the server (the Delivery Service) reads each commit's
//! proposals and refuses one that does not do what it declares. Application
//! messages stay opaque bytes: the server never reads them.

use crate::{PASSWORD, harness::*, server};
use conclave_client::mls::Processed;
use conclave_proto::{
    Bytes, Change, DeviceId, EntryBody, ErrorCode, Event, LogEntry, MemberInfo, MessageId, Outcome, Reply,
    Request, Response, RoomId, RoomKind, Seq, UserPresence,
    limits::{MAX_CHANGE_USERS, MAX_FETCH, MAX_KEY_PACKAGES_PER_UPLOAD, MAX_MESSAGE_BYTES},
};
use conclave_testkit::{Account, Backend, RawClient, backend_tests, leak};
use std::{collections::BTreeSet, time::Duration};

backend_tests!(
    devices_bind_resume_and_refuse_mismatches,
    key_package_claims_are_atomic_and_fall_back_to_last_resort,
    key_package_claims_per_claimer_follow_the_setting,
    the_lobby_is_created_by_its_first_joiner,
    of_two_commits_for_one_epoch_exactly_one_wins,
    private_rooms_keep_outsiders_out,
    welcomes_are_released_only_by_an_accepted_commit,
    sends_are_idempotent_and_reach_every_connection_once_in_order,
    a_member_that_does_not_read_is_told_to_resync,
    a_member_who_was_offline_catches_up_with_fetch,
    delete_erases_the_ciphertext_from_the_database,
    removed_members_receive_nothing_more,
    leavers_lose_access_and_any_member_may_remove_them,
    direct_conversations_have_two_participants,
    inputs_are_validated,
    presence_is_pushed_and_listed,
    acknowledged_messages_survive_a_crash,
    signals_reach_other_online_members_and_are_never_stored,
);

/// Messaging needs a bound device. A device is registered with its signature
/// key and resumed only with the same id and key, by its own user.
async fn devices_bind_resume_and_refuse_mismatches(backend: Backend) {
    let server = server(backend, &[]).await;
    let (alice, mut client) = Account::register(&server, "alice", PASSWORD).await;
    assert_eq!(client.fails(Request::ListRooms {}).await, ErrorCode::DeviceRequired);
    let mut anonymous = RawClient::greeted(server.addr, &server.fingerprint).await;
    assert_eq!(anonymous.fails(Request::ListRooms {}).await, ErrorCode::NotAuthenticated);

    let key = signature_key("alice", 1);
    assert_eq!(
        client.fails(Request::Device { device_id: None, signature_key: mls("short") }).await,
        ErrorCode::BadRequest
    );
    let (device, left) = client.bind_device(None, &key).await;
    assert_eq!(left, 0);
    assert_eq!(client.bind_device(Some(device), &key).await.0, device, "binding again is harmless");
    assert!(matches!(client.ok(Request::ListRooms {}).await, Reply::Rooms { .. }));

    let mut laptop = alice.connect(&server).await;
    assert_eq!(laptop.bind_device(None, &key).await.0, device, "a retried registration resumes the device");
    let mut phone = alice.connect(&server).await;
    let wrong_key =
        Request::Device { device_id: Some(device), signature_key: Bytes(signature_key("alice", 2)) };
    assert_eq!(phone.fails(wrong_key).await, ErrorCode::DeviceMismatch);

    let (_bob, mut bob) = Account::register(&server, "bob", PASSWORD).await;
    let theft = Request::Device { device_id: Some(device), signature_key: Bytes(key.clone()) };
    assert_eq!(bob.fails(theft).await, ErrorCode::DeviceMismatch);
    let same_key = Request::Device { device_id: None, signature_key: Bytes(key.clone()) };
    assert_eq!(bob.fails(same_key).await, ErrorCode::DeviceMismatch, "a key belongs to one account");
    let (bob_device, _) = bob.bind_device(None, &signature_key("bob", 1)).await;
    assert_ne!(bob_device, device);
}

/// A claim hands each one-time KeyPackage out at most once, even to racing
/// claimers, then the last-resort package (kept); one package per device, for
/// up to 100 users at once, and each claimer claims one user at most 10 times a
/// minute.
async fn key_package_claims_are_atomic_and_fall_back_to_last_resort(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut bob = Member::new(&server, "bob").await;
    let mut alice = Member::new(&server, "alice").await;
    let mut uploaded = bob.mls.key_packages(3, true).expect("KeyPackages");
    let last_resort = uploaded.pop().expect("last resort");
    let upload = Request::UploadKeyPackages {
        key_packages: uploaded.iter().cloned().map(Bytes).collect(),
        last_resort: Some(Bytes(last_resort.clone())),
    };
    bob.client.ok(upload).await;
    assert_eq!(bob.client.bind_device(Some(bob.device), &bob.key).await.1, 3);

    let claims: Vec<_> = (0..5)
        .map(|_| {
            let (account, device, key) = (alice.account.clone(), alice.device, alice.key.clone());
            let (addr, fingerprint) = (server.addr, server.fingerprint.clone());
            tokio::spawn(async move {
                let mut client = RawClient::greeted(addr, &fingerprint).await;
                client.ok(Request::Authenticate { token: account.token.clone() }).await;
                client.bind_device(Some(device), &key).await;
                let mut got = claim(&mut client, "bob").await;
                assert_eq!(got.len(), 1);
                (client, got.remove(0).1)
            })
        })
        .collect();
    let mut claimers = Vec::new();
    let mut got = Vec::new();
    for task in claims {
        let (client, package) = task.await.expect("claim");
        claimers.push(client);
        got.push(package);
    }
    let one_time: BTreeSet<&Vec<u8>> = got.iter().filter(|p| **p != last_resort).collect();
    assert_eq!(one_time.len(), 3, "each one-time package exactly once: {got:?}");
    assert_eq!(one_time, uploaded.iter().collect());
    assert_eq!(got.iter().filter(|p| **p == last_resort).count(), 2);
    assert_eq!(bob.client.bind_device(Some(bob.device), &bob.key).await.1, 0);
    assert_eq!(claim(&mut claimers[0], "bob").await[0].1, last_resort);

    let mut tablet = bob.another_device(&server).await;
    let upload = tablet.upload(1);
    tablet.client.ok(upload).await;
    let both = claim(&mut claimers[0], "BOB").await;
    assert_eq!(both.iter().map(|p| p.0).collect::<Vec<_>>(), vec![bob.device, tablet.device]);

    let mut carol = Member::new(&server, "carol").await;
    assert_eq!(carol.client.fails(claim_of(&["alice"])).await, ErrorCode::NoKeyPackages);
    assert_eq!(carol.client.fails(claim_of(&["nobody"])).await, ErrorCode::NotFound);

    // Several users in one claim: packages in the order named, the users
    // without any listed; a name that is no account, a name given twice, or
    // too many names claim nothing at all.
    let _dave = Member::new(&server, "dave").await;
    let upload = alice.upload(2);
    alice.client.ok(upload).await;
    let (packages, unavailable) = claim_all(&mut carol.client, &["Alice", "dave", "bob"]).await;
    assert_eq!(unavailable, ["dave"]);
    let owners: Vec<(&str, DeviceId)> = packages.iter().map(|(u, d, _)| (u.as_str(), *d)).collect();
    assert_eq!(owners, [("alice", alice.device), ("bob", bob.device), ("bob", tablet.device)]);
    assert_eq!(alice.client.bind_device(Some(alice.device), &alice.key).await.1, 1);
    assert_eq!(carol.client.fails(claim_of(&["alice", "nobody"])).await, ErrorCode::NotFound);
    assert_eq!(carol.client.fails(claim_of(&["alice", "ALICE"])).await, ErrorCode::BadRequest);
    assert_eq!(carol.client.fails(claim_of(&[])).await, ErrorCode::BadRequest);
    let names: Vec<String> = (0..=MAX_CHANGE_USERS).map(|i| format!("user{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(carol.client.fails(claim_of(&names)).await, ErrorCode::BadRequest);
    assert_eq!(alice.client.bind_device(Some(alice.device), &alice.key).await.1, 1, "nothing was claimed");

    // One claimer may claim the same user 10 times a minute, and others still.
    for _ in 0..9 {
        claim_all(&mut carol.client, &["bob"]).await;
    }
    assert_eq!(carol.client.fails(claim_of(&["bob"])).await, ErrorCode::RateLimited);
    assert_eq!(claim(&mut carol.client, "alice").await.len(), 1, "another user is not limited");
    assert_eq!(claim(&mut claimers[1], "bob").await.len(), 2, "nor is another claimer");
    let too_many = Request::UploadKeyPackages {
        key_packages: (0..=MAX_KEY_PACKAGES_PER_UPLOAD).map(|i| mls(&format!("kp:{i}"))).collect(),
        last_resort: None,
    };
    assert_eq!(carol.client.fails(too_many).await, ErrorCode::BadRequest);
    for _ in 0..2 {
        let upload = carol.upload(MAX_KEY_PACKAGES_PER_UPLOAD);
        carol.client.ok(upload).await;
    }
    let upload = carol.upload(1);
    assert_eq!(carol.client.fails(upload).await, ErrorCode::QuotaExceeded, "over 200 one-time packages");
}

/// `key_package_claims_per_minute` bounds the users one user claims: a claim
/// that does not fit takes nothing, and a smaller one still fits.
async fn key_package_claims_per_claimer_follow_the_setting(backend: Backend) {
    let server = server(backend, &["--key-package-claims-per-minute", "3"]).await;
    let mut alice = Member::new(&server, "alice").await;
    for name in ["bob", "carol", "dave", "erin"] {
        let mut member = Member::new(&server, name).await;
        let upload = member.upload(1);
        member.client.ok(upload).await;
    }
    assert_eq!(claim_all(&mut alice.client, &["bob", "carol"]).await.0.len(), 2);
    assert_eq!(alice.client.fails(claim_of(&["dave", "erin"])).await, ErrorCode::RateLimited);
    assert_eq!(claim_all(&mut alice.client, &["dave"]).await.0.len(), 1);
    assert_eq!(alice.client.fails(claim_of(&["erin"])).await, ErrorCode::RateLimited);
}

/// The lobby exists from the start without a group; the first joiner creates it
/// (epoch none → 0), a second `create` loses, everyone else joins by external
/// commit, and nobody leaves it.
async fn the_lobby_is_created_by_its_first_joiner(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;

    let Reply::Room { room: lobby } = alice.client.ok(Request::FindRoom { name: "lobby".into() }).await
    else {
        panic!("no lobby")
    };
    assert_eq!(
        (lobby.kind, lobby.owner.as_deref(), lobby.epoch, lobby.member),
        (RoomKind::Lobby, None, None, false)
    );
    assert_eq!(lobby.group_id.0.len(), 16);
    let Reply::GroupInfo { epoch: None, group_info: None, .. } =
        alice.client.ok(Request::GroupInfo { room: lobby.id }).await
    else {
        panic!("the lobby has no group yet")
    };
    let stray = alice.join_elsewhere(&lobby);
    assert_eq!(refused(&mut alice, stray).await, ErrorCode::StaleEpoch);
    let create = alice.create(&lobby);
    let created = (Bytes(create.outgoing.group_info.clone()), Bytes(create.outgoing.ratchet_tree.clone()));
    assert_eq!(committed(&mut alice, create).await, (Seq(1), 0));

    let Reply::GroupInfo { epoch: Some(0), group_info: Some(info), ratchet_tree: Some(tree), .. } =
        bob.client.ok(Request::GroupInfo { room: lobby.id }).await
    else {
        panic!("the lobby's group exists now")
    };
    assert_eq!((info, tree), created);
    let create = bob.create(&lobby);
    assert_eq!(refused(&mut bob, create).await, ErrorCode::StaleEpoch);
    assert_eq!(joined(&mut bob, &lobby).await, (Seq(2), 1));

    let (room, entry) = next_entry(&mut alice.client).await;
    assert_eq!((room, entry.seq, entry.sender.as_str(), entry.device), (lobby.id, Seq(2), "bob", bob.device));
    assert!(matches!(entry.body, EntryBody::Commit { epoch: 0, change: Change::Join {}, .. }));

    let Reply::Members { members } = bob.client.ok(Request::Members { room: lobby.id }).await else {
        panic!("members")
    };
    assert_eq!(
        members,
        vec![
            MemberInfo { username: "alice".into(), owner: false, devices: vec![alice.device] },
            MemberInfo { username: "bob".into(), owner: false, devices: vec![bob.device] },
        ]
    );
    let mut carol = Member::new(&server, "carol").await;
    let Reply::Rooms { rooms } = carol.client.ok(Request::ListRooms {}).await else { panic!("rooms") };
    assert_eq!(rooms.iter().map(|r| (r.name.as_str(), r.member)).collect::<Vec<_>>(), vec![("lobby", false)]);
    assert_eq!(bob.client.fails(Request::Leave { room: lobby.id }).await, ErrorCode::Forbidden);
}

/// Commits race for the same epoch round after round: each time exactly one is
/// accepted, the other gets `stale_epoch` and leaves no trace; the log holds one
/// commit per epoch, with gap-free sequence numbers.
async fn of_two_commits_for_one_epoch_exactly_one_wins(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let room = create_room(&mut alice, "race", true).await;
    let (_, mut epoch) = joined(&mut bob, &room).await;
    for _ in 0..10 {
        alice.catch_up(&room).await;
        bob.catch_up(&room).await;
        let (alices, bobs) = (alice.update(&room), bob.update(&room));
        assert_eq!((alices.epoch(), bobs.epoch()), (epoch, epoch));
        let (a, b) = tokio::join!(
            alice.client.request(alices.request.clone()),
            bob.client.request(bobs.request.clone()),
        );
        alice.settle(&alices, &a);
        bob.settle(&bobs, &b);
        let winners: Vec<&Response> = [&a, &b].into_iter().filter(|r| error_code(r).is_none()).collect();
        assert_eq!(winners.len(), 1, "{a:?} / {b:?}");
        let Outcome::Ok(Reply::Committed { epoch: next, .. }) = &winners[0].outcome else { panic!("{a:?}") };
        assert_eq!(*next, epoch + 1);
        let loser = if error_code(&a).is_some() { &a } else { &b };
        assert_eq!(error_code(loser), Some(ErrorCode::StaleEpoch));
        epoch = *next;
    }
    let entries = log(&mut alice.client, room.id, 0).await;
    assert_eq!(entries.iter().map(|e| e.seq.0).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
    let epochs: Vec<u64> = entries
        .iter()
        .map(|e| match e.body {
            EntryBody::Commit { epoch, .. } => epoch,
            _ => panic!("only commits: {e:?}"),
        })
        .collect();
    // The create and the join are both made in epoch 0.
    assert_eq!(epochs, std::iter::once(0).chain(0..=10).collect::<Vec<_>>());
    let Reply::GroupInfo { epoch: Some(11), .. } = bob.client.ok(Request::GroupInfo { room: room.id }).await
    else {
        panic!("the group is at epoch 11")
    };
}

/// A private room is invisible and closed to outsiders: lookup, GroupInfo,
/// member list, join, fetch and send all answer `not_found`, as for a room
/// that does not exist, and its name is not taken for anyone else. Only the
/// owner adds and removes, and nobody removes the owner.
async fn private_rooms_keep_outsiders_out(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let mut carol = Member::new(&server, "carol").await;
    let room = create_room(&mut alice, "secret", false).await;
    assert_eq!((room.kind, room.owner.as_deref(), room.member), (RoomKind::Private, Some("alice"), true));

    let outsider_requests = || {
        vec![
            Request::GroupInfo { room: room.id },
            Request::Members { room: room.id },
            fetch(room.id, 0, 10),
            send(room.id, b"let me in", 1),
        ]
    };
    for request in outsider_requests() {
        let name = request.name();
        assert_eq!(carol.client.fails(request).await, ErrorCode::NotFound, "{name}");
    }
    // Carol gets no GroupInfo from the server: she joins with Alice's.
    let state = alice.mls.group_state(&room.group_id.0).expect("group state");
    let join = carol.join_from(&room, &state.group_info, &state.ratchet_tree);
    assert_eq!(refused(&mut carol, join).await, ErrorCode::NotFound, "join");
    assert_eq!(carol.client.fails(Request::FindRoom { name: "secret".into() }).await, ErrorCode::NotFound);
    let Reply::Room { room: carols } =
        carol.client.ok(Request::CreateRoom { name: "secret".into(), public: true }).await
    else {
        panic!("create_room")
    };
    assert_ne!(carols.id, room.id, "another owner's private name is not taken");
    let Reply::Room { room: found } = alice.client.ok(Request::FindRoom { name: "secret".into() }).await
    else {
        panic!("find_room")
    };
    assert_eq!(found.id, room.id, "the room alice is in comes before the public one");

    let (_, epoch) = add_member(&mut alice, &mut bob, &room, 0).await;
    let upload = carol.upload(1);
    carol.client.ok(upload).await;
    let carols = claim(&mut bob.client, "carol").await;
    let add_carol = bob.add(&room, &[carol.name()], &carols);
    assert_eq!(add_carol.epoch(), epoch);
    assert_eq!(refused(&mut bob, add_carol).await, ErrorCode::Forbidden);
    let remove_owner = bob.remove(&room, &[alice.name()], &[alice.identity()]);
    assert_eq!(refused(&mut bob, remove_owner).await, ErrorCode::Forbidden);
    // No MLS client removes itself or a non-member; these commits remove Bob's
    // leaf while declaring the refused change.
    let remove_self = alice.remove(&room, &[alice.name()], &[bob.identity()]);
    assert_eq!(refused(&mut alice, remove_self).await, ErrorCode::Forbidden);
    let remove_outsider = alice.remove(&room, &[carol.name()], &[bob.identity()]);
    assert_eq!(refused(&mut alice, remove_outsider).await, ErrorCode::Forbidden);
    let Reply::Room { room: found } = bob.client.ok(Request::FindRoom { name: "secret".into() }).await else {
        panic!("find_room")
    };
    assert_eq!(found.id, room.id, "a member finds the private room");
    assert!(matches!(bob.client.ok(fetch(room.id, 0, 10)).await, Reply::Log { .. }));
    for request in outsider_requests() {
        let name = request.name();
        assert_eq!(carol.client.fails(request).await, ErrorCode::NotFound, "{name}");
    }
    let state = alice.mls.group_state(&room.group_id.0).expect("group state");
    let join = carol.join_from(&room, &state.group_info, &state.ratchet_tree);
    assert_eq!(join.epoch(), epoch);
    assert_eq!(refused(&mut carol, join).await, ErrorCode::NotFound, "join");
    let removal = alice.remove(&room, &[bob.name()], &[bob.identity()]);
    let (_, epoch) = committed(&mut alice, removal).await;
    assert_eq!(epoch, 2);
    assert_eq!(bob.client.fails(fetch(room.id, 0, 10)).await, ErrorCode::NotFound, "a former member");
}

/// A Welcome reaches the added device only once its commit was accepted: a
/// stale add leaves nothing behind. It is pushed at once, offered again on
/// every bind and by `welcomes`, and gone once the device acted in the room.
async fn welcomes_are_released_only_by_an_accepted_commit(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let room = create_room(&mut alice, "club", false).await;
    let upload = bob.upload(2);
    bob.client.ok(upload).await;
    let packages = claim(&mut alice.client, "bob").await;
    let devices: Vec<DeviceId> = packages.iter().map(|p| p.0).collect();
    assert_eq!(devices, vec![bob.device]);

    // An add built in epoch 0, sent after a key update moved the group on.
    let stale = alice.add(&room, &[bob.name()], &packages);
    alice.mls.discard(&room.group_id.0).expect("discard");
    let update = alice.update(&room);
    assert_eq!(committed(&mut alice, update).await.1, 1);
    assert_eq!(alice.client.fails(stale.request).await, ErrorCode::StaleEpoch);
    let early = events(&mut bob.client, Duration::from_millis(500)).await;
    assert!(!early.iter().any(|e| matches!(e, Event::Welcome { .. })), "{early:?}");
    assert_eq!(bob.client.ok(Request::Welcomes {}).await, Reply::Welcomes { welcomes: vec![] });

    let add = alice.add(&room, &[bob.name()], &packages);
    let sent_welcome = Bytes(add.outgoing.welcome.clone().expect("a Welcome"));
    let sent_tree = Bytes(add.outgoing.ratchet_tree.clone());
    let (seq, _) = committed(&mut alice, add).await;
    let welcome = loop {
        if let Event::Welcome { welcome } = bob.client.next_event().await {
            break welcome;
        }
    };
    assert_eq!((welcome.room.id, welcome.room.name.as_str(), welcome.room.member), (room.id, "club", true));
    bob.mls.join_welcome(&welcome.welcome.0, &welcome.ratchet_tree.0).expect("bob joins from the Welcome");
    assert_eq!((welcome.seq, welcome.welcome, welcome.ratchet_tree), (seq, sent_welcome, sent_tree));

    let mut again = bob.reconnect(&server).await;
    let on_bind = events(&mut again, Duration::from_millis(300)).await;
    assert!(
        on_bind.iter().any(|e| matches!(e, Event::Welcome { welcome } if welcome.seq == seq)),
        "{on_bind:?}"
    );
    let Reply::Welcomes { welcomes } = again.ok(Request::Welcomes {}).await else { panic!("welcomes") };
    assert_eq!(welcomes.len(), 1);

    let entries = log(&mut again, room.id, 0).await;
    assert_eq!(entries.first().map(|e| e.seq), Some(seq), "history starts where the device joined");
    assert_eq!(again.ok(Request::Welcomes {}).await, Reply::Welcomes { welcomes: vec![] });
}

/// Messages from several senders at once reach every member connection (two
/// devices of one user included, and the senders' own) exactly once and in seq
/// order; a retried send is stored once.
async fn sends_are_idempotent_and_reach_every_connection_once_in_order(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let mut carol = Member::new(&server, "carol").await;
    let room = create_room(&mut alice, "chat", true).await;
    let mut bob_phone = bob.another_device(&server).await;
    let mut epoch = 0;
    for member in [&mut bob, &mut bob_phone, &mut carol] {
        let join = member.join(&room).await;
        assert_eq!(join.epoch(), epoch);
        epoch = committed(member, join).await.1;
    }

    const EACH: u64 = 20;
    let senders = [alice, carol].map(|mut member| {
        tokio::spawn(async move {
            let mut acks = Vec::new();
            for n in 0..EACH {
                let text = format!("{}:{n}", member.name());
                acks.push(sent(&mut member.client, room.id, text.as_bytes(), n).await);
            }
            (member, acks)
        })
    });
    let mut results = Vec::new();
    for task in senders {
        results.push(task.await.expect("sender"));
    }
    let (mut carol, carol_acks) = results.pop().expect("carol");
    let (mut alice, alice_acks) = results.pop().expect("alice");
    let acked: BTreeSet<Seq> = alice_acks.iter().chain(&carol_acks).map(|ack| ack.1).collect();
    assert_eq!(acked.len(), 40);
    assert_eq!(
        sent(&mut alice.client, room.id, b"alice:0", 0).await,
        alice_acks[0],
        "a retry returns the first send's id and seq"
    );

    let expected: Vec<Seq> = acked.iter().copied().collect();
    for (who, client) in [
        ("alice", &mut alice.client),
        ("bob", &mut bob.client),
        ("bob's phone", &mut bob_phone.client),
        ("carol", &mut carol.client),
    ] {
        let seqs: Vec<Seq> = pushed_messages(client, room.id, 40).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, expected, "{who} receives every entry once, in order");
        let extra = entries_of(&events(client, Duration::from_millis(300)).await, room.id);
        assert!(extra.is_empty(), "{who} got more: {extra:?}");
    }
    let messages = log(&mut bob.client, room.id, 0).await;
    assert_eq!(messages.iter().filter(|e| matches!(e.body, EntryBody::Message { .. })).count(), 40);
}

/// A member whose client stops reading while the room is busy loses pushes
/// once the server's bound for it is full, and only it: once it reads again it
/// gets everything written before, in order, then exactly one `resync`, then
/// live entries; `fetch` from its cursor gives it what it missed. The sender,
/// which reads, gets every entry.
async fn a_member_that_does_not_read_is_told_to_resync(backend: Backend) {
    let server = server(backend, &["--requests-per-second", "1000"]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let room = create_room(&mut alice, "busy", true).await;
    joined(&mut bob, &room).await;
    events(&mut bob.client, Duration::from_millis(300)).await;

    // Far more than the kernel's socket buffers and the server's 512 KiB
    // bound hold: about 17 MiB of entries, which bob does not read.
    const SENDS: u64 = 200;
    let big = vec![7; MAX_MESSAGE_BYTES];
    let mut acked = Vec::new();
    for nonce in 0..SENDS {
        acked.push(sent(&mut alice.client, room.id, &big, nonce).await.1);
    }
    let alice_seqs: Vec<Seq> =
        pushed_messages(&mut alice.client, room.id, 200).await.iter().map(|e| e.seq).collect();
    assert_eq!(alice_seqs, acked, "the sender, which reads, gets every entry");

    let bob_events = events(&mut bob.client, Duration::from_millis(500)).await;
    let (last, before) = bob_events.split_last().expect("bob reads something");
    assert_eq!(last, &Event::Resync, "the last thing bob gets is one resync");
    let got: Vec<Seq> = entries_of(before, room.id).iter().map(|e| e.seq).collect();
    assert!(!got.is_empty() && got.len() < acked.len(), "bob got {} of {} entries", got.len(), acked.len());
    assert_eq!(got, acked[..got.len()], "what bob got is a prefix of the log, in order");
    assert!(!before.contains(&Event::Resync), "exactly one resync");

    let (_, live) = sent(&mut alice.client, room.id, b"live again", SENDS).await;
    let (_, entry) = next_entry(&mut bob.client).await;
    assert_eq!(entry.seq, live, "after the resync, bob is live again");
    let missed: Vec<Seq> =
        log(&mut bob.client, room.id, got.last().expect("some").0).await.iter().map(|e| e.seq).collect();
    let mut expected = acked[got.len()..].to_vec();
    expected.push(live);
    assert_eq!(missed, expected, "fetch from the cursor gives bob what it missed");
}

/// 50 messages sent while a member is offline are all returned by `fetch` after
/// its cursor, in order, whole or page by page.
async fn a_member_who_was_offline_catches_up_with_fetch(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let room = create_room(&mut alice, "news", true).await;
    let (cursor, _) = joined(&mut bob, &room).await;
    let offline = RawClient::greeted(server.addr, &server.fingerprint).await;
    std::mem::replace(&mut bob.client, offline).close().await;

    let mut acks = Vec::new();
    for n in 0..50u64 {
        acks.push(sent(&mut alice.client, room.id, format!("news {n}").as_bytes(), n).await);
    }
    let mut back = bob.reconnect(&server).await;
    let entries = log(&mut back, room.id, cursor.0).await;
    assert_eq!(entries.len(), 50);
    for (n, (entry, (id, seq))) in entries.iter().zip(&acks).enumerate() {
        assert_eq!(entry.seq, *seq);
        let expected = format!("news {n}").into_bytes();
        assert!(
            matches!(&entry.body, EntryBody::Message { id: got, ciphertext: Some(c) } if got == id && c.0 == expected),
            "{entry:?}"
        );
    }
    let mut paged = Vec::new();
    let mut after = cursor.0;
    for expected in [20, 20, 10, 0] {
        let Reply::Log { entries, last_seq, .. } = back.ok(fetch(room.id, after, 20)).await else {
            panic!("log")
        };
        assert_eq!((entries.len(), last_seq), (expected, acks[49].1));
        after = entries.last().map_or(after, |e| e.seq.0);
        paged.extend(entries);
    }
    assert_eq!(paged, entries);
}

/// Deleting a message (by its sender, or by the room's owner) erases its
/// ciphertext from the database — files and WAL for SQLite, tables for
/// PostgreSQL — and appends a `deleted` entry; others may not delete it.
async fn delete_erases_the_ciphertext_from_the_database(backend: Backend) {
    let mut server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let room = create_room(&mut alice, "board", true).await;
    joined(&mut bob, &room).await;

    let secrets: [&[u8]; 2] = [b"CIPHERTEXT-bob-regrets-this-7f3a", b"CIPHERTEXT-bob-again-1c9e"];
    let kept: &[u8] = b"CIPHERTEXT-kept-forever-55d0";
    let (first, _) = sent(&mut bob.client, room.id, secrets[0], 1).await;
    let (second, _) = sent(&mut bob.client, room.id, secrets[1], 2).await;
    let (alices, _) = sent(&mut alice.client, room.id, kept, 1).await;
    for bytes in [secrets[0], secrets[1], kept] {
        leak::assert_stored(&server, bytes).await;
    }

    assert_eq!(
        bob.client.fails(Request::Delete { room: room.id, message: alices }).await,
        ErrorCode::Forbidden,
        "only the sender or the owner"
    );
    let Reply::Sent { id, seq: own } = bob.client.ok(Request::Delete { room: room.id, message: first }).await
    else {
        panic!("delete")
    };
    assert_eq!(id, first);
    let Reply::Sent { seq: again, .. } =
        bob.client.ok(Request::Delete { room: room.id, message: first }).await
    else {
        panic!("delete again")
    };
    assert_eq!(again, own, "deleting twice returns the first deletion");
    alice.client.ok(Request::Delete { room: room.id, message: second }).await;
    assert_eq!(
        alice.client.fails(Request::Delete { room: room.id, message: MessageId(12345) }).await,
        ErrorCode::NotFound
    );

    let entries = log(&mut bob.client, room.id, 0).await;
    let ciphertext_of = |id| {
        entries.iter().find_map(|e| match &e.body {
            EntryBody::Message { id: m, ciphertext } if *m == id => Some(ciphertext.clone()),
            _ => None,
        })
    };
    assert_eq!(ciphertext_of(first), Some(None));
    assert_eq!(ciphertext_of(second), Some(None));
    assert_eq!(ciphertext_of(alices), Some(Some(Bytes(kept.to_vec()))));
    let deleted: Vec<MessageId> = entries
        .iter()
        .filter_map(|e| match e.body {
            EntryBody::Deleted { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, vec![first, second]);
    let pushed = entries_of(&events(&mut alice.client, Duration::from_millis(300)).await, room.id);
    assert!(pushed.iter().any(|e| e.body == EntryBody::Deleted { message: first }), "{pushed:?}");

    for secret in secrets {
        leak::assert_absent(&server, secret).await;
    }
    leak::assert_stored(&server, kept).await;
    assert!(server.stop());
    for secret in secrets {
        leak::assert_absent(&server, secret).await;
    }
}

/// A removed member sees the commit that removes them, then nothing: no pushed
/// entries (even after reconnecting), no fetch, send, GroupInfo or re-join (the
/// private room answers them as a room that does not exist).
async fn removed_members_receive_nothing_more(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let room = create_room(&mut alice, "team", false).await;
    let (_, epoch) = add_member(&mut alice, &mut bob, &room, 0).await;
    log(&mut bob.client, room.id, 0).await;
    let (_, before) = sent(&mut alice.client, room.id, b"before", 1).await;
    assert_eq!(pushed_messages(&mut bob.client, room.id, 1).await[0].seq, before);

    let remove = alice.remove(&room, &[bob.name()], &[bob.identity()]);
    assert_eq!(remove.epoch(), epoch);
    let (removal, epoch) = committed(&mut alice, remove).await;
    sent(&mut alice.client, room.id, b"after", 2).await;
    let seen = entries_of(&events(&mut bob.client, Duration::from_millis(800)).await, room.id);
    assert_eq!(seen.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![removal], "{seen:?}");
    for request in
        [fetch(room.id, 0, 10), send(room.id, b"still here?", 3), Request::GroupInfo { room: room.id }]
    {
        let name = request.name();
        assert_eq!(bob.client.fails(request).await, ErrorCode::NotFound, "{name}");
    }
    let state = alice.mls.group_state(&room.group_id.0).expect("group state");
    let rejoin = bob.join_from(&room, &state.group_info, &state.ratchet_tree);
    assert_eq!(rejoin.epoch(), epoch);
    assert_eq!(refused(&mut bob, rejoin).await, ErrorCode::NotFound, "join");
    let mut again = bob.reconnect(&server).await;
    sent(&mut alice.client, room.id, b"later", 3).await;
    let seen = entries_of(&events(&mut again, Duration::from_millis(800)).await, room.id);
    assert!(seen.is_empty(), "{seen:?}");
}

/// Leaving takes effect at once and is announced; the next commit by any
/// member (not only the owner) removes the leaver; owners and lobby members
/// cannot leave.
async fn leavers_lose_access_and_any_member_may_remove_them(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let mut carol = Member::new(&server, "carol").await;
    let room = create_room(&mut alice, "hall", true).await;
    joined(&mut bob, &room).await;
    let (_, epoch) = joined(&mut carol, &room).await;

    assert_eq!(carol.client.ok(Request::Leave { room: room.id }).await, Reply::Done);
    let left = loop {
        if let (_, LogEntry { body: EntryBody::Left { user }, .. }) = next_entry(&mut bob.client).await {
            break user;
        }
    };
    assert_eq!(left, "carol");
    assert_eq!(carol.client.fails(fetch(room.id, 0, 10)).await, ErrorCode::Forbidden);
    assert_eq!(carol.client.fails(send(room.id, b"bye", 1)).await, ErrorCode::Forbidden);
    assert_eq!(carol.client.fails(Request::Leave { room: room.id }).await, ErrorCode::Forbidden);
    let Reply::Members { members } = alice.client.ok(Request::Members { room: room.id }).await else {
        panic!("members")
    };
    assert_eq!(members.iter().map(|m| m.username.as_str()).collect::<Vec<_>>(), vec!["alice", "bob"]);

    bob.catch_up(&room).await;
    let remove_owner = bob.remove(&room, &[alice.name()], &[alice.identity()]);
    assert_eq!(remove_owner.epoch(), epoch);
    assert_eq!(refused(&mut bob, remove_owner).await, ErrorCode::Forbidden);
    let remove_leaver = bob.remove(&room, &[carol.name()], &[carol.identity()]);
    let (_, epoch) = committed(&mut bob, remove_leaver).await;
    assert_eq!(alice.client.fails(Request::Leave { room: room.id }).await, ErrorCode::Forbidden);
    // A public room takes a leaver back.
    assert_eq!(joined(&mut carol, &room).await.1, epoch + 1);
    assert!(matches!(carol.client.ok(fetch(room.id, 0, 10)).await, Reply::Log { .. }));
}

/// `open_direct` makes one room per pair of users, named after the other
/// participant on each side; only the two may join, and only the creator adds.
async fn direct_conversations_have_two_participants(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let mut carol = Member::new(&server, "carol").await;
    let Reply::Room { room } = alice.client.ok(Request::OpenDirect { username: "Bob".into() }).await else {
        panic!("open_direct")
    };
    assert_eq!((room.name.as_str(), room.kind, room.member), ("@bob", RoomKind::Direct, true));
    let Reply::Room { room: theirs } = bob.client.ok(Request::OpenDirect { username: "alice".into() }).await
    else {
        panic!("open_direct")
    };
    assert_eq!((theirs.id, theirs.name.as_str()), (room.id, "@alice"));
    let Reply::Room { room: found } = bob.client.ok(Request::FindRoom { name: "@alice".into() }).await else {
        panic!("find_room")
    };
    assert_eq!(found.id, room.id);
    assert_eq!(carol.client.fails(Request::FindRoom { name: "@alice".into() }).await, ErrorCode::NotFound);

    let create = alice.create(&room);
    committed(&mut alice, create).await;
    let state = alice.mls.group_state(&room.group_id.0).expect("group state");
    let join = carol.join_from(&room, &state.group_info, &state.ratchet_tree);
    assert_eq!(refused(&mut carol, join).await, ErrorCode::NotFound, "no such room, for carol");
    let upload = carol.upload(1);
    carol.client.ok(upload).await;
    let carols = claim(&mut alice.client, "carol").await;
    let add_carol = alice.add(&room, &[carol.name()], &carols);
    assert_eq!(refused(&mut alice, add_carol).await, ErrorCode::Forbidden);
    let (_, epoch) = joined(&mut bob, &room).await;
    let mut bob_phone = bob.another_device(&server).await;
    let upload = bob_phone.upload(1);
    bob_phone.client.ok(upload).await;
    alice.catch_up(&room).await;
    let phones = claim(&mut alice.client, "bob").await;
    assert_eq!(phones.iter().map(|p| p.0).collect::<Vec<_>>(), vec![bob_phone.device]);
    let add_phone = alice.add(&room, &[bob.name()], &phones);
    assert_eq!(add_phone.epoch(), epoch);
    committed(&mut alice, add_phone).await;
    let Reply::Rooms { rooms } = bob.client.ok(Request::ListRooms {}).await else { panic!("rooms") };
    assert!(rooms.iter().any(|r| r.id == room.id && r.name == "@alice" && r.member), "{rooms:?}");
}

/// Every input is checked against the protocol's limits and rules.
async fn inputs_are_validated(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let c = &mut alice.client;
    for name in ["Bad Name", "", &"x".repeat(33), "émoji"] {
        assert_eq!(
            c.fails(Request::CreateRoom { name: name.into(), public: true }).await,
            ErrorCode::InvalidName
        );
    }
    assert_eq!(
        c.fails(Request::CreateRoom { name: "lobby".into(), public: true }).await,
        ErrorCode::NameTaken
    );
    assert_eq!(c.fails(Request::OpenDirect { username: "alice".into() }).await, ErrorCode::BadRequest);
    assert_eq!(c.fails(Request::OpenDirect { username: "nobody".into() }).await, ErrorCode::NotFound);
    assert_eq!(c.fails(Request::FindRoom { name: "nothing-here".into() }).await, ErrorCode::NotFound);
    assert_eq!(c.fails(Request::GroupInfo { room: RoomId(999) }).await, ErrorCode::NotFound);

    let room = create_room(&mut alice, "rules", true).await;
    let c = &mut alice.client;
    assert_eq!(c.fails(send(room.id, &vec![7; MAX_MESSAGE_BYTES + 1], 1)).await, ErrorCode::TooLarge);
    sent(c, room.id, &vec![7; MAX_MESSAGE_BYTES], 2).await;
    assert_eq!(c.fails(send(room.id, b"", 3)).await, ErrorCode::BadRequest);
    assert_eq!(c.fails(send(RoomId(999), b"nowhere", 4)).await, ErrorCode::NotFound);
    assert_eq!(c.fails(fetch(room.id, 0, MAX_FETCH + 1)).await, ErrorCode::BadRequest);
    assert_eq!(sent(c, room.id, &vec![7; MAX_MESSAGE_BYTES], 2).await.1, Seq(2), "a retry");
    let other = create_room(&mut alice, "rules2", true).await;
    let c = &mut alice.client;
    assert_eq!(c.fails(send(other.id, b"same nonce elsewhere", 2)).await, ErrorCode::BadRequest);

    let no_info = alice.update(&room).without_group_info();
    assert_eq!(refused(&mut alice, no_info).await, ErrorCode::BadRequest);
    let upload = bob.upload(1);
    bob.client.ok(upload).await;
    let bobs = claim(&mut alice.client, "bob").await;
    let no_welcome = alice.add(&room, &[bob.name()], &bobs).without_welcome();
    assert_eq!(refused(&mut alice, no_welcome).await, ErrorCode::BadRequest);
    let wrong_device = alice
        .add(&room, &[bob.name()], &bobs)
        .declaring(Change::Add { users: vec![bob.name()], devices: vec![alice.device] });
    assert_eq!(refused(&mut alice, wrong_device).await, ErrorCode::BadRequest);
    let nobody = alice.update(&room).declaring(Change::Add { users: vec!["nobody".into()], devices: vec![] });
    assert_eq!(refused(&mut alice, nobody).await, ErrorCode::NotFound);
    let remove_nobody = alice.update(&room).declaring(Change::Remove { users: vec![] });
    assert_eq!(refused(&mut alice, remove_nobody).await, ErrorCode::BadRequest);
    let update = alice.update(&room);
    let create_with_commit = Request::Commit {
        room: room.id,
        epoch: 0,
        change: Change::Create {},
        commit: Bytes(update.outgoing.commit.clone()),
        group_info: Bytes(update.outgoing.group_info.clone()),
        ratchet_tree: Bytes(update.outgoing.ratchet_tree.clone()),
        welcome: None,
    };
    assert_eq!(
        refused(&mut alice, Pending { request: create_with_commit, ..update }).await,
        ErrorCode::BadRequest
    );
}

/// A user's first bound connection announces them online to everyone; the last
/// one closing announces them offline; `users` lists everyone with the flag.
async fn presence_is_pushed_and_listed(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let (_carol, _carol_client) = Account::register(&server, "carol", PASSWORD).await;
    events(&mut alice.client, Duration::from_millis(200)).await;
    let bob = Member::new(&server, "bob").await;
    let presence = |online| Event::Presence { username: "bob".into(), online };
    assert_eq!(alice.client.next_event().await, presence(true));

    let Reply::Users { users } = alice.client.ok(Request::Users {}).await else { panic!("users") };
    let online = |username: &str, online| UserPresence { username: username.into(), online };
    assert_eq!(users, vec![online("alice", true), online("bob", true), online("carol", false)]);

    bob.client.close().await;
    assert_eq!(alice.client.next_event().await, presence(false));
}

/// Messages acknowledged before the server is killed (SIGKILL, mid-stream) are
/// all there after a restart: `sent` means durably stored.
async fn acknowledged_messages_survive_a_crash(backend: Backend) {
    let mut server = server(backend, &["--requests-per-second", "10000"]).await;
    let mut alice = Member::new(&server, "alice").await;
    let room = create_room(&mut alice, "durable", true).await;
    let Member { account, mut client, device, key, .. } = alice;

    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = tokio::spawn(async move {
        for n in 0u64.. {
            let request = send(room.id, format!("durable message {n:06}").as_bytes(), n);
            match client.try_request(request).await {
                Some(Response { outcome: Outcome::Ok(Reply::Sent { id, seq }), .. }) => {
                    if acks_tx.send((n, id, seq)).is_err() {
                        break;
                    }
                }
                Some(other) => panic!("send failed: {other:?}"),
                None => break,
            }
        }
    });
    let mut acked = Vec::new();
    while acked.len() < 60 {
        acked.push(acks_rx.recv().await.expect("acks while the server runs"));
    }
    server.kill();
    stream.await.expect("the sender stops when the connection drops");
    while let Ok(ack) = acks_rx.try_recv() {
        acked.push(ack);
    }

    server.restart();
    let mut client = account.connect(&server).await;
    client.bind_device(Some(device), &key).await;
    let entries = log(&mut client, room.id, 0).await;
    assert_eq!(
        entries.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
        (1..=entries.last().map_or(0, |e| e.seq.0)).collect::<Vec<_>>(),
        "gap-free after the crash"
    );
    for (n, id, seq) in &acked {
        let entry = entries.iter().find(|e| e.seq == *seq).unwrap_or_else(|| panic!("acked seq {seq} lost"));
        let expected = format!("durable message {n:06}").into_bytes();
        assert!(
            matches!(&entry.body, EntryBody::Message { id: got, ciphertext: Some(c) } if got == id && c.0 == expected),
            "{entry:?}"
        );
    }
}

/// A typing signal (an ephemeral MLS application message) reaches the other
/// member devices online now — not the sender's own device, not outsiders — and
/// is never stored: the log and the database do not have it, and messages sent
/// after it still decrypt in order.
async fn signals_reach_other_online_members_and_are_never_stored(backend: Backend) {
    let server = server(backend, &[]).await;
    let mut alice = Member::new(&server, "alice").await;
    let mut bob = Member::new(&server, "bob").await;
    let mut mallory = Member::new(&server, "mallory").await;
    let room = create_room(&mut alice, "chat", false).await;
    let (_, epoch) = add_member(&mut alice, &mut bob, &room, 0).await;
    assert_eq!(epoch, 1);
    let first = alice.mls.encrypt(&room.group_id.0, b"first").expect("encrypt");
    let (_, last_seq) = sent(&mut alice.client, room.id, &first, 1).await;
    let before = log(&mut bob.client, room.id, 0).await.len();
    events(&mut alice.client, Duration::from_millis(300)).await;
    events(&mut bob.client, Duration::from_millis(300)).await;

    let typing = alice.mls.encrypt(&room.group_id.0, br#"{"v":1,"type":"typing"}"#).expect("encrypt");
    let reply = alice.client.ok(Request::Signal { room: room.id, ciphertext: Bytes(typing.clone()) }).await;
    assert_eq!(reply, Reply::Done);
    let got = events(&mut bob.client, Duration::from_millis(500)).await;
    let signal = got.iter().find_map(|event| match event {
        Event::Signal { room: r, sender, device, after, ciphertext } if *r == room.id => {
            Some((sender.clone(), *device, *after, ciphertext.0.clone()))
        }
        _ => None,
    });
    let (sender, device, after, ciphertext) = signal.unwrap_or_else(|| panic!("bob got no signal: {got:?}"));
    assert_eq!((sender.as_str(), device, after), ("alice", alice.device, last_seq));
    assert!(
        matches!(bob.mls.process(&room.group_id.0, &first), Ok(Processed::Application { .. })),
        "bob reads the stored message first"
    );
    match bob.mls.process(&room.group_id.0, &ciphertext).expect("bob decrypts the signal") {
        Processed::Application { plaintext, sender, .. } => {
            assert_eq!(sender, alice.identity());
            assert_eq!(plaintext, br#"{"v":1,"type":"typing"}"#);
        }
        other => panic!("not an application message: {other:?}"),
    }
    let own = events(&mut alice.client, Duration::from_millis(300)).await;
    assert!(
        !own.iter().any(|e| matches!(e, Event::Signal { .. })),
        "the sender's device gets no echo: {own:?}"
    );

    assert_eq!(log(&mut bob.client, room.id, 0).await.len(), before, "nothing was appended to the log");
    leak::assert_absent(&server, &typing).await;

    let after_signal = alice.mls.encrypt(&room.group_id.0, b"after the signal").expect("encrypt");
    let (_, seq) = sent(&mut alice.client, room.id, &after_signal, 2).await;
    let entry = log(&mut bob.client, room.id, seq.0 - 1).await.pop().expect("the next message");
    let EntryBody::Message { ciphertext: Some(next), .. } = entry.body else { panic!("a message") };
    assert!(
        matches!(bob.mls.process(&room.group_id.0, &next.0), Ok(Processed::Application { .. })),
        "messages after a signal still decrypt"
    );

    let outsider = mallory.mls.key_packages(1, false).expect("KeyPackage");
    assert_eq!(
        mallory.client.fails(Request::Signal { room: room.id, ciphertext: Bytes(outsider[0].clone()) }).await,
        ErrorCode::NotFound,
        "outsiders cannot signal, nor learn that the private room exists"
    );
    assert_eq!(
        alice.client.fails(Request::Signal { room: room.id, ciphertext: Bytes(vec![7; 5000]) }).await,
        ErrorCode::TooLarge
    );
}
