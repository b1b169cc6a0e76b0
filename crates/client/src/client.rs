//! [`Client`]: a greeted connection that sends requests and waits for their
//! answers.
//!
//! This is the simple request/response client the CLI needs: one request in
//! flight at a time, events that arrive meanwhile kept in a bounded queue. (The
//! background engine with reconnects, which front ends that stay connected will
//! use, is built on the same [`Connection`].)

use crate::{
    address::ServerAddress,
    connection::Connection,
    device_cookie::DeviceCookie,
    error::{ClientError, Result},
    home::{Home, SavedSession, SessionToken},
    totp::TotpSecret,
    trust::Trust,
};
use conclave_proto::{
    ClientFrame, DeviceId, DeviceInfo, ErrorBody, Event, Outcome, PROTOCOL_VERSION, RegistrationMode, Reply,
    Request, Response, SecondFactor, ServerFrame, SessionId, SessionInfo, UserInfo, event::SessionEndReason,
    validate,
};
use std::{collections::VecDeque, time::Duration};
use tokio::time::timeout;

/// Longest wait for the answer to one request. Generous, because logins run a
/// deliberately slow password hash on the server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Most events kept while nobody takes them; the oldest is dropped beyond this
/// (with a warning), so a chatty server cannot grow the client's memory.
pub const MAX_PENDING_EVENTS: usize = 256;

/// A connected client that has completed `hello`.
#[derive(Debug)]
pub struct Client {
    /// The socket.
    conn: Connection,
    /// The id of the next request; ids only grow, so a late answer to an
    /// abandoned request is recognisable (its id is smaller).
    next_id: u64,
    /// Events received while waiting for responses, oldest first.
    events: VecDeque<Event>,
    /// Set once the server said this connection's session ended: every later
    /// request fails with [`ClientError::SessionEnded`] instead of a socket error.
    ended: Option<SessionEndReason>,
    /// Set once the server announced it is shutting down.
    shutting_down: bool,
    /// The server software named in the `hello` reply.
    server_software: String,
    /// Who may register there, from the `hello` reply.
    registration: RegistrationMode,
}

/// A session that `register` or `login` just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The account.
    pub user: UserInfo,
    /// The session's public id.
    pub session_id: SessionId,
    /// The secret token that authenticates later connections.
    pub token: SessionToken,
}

/// What `register` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The new account's first session (registration logs in).
    pub session: NewSession,
    /// One-time recovery codes; the server never shows them again.
    pub recovery_codes: Vec<String>,
    /// This home's first device cookie for the account (none from older
    /// servers): keep it for the next `login`.
    pub device_cookie: Option<DeviceCookie>,
}

/// What `login` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The new session.
    pub session: NewSession,
    /// Unused recovery codes left (tell the user after a recovery-code login).
    pub recovery_codes_left: u32,
    /// The device cookie that replaces the one sent (none from older
    /// servers): keep it for the next `login`.
    pub device_cookie: Option<DeviceCookie>,
}

/// Who a connection is authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The account.
    pub user: UserInfo,
    /// The session the connection uses.
    pub session_id: SessionId,
}

impl NewSession {
    /// The form kept in `session.json` for later commands.
    #[must_use]
    pub fn to_saved(&self, server: &ServerAddress) -> SavedSession {
        SavedSession {
            server: server.to_string(),
            username: self.user.username.clone(),
            user_id: self.user.id,
            session_id: self.session_id.clone(),
            token: self.token.clone(),
        }
    }
}

impl Client {
    /// Connects to `server` (`HOST:PORT`), authenticates it by `trust`, and
    /// negotiates the protocol version with `hello`. `client_name` (for example
    /// `conclave-cli/0.1.0`) appears in the user's session list.
    ///
    /// # Errors
    /// [`ClientError::Address`] for a malformed address, anything
    /// [`Connection::connect`] returns, [`ClientError::Server`] if the server
    /// refuses `hello` (for example `unsupported_version`), and
    /// [`ClientError::Protocol`] if it picks a version that was not offered.
    pub async fn connect(server: &str, trust: Trust, client_name: &str) -> Result<Self> {
        let server: ServerAddress = server.parse()?;
        Self::connect_to(&server, &trust, client_name).await
    }

    /// [`Client::connect`] with an address that is already parsed.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn connect_to(server: &ServerAddress, trust: &Trust, client_name: &str) -> Result<Self> {
        let conn = Connection::connect(server, trust).await?;
        let mut client = Self {
            conn,
            next_id: 1,
            events: VecDeque::new(),
            ended: None,
            shutting_down: false,
            server_software: String::new(),
            registration: RegistrationMode::Open,
        };
        let hello = Request::Hello { versions: vec![PROTOCOL_VERSION], client: client_name.to_owned() };
        match client.request(hello).await? {
            Reply::Hello { version, server, max_frame_bytes, registration }
                if version == PROTOCOL_VERSION =>
            {
                tracing::debug!(version, server = %server, max_frame_bytes, %registration, "greeted");
                client.server_software = server;
                client.registration = registration;
                client.conn.set_frame_limit(usize::try_from(max_frame_bytes).unwrap_or(usize::MAX));
                Ok(client)
            }
            Reply::Hello { version, .. } => Err(ClientError::Protocol(format!(
                "the server chose protocol version {version}, which this client did not offer"
            ))),
            other => Err(unexpected("hello", &other)),
        }
    }

    /// The server this client is connected to.
    #[must_use]
    pub fn server(&self) -> &ServerAddress {
        self.conn.server()
    }

    /// The SHA-256 fingerprint of the server's public key, as this connection
    /// saw it; see [`KnownHosts::upgrade`](crate::KnownHosts::upgrade).
    #[must_use]
    pub fn server_key(&self) -> Option<crate::Fingerprint> {
        self.conn.server_key()
    }

    /// Server software and version from the `hello` reply (untrusted text).
    #[must_use]
    pub fn server_software(&self) -> &str {
        &self.server_software
    }

    /// Who may register on the server, as its `hello` reply said: a front end
    /// asks for a registration token (or says registration is closed) before
    /// the user fills in anything.
    #[must_use]
    pub fn registration_mode(&self) -> RegistrationMode {
        self.registration
    }

    /// Sends `request` and waits for its response, keeping events that arrive in
    /// between (see [`Client::take_events`]).
    ///
    /// # Errors
    /// [`ClientError::Server`] for an error reply; [`ClientError::SessionEnded`]
    /// once the server has ended this connection's session;
    /// [`ClientError::ServerShutdown`] when the server closed for shutdown;
    /// [`ClientError::Timeout`] after [`REQUEST_TIMEOUT`]; socket errors as
    /// [`Connection::next_frame`].
    ///
    /// Cancel-safety: if the future is dropped the request may or may not have
    /// been carried out; its late response is recognised and discarded by the next
    /// request. Dropping it while the frame is being written leaves the connection
    /// unusable.
    pub async fn request(&mut self, request: Request) -> Result<Reply> {
        if let Some(reason) = self.ended {
            return Err(ClientError::SessionEnded { reason });
        }
        let id = self.next_id;
        self.next_id += 1;
        tracing::debug!(id, request = request.name(), "sending request");
        self.conn.send(&ClientFrame { id, request }).await.map_err(|err| self.explain(err))?;
        timeout(REQUEST_TIMEOUT, self.response_to(id))
            .await
            .map_err(|_| ClientError::Timeout { waiting_for: "the server's answer" })?
    }

    /// Reads frames until the response with `id`.
    async fn response_to(&mut self, id: u64) -> Result<Reply> {
        loop {
            let frame = self.conn.next_frame().await.map_err(|err| self.explain(err))?;
            match frame {
                // Id 0 answers a frame the server could not parse; with one request
                // in flight it can only be ours.
                ServerFrame::Response(Response { id: got, outcome }) if got == id || got == 0 => {
                    return match outcome {
                        Outcome::Ok(reply) => Ok(reply),
                        Outcome::Error(ErrorBody { code, message }) => {
                            Err(ClientError::Server { code, message })
                        }
                    };
                }
                ServerFrame::Response(Response { id: got, .. }) if got < id => {
                    tracing::debug!(id = got, "discarding the late response to an abandoned request");
                }
                ServerFrame::Response(Response { id: got, .. }) => {
                    return Err(ClientError::Protocol(format!(
                        "the server answered request {got}, which was never sent"
                    )));
                }
                ServerFrame::Event { event } => self.keep_event(event),
            }
        }
    }

    /// A failed read or write right after the server ended the session or
    /// announced shutdown is explained by that, not by the socket error.
    fn explain(&self, err: ClientError) -> ClientError {
        match (self.ended, &err) {
            (Some(reason), _) => ClientError::SessionEnded { reason },
            (None, ClientError::Closed { .. }) if self.shutting_down => ClientError::ServerShutdown,
            _ => err,
        }
    }

    fn keep_event(&mut self, event: Event) {
        match event {
            Event::SessionEnded { reason } => self.ended = Some(reason),
            Event::ServerShutdown => self.shutting_down = true,
            // From a newer server: nothing this client can act on.
            Event::Unknown => return,
            _ => {}
        }
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.pop_front();
            tracing::warn!(
                limit = MAX_PENDING_EVENTS,
                "too many unhandled server events; dropped the oldest"
            );
        }
        self.events.push_back(event);
    }

    /// The next server event: one kept while waiting for a response, else the next
    /// one to arrive. Waits as long as it takes.
    ///
    /// Cancel-safe: a frame is either fully read and returned or not read at all.
    ///
    /// # Errors
    /// Socket errors; [`ClientError::SessionEnded`] / [`ClientError::ServerShutdown`]
    /// when the server closed for those reasons; a response nobody waits for is a
    /// protocol error.
    pub async fn next_event(&mut self) -> Result<Event> {
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        loop {
            let frame = self.conn.next_frame().await.map_err(|err| self.explain(err))?;
            match frame {
                ServerFrame::Event { event } => {
                    match event {
                        Event::SessionEnded { reason } => self.ended = Some(reason),
                        Event::ServerShutdown => self.shutting_down = true,
                        _ => {}
                    }
                    return Ok(event);
                }
                ServerFrame::Response(Response { id, .. }) if id < self.next_id => {
                    tracing::debug!(id, "discarding the late response to an abandoned request");
                }
                ServerFrame::Response(Response { id, .. }) => {
                    return Err(ClientError::Protocol(format!(
                        "the server answered request {id}, which was never sent"
                    )));
                }
            }
        }
    }

    /// Takes the events received so far, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// `register`: creates an account with `totp_secret` enrolled, proven by
    /// `totp_code`, with the operator's `registration_token` when the server
    /// asks for one. The connection is then logged in as the new account.
    ///
    /// # Errors
    /// [`ClientError::Server`] with `registration_closed`,
    /// `invalid_registration_token`, `invalid_username`, `weak_password`,
    /// `username_taken`, `invalid_totp` or `rate_limited`; others as
    /// [`Client::request`].
    pub async fn register(
        &mut self,
        username: &str,
        password: &str,
        totp_secret: &TotpSecret,
        totp_code: &str,
        registration_token: Option<&str>,
    ) -> Result<Registered> {
        let request = Request::Register {
            username: username.to_owned(),
            password: password.to_owned(),
            totp_secret: totp_secret.to_base32(),
            totp_code: totp_code.to_owned(),
            registration_token: registration_token.map(str::to_owned),
        };
        match self.request(request).await? {
            Reply::Registered { user, recovery_codes, session_id, token, device_cookie } => Ok(Registered {
                session: NewSession { user, session_id, token: SessionToken::new(token) },
                recovery_codes,
                device_cookie: device_cookie.map(DeviceCookie::new),
            }),
            other => Err(unexpected("register", &other)),
        }
    }

    /// `login`: password plus TOTP or recovery code, with this home's
    /// `device_cookie` for the account if it has one. The connection is then
    /// authenticated with a new session. Most callers want
    /// [`Client::login_from`], which takes the cookie from the home and keeps
    /// the new one.
    ///
    /// # Errors
    /// [`ClientError::Server`] with `auth_failed` (one code for every kind of
    /// wrong credential) or `rate_limited`; others as [`Client::request`].
    pub async fn login(
        &mut self,
        username: &str,
        password: &str,
        second_factor: SecondFactor,
        device_cookie: Option<&DeviceCookie>,
    ) -> Result<LoggedIn> {
        let request = Request::Login {
            username: username.to_owned(),
            password: password.to_owned(),
            second_factor,
            device_cookie: device_cookie.map(|c| c.expose().to_owned()),
        };
        match self.request(request).await? {
            Reply::LoggedIn { user, session_id, token, recovery_codes_left, device_cookie } => Ok(LoggedIn {
                session: NewSession { user, session_id, token: SessionToken::new(token) },
                recovery_codes_left,
                device_cookie: device_cookie.map(DeviceCookie::new),
            }),
            other => Err(unexpected("login", &other)),
        }
    }

    /// [`Client::login`] as the device `home` is: sends the device cookie the
    /// home holds for this server and user, and keeps the one the server
    /// returns. A cookie file that cannot be read or written is logged and
    /// otherwise ignored: without a cookie the login is only judged as one
    /// from an unknown device.
    ///
    /// # Errors
    /// As [`Client::login`].
    pub async fn login_from(
        &mut self,
        home: &Home,
        username: &str,
        password: &str,
        second_factor: SecondFactor,
    ) -> Result<LoggedIn> {
        let cookies = home.device_cookies();
        let server = self.server().clone();
        let name = validate::normalize_username(username).unwrap_or_else(|_| username.to_owned());
        let cookie = cookies.get(&server, &name).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "cannot read the device cookies; logging in as an unknown device");
            None
        });
        let logged_in = self.login(username, password, second_factor, cookie.as_ref()).await?;
        remember_device(home, &server, &logged_in.session.user.username, logged_in.device_cookie.clone());
        Ok(logged_in)
    }

    /// `authenticate`: resumes a saved session on this connection.
    ///
    /// # Errors
    /// [`ClientError::Server`] with `session_invalid` when the token was logged
    /// out, revoked or has expired; others as [`Client::request`].
    pub async fn authenticate(&mut self, token: &SessionToken) -> Result<Identity> {
        match self.request(Request::Authenticate { token: token.expose().to_owned() }).await? {
            Reply::Authenticated { user, session_id } => Ok(Identity { user, session_id }),
            other => Err(unexpected("authenticate", &other)),
        }
    }

    /// `whoami`: the account and session of this connection.
    ///
    /// # Errors
    /// [`ClientError::Server`] with `not_authenticated`; others as
    /// [`Client::request`].
    pub async fn whoami(&mut self) -> Result<Identity> {
        match self.request(Request::Whoami {}).await? {
            Reply::Authenticated { user, session_id } => Ok(Identity { user, session_id }),
            other => Err(unexpected("whoami", &other)),
        }
    }

    /// `list_sessions`: the user's live sessions, newest first.
    ///
    /// # Errors
    /// As [`Client::whoami`].
    pub async fn sessions(&mut self) -> Result<Vec<SessionInfo>> {
        match self.request(Request::ListSessions {}).await? {
            Reply::Sessions { sessions } => Ok(sessions),
            other => Err(unexpected("list_sessions", &other)),
        }
    }

    /// `list_devices`: the user's devices that are not retired, oldest first.
    ///
    /// # Errors
    /// As [`Client::whoami`].
    pub async fn devices(&mut self) -> Result<Vec<DeviceInfo>> {
        match self.request(Request::ListDevices {}).await? {
            Reply::Devices { devices } => Ok(devices),
            other => Err(unexpected("list_devices", &other)),
        }
    }

    /// `remove_device`: retires another of the user's devices (its session
    /// ends; the members of its rooms remove it from their groups).
    ///
    /// # Errors
    /// [`ClientError::Server`] with `not_found` for an id that is not one of
    /// the user's active devices, `bad_request` for this connection's device.
    pub async fn remove_device(&mut self, device: DeviceId) -> Result<()> {
        match self.request(Request::RemoveDevice { device }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected("remove_device", &other)),
        }
    }

    /// `revoke_session`: ends one of the user's sessions. Revoking the session of
    /// this connection succeeds, and later requests then fail with
    /// [`ClientError::SessionEnded`].
    ///
    /// # Errors
    /// [`ClientError::Server`] with `not_found` for an unknown id; others as
    /// [`Client::whoami`].
    pub async fn revoke(&mut self, session_id: &SessionId) -> Result<()> {
        match self.request(Request::RevokeSession { session_id: session_id.clone() }).await {
            // The server may end our session before its answer reaches us.
            Ok(Reply::Done) | Err(ClientError::SessionEnded { reason: SessionEndReason::Revoked }) => Ok(()),
            Ok(other) => Err(unexpected("revoke_session", &other)),
            Err(err) => Err(err),
        }
    }

    /// `logout`: ends this connection's session everywhere.
    ///
    /// # Errors
    /// As [`Client::whoami`].
    pub async fn logout(&mut self) -> Result<()> {
        match self.request(Request::Logout {}).await {
            // The server may close before the answer arrives: that is success too.
            Ok(Reply::Done) | Err(ClientError::SessionEnded { reason: SessionEndReason::LoggedOut }) => {
                Ok(())
            }
            Ok(other) => Err(unexpected("logout", &other)),
            Err(err) => Err(err),
        }
    }

    /// `ping`: checks that the server answers.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn ping(&mut self) -> Result<()> {
        match self.request(Request::Ping {}).await? {
            Reply::Pong => Ok(()),
            other => Err(unexpected("ping", &other)),
        }
    }

    /// Closes the connection cleanly.
    ///
    /// # Errors
    /// As [`Connection::close`].
    pub async fn close(self) -> Result<()> {
        self.conn.close().await
    }
}

/// Keeps a device cookie the server just issued to `home` for `username`
/// (logged, not fatal, when that fails: the next login is then judged as one
/// from an unknown device).
pub fn remember_device(home: &Home, server: &ServerAddress, username: &str, cookie: Option<DeviceCookie>) {
    let Some(cookie) = cookie else { return };
    if let Err(err) = home.device_cookies().put(server, username, cookie) {
        tracing::warn!(error = %err, "cannot keep the device cookie");
    }
}

/// A reply of the wrong kind. Only the kind is named: replies can carry tokens,
/// so they are never formatted whole.
pub(crate) fn unexpected(request: &str, reply: &Reply) -> ClientError {
    let kind = match reply {
        Reply::Hello { .. } => "hello",
        Reply::Registered { .. } => "registered",
        Reply::LoggedIn { .. } => "logged_in",
        Reply::Authenticated { .. } => "authenticated",
        Reply::Sessions { .. } => "sessions",
        Reply::Pong => "pong",
        Reply::Done => "done",
        _ => "messaging",
    };
    ClientError::Protocol(format!("unexpected `{kind}` reply to `{request}`"))
}
