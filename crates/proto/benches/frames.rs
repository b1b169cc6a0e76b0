//! Frame encoding and decoding: every request and every pushed event goes
//! through these once (fan-out frames are encoded once for all recipients).

use conclave_proto::{
    Bytes, ClientFrame, DeviceId, EntryBody, Event, LogEntry, MessageId, Request, RoomId, Seq, ServerFrame,
    limits::MAX_FRAME_BYTES,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// A 140-byte message's MLS ciphertext is about 300 bytes.
const CIPHERTEXT: usize = 300;

fn send_request() -> ClientFrame {
    ClientFrame {
        id: 42,
        request: Request::Send { room: RoomId(7), ciphertext: Bytes(vec![0xA5; CIPHERTEXT]), nonce: 1 },
    }
}

fn entry_event() -> ServerFrame {
    let entry = LogEntry {
        seq: Seq(1234),
        at_ms: 1_763_800_000_000,
        sender: "alice".into(),
        device: DeviceId(3),
        body: EntryBody::Message { id: MessageId(1234), ciphertext: Some(Bytes(vec![0xA5; CIPHERTEXT])) },
    };
    ServerFrame::Event { event: Event::Entry { room: RoomId(7), entry } }
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Elements(1));
    let request = send_request();
    let request_text = request.encode();
    group.bench_function("encode send request", |b| b.iter(|| black_box(&request).encode()));
    group.bench_function("decode send request", |b| {
        b.iter(|| ClientFrame::decode(black_box(&request_text), MAX_FRAME_BYTES).expect("valid"));
    });
    let event = entry_event();
    let event_text = event.encode();
    group.bench_function("encode entry event", |b| b.iter(|| black_box(&event).encode()));
    group.bench_function("decode entry event", |b| {
        b.iter(|| ServerFrame::decode(black_box(&event_text), usize::MAX).expect("valid"));
    });
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
