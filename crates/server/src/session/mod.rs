//! One WebSocket session: the protocol state machine.
//!
//! ```text
//! ExpectHello ──hello──▶ Anonymous ──register | login | authenticate──▶ Authenticated
//!                                                                       (no device)
//!                                                                         │ device
//!                                                                         ▼
//!                          logout, revoke of own session, expiry,   Authenticated
//!                          shutdown ──▶ connection closed ◀──────── (device bound)
//! ```
//!
//! Each phase accepts only the requests that make sense in it; anything else
//! gets a typed error and the connection stays usable. The phases before login
//! have deadlines counted from the upgrade (`hello_timeout_secs`,
//! `auth_timeout_secs`): a connection that misses one is closed with 1008, so a
//! stranger cannot hold a connection by saying nothing. Every frame, well-formed
//! or not, counts toward the connection's rate limit. Messaging requests need
//! a bound device (`device_required` otherwise). Requests on one connection are
//! handled one at a time, in order. The fan-out writes entries, Welcomes and
//! presence to the connection's socket itself; the loop finishes what the
//! socket would not take at once, and writes the `resync` a lagging
//! connection is owed.

use crate::{
    Shared,
    auth::ratelimit::ConnectionLimiter,
    connection::{CloseCode, Connection, Inbound},
    error::RequestError,
    fanout,
    handler::{self, Caller, Ctx, Grant},
    listener::ConnContext,
    live::Registration,
    wire::Wire,
};
use conclave_proto::{
    ClientFrame, DeviceId, ErrorCode, Event, FrameError, PROTOCOL_VERSION, Reply, Request, Response,
    ServerFrame, event::SessionEndReason, validate,
};
use std::{sync::Arc, time::Duration};
use tokio::{sync::mpsc, time::Instant};

mod gate;

use gate::Gate;

/// Where the session is in the protocol.
enum Phase {
    /// Nothing but `hello` is accepted.
    ExpectHello,
    /// Greeted; may register, log in or authenticate.
    Anonymous {
        /// Client name from `hello`.
        client: String,
    },
    /// Logged in.
    Authenticated(Box<Authenticated>),
}

struct Authenticated {
    client: String,
    grant: Grant,
    /// When the session's absolute lifetime ends.
    deadline: Instant,
    /// Last time `last_seen_at` was written (on a request at most once a
    /// minute, and every five minutes while idle).
    last_touch: Instant,
    /// Hears logout/revocation of this session from other connections.
    ended: mpsc::Receiver<SessionEndReason>,
    /// Keeps this connection findable by session until it ends.
    _registration: Registration,
    /// The device this connection speaks for, once bound with `device`.
    device: Option<Bound>,
}

/// A connection bound to a device: registered with the fan-out.
struct Bound {
    id: DeviceId,
    /// Keeps the connection registered (and its user online) until it closes.
    _fanout: fanout::Registration,
}

/// How a connection that missed a deadline before login is closed.
const POLICY_CLOSE: CloseCode = CloseCode::Policy;

/// What woke the session loop.
enum Wake {
    Inbound(Inbound),
    /// Pushed frames left writing to do: bytes the socket would not take at
    /// once, a `resync` owed, or a broken socket.
    Push,
    Ended(SessionEndReason),
    /// The session's deadline, or time to record use of the session and check
    /// it was not ended elsewhere; before login, the hello or login deadline.
    Timer,
    Shutdown,
}

/// After handling a request: keep going or close.
enum Flow {
    Continue,
    Close(SessionEndReason),
}

/// A request after this long records session use (and re-checks the session).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// An idle connection records session use this often, so a connected device
/// never reaches the idle timeout, and notices within this time that its session
/// was ended through another server node. `authenticate` does not record use of
/// a session whose last recorded use is more recent than this.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(300);

/// Records use of the session and checks it is still live. A storage error is
/// logged and tolerated (the session stays up); a session found ended closes.
async fn refresh(shared: &Shared, auth: &mut Authenticated) -> Result<(), SessionEndReason> {
    auth.last_touch = Instant::now();
    let now = crate::clock::now_secs();
    match shared.store.refresh_session(&auth.grant.session_id, now).await {
        Ok(true) => Ok(()),
        Ok(false) if now >= auth.grant.expires_at => Err(SessionEndReason::Expired),
        Ok(false) => Err(SessionEndReason::Revoked),
        Err(err) => {
            tracing::warn!(error = %err, "could not refresh a session");
            Ok(())
        }
    }
}

/// Serves one upgraded WebSocket until it closes.
/// `early` holds protocol bytes read along with the upgrade request.
pub(crate) async fn run(wire: Arc<Wire>, early: Vec<u8>, context: ConnContext, shared: Arc<Shared>) {
    shared.metrics.connections.inc();
    shared.metrics.connections_total.inc();
    Session::new(wire, early, context, shared.clone()).serve().await;
    shared.metrics.connections.dec();
}

/// One connection's session; [`run`] serves it.
pub(crate) struct Session {
    conn: Connection,
    shared: Arc<Shared>,
    context: ConnContext,
    limiter: ConnectionLimiter,
    phase: Phase,
    /// When the WebSocket upgrade was done: the deadlines before login count from here.
    opened: Instant,
}

impl Session {
    /// A session in its first phase (expecting `hello`) on an upgraded WebSocket.
    pub(crate) fn new(wire: Arc<Wire>, early: Vec<u8>, context: ConnContext, shared: Arc<Shared>) -> Self {
        Self {
            conn: Connection::new(wire, early, shared.config.max_frame_bytes, shared.metrics.clone()),
            limiter: ConnectionLimiter::new(shared.config.requests_per_second),
            phase: Phase::ExpectHello,
            opened: Instant::now(),
            shared,
            context,
        }
    }

    async fn serve(mut self) {
        // The futures that outlive one turn of the loop are made once: a fresh
        // timer or shutdown listener per wake-up would be registered and
        // unregistered on every frame written.
        let mut shutdown = self.context.shutdown.clone();
        let shutdown = shutdown.recv();
        tokio::pin!(shutdown);
        let timer = tokio::time::sleep(REFRESH_EVERY);
        tokio::pin!(timer);
        // The socket and the session's end channel are polled only when they
        // woke the task, not whenever something else did.
        let (reads, ends) = (Gate::new(), Gate::new());
        let wire = self.conn.wire().clone();
        loop {
            let wake = {
                let config = &self.shared.config;
                let (ended, wake_at) = match &mut self.phase {
                    Phase::Authenticated(auth) => {
                        let Authenticated { ended, deadline, last_touch, .. } = &mut **auth;
                        (Some(ended), Some((*last_touch + REFRESH_EVERY).min(*deadline)))
                    }
                    Phase::ExpectHello => (None, Some(self.opened + config.hello_timeout)),
                    Phase::Anonymous { .. } => (None, Some(self.opened + config.auth_timeout)),
                };
                if let Some(at) = wake_at
                    && timer.deadline() != at
                {
                    timer.as_mut().reset(at);
                }
                // Biased: the cheap checks first, then writing left by pushes,
                // and the socket last.
                tokio::select! {
                    biased;
                    () = &mut shutdown => Wake::Shutdown,
                    Some(reason) = async { match ended { Some(rx) => ends.run(rx.recv()).await, None => std::future::pending().await } } => Wake::Ended(reason),
                    () = &mut timer, if wake_at.is_some() => Wake::Timer,
                    () = wire.has_work() => Wake::Push,
                    inbound = reads.run(self.conn.read_frame()) => Wake::Inbound(inbound),
                }
            };
            match wake {
                Wake::Inbound(Inbound::Frame(frame)) => match self.on_frame(frame).await {
                    Flow::Continue => {}
                    Flow::Close(reason) => return self.end(reason).await,
                },
                Wake::Inbound(Inbound::Invalid(err)) => {
                    let response = self.refuse(err);
                    if self.send(ServerFrame::Response(response)).await.is_err() {
                        return;
                    }
                }
                Wake::Inbound(Inbound::Closed) => return,
                Wake::Push => {
                    if self.conn.catch_up(&fanout::RESYNC).is_err() {
                        return;
                    }
                }
                Wake::Ended(reason) => return self.end(reason).await,
                Wake::Timer => {
                    let auth = match &mut self.phase {
                        Phase::Authenticated(auth) => auth,
                        Phase::ExpectHello => {
                            return self.time_out("hello", "hello not received in time").await;
                        }
                        Phase::Anonymous { .. } => {
                            return self.time_out("authentication", "not logged in in time").await;
                        }
                    };
                    if Instant::now() >= auth.deadline {
                        return self.end(SessionEndReason::Expired).await;
                    }
                    if let Err(reason) = refresh(&self.shared, auth).await {
                        return self.end(reason).await;
                    }
                }
                Wake::Shutdown => {
                    self.send(ServerFrame::Event { event: Event::ServerShutdown }).await.ok();
                    return self.conn.close(CloseCode::Away, "server shutting down").await;
                }
            }
        }
    }

    /// Closes a connection that missed the deadline of its `phase` before login.
    async fn time_out(self, phase: &'static str, reason: &'static str) {
        self.shared.metrics.connection_timed_out(phase);
        tracing::debug!(peer = %self.context.peer, phase, "closing a connection that missed its deadline");
        self.conn.close(POLICY_CLOSE, reason).await;
    }

    /// Tells the peer its session ended, then closes.
    async fn end(mut self, reason: SessionEndReason) {
        self.send(ServerFrame::Event { event: Event::SessionEnded { reason } }).await.ok();
        self.conn.close(CloseCode::Normal, "session ended").await;
    }

    async fn send(&mut self, frame: ServerFrame) -> std::io::Result<()> {
        self.conn.write_frame(&frame).await
    }

    /// The answer to a text message that is not a valid frame.
    fn refuse(&mut self, err: FrameError) -> Response {
        let (id, reason) = match err {
            FrameError::Malformed { id, reason } => (id.unwrap_or(0), reason),
            too_large @ FrameError::TooLarge { .. } => (0, too_large.to_string()),
        };
        // Garbage costs the server a parse and an answer as a request
        // does: it counts toward the same limit.
        if self.limiter.allow() {
            Response::error(id, ErrorCode::BadRequest, reason)
        } else {
            let (code, message) = rate_limited().to_wire();
            Response::error(id, code, message)
        }
    }

    async fn on_frame(&mut self, frame: ClientFrame) -> Flow {
        let (response, flow) = self.respond(frame).await;
        if self.send(ServerFrame::Response(response)).await.is_err() {
            return Flow::Close(SessionEndReason::LoggedOut);
        }
        flow
    }

    /// Handles one request in the current phase: its response, and whether
    /// the session goes on.
    async fn respond(&mut self, frame: ClientFrame) -> (Response, Flow) {
        let ClientFrame { id, request } = frame;
        let stale = match &mut self.phase {
            Phase::Authenticated(auth) if auth.last_touch.elapsed() > TOUCH_EVERY => {
                refresh(&self.shared, auth).await.err()
            }
            _ => None,
        };
        let (result, flow) = if let Some(reason) = stale {
            (Err(RequestError::SessionInvalid), Flow::Close(reason))
        } else if self.limiter.allow() {
            self.dispatch(request).await
        } else {
            (Err(rate_limited()), Flow::Continue)
        };
        let response = match result {
            Ok(reply) => Response::ok(id, reply),
            Err(err) => {
                let (code, message) = err.to_wire();
                Response::error(id, code, message)
            }
        };
        (response, flow)
    }

    /// Answers one text message as [`serve`](Self::serve) does, without the
    /// socket: decoded under the limit of the current phase, then refused or
    /// handled. Returns the response the peer would be sent and, if the session
    /// ends with it, why. For the fuzz targets (`conclave_server::fuzzing`).
    #[cfg(feature = "fuzzing")]
    pub(crate) async fn answer_text(&mut self, text: &str) -> (Response, Option<SessionEndReason>) {
        match self.conn.decode_text(text) {
            Inbound::Frame(frame) => match self.respond(frame).await {
                (response, Flow::Continue) => (response, None),
                (response, Flow::Close(reason)) => (response, Some(reason)),
            },
            Inbound::Invalid(err) => (self.refuse(err), None),
            Inbound::Closed => unreachable!("decoding never closes"),
        }
    }

    /// The phase the session is in, for the fuzz targets' invariants.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn phase(&self) -> crate::fuzzing::Phase {
        use crate::fuzzing::Phase as Seen;
        match &self.phase {
            Phase::ExpectHello => Seen::ExpectHello,
            Phase::Anonymous { .. } => Seen::Anonymous,
            Phase::Authenticated(auth) => Seen::Authenticated { device: auth.device.is_some() },
        }
    }

    async fn dispatch(&mut self, request: Request) -> (Result<Reply, RequestError>, Flow) {
        use RequestError::Protocol;
        let peer = self.context.peer.ip();
        match (&mut self.phase, request) {
            (Phase::ExpectHello, Request::Hello { versions, client }) => {
                (self.hello(&versions, client), Flow::Continue)
            }
            (Phase::ExpectHello, _) => {
                (Err(Protocol(ErrorCode::HelloRequired, "the first request must be hello")), Flow::Continue)
            }
            (_, Request::Hello { .. }) => {
                (Err(Protocol(ErrorCode::AlreadyGreeted, "hello was already sent")), Flow::Continue)
            }
            (_, Request::Ping {}) => (Ok(Reply::Pong), Flow::Continue),
            (Phase::Anonymous { client }, request) => {
                let ctx = Ctx { shared: &self.shared, peer, client };
                let result = match request {
                    Request::Register { username, password, totp_secret, totp_code, registration_token } => {
                        let registration = handler::account::Registration {
                            username: &username,
                            password: &password,
                            totp_secret: &totp_secret,
                            totp_code: &totp_code,
                            registration_token: registration_token.as_deref(),
                        };
                        handler::account::register(&ctx, &registration).await
                    }
                    Request::Login { username, password, second_factor, device_cookie } => {
                        let cookie = device_cookie.as_deref();
                        handler::auth::login(&ctx, &username, &password, &second_factor, cookie).await
                    }
                    Request::Authenticate { token } => handler::auth::authenticate(&ctx, &token).await,
                    _ => Err(Protocol(ErrorCode::NotAuthenticated, "log in first")),
                };
                match result {
                    Ok((reply, grant)) => {
                        self.context.ticket.authenticated();
                        self.conn.lift_frame_limit();
                        let client = std::mem::take(client);
                        self.phase = Phase::Authenticated(Box::new(self.authenticated(client, grant)));
                        (Ok(reply), Flow::Continue)
                    }
                    Err(err) => (Err(err), Flow::Continue),
                }
            }
            (Phase::Authenticated(auth), request) => {
                let ctx = Ctx { shared: &self.shared, peer, client: &auth.client };
                match request {
                    Request::Whoami {} => (Ok(handler::sessions::whoami(&auth.grant)), Flow::Continue),
                    Request::ListSessions {} => {
                        (handler::sessions::list(&ctx, &auth.grant).await, Flow::Continue)
                    }
                    Request::RevokeSession { session_id } => {
                        match handler::sessions::revoke(&ctx, &auth.grant, &session_id).await {
                            Ok(own) => (
                                Ok(Reply::Done),
                                if own { Flow::Close(SessionEndReason::Revoked) } else { Flow::Continue },
                            ),
                            Err(err) => (Err(err), Flow::Continue),
                        }
                    }
                    Request::ListDevices {} => {
                        let current = auth.device.as_ref().map(|bound| bound.id);
                        (handler::retirement::list(&ctx, &auth.grant, current).await, Flow::Continue)
                    }
                    Request::RemoveDevice { device } => {
                        let current = auth.device.as_ref().map(|bound| bound.id);
                        (
                            handler::retirement::remove(&ctx, &auth.grant, current, device).await,
                            Flow::Continue,
                        )
                    }
                    Request::Logout {} => match handler::sessions::logout(&ctx, &auth.grant).await {
                        Ok(()) => (Ok(Reply::Done), Flow::Close(SessionEndReason::LoggedOut)),
                        Err(err) => (Err(err), Flow::Continue),
                    },
                    Request::Register { .. } | Request::Login { .. } | Request::Authenticate { .. } => (
                        Err(Protocol(
                            ErrorCode::AlreadyAuthenticated,
                            "this connection is already logged in",
                        )),
                        Flow::Continue,
                    ),
                    Request::Hello { .. } | Request::Ping {} => unreachable!("handled above"),
                    Request::Device { device_id, signature_key } => (
                        bind_device(
                            &ctx,
                            &auth.grant,
                            &mut auth.device,
                            self.conn.wire(),
                            device_id,
                            &signature_key.0,
                        )
                        .await,
                        Flow::Continue,
                    ),
                    request => {
                        let result = match &auth.device {
                            Some(bound) => {
                                let me = Caller { user: &auth.grant.user, device: bound.id };
                                handler::messaging(&ctx, &me, request).await
                            }
                            None => Err(RequestError::DeviceRequired),
                        };
                        (result, Flow::Continue)
                    }
                }
            }
        }
    }

    fn hello(&mut self, versions: &[u32], client: String) -> Result<Reply, RequestError> {
        use RequestError::Protocol;
        if versions.len() > conclave_proto::limits::MAX_OFFERED_VERSIONS || !validate::is_client_name(&client)
        {
            return Err(Protocol(
                ErrorCode::BadRequest,
                "hello: too many versions or an invalid client name",
            ));
        }
        if !versions.contains(&PROTOCOL_VERSION) {
            return Err(Protocol(
                ErrorCode::UnsupportedVersion,
                "no protocol version in common: this server speaks version 1",
            ));
        }
        self.phase = Phase::Anonymous { client };
        Ok(Reply::Hello {
            version: PROTOCOL_VERSION,
            server: format!("conclave/{}", env!("CARGO_PKG_VERSION")),
            max_frame_bytes: self.shared.config.max_frame_bytes as u64,
            registration: self.shared.config.registration,
        })
    }

    fn authenticated(&self, client: String, grant: Grant) -> Authenticated {
        let (registration, ended) = self.shared.live.register(grant.session_id.clone());
        let remaining = u64::try_from(grant.expires_at.saturating_sub(crate::clock::now_secs())).unwrap_or(0);
        Authenticated {
            client,
            deadline: Instant::now() + Duration::from_secs(remaining),
            last_touch: Instant::now(),
            grant,
            ended,
            _registration: registration,
            device: None,
        }
    }
}

/// The answer to a frame over the connection's rate limit.
fn rate_limited() -> RequestError {
    RequestError::Protocol(ErrorCode::RateLimited, "too many requests on this connection: slow down")
}

/// Binds the connection to a device (`device`) and registers it with the
/// fan-out. A connection speaks for one device: binding it again to the same
/// device just answers again; to another one is refused.
async fn bind_device(
    ctx: &Ctx<'_>,
    grant: &handler::Grant,
    bound: &mut Option<Bound>,
    wire: &Arc<Wire>,
    device_id: Option<DeviceId>,
    signature_key: &[u8],
) -> Result<Reply, RequestError> {
    if let Some(current) = bound
        && device_id != Some(current.id)
    {
        return Err(RequestError::Invalid("this connection is already bound to a device"));
    }
    let user = &grant.user;
    let (reply, id) = handler::device::bind(ctx, grant, device_id, signature_key).await?;
    match bound {
        Some(_) => Ok(reply),
        None => {
            let registration = handler::device::attach(ctx, user, id, wire).await?;
            *bound = Some(Bound { id, _fanout: registration });
            tracing::debug!(user = %user.username, device = %id, "device bound");
            Ok(reply)
        }
    }
}
