//! Tests of the MLS layer: real OpenMLS, one SQLite store per device in a temp dir,
//! and the tests playing the server (deciding which commit wins an epoch and handing
//! every device the log in order).

use super::*;
use openmls::prelude::{MlsMessageIn, WireFormat, tls_codec::Deserialize as _};
use std::time::Instant;
use tempfile::TempDir;

const GROUP: &[u8] = b"room-1";

/// One device: its store lives as long as its temp dir.
struct Device {
    dir: TempDir,
    state: MlsState,
    me: Identity,
}

impl Device {
    fn new(user: &str, device: i64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut state = MlsState::open(&dir.path().join("mls.sqlite3")).expect("open store");
        let me = Identity::new(user, device);
        state.set_identity(me.clone()).expect("set identity");
        Self { dir, state, me }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("mls.sqlite3")
    }

    fn key_package(&self) -> Vec<u8> {
        self.state.key_packages(1, false).expect("key package").remove(0)
    }

    /// Processes a message that must be an application message from `from`.
    fn read(&self, message: &[u8], from: &Device) -> Vec<u8> {
        match self.state.process(GROUP, message).expect("process application message") {
            Processed::Application { sender, plaintext, .. } => {
                assert_eq!(sender, from.me);
                plaintext
            }
            other => panic!("expected an application message, got {other:?}"),
        }
    }

    /// Processes a message that must be a commit.
    fn commit(&self, message: &[u8]) -> Processed {
        let processed = self.state.process(GROUP, message).expect("process commit");
        assert!(matches!(processed, Processed::Commit { .. }), "expected a commit, got {processed:?}");
        processed
    }
}

/// A creates the group, adds B by KeyPackage and Welcome; C joins by external commit.
/// Everyone ends at epoch 2 with members [A, B, C].
fn three_devices() -> (Device, Device, Device) {
    let (a, b, c) = (Device::new("alice", 1), Device::new("bob", 2), Device::new("carol", 3));
    let created = a.state.create_group(GROUP).expect("create group");
    assert_eq!(created.epoch, 0);

    let add = a.state.add_members(GROUP, &[b.key_package()]).expect("add B");
    assert_eq!((add.epoch, add.added.clone(), add.removed.clone()), (0, vec![b.me.clone()], vec![]));
    assert_eq!(a.state.confirm(GROUP).expect("confirm"), 1);
    let welcome = add.welcome.expect("a Welcome for B");
    assert_eq!(b.state.join_welcome(&welcome, &add.ratchet_tree).expect("B joins"), GROUP);
    assert_eq!(a.state.process(GROUP, &add.commit).expect("own commit back"), Processed::Own);

    let join = c.state.external_join(&add.group_info, &add.ratchet_tree).expect("C joins");
    assert_eq!((join.epoch, join.added.clone(), join.welcome.clone()), (1, vec![c.me.clone()], None));
    assert_eq!(c.state.confirm(GROUP).expect("server accepted C"), 2);
    for member in [&a, &b] {
        let Processed::Commit { sender, added, removed, external, epoch, removed_me } =
            member.commit(&join.commit)
        else {
            unreachable!()
        };
        assert_eq!(
            (sender, added, removed, external, epoch, removed_me),
            (c.me.clone(), vec![c.me.clone()], vec![], true, 2, false)
        );
    }
    assert_eq!(c.state.process(GROUP, &join.commit).expect("own join back"), Processed::Own);
    (a, b, c)
}

/// Three devices — one creator, one added by KeyPackage + Welcome, one joined by
/// external commit from GroupInfo + tree — exchange messages, each decrypts the others'
/// (and recognises its own), and all agree on the member list and epoch.
#[test]
fn three_devices_join_and_exchange_messages() {
    let (a, b, c) = three_devices();
    let devices = [&a, &b, &c];
    for sender in devices {
        let text = format!("hello from {}", sender.me);
        let message = sender.state.encrypt(GROUP, text.as_bytes()).expect("encrypt");
        for receiver in devices {
            if std::ptr::eq(receiver, sender) {
                assert_eq!(receiver.state.process(GROUP, &message).expect("own message"), Processed::Own);
            } else {
                assert_eq!(receiver.read(&message, sender), text.as_bytes());
            }
        }
    }
    let expected = vec![a.me.clone(), b.me.clone(), c.me.clone()];
    for device in devices {
        assert_eq!(device.state.members(GROUP).expect("members"), expected);
        assert_eq!(device.state.epoch(GROUP).expect("epoch"), 2);
        let keys = device.state.member_keys(GROUP).expect("member keys");
        let own_key = device.state.signature_public_key().expect("key");
        assert!(keys.contains(&(device.me.clone(), own_key)));
    }
}

/// Commits travel as PublicMessages (the server can read them) and application
/// messages as PrivateMessages.
#[test]
fn handshake_is_public_and_application_is_private() {
    let (a, b, _c) = three_devices();
    let remove = a.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("remove");
    let commit = MlsMessageIn::tls_deserialize_exact(&remove.commit).expect("commit parses");
    assert_eq!(commit.wire_format(), WireFormat::PublicMessage);
    a.state.discard(GROUP).expect("discard");
    let message = a.state.encrypt(GROUP, b"secret").expect("encrypt");
    let message = MlsMessageIn::tls_deserialize_exact(&message).expect("message parses");
    assert_eq!(message.wire_format(), WireFormat::PrivateMessage);
}

/// When A removes B, B learns it was removed and can decrypt nothing A sends
/// afterwards, while C still can.
#[test]
fn removed_device_cannot_decrypt_afterwards() {
    let (a, b, c) = three_devices();
    let remove = a.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("remove B");
    assert_eq!((remove.epoch, remove.removed.clone(), remove.welcome.clone()), (2, vec![b.me.clone()], None));
    assert_eq!(a.state.confirm(GROUP).expect("confirm"), 3);

    let Processed::Commit { sender, removed, removed_me, .. } = b.commit(&remove.commit) else {
        unreachable!()
    };
    assert_eq!((sender, removed, removed_me), (a.me.clone(), vec![b.me.clone()], true));
    let Processed::Commit { removed, removed_me, epoch, .. } = c.commit(&remove.commit) else {
        unreachable!()
    };
    assert_eq!((removed, removed_me, epoch), (vec![b.me.clone()], false, 3));

    let message = a.state.encrypt(GROUP, b"after B left").expect("encrypt");
    assert_eq!(c.read(&message, &a), b"after B left");
    assert!(matches!(b.state.process(GROUP, &message), Err(MlsError::NotMember)));
    assert!(matches!(b.state.encrypt(GROUP, b"still here?"), Err(MlsError::NotMember)));
    assert_eq!(a.state.members(GROUP).expect("members"), vec![a.me.clone(), c.me.clone()]);
    assert_eq!(c.state.members(GROUP).expect("members"), vec![a.me.clone(), c.me.clone()]);

    b.state.forget_group(GROUP).expect("forget");
    assert!(!b.state.has_group(GROUP));
    assert!(matches!(b.state.process(GROUP, &message), Err(MlsError::UnknownGroup)));
}

/// A and C both build a commit for epoch 2; the server takes A's. C discards its own,
/// processes A's commit, rebuilds its commit for epoch 3, and that one goes through for
/// everyone (including D, added by the winning commit).
/// A self update adds and removes nobody, advances the epoch for everyone, and
/// carries the committer's new leaf in its update path.
#[test]
fn self_update_changes_keys_only() {
    let (a, b, c) = three_devices();
    let update = a.state.self_update(GROUP).expect("self update");
    assert_eq!((update.epoch, update.added.clone(), update.removed.clone()), (2, vec![], vec![]));
    assert_eq!(update.welcome, None);
    let summary = inspect_handshake(&update.commit).expect("inspect");
    assert_eq!(summary.proposals, vec![]);
    assert_eq!(summary.path_leaf.map(|leaf| leaf.identity), Some(a.me.clone()));
    assert_eq!(a.state.confirm(GROUP).expect("confirm"), 3);
    for member in [&b, &c] {
        let Processed::Commit { sender, added, removed, epoch, .. } = member.commit(&update.commit) else {
            unreachable!()
        };
        assert_eq!((sender, added, removed, epoch), (a.me.clone(), vec![], vec![], 3));
    }
    let message = b.state.encrypt(GROUP, b"after the update").expect("encrypt");
    assert_eq!(a.read(&message, &b), b"after the update");
}

#[test]
fn lost_commit_race_is_retried() {
    let (a, b, c) = three_devices();
    let d = Device::new("dave", 4);
    let a_commit = a.state.add_members(GROUP, &[d.key_package()]).expect("A adds D");
    let c_commit = c.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("C removes B");
    assert_eq!((a_commit.epoch, c_commit.epoch), (2, 2));
    assert!(matches!(c.state.add_members(GROUP, &[d.key_package()]), Err(MlsError::PendingCommit)));

    // The server accepts A's commit and refuses C's.
    assert_eq!(a.state.confirm(GROUP).expect("A confirmed"), 3);
    c.state.discard(GROUP).expect("C discards");
    let Processed::Commit { sender, added, .. } = c.commit(&a_commit.commit) else { unreachable!() };
    assert_eq!((sender, added), (a.me.clone(), vec![d.me.clone()]));
    b.commit(&a_commit.commit);
    let welcome = a_commit.welcome.expect("Welcome for D");
    d.state.join_welcome(&welcome, &a_commit.ratchet_tree).expect("D joins");

    // C retries on the new epoch; this time the server accepts it.
    let retry = c.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("C retries");
    assert_eq!(retry.epoch, 3);
    assert_eq!(c.state.confirm(GROUP).expect("C confirmed"), 4);
    for device in [&a, &d] {
        let Processed::Commit { sender, removed, epoch, .. } = device.commit(&retry.commit) else {
            unreachable!()
        };
        assert_eq!((sender, removed, epoch), (c.me.clone(), vec![b.me.clone()], 4));
    }
    let Processed::Commit { removed_me, .. } = b.commit(&retry.commit) else { unreachable!() };
    assert!(removed_me);
    // C's refused commit never reaches the log; if it did, it would not be "own".
    assert!(c.state.process(GROUP, &c_commit.commit).is_err());

    let message = d.state.encrypt(GROUP, b"hi all").expect("encrypt");
    assert_eq!(a.read(&message, &d), b"hi all");
    assert_eq!(c.read(&message, &d), b"hi all");
    let expected = vec![a.me.clone(), d.me.clone(), c.me.clone()];
    for device in [&a, &c, &d] {
        let mut members = device.state.members(GROUP).expect("members");
        members.sort();
        let mut sorted = expected.clone();
        sorted.sort();
        assert_eq!(members, sorted);
    }
}

/// The loser may also process the winning commit before the server's refusal
/// reaches it: the winner replaces the pending commit, and `discard` is then a no-op.
#[test]
fn winning_commit_replaces_pending_commit() {
    let (a, b, c) = three_devices();
    let a_commit = a.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("A removes B");
    c.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("C removes B too");
    a.state.confirm(GROUP).expect("A confirmed");
    c.commit(&a_commit.commit);
    c.state.discard(GROUP).expect("late discard is a no-op");
    assert_eq!(c.state.epoch(GROUP).expect("epoch"), 3);
    let message = c.state.encrypt(GROUP, b"in sync").expect("encrypt");
    assert_eq!(a.read(&message, &c), b"in sync");
}

/// The own pending commit coming back through the log before the server's answer is
/// merged then; the later `confirm` is a no-op.
#[test]
fn own_commit_from_log_before_confirm() {
    let (a, b, c) = three_devices();
    let remove = a.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("remove");
    assert_eq!(a.state.process(GROUP, &remove.commit).expect("own commit"), Processed::Own);
    assert_eq!(a.state.epoch(GROUP).expect("epoch"), 3);
    assert_eq!(a.state.confirm(GROUP).expect("no-op confirm"), 3);
    c.commit(&remove.commit);
    let message = a.state.encrypt(GROUP, b"x").expect("encrypt");
    assert_eq!(c.read(&message, &a), b"x");
}

/// A refused external join is undone completely: the joiner can fetch the new
/// GroupInfo and join again.
#[test]
fn refused_external_join_is_retried() {
    let (a, b, _c) = three_devices();
    let state = a.state.group_state(GROUP).expect("group state");
    let e = Device::new("erin", 5);
    e.state.external_join(&state.group_info, &state.ratchet_tree).expect("E tries");
    // Meanwhile A's commit wins epoch 2.
    let remove = a.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("remove");
    a.state.confirm(GROUP).expect("confirm");
    e.state.discard(GROUP).expect("E discards");
    assert!(!e.state.has_group(GROUP));
    let join = e.state.external_join(&remove.group_info, &remove.ratchet_tree).expect("E retries");
    assert_eq!(join.epoch, 3);
    e.state.confirm(GROUP).expect("accepted");
    a.commit(&join.commit);
    let message = e.state.encrypt(GROUP, b"made it").expect("encrypt");
    assert_eq!(a.read(&message, &e), b"made it");
}

/// A device that lost track of a group (forgot it) rejoins by external commit; the
/// commit replaces its old leaf, and the others see it leave and join in one commit.
#[test]
fn device_resyncs_by_external_rejoin() {
    let (a, b, c) = three_devices();
    c.state.forget_group(GROUP).expect("forget");
    let state = a.state.group_state(GROUP).expect("group state");
    let join = c.state.external_join(&state.group_info, &state.ratchet_tree).expect("rejoin");
    assert_eq!((join.added.clone(), join.removed.clone()), (vec![c.me.clone()], vec![c.me.clone()]));
    c.state.confirm(GROUP).expect("accepted");
    for device in [&a, &b] {
        let Processed::Commit { added, removed, external, epoch, .. } = device.commit(&join.commit) else {
            unreachable!()
        };
        assert_eq!((added, removed, external, epoch), (vec![c.me.clone()], vec![c.me.clone()], true, 3));
        assert_eq!(device.state.members(GROUP).expect("members").len(), 3);
    }
    let message = c.state.encrypt(GROUP, b"back").expect("encrypt");
    assert_eq!(b.read(&message, &c), b"back");
}

/// Closing and reopening a store keeps the signature key, the identity and the
/// groups: the device keeps decrypting and sending.
#[test]
fn state_survives_reopening_the_store() {
    let (a, mut b, c) = three_devices();
    let key = b.state.signature_public_key().expect("key");
    let path = b.path();
    b.state = MlsState::open(&path).expect("reopen");
    assert_eq!(b.state.signature_public_key().expect("key"), key);
    assert_eq!(b.state.identity(), Some(&b.me));
    assert!(b.state.has_group(GROUP));

    let message = a.state.encrypt(GROUP, b"still there?").expect("encrypt");
    assert_eq!(b.read(&message, &a), b"still there?");
    let reply = b.state.encrypt(GROUP, b"yes").expect("encrypt");
    assert_eq!(a.read(&reply, &b), b"yes");
    assert_eq!(c.read(&reply, &b), b"yes");

    // Same identity again is fine; another one is refused.
    b.state.set_identity(b.me.clone()).expect("same identity");
    assert!(matches!(
        b.state.set_identity(Identity::new("mallory", 9)),
        Err(MlsError::IdentityMismatch { .. })
    ));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Two handles on one store (the CLI next to a running TUI) see each other's changes
/// and cannot bind it to two identities.
#[test]
fn two_handles_share_one_store() {
    let a = Device::new("alice", 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mls.sqlite3");
    let mut first = MlsState::open(&path).expect("open");
    let mut second = MlsState::open(&path).expect("open again");
    first.set_identity(Identity::new("bob", 2)).expect("identity");
    assert!(matches!(
        second.set_identity(Identity::new("mallory", 9)),
        Err(MlsError::IdentityMismatch { current }) if current == Identity::new("bob", 2)
    ));
    second.set_identity(Identity::new("bob", 2)).expect("same identity");

    a.state.create_group(GROUP).expect("create");
    let packages = first.key_packages(1, false).expect("key package");
    let add = a.state.add_members(GROUP, &packages).expect("add");
    a.state.confirm(GROUP).expect("confirm");
    first.join_welcome(add.welcome.as_deref().expect("welcome"), &add.ratchet_tree).expect("join");
    assert!(second.has_group(GROUP));
    let message = a.state.encrypt(GROUP, b"one").expect("encrypt");
    assert!(matches!(second.process(GROUP, &message).expect("process"), Processed::Application { .. }));
    // The first handle sees the ratchet step the second one took: no replay.
    assert!(first.process(GROUP, &message).is_err());
}

/// An application message sent just before a commit still decrypts after it, up to
/// MAX_PAST_EPOCHS epochs later, and no further.
#[test]
fn message_from_past_epoch_decrypts_within_three_epochs() {
    let (a, b, c) = three_devices();
    let spares =
        [Device::new("dave", 4), Device::new("erin", 5), Device::new("frank", 6), Device::new("grace", 7)];
    let early = a.state.encrypt(GROUP, b"sent at epoch 2").expect("encrypt");
    let mut commits = Vec::new();
    for spare in &spares {
        let add = c.state.add_members(GROUP, &[spare.key_package()]).expect("add");
        c.state.confirm(GROUP).expect("confirm");
        commits.push(add.commit);
    }
    // B receives three commits, then the early message (epoch 2, now at 5).
    for commit in &commits[..3] {
        b.commit(commit);
    }
    assert_eq!(b.read(&early, &a), b"sent at epoch 2");
    // A fourth commit pushes epoch 2 out of the window.
    a.commit(&commits[0]);
    a.commit(&commits[1]);
    a.commit(&commits[2]);
    a.commit(&commits[3]);
    assert_eq!(a.state.epoch(GROUP).expect("epoch"), 6);
    let late = b.state.encrypt(GROUP, b"x").expect("encrypt at epoch 5");
    b.commit(&commits[3]);
    assert_eq!(a.read(&late, &b), b"x");
    assert!(matches!(c.state.process(GROUP, &early), Err(MlsError::Rejected { .. })));
}

/// Garbage, truncated or corrupted input from the network is an error — never a
/// panic — and leaves the state usable.
#[test]
fn garbage_input_is_an_error() {
    let (a, b, c) = three_devices();
    let d = Device::new("dave", 4);
    let message = a.state.encrypt(GROUP, b"payload").expect("encrypt");
    let remove = a.state.remove_members(GROUP, std::slice::from_ref(&c.me)).expect("remove");
    a.state.discard(GROUP).expect("discard");
    let add = a.state.add_members(GROUP, &[d.key_package()]).expect("add");
    a.state.discard(GROUP).expect("discard");
    let welcome = add.welcome.clone().expect("welcome");

    let mut garbage: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0xff; 3], vec![0; 64]];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for len in [1, 2, 5, 17, 100, 1000, 5000] {
        garbage.push(
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed.to_le_bytes()[0]
                })
                .collect(),
        );
    }
    // Every prefix of real messages, and every single-byte corruption of them.
    for real in [&message, &remove.commit, &welcome, &add.group_info] {
        let step = (real.len() / 80).max(1);
        for cut in (0..real.len()).step_by(step) {
            garbage.push(real[..cut].to_vec());
            let mut flipped = real.clone();
            flipped[cut] ^= 0x5a;
            garbage.push(flipped);
        }
        let mut longer = real.clone();
        longer.push(0);
        garbage.push(longer);
    }

    for bytes in &garbage {
        assert!(b.state.process(GROUP, bytes).is_err());
        assert!(d.state.join_welcome(bytes, &add.ratchet_tree).is_err());
        assert!(d.state.join_welcome(&welcome, bytes).is_err());
        assert!(d.state.external_join(bytes, &add.ratchet_tree).is_err());
        assert!(d.state.external_join(&add.group_info, bytes).is_err());
        assert!(a.state.add_members(GROUP, std::slice::from_ref(bytes)).is_err());
        std::hint::black_box(inspect_handshake(bytes).is_ok());
    }
    // The wrong kind of message, a message for another group, a tree of another epoch.
    assert!(matches!(b.state.process(GROUP, &welcome), Err(MlsError::Malformed { .. })));
    assert!(matches!(b.state.process(b"other", &message), Err(MlsError::WrongGroup)));
    assert!(matches!(b.state.process(GROUP, &add.group_info), Err(MlsError::Malformed { .. })));
    let old = a.state.group_state(GROUP).expect("state");
    assert!(d.state.external_join(&add.group_info, &old.ratchet_tree).is_err());
    assert!(matches!(c.state.join_welcome(&welcome, &add.ratchet_tree), Err(MlsError::NotForUs)));

    // Nothing above changed any state: the real message still decrypts, D can still
    // join with its Welcome (its KeyPackage was not used up by the failed attempts).
    assert_eq!(b.read(&message, &a), b"payload");
    assert_eq!(b.state.epoch(GROUP).expect("epoch"), 2);
    assert!(!d.state.has_group(GROUP));
    d.state.join_welcome(&welcome, &add.ratchet_tree).expect("the KeyPackage is still there");
    assert!(matches!(a.state.add_members(GROUP, &[]), Err(MlsError::Malformed { .. })));
}

/// A Welcome built from a one-time KeyPackage works once; a last-resort KeyPackage
/// can be used by several groups.
#[test]
fn key_packages_one_time_and_last_resort() {
    let a = Device::new("alice", 1);
    let b = Device::new("bob", 2);
    let packages = b.state.key_packages(2, true).expect("key packages");
    assert_eq!(packages.len(), 3);
    let last_resort = packages[2].clone();
    for group in [b"g1".as_slice(), b"g2".as_slice()] {
        a.state.create_group(group).expect("create");
        let add = a.state.add_members(group, std::slice::from_ref(&last_resort)).expect("add");
        a.state.confirm(group).expect("confirm");
        let welcome = add.welcome.expect("welcome");
        assert_eq!(b.state.join_welcome(&welcome, &add.ratchet_tree).expect("join"), group);
    }
    a.state.create_group(b"g3").expect("create");
    let add = a.state.add_members(b"g3", &packages[..1]).expect("add");
    a.state.confirm(b"g3").expect("confirm");
    let welcome = add.welcome.expect("welcome");
    b.state.join_welcome(&welcome, &add.ratchet_tree).expect("join");
    b.state.forget_group(b"g3").expect("forget");
    assert!(matches!(b.state.join_welcome(&welcome, &add.ratchet_tree), Err(MlsError::NotForUs)));
    assert!(matches!(a.state.create_group(b"g3"), Err(MlsError::GroupExists)));
    assert!(matches!(
        a.state.add_members(b"g3", &packages[1..2]),
        Err(MlsError::AlreadyMember(identity)) if identity == b.me
    ));
}

/// Group operations need an identity; identities parse and print as `user/device`.
#[test]
fn identity_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = MlsState::open(&dir.path().join("mls.sqlite3")).expect("open");
    assert!(matches!(state.create_group(GROUP), Err(MlsError::NoIdentity)));
    assert!(matches!(state.key_packages(1, false), Err(MlsError::NoIdentity)));
    assert_eq!(state.signature_public_key().expect("key").len(), 32);

    let identity: Identity = "alice/3".parse().expect("parse");
    assert_eq!(identity, Identity::new("alice", 3));
    assert_eq!(identity.to_string(), "alice/3");
    assert_eq!("a/b/7".parse::<Identity>().expect("parse"), Identity::new("a/b", 7));
    for bad in
        ["", "alice", "/3", "alice/", "alice/x", "alice/+3", "al\u{1b}ice/3", "alice/99999999999999999999"]
    {
        assert!(bad.parse::<Identity>().is_err(), "{bad:?} should not parse");
    }
}

/// What the server can read from commits without group state: an add (the added
/// device's identity and key), a remove (the leaf index) and an external join (the
/// joiner's identity and key, ExternalInit).
#[test]
fn inspect_handshake_reads_add_remove_and_external_join() {
    let a = Device::new("alice", 1);
    let b = Device::new("bob", 2);
    let c = Device::new("carol", 3);
    a.state.create_group(GROUP).expect("create");

    let add = a.state.add_members(GROUP, &[b.key_package()]).expect("add");
    a.state.confirm(GROUP).expect("confirm");
    b.state.join_welcome(add.welcome.as_deref().expect("welcome"), &add.ratchet_tree).expect("join");
    let summary = inspect_handshake(&add.commit).expect("inspect add");
    assert_eq!(summary.group_id, GROUP);
    assert_eq!(summary.epoch, 0);
    assert_eq!(summary.sender, HandshakeSender::Member(0));
    assert_eq!(summary.kind, HandshakeKind::Commit);
    assert_eq!(
        summary.proposals,
        vec![ProposalSummary::Add(LeafSummary {
            identity: b.me.clone(),
            signature_key: b.state.signature_public_key().expect("key"),
        })]
    );
    assert_eq!(summary.proposal_refs, 0);
    assert!(!summary.is_external_join());

    let join = c.state.external_join(&add.group_info, &add.ratchet_tree).expect("external join");
    c.state.confirm(GROUP).expect("confirm");
    a.commit(&join.commit);
    let summary = inspect_handshake(&join.commit).expect("inspect join");
    assert_eq!((summary.epoch, summary.sender), (1, HandshakeSender::NewMemberCommit));
    assert_eq!(summary.proposals, vec![ProposalSummary::ExternalInit]);
    assert!(summary.is_external_join());
    let c_leaf =
        LeafSummary { identity: c.me.clone(), signature_key: c.state.signature_public_key().expect("key") };
    assert_eq!(summary.path_leaf, Some(c_leaf));

    let remove = a.state.remove_members(GROUP, std::slice::from_ref(&b.me)).expect("remove");
    let summary = inspect_handshake(&remove.commit).expect("inspect remove");
    assert_eq!((summary.epoch, summary.sender), (2, HandshakeSender::Member(0)));
    assert_eq!(summary.proposals, vec![ProposalSummary::Remove { leaf_index: 1 }]);
    let a_leaf =
        LeafSummary { identity: a.me.clone(), signature_key: a.state.signature_public_key().expect("key") };
    assert_eq!(summary.path_leaf, Some(a_leaf));

    // Not handshake messages.
    let message = a.state.encrypt(GROUP, b"private").expect("encrypt");
    assert!(matches!(inspect_handshake(&message), Err(conclave_mls::Error::Malformed { .. })));
    assert!(matches!(inspect_handshake(&add.group_info), Err(conclave_mls::Error::Malformed { .. })));
}

/// Measures encryption and decryption of 100-byte messages with the SQLite store,
/// and the ciphertext size. Run with `cargo test -p conclave-client mls -- --ignored
/// --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn measure_message_cost() {
    let a = Device::new("alice", 1);
    let b = Device::new("bob", 2);
    a.state.create_group(GROUP).expect("create");
    let add = a.state.add_members(GROUP, &[b.key_package()]).expect("add");
    a.state.confirm(GROUP).expect("confirm");
    b.state.join_welcome(add.welcome.as_deref().expect("welcome"), &add.ratchet_tree).expect("join");

    let plaintext = [b'x'; 100];
    let rounds = 300;
    let started = Instant::now();
    let messages: Vec<_> =
        (0..rounds).map(|_| a.state.encrypt(GROUP, &plaintext).expect("encrypt")).collect();
    let encrypt = started.elapsed() / rounds;
    let started = Instant::now();
    for message in &messages {
        b.read(message, &a);
    }
    let decrypt = started.elapsed() / rounds;
    println!(
        "100-byte message: encrypt {encrypt:?}, decrypt {decrypt:?} per message (SQLite file); \
         ciphertext {} bytes",
        messages[0].len()
    );

    // The same in memory (no fsync).
    let mut a = MlsState::in_memory().expect("memory");
    let mut b = MlsState::in_memory().expect("memory");
    a.set_identity(Identity::new("alice", 1)).expect("identity");
    b.set_identity(Identity::new("bob", 2)).expect("identity");
    a.create_group(GROUP).expect("create");
    let package = b.key_packages(1, false).expect("key package");
    let add = a.add_members(GROUP, &package).expect("add");
    a.confirm(GROUP).expect("confirm");
    b.join_welcome(add.welcome.as_deref().expect("welcome"), &add.ratchet_tree).expect("join");
    let started = Instant::now();
    let messages: Vec<_> = (0..rounds).map(|_| a.encrypt(GROUP, &plaintext).expect("encrypt")).collect();
    let encrypt = started.elapsed() / rounds;
    let started = Instant::now();
    for message in &messages {
        b.process(GROUP, message).expect("decrypt");
    }
    let decrypt = started.elapsed() / rounds;
    println!("100-byte message: encrypt {encrypt:?}, decrypt {decrypt:?} per message (SQLite in memory)");
}
