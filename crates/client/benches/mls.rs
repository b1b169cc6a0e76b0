//! MLS application messages in the client: what a sender pays per message and
//! a receiver per message it reads (state in memory; the on-disk store adds
//! its own cost, measured by `conclave-bench --decrypt-all`).

use conclave_client::mls::{Identity, MlsState, Processed};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const GROUP: &[u8] = b"bench group";

/// Alice and Bob in one group.
fn pair() -> (MlsState, MlsState) {
    let mut alice = MlsState::in_memory().expect("state");
    alice.set_identity(Identity::new("alice", 1)).expect("identity");
    let mut bob = MlsState::in_memory().expect("state");
    bob.set_identity(Identity::new("bob", 2)).expect("identity");
    alice.create_group(GROUP).expect("group");
    let package = bob.key_packages(1, false).expect("KeyPackage");
    let add = alice.add_members(GROUP, &package).expect("add");
    alice.confirm(GROUP).expect("confirm");
    bob.join_welcome(&add.welcome.expect("Welcome"), &add.ratchet_tree).expect("join");
    (alice, bob)
}

fn mls(c: &mut Criterion) {
    let (alice, _) = pair();
    let text = br#"{"v":1,"type":"text","text":"a message of about one hundred and forty bytes, which is what the standard load generator workloads send"}"#;
    let mut group = c.benchmark_group("mls");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encrypt a 140-byte message", |b| {
        b.iter(|| alice.encrypt(GROUP, text).expect("encrypt"))
    });
    // A fresh pair: the sender above ran far ahead of what a receiver accepts.
    let (alice, bob) = pair();
    group.bench_function("encrypt and decrypt a 140-byte message", |b| {
        b.iter(|| {
            let ciphertext = alice.encrypt(GROUP, text).expect("encrypt");
            assert!(matches!(bob.process(GROUP, &ciphertext), Ok(Processed::Application { .. })));
        });
    });
    group.finish();
}

criterion_group!(benches, mls);
criterion_main!(benches);
