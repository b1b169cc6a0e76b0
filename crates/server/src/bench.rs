//! Entry points for the criterion micro-benchmarks in `benches/`: the hot paths
//! of the server behind a few stable functions, so that their types need not
//! become part of the library's API. Not for use outside the benchmarks.

use crate::{
    audit::{AuditAction, entry_hash},
    config::Database,
    fanout::{self, Delta, Fanout, Outbox, Registration},
    metrics::Metrics,
    policy,
    store::{AppendError, NewCommit, NewMessage, NewUser, Store, StoreError, StoredMessage},
};
use conclave_proto::{Bytes, Change, DeviceId, EntryBody, Event, LogEntry, RoomId, RoomKind, Seq, UserId};
use std::{path::Path, sync::Arc};

/// One room with `connections` bound connections subscribed to it.
pub struct FanoutRig {
    fanout: Fanout,
    room: RoomId,
    _registrations: Vec<Registration>,
    outboxes: Vec<Outbox>,
}

impl FanoutRig {
    /// Registers `connections` connections (one device each) in one room.
    #[must_use]
    pub fn new(connections: usize) -> Self {
        let fanout = Fanout::new(Arc::new(Metrics::new()));
        let room = RoomId(1);
        let mut registrations = Vec::with_capacity(connections);
        let mut outboxes = Vec::with_capacity(connections);
        for n in 0..connections {
            let id = i64::try_from(n).unwrap_or(i64::MAX);
            let (registration, outbox) = fanout.register(UserId(id), &format!("user{n}"), DeviceId(id));
            assert!(registration.subscribe(&[room], registration.version()), "fresh registration");
            registrations.push(registration);
            outboxes.push(outbox);
        }
        Self { fanout, room, _registrations: registrations, outboxes }
    }

    /// Encodes one message entry with a `size`-byte ciphertext once and queues
    /// it for every connection; then empties the queues (as the sessions would)
    /// and returns how many frames were taken.
    pub fn publish(&mut self, seq: i64, size: usize) -> usize {
        let entry = LogEntry {
            seq: Seq(seq),
            at_ms: 0,
            sender: "user0".into(),
            device: DeviceId(0),
            body: EntryBody::Message {
                id: conclave_proto::MessageId(seq),
                ciphertext: Some(Bytes(vec![7; size])),
            },
        };
        let frame = fanout::encode(Event::Entry { room: self.room, entry });
        self.fanout.publish(self.room, &frame, Delta::default());
        self.outboxes.iter_mut().filter_map(Outbox::try_next).count()
    }
}

/// A SQLite store with one room whose group holds one device, for appends.
pub struct StoreRig {
    store: Store,
    room: RoomId,
    user: UserId,
    device: DeviceId,
    nonce: u64,
}

impl StoreRig {
    /// Opens (creating) the database `dir/conclave.db` with the server's
    /// durability settings and prepares the room.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn new(dir: &Path) -> Result<Self, StoreError> {
        let store = Store::open(&Database::Sqlite(dir.join("conclave.db"))).await?;
        let user = store
            .create_user(&NewUser {
                username: "alice",
                password_hash: "-",
                totp_secret: b"-",
                totp_step: 0,
                recovery_hashes: &[],
                now: 0,
            })
            .await?;
        let device = store.create_device(user, b"signature key", 0).await?;
        let room = store.create_room("bench", RoomKind::Private, user, b"group", 0).await?;
        let change = Change::Create {};
        let commit = NewCommit {
            room,
            user,
            device,
            epoch: 0,
            change: &change,
            change_json: r#"{"kind":"create"}"#,
            commit: &[],
            group_info: b"group info",
            ratchet_tree: b"tree",
            welcome: None,
            targets: &[],
            devices: &[],
            at_ms: 0,
        };
        store.append_commit(&commit, |_| Ok(())).await.map_err(|err| match err {
            crate::store::AppendError::Store(err) => err,
            other => StoreError::Refused(other.to_string()),
        })?;
        Ok(Self { store, room, user, device, nonce: 0 })
    }

    /// The store and the room's owner and device, for tests that append
    /// batches of their own.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> (&Store, RoomId, UserId, DeviceId) {
        (&self.store, self.room, self.user, self.device)
    }

    /// Appends `count` messages of `size` bytes in one batch (one transaction,
    /// one fsync), with their audit entries, as the appender does.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn append_batch(&mut self, count: usize, size: usize) -> Result<usize, StoreError> {
        let ciphertext = vec![7u8; size];
        let first = self.nonce;
        self.nonce += count as u64;
        let messages: Vec<NewMessage<'_>> = (first..self.nonce)
            .map(|nonce| NewMessage {
                room: self.room,
                user: self.user,
                username: "alice",
                device: self.device,
                ciphertext: &ciphertext,
                nonce,
                at_ms: 0,
            })
            .collect();
        let outcomes = self.append(&messages).await?;
        Ok(outcomes.iter().filter(|o| o.is_ok()).count())
    }

    /// Appends `messages` in one batch as the appender does: the same policy,
    /// audit entries and hash chain.
    ///
    /// # Errors
    /// Storage errors.
    pub(crate) async fn append(
        &self,
        messages: &[NewMessage<'_>],
    ) -> Result<Vec<Result<StoredMessage, AppendError>>, StoreError> {
        self.store
            .append_messages(
                messages,
                policy::may_use,
                |m, stored| (m.username.to_owned(), format!(r#"{{"seq":{}}}"#, stored.seq.0)),
                |prev, seq, e| {
                    entry_hash(prev, seq, e.at_ms, e.actor, AuditAction::MessageSent.as_str(), e.detail)
                },
            )
            .await
    }
}
