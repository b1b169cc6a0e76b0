//! The seam the fuzz targets in `fuzz/` drive: a real server (SQLite store,
//! audit log, limiters, fan-out) and real sessions that answer text messages
//! exactly as a connection's loop does, minus the socket. Built only with the
//! `fuzzing` feature, which the binary never enables.
//!
//! Why a seam: the session is private to the crate and reads its frames from a
//! WebSocket. Fuzzing through sockets would spend nearly all its time in TLS;
//! here each input goes through [`Connection::decode_text`] (the frame limit of
//! the session's phase), then the session's own phase gate and handlers
//! ([`Session::answer_text`]), the code `serve` runs for every message.
//!
//! The rig's store lives for the whole fuzzing process, so state accumulates
//! from one input to the next (rooms created, counters of failed logins, rate
//! limits used up). A crash that depends on that history may not reproduce
//! from its input alone on a fresh store; docs/fuzzing.md says what to do.
//!
//! [`Connection::decode_text`]: crate::connection::Connection::decode_text
//! [`Session::answer_text`]: crate::session::Session::answer_text

use crate::{
    Server, Shared,
    bench::{ClientSocket, Loopback},
    config::{Config, RawConfig},
    listener::ConnContext,
    session::Session,
    shutdown::{self, Shutdown, Trigger},
    store::{CreateUserError, NewSession, NewUser},
    wire::Wire,
};
use conclave_proto::{
    ClientFrame, DeviceId, ErrorCode, Outcome, Reply, Request, Response, UserId, event::SessionEndReason,
};
use futures_util::StreamExt;
use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU16, Ordering},
    },
};
use tokio::sync::{Semaphore, mpsc};

/// Stands for the rig's live session token in the text of a message: inputs
/// that want to log in with `authenticate` write this, since the token itself
/// is random (and replaced when an input logs out).
pub const TOKEN_PLACEHOLDER: &str = "@TOKEN@";

/// The user the rig's session belongs to.
pub const USERNAME: &str = "alice";
/// A second account, so that requests naming another user find one.
pub const OTHER_USERNAME: &str = "bob";

/// Where a session is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Only `hello` is accepted.
    ExpectHello,
    /// Greeted, not logged in.
    Anonymous,
    /// Logged in; `device` says whether the connection is bound to a device.
    Authenticated {
        /// Bound to a device.
        device: bool,
    },
}

/// A server with one user, one device and one live session, on a
/// current-thread runtime that runs only while an input is being answered.
pub struct Rig {
    /// Runs the server's tasks (the appender, the drain of the client end).
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    /// One loopback TLS connection whose server end every session writes to
    /// (the fan-out pushes there); its client end is read and discarded.
    wire: Arc<Wire>,
    user: UserId,
    /// The device authenticated sessions bind to (none until registered),
    /// and the generation of its signature key: an input that logs out
    /// retires the device, and the next session registers a new one.
    device: Mutex<(Option<DeviceId>, u64)>,
    /// The live session's token; replaced when an input ends the session.
    token: Mutex<String>,
    /// Kept so that sessions never see the shutdown signal.
    _trigger: Trigger,
    shutdown: Shutdown,
    done: mpsc::Sender<()>,
    permits: Arc<Semaphore>,
    /// Each session gets its own port, as a new connection would.
    port: AtomicU16,
}

/// The signature key of the rig's device of a generation (any 16 to 256
/// bytes will do: the server binds the key, it does not use it).
fn signature_key(generation: u64) -> [u8; 32] {
    let mut key = [7; 32];
    key[..8].copy_from_slice(&generation.to_le_bytes());
    key
}

impl Rig {
    /// Starts a server whose data (SQLite database, keys, certificate) lives
    /// in `data_dir`, with the user `alice` (a live session, a bound device)
    /// and the user `bob`.
    ///
    /// # Panics
    /// If any of that fails: the fuzz target cannot run without it.
    #[must_use]
    pub fn new(data_dir: &Path) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let raw = RawConfig {
            data_dir: Some(data_dir.to_owned()),
            listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            metrics_listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            hash_concurrency: Some(1),
            ..RawConfig::default()
        };
        let config = Config::resolve(RawConfig::default(), raw).expect("the rig's configuration");
        let (shared, wire) = runtime.block_on(async {
            let server = Server::start(config).await.expect("the server starts");
            let loopback = Loopback::new().await.expect("a loopback listener");
            let (wire, client): (Arc<Wire>, ClientSocket) =
                loopback.connect().await.expect("a loopback connection");
            tokio::spawn(async move {
                let mut client = client;
                while let Some(Ok(_)) = client.next().await {}
            });
            (server.shared, wire)
        });
        let (trigger, shutdown) = shutdown::channel();
        let (done, _) = mpsc::channel(1);
        let mut rig = Self {
            runtime,
            shared,
            wire,
            user: UserId(0),
            device: Mutex::new((None, 0)),
            token: Mutex::new(String::new()),
            _trigger: trigger,
            shutdown,
            done,
            permits: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            port: AtomicU16::new(1),
        };
        rig.user = rig.runtime.block_on(rig.create_user(USERNAME));
        rig.runtime.block_on(rig.create_user(OTHER_USERNAME));
        rig.renew_token();
        drop(rig.authenticated());
        rig
    }

    async fn create_user(&self, username: &str) -> UserId {
        let new = NewUser {
            username,
            password_hash: "-",
            totp_secret: b"-",
            totp_step: 0,
            recovery_hashes: &[],
            registration_token: None,
            now: crate::clock::now_secs(),
        };
        match self.shared.store.create_user(&new).await {
            Ok(id) => id,
            Err(CreateUserError::Store(err)) => panic!("creating {username}: {err}"),
            Err(refused) => panic!("creating {username}: {refused}"),
        }
    }

    /// Opens a new session for `alice` and makes its token the live one.
    fn renew_token(&self) {
        let (token, hash) = crate::auth::token::new_token();
        let id = crate::auth::token::new_session_id();
        let now = crate::clock::now_secs();
        let lifetime = i64::try_from(self.shared.config.session_absolute.as_secs()).unwrap_or(i64::MAX);
        let new = NewSession {
            id: &id,
            user: self.user,
            token_hash: &hash,
            client: "fuzz",
            now,
            expires_at: now.saturating_add(lifetime),
        };
        self.runtime.block_on(self.shared.store.create_session(&new)).expect("a session for the rig");
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = token;
    }

    /// The messages that log a fresh connection in: `hello`, then
    /// `authenticate` with the live token.
    fn prelude(&self) -> [String; 2] {
        let token = self.token.lock().unwrap_or_else(PoisonError::into_inner).clone();
        [
            ClientFrame { id: 1, request: Request::Hello { versions: vec![1], client: "fuzz".into() } }
                .encode(),
            ClientFrame { id: 2, request: Request::Authenticate { token } }.encode(),
        ]
    }

    /// A new connection's session, expecting `hello`.
    ///
    /// # Panics
    /// If the server refuses the connection (more than its limit of
    /// connections that have not logged in are open at once).
    #[must_use]
    pub fn session(&self) -> RigSession<'_> {
        let port = self.port.fetch_add(1, Ordering::Relaxed).max(1);
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let ticket = self.shared.admission.admit(peer.ip()).expect("admitted");
        let context = ConnContext {
            peer,
            shutdown: self.shutdown.clone(),
            _done: self.done.clone(),
            _permit: Arc::new(self.permits.clone().try_acquire_owned().expect("a permit")),
            ticket: Arc::new(ticket),
        };
        let session = Session::new(self.wire.clone(), Vec::new(), context, self.shared.clone());
        RigSession { rig: self, session, ended: None }
    }

    /// A new connection's session, logged in as `alice` and bound to her
    /// device through the real `hello`, `authenticate` and `device` requests.
    ///
    /// # Panics
    /// If any of them fails three times (after an input logged out, the
    /// token is renewed once and the retired device replaced once).
    #[must_use]
    pub fn authenticated(&self) -> RigSession<'_> {
        for _ in 0..3 {
            let mut session = self.session();
            let [hello, authenticate] = self.prelude();
            session.answer(&hello);
            if let Outcome::Error(_) = session.answer(&authenticate).response.outcome {
                self.renew_token();
                continue;
            }
            let (device, generation) = *self.device.lock().unwrap_or_else(PoisonError::into_inner);
            let bind = format!(
                r#"{{"id":3,"request":{{"type":"device","device_id":{},"signature_key":"{}"}}}}"#,
                device.map_or_else(|| "null".to_owned(), |d| d.0.to_string()),
                base64_key(generation)
            );
            match session.answer(&bind).response.outcome {
                Outcome::Ok(Reply::Device { device_id, .. }) => {
                    *self.device.lock().unwrap_or_else(PoisonError::into_inner) =
                        (Some(device_id), generation);
                    return session;
                }
                Outcome::Error(body) if body.code == ErrorCode::DeviceRetired => {
                    let next = generation.wrapping_add(1);
                    *self.device.lock().unwrap_or_else(PoisonError::into_inner) = (None, next);
                }
                other => panic!("the rig's device was not bound: {other:?}"),
            }
        }
        panic!("a fresh session token and device do not authenticate");
    }

    /// The largest frame the rig's server reads after login.
    #[must_use]
    pub fn max_frame_bytes(&self) -> usize {
        self.shared.config.max_frame_bytes
    }

    /// The user the rig's sessions log in as.
    #[must_use]
    pub fn user(&self) -> UserId {
        self.user
    }
}

fn base64_key(generation: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(signature_key(generation))
}

/// One connection's session on the [`Rig`].
pub struct RigSession<'r> {
    rig: &'r Rig,
    session: Session,
    /// Why the session ended, once it has.
    ended: Option<SessionEndReason>,
}

/// The server's answer to one text message.
#[derive(Debug)]
pub struct Answer {
    /// The response the peer would be sent.
    pub response: Response,
    /// The phase before the message …
    pub before: Phase,
    /// … and after it.
    pub after: Phase,
    /// Set when the session ends with this message (the server closes the
    /// connection after the response).
    pub ended: Option<SessionEndReason>,
}

impl RigSession<'_> {
    /// Answers one WebSocket text message, as the session's loop would.
    /// [`TOKEN_PLACEHOLDER`] in `text` stands for the live session token.
    ///
    /// # Panics
    /// If the session already ended: a closed connection reads nothing more.
    pub fn answer(&mut self, text: &str) -> Answer {
        assert!(self.ended.is_none(), "the session ended");
        let text = if text.contains(TOKEN_PLACEHOLDER) {
            let token = self.rig.token.lock().unwrap_or_else(PoisonError::into_inner).clone();
            std::borrow::Cow::Owned(text.replace(TOKEN_PLACEHOLDER, &token))
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        let before = self.session.phase();
        let (response, ended) = self.rig.runtime.block_on(self.session.answer_text(&text));
        let after = self.session.phase();
        if ended.is_some() {
            // Logged out or revoked: the next session needs a fresh token.
            self.rig.renew_token();
            self.ended = ended;
        }
        Answer { response, before, after, ended }
    }

    /// Whether the session has ended (no further message is read).
    #[must_use]
    pub fn ended(&self) -> bool {
        self.ended.is_some()
    }
}

impl Drop for RigSession<'_> {
    fn drop(&mut self) {
        // The fan-out and live-session registrations end with the session;
        // let the tasks they woke run now.
        self.rig.runtime.block_on(tokio::task::yield_now());
    }
}
