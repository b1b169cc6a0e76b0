//! Entry points for the criterion micro-benchmarks in `benches/`: the hot paths
//! of the server behind a few stable functions, so that their types need not
//! become part of the library's API. Not for use outside the benchmarks.

use crate::{
    audit::{Audit, AuditError, ChainKey, KeyOrigin},
    config::Database,
    fanout::{self, Delta, Fanout, Registration},
    metrics::Metrics,
    policy,
    store::{AppendError, CreateUserError, NewCommit, NewMessage, NewUser, Store, StoreError, StoredMessage},
    tls::Identity,
    wire::Wire,
};
use conclave_proto::{Bytes, Change, DeviceId, EntryBody, Event, LogEntry, RoomId, RoomKind, Seq, UserId};
use futures_util::StreamExt;
use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use std::{
    io,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, client::TlsStream};
use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};

/// The client's end of a [`Loopback`] connection.
pub type ClientSocket = WebSocketStream<TlsStream<TcpStream>>;

/// Makes TLS connections over 127.0.0.1 the way the listener accepts them: the
/// server's end as the [`Wire`] a session would get after the upgrade, the
/// client's end as a WebSocket. For tests and benchmarks of what writes to
/// wires, with real sockets and real TLS.
pub(crate) struct Loopback {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl Loopback {
    /// A listener with a fresh self-signed certificate (the server's own TLS
    /// configuration), and a client that trusts it.
    pub(crate) async fn new() -> io::Result<Self> {
        let identity = Identity::ephemeral().map_err(io::Error::other)?;
        let (server, _) = identity.server_config().map_err(io::Error::other)?;
        let mut roots = RootCertStore::empty();
        roots.add(identity.leaf().clone()).map_err(io::Error::other)?;
        let client = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            listener: TcpListener::bind("127.0.0.1:0").await?,
            acceptor: TlsAcceptor::from(server),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// One connection: the server's end and the client's.
    pub(crate) async fn connect(&self) -> io::Result<(Arc<Wire>, ClientSocket)> {
        let address = self.listener.local_addr()?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let (client, accepted) = tokio::join!(
            async { self.connector.connect(name, TcpStream::connect(address).await?).await },
            async {
                let (socket, _) = self.listener.accept().await?;
                socket.set_nodelay(true)?;
                self.acceptor.accept(socket).await
            }
        );
        let (socket, tls) = accepted?.into_inner();
        let client = WebSocketStream::from_raw_socket(client?, Role::Client, None).await;
        Ok((Wire::new(socket, tls), client))
    }
}

/// One room with `connections` bound connections subscribed to it, each a real
/// TLS socket over loopback whose client end is read (and its frames counted)
/// by a task of the rig's own runtime.
pub struct FanoutRig {
    fanout: Fanout,
    metrics: Arc<Metrics>,
    room: RoomId,
    /// Frames the clients have read, all together.
    received: Arc<AtomicU64>,
    _registrations: Vec<Registration>,
    /// Runs the readers; dropped last.
    _runtime: tokio::runtime::Runtime,
}

impl FanoutRig {
    /// Connects and registers `connections` connections (one device each) in
    /// one room.
    ///
    /// # Panics
    /// If the loopback connections cannot be made (out of file descriptors, say).
    #[must_use]
    pub fn new(connections: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let metrics = Arc::new(Metrics::new());
        let fanout = Fanout::new(metrics.clone());
        let room = RoomId(1);
        let received = Arc::new(AtomicU64::new(0));
        let registrations = runtime.block_on(async {
            let loopback = Loopback::new().await.expect("a loopback listener");
            let mut registrations = Vec::with_capacity(connections);
            for n in 0..connections {
                let (wire, mut client) = loopback.connect().await.expect("a loopback connection");
                let received = received.clone();
                tokio::spawn(async move {
                    while let Some(Ok(_)) = client.next().await {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                });
                let id = i64::try_from(n).unwrap_or(i64::MAX);
                let registration = fanout.register(UserId(id), &format!("user{n}"), DeviceId(id), &wire);
                assert!(registration.subscribe(&[room], registration.version()), "fresh registration");
                registrations.push(registration);
            }
            registrations
        });
        // The clients have read the presence events of the setup once nothing
        // has come for a moment; everything they read after is a published entry.
        let mut seen = u64::MAX;
        while received.load(Ordering::Relaxed) != seen {
            seen = received.load(Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
        }
        received.store(0, Ordering::Relaxed);
        Self { fanout, metrics, room, received, _registrations: registrations, _runtime: runtime }
    }

    /// Encodes one message entry with a `size`-byte ciphertext once and writes
    /// it to every connection; returns how long that took (the encoding and
    /// every write) and to how many connections it went. Then, outside the
    /// time returned, waits until every client has read it, so that each
    /// publish starts with empty sockets, as in a room at a human pace.
    ///
    /// # Panics
    /// If the clients have not read everything within 10 s.
    pub fn publish(&mut self, seq: i64, size: usize) -> (Duration, u64) {
        let started = Instant::now();
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
        let (before, read_before) = (self.metrics.deliveries.get(), self.received.load(Ordering::Relaxed));
        self.fanout.publish(self.room, &frame, Delta::default());
        let elapsed = started.elapsed();
        let delivered = self.metrics.deliveries.get() - before;
        let expected = read_before + delivered;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.received.load(Ordering::Relaxed) < expected {
            assert!(
                Instant::now() < deadline,
                "the clients read {} of {expected} frames",
                self.received.load(Ordering::Relaxed)
            );
            std::thread::yield_now();
        }
        (elapsed, delivered)
    }
}

/// A SQLite store with one room whose group holds one device, for appends.
pub struct StoreRig {
    store: Store,
    /// Links the audit entries, as the server's audit key does.
    key: ChainKey,
    room: RoomId,
    user: UserId,
    device: DeviceId,
    nonce: u64,
}

impl StoreRig {
    /// Opens (creating) the database `dir/conclave.db` with the server's
    /// durability settings, keys its audit log and prepares the room.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn new(dir: &Path) -> Result<Self, StoreError> {
        let store = Store::open(&Database::Sqlite(dir.join("conclave.db"))).await?;
        let key = ChainKey::from_bytes(&[7; 32]);
        Audit::open(store.clone(), key.clone(), KeyOrigin::Created).await.map_err(|err| match err {
            AuditError::Store(err) => err,
            other => StoreError::Refused(other.to_string()),
        })?;
        let user = store
            .create_user(&NewUser {
                username: "alice",
                password_hash: "-",
                totp_secret: b"-",
                totp_step: 0,
                recovery_hashes: &[],
                registration_token: None,
                now: 0,
            })
            .await
            .map_err(|err| match err {
                CreateUserError::Store(err) => err,
                refused => StoreError::Refused(refused.to_string()),
            })?;
        let unset = |what: &str| StoreError::Refused(format!("the bench's {what} could not be created"));
        let device = store
            .create_device(user, b"signature key", &conclave_proto::SessionId("bench".into()), 0, 1)
            .await?
            .ok_or_else(|| unset("device"))?;
        let room = match store.create_room("bench", RoomKind::Private, user, b"group", 0, 1).await? {
            crate::store::NewRoom::Created(room) => room,
            _ => return Err(unset("room")),
        };
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
            public_group: b"public group",
            welcome: None,
            targets: &[],
            devices: &[],
            at_ms: 0,
        };
        store.append_commit(&commit, |_| Ok(())).await.map_err(|err| match err {
            crate::store::AppendError::Store(err) => err,
            other => StoreError::Refused(other.to_string()),
        })?;
        Ok(Self { store, key, room, user, device, nonce: 0 })
    }

    /// The store and the room's owner and device, for tests that append
    /// batches of their own.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> (&Store, RoomId, UserId, DeviceId) {
        (&self.store, self.room, self.user, self.device)
    }

    /// The key that links the rig's audit entries.
    #[cfg(test)]
    pub(crate) fn key(&self) -> &ChainKey {
        &self.key
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
            .writer()
            .await?
            .append_messages(
                messages,
                policy::may_use,
                |m, stored| (m.username.to_owned(), format!(r#"{{"seq":{}}}"#, stored.seq.0)),
                |prev, seq, e| self.key.link(prev, seq, e),
            )
            .await
    }
}
