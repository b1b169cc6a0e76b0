//! Tests of the shared rules and the Delivery Service's checks, with real OpenMLS
//! groups built the way Conclave's client builds them (PublicMessage handshakes, the
//! tree outside the GroupInfo).

use crate::{Checked, Error, Identity, PublicState, check_commit, check_creation, inspect_handshake};
use openmls::prelude::{
    BasicCredential, CredentialWithKey, GroupId, KeyPackage, LeafNodeIndex, MlsGroup, MlsGroupCreateConfig,
    MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut, OpenMlsProvider as _,
    PURE_PLAINTEXT_WIRE_FORMAT_POLICY, StagedWelcome,
    tls_codec::{Deserialize as _, Serialize as _},
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

const ROOM_A: &[u8] = b"room-a-group-id!";
const ROOM_B: &[u8] = b"room-b-group-id!";

/// One device with its own provider (crypto + in-memory storage).
struct Device {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

/// What a commit sends to the server.
struct Sent {
    commit: Vec<u8>,
    group_info: Vec<u8>,
    ratchet_tree: Vec<u8>,
    welcome: Option<Vec<u8>>,
}

fn bytes(message: &MlsMessageOut) -> Vec<u8> {
    message.tls_serialize_detached().expect("serialize")
}

impl Device {
    fn new(user: &str, device: i64) -> Self {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(crate::CIPHERSUITE.signature_algorithm()).expect("key pair");
        signer.store(provider.storage()).expect("store key");
        let identity = Identity::new(user, device);
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.to_credential_bytes()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Self { provider, signer, credential, group: None }
    }

    fn key_package(&self) -> KeyPackage {
        KeyPackage::builder()
            .build(crate::CIPHERSUITE, &self.provider, &self.signer, self.credential.clone())
            .expect("key package")
            .key_package()
            .clone()
    }

    /// Creates the group; returns what `create` sends (GroupInfo, tree).
    fn create(&mut self, group_id: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(crate::CIPHERSUITE)
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(false)
            .build();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            GroupId::from_slice(group_id),
            self.credential.clone(),
        )
        .expect("create group");
        self.group = Some(group);
        self.state()
    }

    /// The current GroupInfo and tree.
    fn state(&mut self) -> (Vec<u8>, Vec<u8>) {
        let group = self.group.as_ref().expect("in a group");
        let info = group.export_group_info(self.provider.crypto(), &self.signer, false).expect("group info");
        (bytes(&info), group.export_ratchet_tree().tls_serialize_detached().expect("tree"))
    }

    fn add(&mut self, packages: &[KeyPackage]) -> Sent {
        self.commit(|builder| builder.propose_adds(packages.to_vec()))
    }

    fn remove(&mut self, leaf: u32) -> Sent {
        self.commit(|builder| builder.propose_removals([LeafNodeIndex::new(leaf)]))
    }

    /// Builds, stages and merges a commit, as the client does once it is accepted.
    fn commit(
        &mut self,
        propose: impl FnOnce(
            openmls::prelude::CommitBuilder<'_, openmls::prelude::Initial>,
        ) -> openmls::prelude::CommitBuilder<'_, openmls::prelude::Initial>,
    ) -> Sent {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().expect("in a group");
        let bundle = propose(group.commit_builder())
            .load_psks(provider.storage())
            .expect("psks")
            .create_group_info(true)
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .expect("build")
            .stage_commit(provider)
            .expect("stage");
        let (commit, welcome, info) = bundle.into_messages();
        group.merge_pending_commit(provider).expect("merge");
        Sent {
            commit: bytes(&commit),
            group_info: bytes(&info.expect("group info")),
            ratchet_tree: group.export_ratchet_tree().tls_serialize_detached().expect("tree"),
            welcome: welcome.map(|w| bytes(&w)),
        }
    }

    fn join_by_welcome(&mut self, welcome: &[u8], tree: &[u8]) {
        let MlsMessageBodyIn::Welcome(welcome) =
            MlsMessageIn::tls_deserialize_exact(welcome).expect("welcome").extract()
        else {
            panic!("not a welcome");
        };
        let tree = openmls::prelude::RatchetTreeIn::tls_deserialize_exact(tree).expect("tree");
        let config =
            MlsGroupJoinConfig::builder().wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY).build();
        let group = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, Some(tree))
            .expect("staged welcome")
            .into_group(&self.provider)
            .expect("group");
        self.group = Some(group);
    }

    fn join_externally(&mut self, group_info: &[u8], tree: &[u8]) -> Sent {
        let MlsMessageBodyIn::GroupInfo(info) =
            MlsMessageIn::tls_deserialize_exact(group_info).expect("gi").extract()
        else {
            panic!("not a GroupInfo");
        };
        let tree = openmls::prelude::RatchetTreeIn::tls_deserialize_exact(tree).expect("tree");
        let config =
            MlsGroupJoinConfig::builder().wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY).build();
        let (group, bundle) = MlsGroup::external_commit_builder()
            .with_ratchet_tree(tree)
            .with_config(config)
            .build_group(&self.provider, info, self.credential.clone())
            .expect("external group")
            .load_psks(self.provider.storage())
            .expect("psks")
            .create_group_info(true)
            .build(self.provider.rand(), self.provider.crypto(), &self.signer, |_| true)
            .expect("build")
            .finalize(&self.provider)
            .expect("finalize");
        let (commit, _, info) = bundle.into_messages();
        let sent = Sent {
            commit: bytes(&commit),
            group_info: bytes(&info.expect("group info")),
            ratchet_tree: group.export_ratchet_tree().tls_serialize_detached().expect("tree"),
            welcome: None,
        };
        self.group = Some(group);
        sent
    }
}

fn check(state: &PublicState, group_id: &[u8], sent: &Sent) -> crate::Result<Checked> {
    check_commit(state, group_id, &sent.commit, &sent.group_info, &sent.ratchet_tree, sent.welcome.as_deref())
}

/// A group in room A with alice and bob, and the server's state after each step.
fn room_with_alice_and_bob() -> (Device, Device, PublicState) {
    let mut alice = Device::new("alice", 1);
    let bob = Device::new("bob", 2);
    let (info, tree) = alice.create(ROOM_A);
    let created = check_creation(ROOM_A, &info, &tree).expect("creation accepted");
    let mut bob = bob;
    let sent = alice.add(&[bob.key_package()]);
    let checked = check(&created.state, ROOM_A, &sent).expect("add accepted");
    bob.join_by_welcome(sent.welcome.as_ref().expect("welcome"), &sent.ratchet_tree);
    (alice, bob, checked.state)
}

#[test]
fn a_creation_is_checked_and_reports_its_one_member() {
    let mut alice = Device::new("alice", 1);
    let (info, tree) = alice.create(ROOM_A);
    let checked = check_creation(ROOM_A, &info, &tree).expect("creation accepted");
    assert_eq!(checked.epoch, 0);
    assert_eq!(checked.effects.committer.identity, Identity::new("alice", 1));
    assert_eq!(checked.members.len(), 1);
    assert!(matches!(check_creation(ROOM_B, &info, &tree), Err(Error::WrongGroup)));
    assert!(matches!(check_creation(ROOM_A, b"GARBAGE-GROUPINFO", &tree), Err(Error::Malformed { .. })));
    assert!(matches!(check_creation(ROOM_A, &info, b"GARBAGE"), Err(Error::Malformed { .. })));
}

#[test]
fn an_add_reports_whom_it_adds_and_a_welcome_for_them() {
    let mut alice = Device::new("alice", 1);
    let bob = Device::new("bob", 2);
    let (info, tree) = alice.create(ROOM_A);
    let state = check_creation(ROOM_A, &info, &tree).expect("create").state;
    let sent = alice.add(&[bob.key_package()]);
    let checked = check(&state, ROOM_A, &sent).expect("add accepted");
    assert_eq!(checked.epoch, 1);
    assert_eq!(checked.effects.added_identities(), [Identity::new("bob", 2)]);
    assert!(checked.effects.removed.is_empty());
    assert_eq!(checked.members.len(), 2);
    // The Welcome must be there, and for exactly the added KeyPackages.
    let without = Sent { welcome: None, ..sent };
    assert!(matches!(check(&state, ROOM_A, &without), Err(Error::Mismatch { what: "Welcome (missing)" })));
}

#[test]
fn a_commit_replayed_into_another_group_is_refused() {
    let (mut alice, _bob, state_a) = room_with_alice_and_bob();
    let mut owner_b = Device::new("carol", 3);
    let (info_b, tree_b) = owner_b.create(ROOM_B);
    let state_b = check_creation(ROOM_B, &info_b, &tree_b).expect("create B").state;
    let dave = Device::new("dave", 4);
    let sent = alice.add(&[dave.key_package()]);
    assert!(matches!(check(&state_b, ROOM_B, &sent), Err(Error::WrongGroup)));
    // The same commit in its own group is fine.
    check(&state_a, ROOM_A, &sent).expect("accepted in its own group");
}

#[test]
fn an_external_join_replayed_into_another_group_is_refused() {
    let (mut alice, _bob, state_a) = room_with_alice_and_bob();
    let (info, tree) = alice.state();
    let mut eve = Device::new("eve", 9);
    let join = eve.join_externally(&info, &tree);
    let checked = check(&state_a, ROOM_A, &join).expect("join accepted in its group");
    assert!(checked.effects.external);
    assert_eq!(checked.effects.committer.identity, Identity::new("eve", 9));
    let mut lobby_owner = Device::new("zed", 7);
    let (info_b, tree_b) = lobby_owner.create(ROOM_B);
    let state_b = check_creation(ROOM_B, &info_b, &tree_b).expect("create B").state;
    assert!(matches!(check(&state_b, ROOM_B, &join), Err(Error::WrongGroup)));
}

#[test]
fn a_commit_for_another_epoch_is_refused() {
    let (mut alice, _bob, state) = room_with_alice_and_bob();
    let carol = Device::new("carol", 3);
    let first = alice.add(&[carol.key_package()]);
    let after = check(&state, ROOM_A, &first).expect("first").state;
    // Replaying the accepted commit against the next epoch.
    assert!(matches!(check(&after, ROOM_A, &first), Err(Error::WrongEpoch { message: 1, group: 2 })));
}

#[test]
fn a_garbage_group_info_is_refused() {
    let (mut alice, _bob, state) = room_with_alice_and_bob();
    let carol = Device::new("carol", 3);
    let sent = alice.add(&[carol.key_package()]);
    let garbage = Sent { group_info: b"GARBAGE-GROUPINFO".to_vec(), ..sent };
    assert!(matches!(check(&state, ROOM_A, &garbage), Err(Error::Malformed { what: "GroupInfo" })));
}

#[test]
fn a_group_info_of_another_epoch_is_refused() {
    let (mut alice, _bob, state) = room_with_alice_and_bob();
    // Validly signed by the committer, but of the epoch before the commit.
    let (before, _) = alice.state();
    let carol = Device::new("carol", 3);
    let sent = alice.add(&[carol.key_package()]);
    let stale = Sent { group_info: before, ..sent };
    let refused = check(&state, ROOM_A, &stale).expect_err("another epoch's GroupInfo is refused");
    assert!(matches!(refused, Error::Mismatch { what: "GroupInfo" }), "{refused:?}");
}

#[test]
fn a_tree_that_is_not_the_commits_is_refused() {
    let (mut alice, _bob, state) = room_with_alice_and_bob();
    // The tree of the epoch before the commit: valid, but not what the commit makes.
    let (_, before) = alice.state();
    let carol = Device::new("carol", 3);
    let sent = alice.add(&[carol.key_package()]);
    let stale = Sent { ratchet_tree: before, ..sent };
    let refused = check(&state, ROOM_A, &stale).expect_err("another tree is refused");
    assert!(matches!(refused, Error::Mismatch { what: "ratchet tree" }), "{refused:?}");
}

#[test]
fn a_group_info_of_the_right_epoch_must_be_the_committers() {
    let (mut alice, mut bob, state) = room_with_alice_and_bob();
    let carol = Device::new("carol", 3);
    let sent = alice.add(&[carol.key_package()]);
    let checked = check(&state, ROOM_A, &sent).expect("add");
    // Bob processes the add and exports the new epoch's GroupInfo, signed by him:
    // same content, another signer than the committer.
    let MlsMessageBodyIn::PublicMessage(message) =
        MlsMessageIn::tls_deserialize_exact(&sent.commit).expect("commit").extract()
    else {
        panic!("not public");
    };
    let bob_provider = &bob.provider;
    let group = bob.group.as_mut().expect("group");
    let processed = group.process_message(bob_provider, message).expect("bob processes");
    let openmls::prelude::ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content()
    else {
        panic!("not a commit");
    };
    group.merge_staged_commit(bob_provider, *staged).expect("merge");
    let (bob_info, _) = bob.state();
    let by_bob = Sent { group_info: bob_info, ..sent };
    assert!(matches!(check(&state, ROOM_A, &by_bob), Err(Error::Mismatch { .. })));
    assert_eq!(checked.epoch, 2);
}

#[test]
fn a_remove_reports_the_device_it_really_removes() {
    let (mut alice, _bob, state) = room_with_alice_and_bob();
    let sent = alice.remove(1);
    let checked = check(&state, ROOM_A, &sent).expect("remove");
    assert_eq!(checked.effects.removed_identities(), [Identity::new("bob", 2)]);
    assert!(checked.effects.added.is_empty());
    let summary = inspect_handshake(&sent.commit).expect("inspect");
    assert_eq!(summary.epoch, 1);
}

#[test]
fn a_commit_signed_by_an_outsider_is_rejected() {
    let (_alice, _bob, state) = room_with_alice_and_bob();
    // Mallory builds her own group under the room's (public) group id and walks it
    // to the same epoch, then sends her commit as if it were the room's.
    let mut mallory = Device::new("alice", 1);
    mallory.create(ROOM_A);
    let helper = Device::new("bob", 2);
    mallory.add(&[helper.key_package()]);
    let trudy = Device::new("trudy", 8);
    let forged = mallory.add(&[trudy.key_package()]);
    assert!(matches!(check(&state, ROOM_A, &forged), Err(Error::Rejected { .. })));
}

#[test]
fn a_stored_state_that_is_garbage_is_reported_corrupt() {
    let (mut alice, _bob, _) = room_with_alice_and_bob();
    let carol = Device::new("carol", 3);
    let sent = alice.add(&[carol.key_package()]);
    let garbage = PublicState::from_bytes(b"nonsense".to_vec());
    assert!(matches!(check(&garbage, ROOM_A, &sent), Err(Error::CorruptState(_))));
}

/// The entries of a stored state with `edit` applied to each value, encoded
/// again as a state.
fn edited_state(state: &PublicState, edit: impl Fn(&[u8], Vec<u8>) -> Vec<u8>) -> PublicState {
    use openmls::prelude::tls_codec::VLBytes;
    let (version, entries) =
        <(u16, Vec<(VLBytes, VLBytes)>)>::tls_deserialize_exact(state.as_bytes()).expect("a state");
    let entries: Vec<(VLBytes, VLBytes)> = entries
        .into_iter()
        .map(|(key, value)| {
            let edited = edit(key.as_slice(), value.as_slice().to_vec());
            (key, VLBytes::from(edited))
        })
        .collect();
    PublicState::from_bytes((version, entries).tls_serialize_detached().expect("encode"))
}

/// Found by the `handshake_check` fuzz target: a stored state whose ratchet
/// tree entry is not valid JSON made the memory storage panic (it unwraps).
#[test]
fn a_stored_state_whose_entries_do_not_decode_is_reported_corrupt() {
    let (mut alice, _bob, state) = room_with_alice_and_bob();
    let carol = Device::new("carol", 3);
    let sent = alice.add(&[carol.key_package()]);
    let broken_json = edited_state(&state, |key, mut value| {
        if key.starts_with(b"Tree") {
            let colon = value.iter().position(|&b| b == b':').expect("a colon");
            value[colon] = b';';
        }
        value
    });
    assert!(matches!(check(&broken_json, ROOM_A, &sent), Err(Error::CorruptState(_))));
    let not_a_context = |key: &[u8], value| match key.starts_with(b"GroupContext") {
        true => b"[1,2,3]".to_vec(),
        false => value,
    };
    let wrong_type = edited_state(&state, not_a_context);
    assert!(matches!(check(&wrong_type, ROOM_A, &sent), Err(Error::CorruptState(_))));
    // Unchanged, the same entries load.
    check(&edited_state(&state, |_, value| value), ROOM_A, &sent).expect("the state as stored");
}

#[test]
fn adopting_a_stored_group_info_and_tree_verifies_them() {
    let (mut alice, _bob, _) = room_with_alice_and_bob();
    let (info, tree) = alice.state();
    let adopted = crate::adopt(ROOM_A, &info, &tree).expect("adopt");
    let carol = Device::new("carol", 3);
    let sent = alice.add(&[carol.key_package()]);
    check(&adopted, ROOM_A, &sent).expect("a commit on the adopted state");
    assert!(matches!(crate::adopt(ROOM_A, b"GARBAGE-GROUPINFO", &tree), Err(Error::Malformed { .. })));
    assert!(matches!(crate::adopt(ROOM_B, &info, &tree), Err(Error::WrongGroup)));
}

/// One seed of the `handshake_check` fuzz target: an operation byte, then each
/// part behind its length (u16, little-endian), as the target reads them.
fn fuzz_seed(op: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut seed = vec![op];
    for part in parts {
        seed.extend(u16::try_from(part.len()).expect("a part under 64 KiB").to_le_bytes());
        seed.extend_from_slice(part);
    }
    seed
}

/// Writes the fixed group state and the seed corpus of the `handshake_check`
/// fuzz target (real creations, commits, GroupInfos, trees and Welcomes of a
/// group of alice and bob) under `$CONCLAVE_FUZZ_SEEDS` (the `fuzz/`
/// directory): `cargo test -p conclave-mls -- --ignored writes_the_fuzz_seeds`.
#[test]
#[ignore = "writes the fuzz corpus; run by hand when the group format changes"]
fn writes_the_fuzz_seeds() {
    let dir = std::path::PathBuf::from(std::env::var("CONCLAVE_FUZZ_SEEDS").expect("CONCLAVE_FUZZ_SEEDS"));
    let corpus = dir.join("corpus/handshake_check");
    std::fs::create_dir_all(&corpus).expect("corpus dir");
    std::fs::create_dir_all(dir.join("fixtures")).expect("fixtures dir");
    let write = |name: &str, bytes: &[u8]| std::fs::write(corpus.join(name), bytes).expect("write seed");

    let mut owner = Device::new("carol", 3);
    let (info_b, tree_b) = owner.create(ROOM_B);
    check_creation(ROOM_B, &info_b, &tree_b).expect("creation");
    write("creation", &fuzz_seed(0, &[ROOM_B, &info_b, &tree_b]));

    let (mut alice, _bob, state) = room_with_alice_and_bob();
    std::fs::write(dir.join("fixtures/handshake_state.bin"), state.as_bytes()).expect("write state");
    let (info, tree) = alice.state();
    crate::adopt(ROOM_A, &info, &tree).expect("adopt");
    write("adopt", &fuzz_seed(1, &[ROOM_A, &info, &tree]));

    // Op 2 checks against the fixed state written above; ops 4 carry their
    // own state (each from a fresh group of alice and bob).
    let dave = Device::new("dave", 4);
    let add = alice.add(&[dave.key_package()]);
    check(&state, ROOM_A, &add).expect("add");
    let welcome = add.welcome.clone().expect("welcome");
    write("commit_add", &fuzz_seed(2, &[&add.commit, &add.group_info, &add.ratchet_tree, &welcome]));
    write("inspect_add", &[&[3u8][..], &add.commit].concat());
    write(
        "commit_on_state",
        &fuzz_seed(4, &[state.as_bytes(), ROOM_A, &add.commit, &add.group_info, &add.ratchet_tree, &welcome]),
    );

    let (mut alice, _bob, state2) = room_with_alice_and_bob();
    let remove = alice.remove(1);
    check(&state2, ROOM_A, &remove).expect("remove");
    write(
        "commit_remove_on_state",
        &fuzz_seed(4, &[state2.as_bytes(), ROOM_A, &remove.commit, &remove.group_info, &remove.ratchet_tree]),
    );
    write("inspect_remove", &[&[3u8][..], &remove.commit].concat());

    let (alice_info, alice_tree) = alice.state();
    let mut eve = Device::new("eve", 9);
    let (mut alice3, _bob3, state3) = room_with_alice_and_bob();
    let (info3, tree3) = alice3.state();
    let join = eve.join_externally(&info3, &tree3);
    check(&state3, ROOM_A, &join).expect("external join");
    write(
        "commit_join_on_state",
        &fuzz_seed(4, &[state3.as_bytes(), ROOM_A, &join.commit, &join.group_info, &join.ratchet_tree]),
    );
    write("inspect_join", &[&[3u8][..], &join.commit].concat());
    write("adopt_after_remove", &fuzz_seed(1, &[ROOM_A, &alice_info, &alice_tree]));
}
