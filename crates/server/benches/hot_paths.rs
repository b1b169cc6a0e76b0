//! The server's per-message hot paths: fan-out of one stored message to a
//! room's connections, and the group-commit append of a batch of messages.

use conclave_server::bench::{FanoutRig, StoreRig};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    for connections in [100, 1000] {
        let mut rig = FanoutRig::new(connections);
        let mut seq = 0;
        group.throughput(Throughput::Elements(connections as u64));
        group.bench_function(format!("one message written to {connections} TLS connections"), |b| {
            // Only the publish is timed; the clients then read it untimed.
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    seq += 1;
                    let (elapsed, delivered) = rig.publish(seq, 300);
                    assert_eq!(delivered, connections as u64);
                    total += elapsed;
                }
                total
            });
        });
    }
    group.finish();
}

fn store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = runtime.block_on(StoreRig::new(dir.path())).expect("store");
    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    for batch in [1, 64, 256] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("append a batch of {batch} (SQLite, synchronous=FULL)"), |b| {
            b.iter_batched(
                || (),
                |()| assert_eq!(runtime.block_on(rig.append_batch(batch, 300)).expect("append"), batch),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, fanout, store);
criterion_main!(benches);
