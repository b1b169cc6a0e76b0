//! The network side of `conclave chat`: one task that owns the [`Messenger`].
//!
//! Commands come in on a bounded channel ([`Command`]); everything the engine
//! learns goes out as an [`EngineEvent`] on the application's one event channel,
//! so the renderer never shares a lock with the network. Every command is
//! answered by an event (success or failure), never by a blocking reply.
//!
//! The engine is a small state machine:
//!
//! ```text
//!   LoggedOut ──login/register──▶ Online ◀──────────────┐
//!       ▲                           │ connection lost   │ back-off elapsed,
//!       │ session gone              ▼                   │ reconnected
//!       └──────────────────── Reconnecting ─────────────┘
//! ```
//!
//! While online it waits on commands and server events at once. Reconnecting, it
//! answers commands with a failure (a message being sent comes back to the
//! composer, see [`EngineEvent::SendFailed`]) and reports when the next attempt
//! is due, so the status bar can count down.

use crate::{app::AppEvent, event::stopped};
use conclave_client::{
    Client, ClientError, Fingerprint, Home, Messenger, SavedSession, ServerAddress, TotpSecret, Trust,
    Update, client::remember_device, reconnect::Backoff, store::StoredMessage,
};
use conclave_proto::{
    DeviceId, DeviceInfo, MemberInfo, MessageId, RegistrationMode, RoomInfo, SecondFactor, Seq, UserPresence,
};
use std::{collections::HashMap, fmt, path::PathBuf, time::Duration};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

/// The name the server records for sessions made by the terminal UI.
pub const CLIENT_NAME: &str = concat!("conclave-tui/", env!("CARGO_PKG_VERSION"));

/// A secret typed by the user (password, code): never shown in `Debug` output,
/// so a logged command cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a registration carries besides the username and password.
struct Enrolled {
    /// The TOTP secret, base32.
    secret: Secret,
    /// A current code for it.
    code: Secret,
    /// The operator's registration token, if the server asks for one.
    token: Option<Secret>,
}

/// What the application asks of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Settles how to authenticate `server` (its pin, the CA file, or first
    /// contact); answered by [`EngineEvent::ServerTrusted`] or
    /// [`EngineEvent::UnknownServer`]. Nothing secret is sent.
    CheckServer {
        /// The server.
        server: ServerAddress,
    },
    /// The user compared and accepted this fingerprint: pin it.
    TrustServer {
        /// The server.
        server: ServerAddress,
        /// Its certificate's fingerprint, as shown to the user.
        fingerprint: Fingerprint,
    },
    /// Logs in and keeps the session in the client home.
    Login {
        /// The server.
        server: ServerAddress,
        /// Username.
        user: String,
        /// Password.
        password: Secret,
        /// TOTP or recovery code.
        code: Secret,
    },
    /// Asks who may register on `server` (trust settled); answered by
    /// [`EngineEvent::Registration`].
    CheckRegistration {
        /// The server.
        server: ServerAddress,
    },
    /// Creates an account with `secret` enrolled, proven by `code`.
    Register {
        /// The server.
        server: ServerAddress,
        /// Username.
        user: String,
        /// Password.
        password: Secret,
        /// The TOTP secret, base32.
        secret: Secret,
        /// A current code for it.
        code: Secret,
        /// The operator's registration token, when the server asks for one.
        token: Option<Secret>,
    },
    /// Sends a text message.
    Send {
        /// Room name.
        room: String,
        /// The text.
        text: String,
    },
    /// Tells the room's online members the user is typing.
    Typing {
        /// Room name.
        room: String,
    },
    /// Catches the room up and loads its newest messages.
    History {
        /// Room name.
        room: String,
        /// How many.
        limit: u32,
    },
    /// Loads a page of older messages from the local history.
    Older {
        /// Room name.
        room: String,
        /// Strictly before this sequence number.
        before: Seq,
        /// How many.
        limit: u32,
    },
    /// Joins a public room by name.
    Join {
        /// Room name.
        room: String,
    },
    /// Creates a room.
    Create {
        /// Its name.
        name: String,
        /// Whether anyone may join.
        public: bool,
    },
    /// Adds users to a room.
    Invite {
        /// Room name.
        room: String,
        /// The users.
        users: Vec<String>,
    },
    /// Removes a user from a room.
    Remove {
        /// Room name.
        room: String,
        /// The user.
        user: String,
    },
    /// Leaves a room.
    Leave {
        /// Room name.
        room: String,
    },
    /// Opens (creating on first use) the direct conversation with a user.
    Direct {
        /// The user.
        user: String,
    },
    /// Deletes a message for everyone.
    Delete {
        /// Room name.
        room: String,
        /// The message.
        id: MessageId,
    },
    /// Lists a room's members.
    Members {
        /// Room name.
        room: String,
    },
    /// Lists the user's devices.
    Devices,
    /// Removes one of the user's other devices, then lists them.
    RemoveDevice(DeviceId),
}

/// The connection as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Not logged in: the login screen is up.
    LoggedOut,
    /// A connection attempt is under way.
    Connecting,
    /// Connected and caught up.
    Connected,
    /// The connection was lost; the next attempt is at `at`.
    Reconnecting {
        /// When the next attempt starts.
        at: Instant,
        /// Why the last attempt failed (untrusted text).
        reason: String,
    },
}

/// What the engine tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// The connection changed.
    Connection(ConnState),
    /// First contact with a server: the user must compare and accept this
    /// fingerprint before anything is sent.
    UnknownServer {
        /// The server.
        server: ServerAddress,
        /// Its certificate's fingerprint.
        fingerprint: Fingerprint,
    },
    /// The server's identity is settled (pinned, CA-verified, or just accepted).
    ServerTrusted {
        /// The server.
        server: ServerAddress,
    },
    /// Who may register on the server, from its `hello`.
    Registration {
        /// The server.
        server: ServerAddress,
        /// Its registration mode.
        mode: RegistrationMode,
    },
    /// Login or registration failed; the form stays up.
    AuthFailed {
        /// Why, for people (untrusted text).
        message: String,
    },
    /// A session is established (login, registration or the saved session).
    LoggedIn {
        /// The user.
        user: String,
        /// The server.
        server: ServerAddress,
    },
    /// The account was created; these codes are shown only once.
    Registered {
        /// One-time recovery codes.
        recovery_codes: Vec<String>,
    },
    /// The session was logged out, revoked or expired: log in again.
    SessionEnded {
        /// Why, for people.
        message: String,
    },
    /// The user's conversations and all users, after every (re)connection.
    Snapshot {
        /// Rooms the user is a member of.
        rooms: Vec<RoomInfo>,
        /// Every user and whether they are online.
        users: Vec<UserPresence>,
    },
    /// Live changes.
    Updates(Vec<Update>),
    /// A room's newest messages.
    History {
        /// Room name.
        room: String,
        /// Oldest first.
        messages: Vec<StoredMessage>,
    },
    /// A page of older messages.
    Older {
        /// Room name.
        room: String,
        /// Oldest first; fewer than asked when the start of the local history
        /// was reached.
        messages: Vec<StoredMessage>,
        /// Whether nothing older is left.
        complete: bool,
    },
    /// A message was stored by the server.
    Sent {
        /// The message.
        message: StoredMessage,
    },
    /// A message could not be sent; its text goes back to the composer.
    SendFailed {
        /// Room name.
        room: String,
        /// The text.
        text: String,
        /// Why (untrusted text).
        error: String,
    },
    /// A room was joined, created or opened: show it.
    Opened {
        /// The room.
        room: RoomInfo,
    },
    /// The user left a room.
    Left {
        /// Room name.
        room: String,
    },
    /// A room's members.
    Members {
        /// Room name.
        room: String,
        /// The members.
        members: Vec<MemberInfo>,
    },
    /// The user's devices.
    Devices(Vec<DeviceInfo>),
    /// A command succeeded; a line for the status bar.
    Notice(String),
    /// A command failed; a line for the status bar (untrusted text).
    Failed(String),
}

/// How the engine authenticates servers, from the command line.
#[derive(Debug, Clone, Default)]
pub struct TrustOptions {
    /// `--ca-file`: verify against these CAs instead of pinning.
    pub ca_file: Option<PathBuf>,
    /// `--accept-fingerprint`: trust this fingerprint on first contact.
    pub accept_fingerprint: Option<Fingerprint>,
}

/// Messages loaded when a room is opened.
pub const HISTORY_PAGE: u32 = 200;

/// The engine task's state.
pub struct Engine {
    home: Home,
    trust: TrustOptions,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<AppEvent>,
    shutdown: watch::Receiver<bool>,
}

/// Why the online loop ended.
enum Exit {
    /// Stop everything.
    Shutdown,
    /// The session is no longer valid.
    LoggedOut(String),
}

/// Whether an error means the connection is gone (reconnect), as opposed to a
/// refusal of one request (report it, stay connected).
fn connection_lost(err: &ClientError) -> bool {
    matches!(
        err,
        ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Tls(_)
            | ClientError::WebSocket(_)
            | ClientError::Closed { .. }
            | ClientError::ServerShutdown
            | ClientError::SessionEnded { .. }
    )
}

/// An error as one line for people; the client library's texts can quote the
/// server, so they are sanitized by the renderer like everything else.
fn describe(err: &ClientError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Engine {
    /// An engine for `home`; run it with [`Engine::run`].
    #[must_use]
    pub fn new(
        home: Home,
        trust: TrustOptions,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<AppEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self { home, trust, commands, events, shutdown }
    }

    /// Runs until shutdown: the saved session if there is one, else waiting for a
    /// login or registration.
    pub async fn run(mut self) {
        let mut online: Option<(SavedSession, Option<Messenger>)> = match self.home.load_session() {
            Ok(Some(saved)) => Some((saved, None)),
            Ok(None) => None,
            Err(err) => {
                self.emit(EngineEvent::Failed(describe(&err))).await;
                None
            }
        };
        loop {
            match online.take() {
                None => {
                    self.emit(EngineEvent::Connection(ConnState::LoggedOut)).await;
                    match self.logged_out().await {
                        Some(session) => online = Some(session),
                        None => return,
                    }
                }
                Some((saved, messenger)) => match self.online(&saved, messenger).await {
                    Exit::Shutdown => return,
                    Exit::LoggedOut(message) => {
                        self.home.remove_session().ok();
                        self.emit(EngineEvent::SessionEnded { message }).await;
                    }
                },
            }
        }
    }

    async fn emit(&self, event: EngineEvent) {
        // The application is gone only at shutdown: nothing left to tell.
        self.events.send(AppEvent::Engine(event)).await.ok();
    }

    /// The next command, or `None` at shutdown.
    async fn next_command(&mut self) -> Option<Command> {
        tokio::select! {
            biased;
            () = stopped(&mut self.shutdown) => None,
            command = self.commands.recv() => command,
        }
    }

    /// Serves the login screen until a session exists; `None` at shutdown.
    async fn logged_out(&mut self) -> Option<(SavedSession, Option<Messenger>)> {
        loop {
            let command = self.next_command().await?;
            match command {
                Command::CheckServer { server } => {
                    self.check_server(&server).await;
                }
                Command::TrustServer { server, fingerprint } => self.trust_server(&server, fingerprint).await,
                Command::Login { server, user, password, code } => {
                    match self.login(&server, &user, &password, &code).await {
                        Ok(session) => return Some(session),
                        Err(message) => self.emit(EngineEvent::AuthFailed { message }).await,
                    }
                }
                Command::CheckRegistration { server } => match self.connect(&server).await {
                    Ok(client) => {
                        let mode = client.registration_mode();
                        client.close().await.ok();
                        self.emit(EngineEvent::Registration { server, mode }).await;
                    }
                    Err(message) => self.emit(EngineEvent::AuthFailed { message }).await,
                },
                Command::Register { server, user, password, secret, code, token } => {
                    let enrolled = Enrolled { secret, code, token };
                    match self.register(&server, &user, &password, &enrolled).await {
                        Ok(session) => return Some(session),
                        Err(message) => self.emit(EngineEvent::AuthFailed { message }).await,
                    }
                }
                other => self.refuse(other, "not logged in").await,
            }
        }
    }

    /// Answers a command that cannot run now.
    async fn refuse(&self, command: Command, why: &str) {
        let event = match command {
            Command::Send { room, text } => EngineEvent::SendFailed { room, text, error: why.to_owned() },
            // Nobody needs to hear that a typing signal was dropped.
            Command::Typing { .. } => return,
            _ => EngineEvent::Failed(format!("{why}: try again when connected")),
        };
        self.emit(event).await;
    }

    /// How to authenticate `server`, if that is settled without asking.
    fn known_trust(&self, server: &ServerAddress) -> Result<Option<Trust>, ClientError> {
        if let Some(pin) = self.home.known_hosts().lookup(server)? {
            return Ok(Some(Trust::Pinned(pin)));
        }
        if let Some(ca_file) = &self.trust.ca_file {
            return Ok(Some(Trust::CaFile(ca_file.clone())));
        }
        Ok(None)
    }

    /// After a verified connection, moves a certificate pin of an earlier
    /// version to the key it certified (failing that only costs the move).
    fn upgrade_pin(&self, server: &ServerAddress, trust: &Trust, client: &Client) {
        if let Trust::Pinned(pin) = trust
            && let Err(err) = self.home.known_hosts().upgrade(server, *pin, client.server_key())
        {
            tracing::warn!(%server, error = %err, "could not update known_hosts");
        }
    }

    /// [`Command::CheckServer`]: reports the outcome as an event, and returns it.
    async fn check_server(&self, server: &ServerAddress) -> Check {
        let check = self.settle(server).await;
        let event = match &check {
            Check::Trusted => EngineEvent::ServerTrusted { server: server.clone() },
            Check::Asked(fingerprint) => {
                EngineEvent::UnknownServer { server: server.clone(), fingerprint: *fingerprint }
            }
            Check::Failed(message) => EngineEvent::AuthFailed { message: message.clone() },
        };
        self.emit(event).await;
        check
    }

    /// Settles trust without asking when it can: a pin, the CA file, or the
    /// fingerprint given on the command line (pinned once seen).
    async fn settle(&self, server: &ServerAddress) -> Check {
        match self.known_trust(server) {
            Ok(Some(_)) => return Check::Trusted,
            Ok(None) => {}
            Err(err) => return Check::Failed(describe(&err)),
        }
        // First contact: learn the fingerprint without sending anything.
        let fingerprint = match Client::connect_to(server, &Trust::FirstUse, CLIENT_NAME).await {
            Err(ClientError::UnknownServer { fingerprint }) => fingerprint,
            Err(err) => return Check::Failed(describe(&err)),
            Ok(_) => return Check::Failed("internal error: an unverified server was accepted".to_owned()),
        };
        match self.trust.accept_fingerprint {
            Some(given) if given == fingerprint => {
                match self.home.known_hosts().remember(server, fingerprint) {
                    Ok(()) => Check::Trusted,
                    Err(err) => Check::Failed(describe(&err)),
                }
            }
            Some(given) => Check::Failed(format!(
                "the public key of {server} has SHA-256 fingerprint {fingerprint}, not {given} as given \
                 with --accept-fingerprint; refusing to connect"
            )),
            None => Check::Asked(fingerprint),
        }
    }

    async fn trust_server(&self, server: &ServerAddress, fingerprint: Fingerprint) {
        match self.home.known_hosts().remember(server, fingerprint) {
            Ok(()) => self.emit(EngineEvent::ServerTrusted { server: server.clone() }).await,
            Err(err) => self.emit(EngineEvent::AuthFailed { message: describe(&err) }).await,
        }
    }

    /// A connection to a server whose trust is settled.
    async fn connect(&self, server: &ServerAddress) -> Result<Client, String> {
        let trust = match self.known_trust(server) {
            Ok(Some(trust)) => trust,
            Ok(None) => return Err(format!("the certificate of {server} is not trusted yet")),
            Err(err) => return Err(describe(&err)),
        };
        let client = Client::connect_to(server, &trust, CLIENT_NAME).await.map_err(|err| describe(&err))?;
        self.upgrade_pin(server, &trust, &client);
        Ok(client)
    }

    async fn login(
        &self,
        server: &ServerAddress,
        user: &str,
        password: &Secret,
        code: &Secret,
    ) -> Result<(SavedSession, Option<Messenger>), String> {
        let mut client = self.connect(server).await?;
        let compact: String = code.0.chars().filter(|c| !c.is_whitespace()).collect();
        let second_factor = if conclave_proto::validate::is_totp_code(&compact) {
            SecondFactor::Totp(compact)
        } else {
            SecondFactor::Recovery(code.0.trim().to_owned())
        };
        let logged_in = client
            .login_from(&self.home, user, &password.0, second_factor)
            .await
            .map_err(|err| describe(&err))?;
        self.start(client, server, &logged_in.session).await
    }

    async fn register(
        &self,
        server: &ServerAddress,
        user: &str,
        password: &Secret,
        enrolled: &Enrolled,
    ) -> Result<(SavedSession, Option<Messenger>), String> {
        let secret = TotpSecret::from_base32(&enrolled.secret.0).map_err(|err| describe(&err))?;
        let mut client = self.connect(server).await?;
        let token = enrolled.token.as_ref().map(|t| t.0.as_str());
        let registered = client
            .register(user, &password.0, &secret, enrolled.code.0.trim(), token)
            .await
            .map_err(|err| describe(&err))?;
        remember_device(
            &self.home,
            server,
            &registered.session.user.username,
            registered.device_cookie.clone(),
        );
        self.emit(EngineEvent::Registered { recovery_codes: registered.recovery_codes.clone() }).await;
        self.start(client, server, &registered.session).await
    }

    /// Saves a new session and binds this home's device.
    async fn start(
        &self,
        client: Client,
        server: &ServerAddress,
        session: &conclave_client::NewSession,
    ) -> Result<(SavedSession, Option<Messenger>), String> {
        let saved = session.to_saved(server);
        self.home.save_session(&saved).map_err(|err| describe(&err))?;
        let messenger = Messenger::start(client, &self.home, &session.user.username)
            .await
            .map_err(|err| describe(&err))?;
        self.emit(EngineEvent::LoggedIn { user: session.user.username.clone(), server: server.clone() })
            .await;
        Ok((saved, Some(messenger)))
    }

    /// Stays connected for `saved`, reconnecting with back-off.
    async fn online(&mut self, saved: &SavedSession, mut first: Option<Messenger>) -> Exit {
        let server: ServerAddress = match saved.server.parse() {
            Ok(server) => server,
            Err(_) => return Exit::LoggedOut("the saved session names an invalid server".to_owned()),
        };
        if first.is_none() {
            self.emit(EngineEvent::LoggedIn { user: saved.username.clone(), server: server.clone() }).await;
        }
        let mut backoff = Backoff::default();
        loop {
            self.emit(EngineEvent::Connection(ConnState::Connecting)).await;
            let attempt = match first.take() {
                Some(messenger) => Ok(messenger),
                None => self.resume(saved, &server).await,
            };
            let reason = match attempt {
                Ok(messenger) => {
                    backoff.reset();
                    match self.connected(messenger).await {
                        Ok(exit) => return exit,
                        Err(err) if err.is_session_gone() => return Exit::LoggedOut(describe(&err)),
                        Err(err) => describe(&err),
                    }
                }
                Err(Resume::Untrusted) => {
                    // The trust prompt is up; wait for the user's answer.
                    if !self.await_trust(&server).await {
                        return Exit::Shutdown;
                    }
                    continue;
                }
                Err(Resume::Stop) => return Exit::Shutdown,
                Err(Resume::Gone(message)) => return Exit::LoggedOut(message),
                Err(Resume::Failed(message)) => message,
            };
            let delay = backoff.next_delay(jitter());
            let at = Instant::now() + delay;
            self.emit(EngineEvent::Connection(ConnState::Reconnecting { at, reason })).await;
            if !self.wait_offline(delay).await {
                return Exit::Shutdown;
            }
        }
    }

    /// Waits out the back-off, answering commands with failures; `false` at shutdown.
    async fn wait_offline(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            let command = tokio::select! {
                biased;
                () = stopped(&mut self.shutdown) => return false,
                () = &mut sleep => return true,
                command = self.commands.recv() => command,
            };
            match command {
                Some(command) => self.refuse(command, "offline").await,
                None => return false,
            }
        }
    }

    /// Serves commands until the user accepted the server's certificate; `false`
    /// at shutdown.
    async fn await_trust(&mut self, server: &ServerAddress) -> bool {
        loop {
            let Some(command) = self.next_command().await else { return false };
            match command {
                Command::TrustServer { server: s, fingerprint } if &s == server => {
                    self.trust_server(server, fingerprint).await;
                    return true;
                }
                Command::CheckServer { server: s } if &s == server => {
                    if self.check_server(server).await == Check::Trusted {
                        return true;
                    }
                }
                other => self.refuse(other, "the server is not trusted yet").await,
            }
        }
    }

    /// One connection attempt with the saved session.
    async fn resume(&mut self, saved: &SavedSession, server: &ServerAddress) -> Result<Messenger, Resume> {
        match self.settle(server).await {
            Check::Trusted => {}
            Check::Asked(fingerprint) => {
                self.emit(EngineEvent::UnknownServer { server: server.clone(), fingerprint }).await;
                return Err(Resume::Untrusted);
            }
            Check::Failed(message) => return Err(Resume::Failed(message)),
        }
        let attempt = async {
            let trust = self.known_trust(server)?.ok_or(ClientError::NotLoggedIn)?;
            let mut client = Client::connect_to(server, &trust, CLIENT_NAME).await?;
            self.upgrade_pin(server, &trust, &client);
            client.authenticate(&saved.token).await?;
            Messenger::start(client, &self.home, &saved.username).await
        };
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = stopped(&mut shutdown) => Err(Resume::Stop),
            result = attempt => match result {
                Ok(messenger) => Ok(messenger),
                Err(err @ ClientError::CertificateChanged { .. }) => Err(Resume::Failed(describe(&err))),
                Err(err) if err.is_session_gone() => Err(Resume::Gone(describe(&err))),
                Err(err) => Err(Resume::Failed(describe(&err))),
            },
        }
    }

    /// Serves one live connection: snapshot, catch-up, then commands and server
    /// events until the connection drops (`Err`) or shutdown.
    async fn connected(&mut self, mut messenger: Messenger) -> Result<Exit, ClientError> {
        let mut rooms = Rooms::default();
        rooms.refresh(&mut messenger).await?;
        let users = messenger.users().await?;
        self.emit(EngineEvent::Snapshot { rooms: rooms.members(), users }).await;
        let updates = messenger.sync_all().await?;
        self.emit(EngineEvent::Connection(ConnState::Connected)).await;
        self.updates(&mut messenger, &mut rooms, updates).await?;
        loop {
            // A command interrupts waiting for the next server event. That wait
            // is cancel-safe while it reads the socket; the rare catch-up it may
            // be doing after a gap is redone by the next event, and what it had
            // shown is reloaded when the room is opened again.
            let next = tokio::select! {
                biased;
                () = stopped(&mut self.shutdown) => None,
                command = self.commands.recv() => command.map(Next::Command),
                updates = messenger.next_updates() => Some(Next::Updates(updates?)),
            };
            match next {
                None => {
                    messenger.close().await.ok();
                    return Ok(Exit::Shutdown);
                }
                Some(Next::Command(command)) => self.execute(&mut messenger, &mut rooms, command).await?,
                Some(Next::Updates(updates)) => self.updates(&mut messenger, &mut rooms, updates).await?,
            }
        }
    }

    /// Passes updates on; a room joined or left refreshes the room list first.
    async fn updates(
        &self,
        messenger: &mut Messenger,
        rooms: &mut Rooms,
        updates: Vec<Update>,
    ) -> Result<(), ClientError> {
        if updates.is_empty() {
            return Ok(());
        }
        if updates.iter().any(|u| matches!(u, Update::Joined { .. } | Update::Removed { .. })) {
            rooms.refresh(messenger).await?;
            let users = messenger.users().await?;
            self.emit(EngineEvent::Snapshot { rooms: rooms.members(), users }).await;
        }
        self.emit(EngineEvent::Updates(updates)).await;
        Ok(())
    }

    /// Runs one command. A refusal is reported and the connection kept; a lost
    /// connection is returned as the error (a message being sent is first handed
    /// back to the composer).
    async fn execute(
        &self,
        messenger: &mut Messenger,
        rooms: &mut Rooms,
        command: Command,
    ) -> Result<(), ClientError> {
        let send_back = match &command {
            Command::Send { room, text } => Some((room.clone(), text.clone())),
            _ => None,
        };
        match self.try_execute(messenger, rooms, command).await {
            Ok(()) => Ok(()),
            Err(err) => {
                let message = describe(&err);
                match send_back {
                    Some((room, text)) => {
                        self.emit(EngineEvent::SendFailed { room, text, error: message }).await
                    }
                    None => self.emit(EngineEvent::Failed(message)).await,
                }
                if connection_lost(&err) { Err(err) } else { Ok(()) }
            }
        }
    }

    async fn try_execute(
        &self,
        messenger: &mut Messenger,
        rooms: &mut Rooms,
        command: Command,
    ) -> Result<(), ClientError> {
        match command {
            Command::CheckServer { server } => {
                self.emit(EngineEvent::ServerTrusted { server }).await;
            }
            Command::TrustServer { server, fingerprint } => self.trust_server(&server, fingerprint).await,
            Command::Login { .. } | Command::Register { .. } | Command::CheckRegistration { .. } => {
                self.emit(EngineEvent::Failed("already logged in".to_owned())).await;
            }
            Command::Send { room, text } => {
                let info = rooms.get(messenger, &room).await?;
                let (message, updates) = messenger.send_text(&info, &text).await?;
                self.emit(EngineEvent::Sent { message }).await;
                self.updates(messenger, rooms, updates).await?;
            }
            Command::Typing { room } => {
                let info = rooms.get(messenger, &room).await?;
                // A dropped typing signal is not worth an error line.
                if let Err(err) = messenger.send_typing(&info).await {
                    if connection_lost(&err) {
                        return Err(err);
                    }
                    tracing::debug!(%err, "typing signal not sent");
                }
            }
            Command::History { room, limit } => {
                let info = rooms.get(messenger, &room).await?;
                let history = messenger.history(&info, limit).await?;
                self.emit(EngineEvent::History { room, messages: history.messages }).await;
            }
            Command::Older { room, before, limit } => {
                let info = rooms.get(messenger, &room).await?;
                let messages = messenger.older(&info, before, limit)?;
                let complete = messages.len() < usize::try_from(limit).unwrap_or(usize::MAX);
                self.emit(EngineEvent::Older { room, messages, complete }).await;
            }
            Command::Join { room } => {
                let info = messenger.resolve(&room).await?;
                let updates = messenger.join(&info).await?;
                rooms.insert(info.clone());
                self.emit(EngineEvent::Opened { room: info }).await;
                self.updates(messenger, rooms, updates).await?;
            }
            Command::Create { name, public } => {
                let info = messenger.create_room(&name, public).await?;
                rooms.insert(info.clone());
                self.emit(EngineEvent::Opened { room: info }).await;
            }
            Command::Invite { room, users } => {
                let info = rooms.get(messenger, &room).await?;
                let invited = messenger.invite(&info, &users).await?;
                self.emit(EngineEvent::Updates(invited.updates)).await;
            }
            Command::Remove { room, user } => {
                let info = rooms.get(messenger, &room).await?;
                let updates = messenger.remove(&info, &user).await?;
                self.emit(EngineEvent::Updates(updates)).await;
            }
            Command::Leave { room } => {
                let info = rooms.get(messenger, &room).await?;
                messenger.leave(&info).await?;
                rooms.remove(&room);
                self.emit(EngineEvent::Left { room }).await;
            }
            Command::Direct { user } => {
                let info = messenger.resolve(&format!("@{user}")).await?;
                rooms.insert(info.clone());
                self.emit(EngineEvent::Opened { room: info }).await;
            }
            Command::Delete { room, id } => {
                let info = rooms.get(messenger, &room).await?;
                messenger.delete(&info, id).await?;
                self.emit(EngineEvent::Updates(vec![Update::Deleted { room, id }])).await;
            }
            Command::Members { room } => {
                let info = rooms.get(messenger, &room).await?;
                let members = messenger.members(&info).await?;
                self.emit(EngineEvent::Members { room, members }).await;
            }
            Command::Devices => {
                let devices = messenger.client().devices().await?;
                self.emit(EngineEvent::Devices(devices)).await;
            }
            Command::RemoveDevice(device) => {
                messenger.client().remove_device(device).await?;
                self.emit(EngineEvent::Notice(format!(
                    "removed device {device}: its rooms' members remove it from their encryption"
                )))
                .await;
                let devices = messenger.client().devices().await?;
                self.emit(EngineEvent::Devices(devices)).await;
            }
        }
        Ok(())
    }
}

/// The outcome of settling a server's trust.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    /// Pinned or CA-verified: connect.
    Trusted,
    /// First contact: the user was asked about this fingerprint.
    Asked(Fingerprint),
    /// The server could not be reached, or refused.
    Failed(String),
}

/// What woke the online loop.
enum Next {
    /// A command from the application.
    Command(Command),
    /// Server events, applied.
    Updates(Vec<Update>),
}

/// Why a reconnection attempt did not produce a connection.
enum Resume {
    /// The server's certificate is not trusted yet (the prompt is up).
    Untrusted,
    /// Shutdown while connecting.
    Stop,
    /// The saved session is no longer valid.
    Gone(String),
    /// Anything else: try again after the back-off.
    Failed(String),
}

/// The engine's view of the user's rooms, by name, for commands that name one.
#[derive(Default)]
struct Rooms(HashMap<String, RoomInfo>);

impl Rooms {
    async fn refresh(&mut self, messenger: &mut Messenger) -> Result<(), ClientError> {
        self.0 = messenger.rooms().await?.into_iter().map(|r| (r.name.clone(), r)).collect();
        Ok(())
    }

    fn members(&self) -> Vec<RoomInfo> {
        self.0.values().filter(|r| r.member).cloned().collect()
    }

    fn insert(&mut self, room: RoomInfo) {
        self.0.insert(room.name.clone(), room);
    }

    fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// The room called `name`, asking the server again if it is new to us.
    async fn get(&mut self, messenger: &mut Messenger, name: &str) -> Result<RoomInfo, ClientError> {
        if let Some(room) = self.0.get(name) {
            return Ok(room.clone());
        }
        self.refresh(messenger).await?;
        match self.0.get(name) {
            Some(room) => Ok(room.clone()),
            None => messenger.resolve(name).await,
        }
    }
}

/// Jitter for the back-off, in `[0, 1)`, so clients that lost the same server do
/// not all return at the same instant.
fn jitter() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}
