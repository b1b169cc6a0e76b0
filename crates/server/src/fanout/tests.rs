use super::*;
use crate::bench::{ClientSocket, Loopback};
use conclave_proto::{EntryBody, LogEntry, MessageId, Seq};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;

fn fanout() -> Fanout {
    Fanout::new(Arc::new(Metrics::new()))
}

fn entry_of(seq: i64, size: usize) -> Frame {
    encode(Event::Entry {
        room: RoomId(1),
        entry: LogEntry {
            seq: Seq(seq),
            at_ms: 0,
            sender: "alice".into(),
            device: DeviceId(1),
            body: EntryBody::Message {
                id: MessageId(seq),
                ciphertext: (size > 0).then(|| conclave_proto::Bytes(vec![7; size])),
            },
        },
    })
}

fn entry(seq: i64) -> Frame {
    entry_of(seq, 0)
}

fn seq(event: &Event) -> i64 {
    match event {
        Event::Entry { entry, .. } => entry.seq.0,
        other => panic!("not an entry: {other:?}"),
    }
}

/// A connection over real loopback TLS, registered with `fanout`; returns its
/// registration, its server end and its client end.
async fn connect(
    fanout: &Fanout,
    net: &Loopback,
    user: i64,
    name: &str,
    device: i64,
) -> (Registration, Arc<Wire>, ClientSocket) {
    let (wire, client) = net.connect().await.expect("a loopback connection");
    let registration = fanout.register(UserId(user), name, DeviceId(device), &wire);
    (registration, wire, client)
}

/// The next event the client reads, if one comes within a moment.
async fn next_event(client: &mut ClientSocket) -> Option<Event> {
    let message = tokio::time::timeout(Duration::from_millis(200), client.next()).await.ok()??;
    let text = message.expect("the socket reads").into_text().expect("a text message");
    match ServerFrame::decode(text.as_str(), usize::MAX).expect("frame decodes") {
        ServerFrame::Event { event } => Some(event),
        other @ ServerFrame::Response(_) => panic!("not an event: {other:?}"),
    }
}

/// Everything the client receives until the line goes quiet.
async fn drain(client: &mut ClientSocket) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = next_event(client).await {
        events.push(event);
    }
    events
}

#[test]
fn the_resync_frame_is_the_resync_event_as_websocket_text() {
    let text = ServerFrame::Event { event: Event::Resync }.encode();
    assert_eq!(RESYNC[0], 0x81, "a final text frame");
    assert_eq!(usize::from(RESYNC[1]), text.len(), "unmasked, with the payload's length");
    assert_eq!(&RESYNC[2..], text.as_bytes());
}

/// A connection that does not read loses frames once its socket and pending
/// bytes are full, and only it: it then gets everything written before, in
/// order, then exactly one `resync`, then live frames again. A reading
/// connection gets every frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_gets_one_resync_and_never_slows_the_others() {
    let metrics = Arc::new(Metrics::new());
    let fanout = Fanout::new(metrics.clone());
    let net = Loopback::new().await.unwrap();
    let (slow, slow_wire, mut slow_client) = connect(&fanout, &net, 1, "slow", 1).await;
    let (fast, _fast_wire, mut fast_client) = connect(&fanout, &net, 2, "fast", 2).await;
    assert!(slow.subscribe(&[RoomId(1)], slow.version()));
    assert!(fast.subscribe(&[RoomId(1)], fast.version()));
    drain(&mut slow_client).await;
    drain(&mut fast_client).await;

    // The fast client reads in its own task and reports each entry.
    let (seen_tx, mut seen_rx) = mpsc::channel(1);
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = fast_client.next().await {
            let text = message.into_text().expect("a text message");
            let Ok(ServerFrame::Event { event }) = ServerFrame::decode(text.as_str(), usize::MAX) else {
                panic!("not an event: {text}");
            };
            if seen_tx.send(seq(&event)).await.is_err() {
                break;
            }
        }
    });
    // Large entries, so the kernel's buffers fill after hundreds, not millions.
    let mut published = 0;
    while metrics.deliveries_dropped.get() == 0 {
        assert!(published < 20_000, "the slow connection never lagged");
        published += 1;
        fanout.publish(RoomId(1), &entry_of(published, 16 * 1024), Delta::default());
        assert_eq!(seen_rx.recv().await, Some(published), "the fast client gets every entry at once");
    }
    for _ in 0..10 {
        published += 1;
        fanout.publish(RoomId(1), &entry_of(published, 16 * 1024), Delta::default());
        assert_eq!(seen_rx.recv().await, Some(published));
    }
    assert_eq!(metrics.deliveries_dropped.get(), 11, "dropped for the slow connection alone");

    // What the slow connection's session does: write out what is pending,
    // then the resync.
    let session = tokio::spawn(async move {
        loop {
            slow_wire.has_work().await;
            if slow_wire.catch_up(&RESYNC).is_err() {
                break;
            }
        }
    });
    let mut slow_seen = Vec::new();
    while let Some(event) = next_event(&mut slow_client).await {
        slow_seen.push(event);
    }
    let (resync, entries) = slow_seen.split_last().expect("the slow client reads something");
    assert_eq!(resync, &Event::Resync);
    let seqs: Vec<i64> = entries.iter().map(seq).collect();
    assert_eq!(seqs, (1..=published - 11).collect::<Vec<_>>(), "everything before the drop, in order");

    fanout.publish(RoomId(1), &entry(5000), Delta::default());
    assert_eq!(seen_rx.recv().await, Some(5000));
    let after: Vec<i64> = drain(&mut slow_client).await.iter().map(seq).collect();
    assert_eq!(after, vec![5000], "live again after the resync, and only one resync");
    session.abort();
    reader.abort();
}

/// Added devices start receiving after the entry that added them; removed
/// users receive the entry that removes them, then nothing.
#[tokio::test]
async fn deltas_apply_after_delivery() {
    let fanout = fanout();
    let net = Loopback::new().await.unwrap();
    let (alice, _alice_wire, mut alice_box) = connect(&fanout, &net, 1, "alice", 1).await;
    let (_bob, _bob_wire, mut bob_box) = connect(&fanout, &net, 2, "bob", 2).await;
    assert!(alice.subscribe(&[RoomId(1)], alice.version()));
    drain(&mut alice_box).await;
    drain(&mut bob_box).await;

    fanout.publish(RoomId(1), &entry(1), Delta { subscribe: &[DeviceId(2)], ..Delta::default() });
    fanout.publish(RoomId(1), &entry(2), Delta::default());
    assert_eq!(drain(&mut bob_box).await.iter().map(seq).collect::<Vec<_>>(), vec![2]);

    fanout.publish(RoomId(1), &entry(3), Delta { unsubscribe_users: &[UserId(2)], ..Delta::default() });
    fanout.publish(RoomId(1), &entry(4), Delta::default());
    assert_eq!(drain(&mut bob_box).await.iter().map(seq).collect::<Vec<_>>(), vec![3]);
    assert_eq!(drain(&mut alice_box).await.iter().map(seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
}

/// A bind that read its rooms before the user was removed from one does not
/// subscribe to the stale list.
#[tokio::test]
async fn a_stale_room_list_is_refused() {
    let fanout = fanout();
    let net = Loopback::new().await.unwrap();
    let (bob, _bob_wire, _bob_box) = connect(&fanout, &net, 2, "bob", 2).await;
    let seen = bob.version();
    fanout.publish(RoomId(1), &entry(1), Delta { unsubscribe_users: &[UserId(2)], ..Delta::default() });
    assert!(!bob.subscribe(&[RoomId(1)], seen));
    assert!(bob.subscribe(&[RoomId(2)], bob.version()));
}

/// The first connection of a user announces them online to everyone, a second
/// one does not, and the last one gone announces them offline.
#[tokio::test]
async fn presence_follows_the_first_and_last_connection() {
    let fanout = fanout();
    let net = Loopback::new().await.unwrap();
    let (_watcher, _watcher_wire, mut watcher_box) = connect(&fanout, &net, 1, "watcher", 1).await;
    drain(&mut watcher_box).await;
    let presence = |online| Event::Presence { username: "carol".into(), online };

    let (laptop, _laptop_wire, _l) = connect(&fanout, &net, 3, "carol", 3).await;
    let (phone, _phone_wire, _p) = connect(&fanout, &net, 3, "carol", 4).await;
    assert_eq!(drain(&mut watcher_box).await, vec![presence(true)]);
    assert!(fanout.online().contains(&UserId(3)));

    drop(laptop);
    assert!(drain(&mut watcher_box).await.is_empty());
    drop(phone);
    assert_eq!(drain(&mut watcher_box).await, vec![presence(false)]);
    assert!(!fanout.online().contains(&UserId(3)));
}

/// A device's second connection receives the rooms the first one subscribed
/// to, and keeps them when the first one goes.
#[tokio::test]
async fn every_connection_of_a_device_receives_its_rooms() {
    let fanout = fanout();
    let net = Loopback::new().await.unwrap();
    let entries = |events: Vec<Event>| -> Vec<i64> {
        events.iter().filter(|e| matches!(e, Event::Entry { .. })).map(seq).collect()
    };
    let (first, _first_wire, mut first_client) = connect(&fanout, &net, 1, "alice", 1).await;
    assert!(first.subscribe(&[RoomId(1)], first.version()));
    let (_second, _second_wire, mut second_client) = connect(&fanout, &net, 1, "alice", 1).await;

    fanout.publish(RoomId(1), &entry(1), Delta::default());
    assert_eq!(entries(drain(&mut first_client).await), vec![1]);
    assert_eq!(entries(drain(&mut second_client).await), vec![1]);

    drop(first);
    fanout.publish(RoomId(1), &entry(2), Delta::default());
    assert_eq!(entries(drain(&mut second_client).await), vec![2]);
    assert!(drain(&mut first_client).await.is_empty(), "an unregistered connection gets nothing");
}

/// A room large enough to be written on several threads at once still gets
/// every entry to every connection, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_room_gets_every_entry_in_order() {
    let fanout = fanout();
    let net = Loopback::new().await.unwrap();
    let members = PARALLEL_FROM + 44;
    let mut clients = Vec::with_capacity(members);
    let mut registrations = Vec::with_capacity(members);
    for n in 0..members {
        let id = i64::try_from(n).unwrap();
        let (registration, _wire, client) = connect(&fanout, &net, id, &format!("user{n}"), id).await;
        assert!(registration.subscribe(&[RoomId(1)], registration.version()));
        registrations.push(registration);
        clients.push(client);
    }
    for seq in 1..=5 {
        fanout.publish(RoomId(1), &entry(seq), Delta::default());
    }
    let readers = clients.into_iter().map(|mut client| {
        tokio::spawn(async move {
            drain(&mut client)
                .await
                .iter()
                .filter(|e| matches!(e, Event::Entry { .. }))
                .map(seq)
                .collect::<Vec<_>>()
        })
    });
    for reader in readers.collect::<Vec<_>>() {
        assert_eq!(reader.await.unwrap(), vec![1, 2, 3, 4, 5]);
    }
}
