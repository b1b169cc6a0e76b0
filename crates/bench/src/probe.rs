//! Reading a room entry's sequence number without decoding the whole frame.
//!
//! A receiver that only counts entries needs the room and the seq of each.
//! Decoding the full frame (tagged enums buffered by serde, the ciphertext's
//! base64 into a fresh buffer) cost the bench more CPU per delivery than the
//! server spends on it, on the same two cores. Anything that is not plainly an
//! entry is decoded in full by the caller.

use serde::Deserialize;

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    kind: &'a str,
    #[serde(borrow)]
    event: Option<EventProbe<'a>>,
}

#[derive(Deserialize)]
struct EventProbe<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    room: Option<i64>,
    entry: Option<EntryProbe>,
}

#[derive(Deserialize)]
struct EntryProbe {
    seq: i64,
}

/// The seq of the entry `text` carries if it is an `entry` event of `room`.
pub fn entry_seq(text: &str, room: i64) -> Option<i64> {
    let frame: Frame<'_> = serde_json::from_str(text).ok()?;
    let event = frame.event.filter(|_| frame.kind == "event")?;
    if event.kind != "entry" || event.room != Some(room) {
        return None;
    }
    event.entry.map(|entry| entry.seq)
}

#[cfg(test)]
mod tests {
    use super::entry_seq;
    use conclave_proto::{
        Bytes, DeviceId, EntryBody, Event, LogEntry, MessageId, Reply, Response, RoomId, Seq, ServerFrame,
    };

    fn entry(room: i64, seq: i64) -> String {
        let entry = LogEntry {
            seq: Seq(seq),
            at_ms: 1_700_000_000_000,
            sender: "alice".into(),
            device: DeviceId(3),
            body: EntryBody::Message { id: MessageId(seq + 10), ciphertext: Some(Bytes(vec![7; 300])) },
        };
        ServerFrame::Event { event: Event::Entry { room: RoomId(room), entry } }.encode()
    }

    #[test]
    fn reads_the_seq_of_an_entry_of_the_room_as_the_server_encodes_it() {
        assert_eq!(entry_seq(&entry(4, 1234), 4), Some(1234));
        assert_eq!(entry_seq(&entry(5, 1234), 4), None, "another room");
    }

    #[test]
    fn anything_else_is_left_to_the_full_decoder() {
        let response = ServerFrame::Response(Response::ok(9, Reply::Done)).encode();
        assert_eq!(entry_seq(&response, 4), None);
        assert_eq!(entry_seq(&ServerFrame::Event { event: Event::Resync }.encode(), 4), None);
        assert_eq!(entry_seq("not json", 4), None);
    }
}
