use super::*;
use conclave_proto::{EntryBody, LogEntry, MessageId, Seq};
use std::time::Duration;

fn fanout() -> Fanout {
    Fanout::new(Arc::new(Metrics::new()))
}

fn entry(seq: i64) -> Frame {
    encode(Event::Entry {
        room: RoomId(1),
        entry: LogEntry {
            seq: Seq(seq),
            at_ms: 0,
            sender: "alice".into(),
            device: DeviceId(1),
            body: EntryBody::Message { id: MessageId(seq), ciphertext: None },
        },
    })
}

fn event(frame: &Frame) -> Event {
    match ServerFrame::decode(frame, usize::MAX).expect("frame decodes") {
        ServerFrame::Event { event } => event,
        other @ ServerFrame::Response(_) => panic!("not an event: {other:?}"),
    }
}

fn seq(frame: &Frame) -> i64 {
    match event(frame) {
        Event::Entry { entry, .. } => entry.seq.0,
        other => panic!("not an entry: {other:?}"),
    }
}

/// Everything queued now, without waiting for more.
async fn drain(outbox: &mut Outbox) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Ok(frame) = tokio::time::timeout(Duration::from_millis(10), outbox.recv()).await {
        frames.push(frame);
    }
    frames
}

#[test]
fn the_resync_constant_is_the_encoded_event() {
    assert_eq!(encode(Event::Resync).as_str(), RESYNC);
}

/// A connection that does not read loses frames past its queue, and only it:
/// it then gets everything still queued, in order, then exactly one `resync`,
/// then live frames again. A reading connection gets every frame.
#[tokio::test]
async fn a_slow_consumer_gets_one_resync_and_never_slows_the_others() {
    let fanout = fanout();
    let (slow, mut slow_box) = fanout.register(UserId(1), "slow", DeviceId(1));
    let (fast, mut fast_box) = fanout.register(UserId(2), "fast", DeviceId(2));
    assert!(slow.subscribe(&[RoomId(1)], slow.version()));
    assert!(fast.subscribe(&[RoomId(1)], fast.version()));
    drain(&mut slow_box).await;
    drain(&mut fast_box).await;

    let total = QUEUE_FRAMES + 100;
    let mut fast_seen = Vec::new();
    for n in 1..=total {
        fanout.publish(RoomId(1), &entry(i64::try_from(n).unwrap()), Delta::default());
        fast_seen.push(seq(&fast_box.recv().await));
    }
    assert_eq!(fast_seen, (1..=i64::try_from(total).unwrap()).collect::<Vec<_>>());

    let slow_seen = drain(&mut slow_box).await;
    assert_eq!(slow_seen.len(), QUEUE_FRAMES + 1);
    let seqs: Vec<i64> = slow_seen[..QUEUE_FRAMES].iter().map(seq).collect();
    assert_eq!(seqs, (1..=i64::try_from(QUEUE_FRAMES).unwrap()).collect::<Vec<_>>());
    assert_eq!(event(&slow_seen[QUEUE_FRAMES]), Event::Resync);

    fanout.publish(RoomId(1), &entry(5000), Delta::default());
    let after: Vec<i64> = drain(&mut slow_box).await.iter().map(seq).collect();
    assert_eq!(after, vec![5000], "live again after the resync, and only one resync");
}

/// Added devices start receiving after the entry that added them; removed
/// users receive the entry that removes them, then nothing.
#[tokio::test]
async fn deltas_apply_after_delivery() {
    let fanout = fanout();
    let (alice, mut alice_box) = fanout.register(UserId(1), "alice", DeviceId(1));
    let (_bob, mut bob_box) = fanout.register(UserId(2), "bob", DeviceId(2));
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
    let (bob, _bob_box) = fanout.register(UserId(2), "bob", DeviceId(2));
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
    let (_watcher, mut watcher_box) = fanout.register(UserId(1), "watcher", DeviceId(1));
    drain(&mut watcher_box).await;
    let presence = |online| Event::Presence { username: "carol".into(), online };

    let (laptop, _l) = fanout.register(UserId(3), "carol", DeviceId(3));
    let (phone, _p) = fanout.register(UserId(3), "carol", DeviceId(4));
    assert_eq!(drain(&mut watcher_box).await.iter().map(event).collect::<Vec<_>>(), vec![presence(true)]);
    assert!(fanout.online().contains(&UserId(3)));

    drop(laptop);
    assert!(drain(&mut watcher_box).await.is_empty());
    drop(phone);
    assert_eq!(drain(&mut watcher_box).await.iter().map(event).collect::<Vec<_>>(), vec![presence(false)]);
    assert!(!fanout.online().contains(&UserId(3)));
}
