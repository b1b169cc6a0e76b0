//! [`App`]: the whole state of the terminal UI, and [`App::update`], the one
//! place where it changes.
//!
//! `update` is pure: it takes an [`AppEvent`] (a key, a mouse event, a tick, an
//! engine event) and returns the [`Effect`]s to carry out (a command for the
//! network, a bell, a notification, quitting). It never does I/O, so every
//! behaviour is unit-tested without a terminal or a server (see `tests.rs`).

mod composer;
mod forms;
mod room;
#[cfg(test)]
pub(crate) mod tests;

pub use composer::Composer;
pub use forms::{Enrolment, Field, Form, FormKind, TOKEN_LABEL, TrustPrompt};
pub use room::{Item, Room, View};

use crate::{
    action::{Action, COMMANDS, SlashCommand, completions},
    engine::{Command, ConnState, EngineEvent, HISTORY_PAGE, Secret},
    keymap,
    ui::layout::{Areas, SidebarItem},
};
use conclave_client::{ServerAddress, TotpSecret, Update, store::StoredMessage};
use conclave_proto::{DeviceId, DeviceInfo, MemberInfo, RegistrationMode, RoomInfo, RoomKind, UserPresence};
use crossterm::event::{Event, MouseButton, MouseEvent, MouseEventKind};
use std::time::Duration;
use tokio::time::Instant;

/// Messages asked for per page when scrolling back.
pub const OLDER_PAGE: u32 = 100;
/// How long "X is typing…" stays after the last signal.
pub const TYPING_SHOWN: Duration = Duration::from_secs(6);
/// Typing signals are sent at most this often.
pub const TYPING_EVERY: Duration = Duration::from_secs(3);
/// How long a status line stays.
const NOTICE_SHOWN: Duration = Duration::from_secs(10);
/// Lines one wheel step scrolls.
const WHEEL_LINES: usize = 3;

/// Everything that can happen to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// Input from the terminal: keys, mouse, paste, resize.
    Terminal(Event),
    /// Time passed (drives typing expiry, count-downs, notices).
    Tick(Instant),
    /// The network engine reported something.
    Engine(EngineEvent),
    /// SIGTERM or SIGHUP: leave cleanly.
    Terminate,
}

/// What the caller of [`App::update`] must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Ask the engine.
    Command(Command),
    /// Ring the terminal bell.
    Bell,
    /// A desktop notification (where available).
    Notify {
        /// Title (untrusted text: sanitize before use).
        title: String,
        /// Body (untrusted text).
        body: String,
    },
    /// Restore the terminal and exit.
    Quit,
}

/// Which screen is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Login or registration form.
    Form(Form),
    /// Registration: the QR code and the confirming code.
    Enrol(Enrolment),
    /// Registration done: the recovery codes, shown once.
    RecoveryCodes(Vec<String>),
    /// The chat.
    Chat,
}

/// A window over the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// Keys and commands.
    Help,
    /// A room's members.
    Members {
        /// Room name.
        room: String,
        /// The members.
        members: Vec<MemberInfo>,
    },
    /// The user's devices.
    Devices(Vec<DeviceInfo>),
}

/// How serious a status line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Information.
    Info,
    /// Something failed.
    Error,
}

/// A line for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text (may quote the server: untrusted).
    pub text: String,
    /// Info or error.
    pub level: Level,
    /// When it goes away.
    pub until: Instant,
}

/// Someone typing in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typing {
    /// Room name.
    pub room: String,
    /// The user.
    pub user: String,
    /// When the indicator goes away without a new signal.
    pub until: Instant,
}

/// The terminal UI's state.
#[derive(Debug, Clone)]
pub struct App {
    /// The screen that is up.
    pub screen: Screen,
    /// First contact with a server: the fingerprint prompt, over any screen.
    pub trust: Option<TrustPrompt>,
    /// The logged-in user (empty before login).
    pub me: String,
    /// The server (as typed or saved).
    pub server: String,
    /// The connection, as the engine last reported it.
    pub conn: ConnState,
    /// Conversations, in sidebar order.
    pub rooms: Vec<Room>,
    /// The conversation on screen (index into `rooms`).
    pub selected: usize,
    /// All users and their presence, by name.
    pub users: Vec<UserPresence>,
    /// The highlighted user when the user list has the focus (Ctrl-O).
    pub user_focus: Option<usize>,
    /// The message being typed.
    pub composer: Composer,
    /// Help or members window.
    pub overlay: Option<Overlay>,
    /// Status line.
    pub notice: Option<Notice>,
    /// Who is typing where.
    pub typing: Vec<Typing>,
    /// When a typing signal was last sent, and for which room.
    last_typing: Option<(String, Instant)>,
    /// Completion candidates being cycled with Tab, and the next one.
    completion: Option<(Vec<String>, usize)>,
    /// The latest time seen (from ticks and the start).
    pub clock: Instant,
    /// Terminal size, for mouse hits.
    pub size: (u16, u16),
}

impl App {
    /// The state at start: the chat when a session is saved, else the login form
    /// pre-filled with `server` and `user`.
    #[must_use]
    pub fn new(logged_in: bool, server: &str, user: &str, now: Instant) -> Self {
        Self {
            screen: if logged_in { Screen::Chat } else { Screen::Form(Form::login(server, user)) },
            trust: None,
            me: if logged_in { user.to_owned() } else { String::new() },
            server: server.to_owned(),
            conn: if logged_in { ConnState::Connecting } else { ConnState::LoggedOut },
            rooms: Vec::new(),
            selected: 0,
            users: Vec::new(),
            user_focus: None,
            composer: Composer::default(),
            overlay: None,
            notice: None,
            typing: Vec::new(),
            last_typing: None,
            completion: None,
            clock: now,
            size: (80, 24),
        }
    }

    /// The conversation on screen.
    #[must_use]
    pub fn current(&self) -> Option<&Room> {
        self.rooms.get(self.selected)
    }

    fn current_mut(&mut self) -> Option<&mut Room> {
        self.rooms.get_mut(self.selected)
    }

    fn current_name(&self) -> Option<String> {
        self.current().map(|r| r.name.clone())
    }

    fn room_index(&self, name: &str) -> Option<usize> {
        self.rooms.iter().position(|r| r.name == name)
    }

    /// Users typing in the room on screen, excluding the user.
    #[must_use]
    pub fn typing_here(&self) -> Vec<&str> {
        let Some(room) = self.current() else { return Vec::new() };
        self.typing
            .iter()
            .filter(|t| t.room == room.name && t.until > self.clock)
            .map(|t| t.user.as_str())
            .collect()
    }

    fn info(&mut self, text: impl Into<String>) {
        self.notice =
            Some(Notice { text: text.into(), level: Level::Info, until: self.clock + NOTICE_SHOWN });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.notice =
            Some(Notice { text: text.into(), level: Level::Error, until: self.clock + NOTICE_SHOWN });
    }

    /// Applies one event; returns what the caller must do.
    pub fn update(&mut self, event: AppEvent) -> Vec<Effect> {
        match event {
            AppEvent::Terminal(event) => self.terminal(event),
            AppEvent::Tick(now) => {
                self.tick(now);
                Vec::new()
            }
            AppEvent::Engine(event) => self.engine(event),
            AppEvent::Terminate => vec![Effect::Quit],
        }
    }

    fn tick(&mut self, now: Instant) {
        self.clock = now;
        self.typing.retain(|t| t.until > now);
        if self.notice.as_ref().is_some_and(|n| n.until <= now) {
            self.notice = None;
        }
    }

    fn terminal(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => keymap::action(key).map(|a| self.act(a)).unwrap_or_default(),
            Event::Mouse(mouse) => self.mouse(mouse),
            Event::Paste(text) => {
                self.paste(&text);
                self.typed()
            }
            Event::Resize(w, h) => {
                self.size = (w, h);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn paste(&mut self, text: &str) {
        // Pasted text is the user's own, but a stray carriage return or escape
        // would still confuse the composer: keep printable text and line breaks.
        let clean: String = text.replace("\r\n", "\n").replace('\r', "\n");
        let clean = conclave_client::text::sanitize(&clean);
        match &mut self.screen {
            Screen::Form(form) => form.focused().push_str(clean.lines().next().unwrap_or("")),
            Screen::Enrol(enrol) => enrol.code.push_str(clean.trim()),
            Screen::RecoveryCodes(_) => {}
            Screen::Chat => self.composer.insert_str(&clean),
        }
    }

    /// Carries out a key's action on the screen that is up.
    pub fn act(&mut self, action: Action) -> Vec<Effect> {
        if action == Action::Quit {
            return vec![Effect::Quit];
        }
        if self.trust.is_some() {
            return self.act_trust(action);
        }
        match &self.screen {
            Screen::Form(_) => self.act_form(action),
            Screen::Enrol(_) => self.act_enrol(action),
            Screen::RecoveryCodes(_) => {
                if action == Action::Submit {
                    self.screen = Screen::Chat;
                }
                Vec::new()
            }
            Screen::Chat => self.act_chat(action),
        }
    }

    fn act_trust(&mut self, action: Action) -> Vec<Effect> {
        let Some(prompt) = self.trust.clone() else { return Vec::new() };
        match action {
            Action::Insert('y' | 'Y') => {
                self.trust = None;
                vec![Effect::Command(Command::TrustServer {
                    server: prompt.server,
                    fingerprint: prompt.fingerprint,
                })]
            }
            Action::Insert('n' | 'N') | Action::Cancel | Action::Submit => {
                self.trust = None;
                let message = format!("server {} not trusted; nothing was sent to it", prompt.server);
                match &mut self.screen {
                    Screen::Form(form) => {
                        form.busy = false;
                        form.error = Some(message);
                    }
                    Screen::Chat => return vec![Effect::Quit],
                    _ => self.error(message),
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn act_form(&mut self, action: Action) -> Vec<Effect> {
        let Screen::Form(form) = &mut self.screen else { return Vec::new() };
        if form.busy {
            return Vec::new();
        }
        match action {
            Action::Insert(c) => form.focused().push(c),
            Action::Backspace => {
                form.focused().pop();
            }
            Action::ClearInput => form.focused().clear(),
            Action::Complete | Action::Down => form.next(),
            Action::BackTab | Action::Up => form.prev(),
            Action::SwitchForm => *form = form.switched(),
            Action::Submit
                if form.focus + 1 < form.fields.len() && form.fields[form.focus + 1].value.is_empty() =>
            {
                form.next();
            }
            Action::Submit => match form.validate() {
                Err(message) => form.error = Some(message),
                // Both forms settle the server's identity first (nothing secret
                // is sent before); then a login goes on, and a registration
                // shows the TOTP enrolment.
                Ok(server) => {
                    form.error = None;
                    form.busy = true;
                    self.server = server.to_string();
                    return vec![Effect::Command(Command::CheckServer { server })];
                }
            },
            _ => {}
        }
        Vec::new()
    }

    fn act_enrol(&mut self, action: Action) -> Vec<Effect> {
        let Screen::Enrol(enrol) = &mut self.screen else { return Vec::new() };
        if enrol.busy {
            return Vec::new();
        }
        match action {
            Action::Insert(c) if c.is_ascii_digit() && enrol.code.len() < 6 => enrol.code.push(c),
            Action::Backspace => {
                enrol.code.pop();
            }
            Action::Cancel => {
                let mut form = Form::register(&enrol.server.to_string(), &enrol.user);
                if let Some(token) = &enrol.token {
                    form.add_token_field();
                    *form.focused() = token.clone();
                }
                self.screen = Screen::Form(form);
            }
            Action::Submit if conclave_proto::validate::is_totp_code(&enrol.code) => {
                enrol.busy = true;
                enrol.error = None;
                return vec![Effect::Command(Command::Register {
                    server: enrol.server.clone(),
                    user: enrol.user.clone(),
                    password: Secret(enrol.password.clone()),
                    secret: Secret(enrol.secret.clone()),
                    code: Secret(enrol.code.clone()),
                    token: enrol.token.clone().map(Secret),
                })];
            }
            Action::Submit => {
                enrol.error = Some("enter the 6 digits your authenticator app shows".to_owned())
            }
            _ => {}
        }
        Vec::new()
    }

    fn act_chat(&mut self, action: Action) -> Vec<Effect> {
        if action != Action::Complete {
            self.completion = None;
        }
        if self.overlay.is_some() {
            if matches!(action, Action::Cancel | Action::Submit | Action::Help) {
                self.overlay = None;
            }
            return Vec::new();
        }
        if let Some(i) = self.user_focus {
            return self.act_users(action, i);
        }
        match action {
            Action::Insert(c) => {
                self.composer.insert(c);
                return self.typed();
            }
            Action::Newline => {
                self.composer.insert('\n');
                return self.typed();
            }
            Action::Backspace => {
                self.composer.backspace();
                return self.typed();
            }
            Action::Delete => self.composer.delete(),
            Action::Left => self.composer.left(),
            Action::Right => self.composer.right(),
            Action::Home => self.composer.home(),
            Action::End => self.composer.end(),
            Action::ClearInput => {
                self.composer.take();
            }
            Action::Submit => return self.submit(),
            Action::Complete => self.complete(),
            Action::NextRoom if !self.rooms.is_empty() => {
                return self.select((self.selected + 1) % self.rooms.len());
            }
            Action::PrevRoom if !self.rooms.is_empty() => {
                return self.select((self.selected + self.rooms.len() - 1) % self.rooms.len());
            }
            Action::GoToRoom(i) if i < self.rooms.len() => return self.select(i),
            Action::PageUp => return self.scroll_up(self.page()),
            Action::PageDown => self.scroll_down(self.page()),
            Action::Up => return self.scroll_up(1),
            Action::Down => self.scroll_down(1),
            Action::WheelUp => return self.scroll_up(WHEEL_LINES),
            Action::WheelDown => self.scroll_down(WHEEL_LINES),
            Action::SelectOlder | Action::SelectNewer => {
                if let Some(room) = self.current_mut() {
                    room.select_step(action == Action::SelectOlder);
                }
            }
            Action::FocusUsers if !self.users.is_empty() => self.user_focus = Some(0),
            Action::Cancel => {
                if let Some(room) = self.current_mut() {
                    room.selected = None;
                    room.scroll = 0;
                }
            }
            Action::Help => self.overlay = Some(Overlay::Help),
            _ => {}
        }
        Vec::new()
    }

    fn act_users(&mut self, action: Action, i: usize) -> Vec<Effect> {
        match action {
            Action::Up => self.user_focus = Some(i.saturating_sub(1)),
            Action::Down => self.user_focus = Some((i + 1).min(self.users.len().saturating_sub(1))),
            Action::Submit => {
                self.user_focus = None;
                if let Some(user) = self.users.get(i).map(|u| u.username.clone()) {
                    return self.open_direct(&user);
                }
            }
            Action::Cancel | Action::FocusUsers => self.user_focus = None,
            _ => {}
        }
        Vec::new()
    }

    fn open_direct(&mut self, user: &str) -> Vec<Effect> {
        if user == self.me {
            self.error("a direct conversation needs someone else");
            return Vec::new();
        }
        match self.room_index(&format!("@{user}")) {
            Some(i) => self.select(i),
            None => vec![Effect::Command(Command::Direct { user: user.to_owned() })],
        }
    }

    /// Lines one page scrolls: the visible height less two lines of context.
    fn page(&self) -> usize {
        self.current().map_or(10, |r| r.view.height.saturating_sub(2).max(1))
    }

    fn scroll_up(&mut self, lines: usize) -> Vec<Effect> {
        let Some(room) = self.current_mut() else { return Vec::new() };
        let max = room.view.total_lines.saturating_sub(room.view.height);
        room.scroll = (room.scroll + lines).min(max);
        if room.at_top() && room.loaded && !room.complete && !room.loading_older {
            if let Some(before) = room.oldest_seq() {
                room.loading_older = true;
                let command = Command::Older { room: room.name.clone(), before, limit: OLDER_PAGE };
                return vec![Effect::Command(command)];
            }
            room.complete = true;
        }
        Vec::new()
    }

    fn scroll_down(&mut self, lines: usize) {
        if let Some(room) = self.current_mut() {
            room.scroll = room.scroll.saturating_sub(lines);
        }
    }

    /// Switches to conversation `i`: its unread state is cleared (the marker
    /// stays while it is on screen) and its history is (re)loaded.
    fn select(&mut self, i: usize) -> Vec<Effect> {
        if i != self.selected
            && let Some(old) = self.rooms.get_mut(self.selected)
        {
            old.unread_from = None;
            old.selected = None;
        }
        self.selected = i;
        let Some(room) = self.rooms.get_mut(i) else { return Vec::new() };
        room.unread = 0;
        room.mentioned = false;
        room.scroll = 0;
        vec![Effect::Command(Command::History { room: room.name.clone(), limit: HISTORY_PAGE })]
    }

    /// After the composer changed: a typing signal, at most every few seconds,
    /// while a message (not a command) is being written.
    fn typed(&mut self) -> Vec<Effect> {
        if !matches!(self.screen, Screen::Chat) || self.conn != ConnState::Connected {
            return Vec::new();
        }
        let text = self.composer.text();
        if text.trim().is_empty() || text.starts_with('/') {
            return Vec::new();
        }
        let Some(room) = self.current_name() else { return Vec::new() };
        let due = match &self.last_typing {
            Some((last_room, at)) => *last_room != room || self.clock.duration_since(*at) >= TYPING_EVERY,
            None => true,
        };
        if !due {
            return Vec::new();
        }
        self.last_typing = Some((room.clone(), self.clock));
        vec![Effect::Command(Command::Typing { room })]
    }

    fn complete(&mut self) {
        let (candidates, next) = match self.completion.take() {
            Some((candidates, next)) => (candidates, next),
            None => {
                let users: Vec<String> = self.users.iter().map(|u| u.username.clone()).collect();
                let rooms: Vec<String> = self.rooms.iter().map(|r| r.name.clone()).collect();
                (completions(self.composer.text(), &users, &rooms), 0)
            }
        };
        let Some(choice) = candidates.get(next % candidates.len().max(1)) else { return };
        let takes_argument = COMMANDS.iter().any(|(c, args, _)| *c == choice.as_str() && !args.is_empty());
        self.composer.set(&if takes_argument { format!("{choice} ") } else { choice.clone() });
        if candidates.len() > 1 {
            self.completion = Some((candidates, next + 1));
        }
    }

    /// Enter in the chat: a command, or a message. A message typed while the
    /// connection is down stays in the composer (nothing is lost, nothing is
    /// sent behind the user's back); Enter sends it once connected.
    fn submit(&mut self) -> Vec<Effect> {
        let text = self.composer.text().to_owned();
        if text.trim().is_empty() {
            return Vec::new();
        }
        if text.starts_with('/') && !text.starts_with("//") {
            return match SlashCommand::parse(text.trim()) {
                Ok(command) => {
                    self.composer.take();
                    self.command(command)
                }
                Err(message) => {
                    self.error(message);
                    Vec::new()
                }
            };
        }
        let Some(room) = self.current_name() else {
            self.error("no conversation selected");
            return Vec::new();
        };
        if self.conn != ConnState::Connected {
            self.error("offline: your message stays in the input line; press Enter again once connected");
            return Vec::new();
        }
        self.composer.take();
        let text = text.strip_prefix('/').filter(|t| t.starts_with('/')).map_or(text.clone(), str::to_owned);
        if let Some(current) = self.current_mut() {
            current.scroll = 0;
            current.selected = None;
        }
        self.last_typing = None;
        vec![Effect::Command(Command::Send { room, text })]
    }

    fn command(&mut self, command: SlashCommand) -> Vec<Effect> {
        let room = self.current_name();
        let in_room = |command: Command| match room.clone() {
            Some(_) => vec![Effect::Command(command)],
            None => Vec::new(),
        };
        let here = room.clone().unwrap_or_default();
        match command {
            SlashCommand::Join(name) => match self.room_index(&name) {
                Some(i) => self.select(i),
                None => vec![Effect::Command(Command::Join { room: name })],
            },
            SlashCommand::Create { name, public } => vec![Effect::Command(Command::Create { name, public })],
            SlashCommand::Invite(users) => in_room(Command::Invite { room: here, users }),
            SlashCommand::Remove(user) => in_room(Command::Remove { room: here, user }),
            SlashCommand::Leave => {
                if self.current().is_some_and(|r| r.kind == RoomKind::Lobby) {
                    self.error("the lobby cannot be left");
                    return Vec::new();
                }
                in_room(Command::Leave { room: here })
            }
            SlashCommand::Direct(user) => self.open_direct(&user),
            SlashCommand::Delete => {
                let me = self.me.clone();
                let Some(current) = self.current() else { return Vec::new() };
                let target = current
                    .selected
                    .or_else(|| current.messages().rev().find(|m| m.sender == me).map(|m| m.id));
                match target {
                    Some(id) => in_room(Command::Delete { room: here, id }),
                    None => {
                        self.error("nothing to delete: select a message with Alt-Up, or send one first");
                        Vec::new()
                    }
                }
            }
            SlashCommand::Members => in_room(Command::Members { room: here }),
            SlashCommand::Devices(None) => vec![Effect::Command(Command::Devices)],
            SlashCommand::Devices(Some(id)) => vec![Effect::Command(Command::RemoveDevice(DeviceId(id)))],
            SlashCommand::Mute => {
                if let Some(current) = self.current_mut() {
                    current.muted = !current.muted;
                    let text = if current.muted {
                        format!("{} muted: no bell or notification except for mentions", current.label())
                    } else {
                        format!("{} unmuted", current.label())
                    };
                    self.info(text);
                }
                Vec::new()
            }
            SlashCommand::Help => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            SlashCommand::Quit => vec![Effect::Quit],
        }
    }

    fn mouse(&mut self, mouse: MouseEvent) -> Vec<Effect> {
        if !matches!(self.screen, Screen::Chat) || self.trust.is_some() {
            return Vec::new();
        }
        match mouse.kind {
            MouseEventKind::ScrollUp => self.act(Action::WheelUp),
            MouseEventKind::ScrollDown => self.act(Action::WheelDown),
            MouseEventKind::Down(MouseButton::Left) => {
                let areas = Areas::new(self.size.0, self.size.1, 1);
                match areas.sidebar_item(self, mouse.column, mouse.row) {
                    Some(SidebarItem::Room(i)) => {
                        self.overlay = None;
                        self.user_focus = None;
                        self.select(i)
                    }
                    Some(SidebarItem::User(i)) => {
                        self.overlay = None;
                        let user = self.users.get(i).map(|u| u.username.clone()).unwrap_or_default();
                        self.open_direct(&user)
                    }
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    fn engine(&mut self, event: EngineEvent) -> Vec<Effect> {
        match event {
            EngineEvent::Connection(state) => {
                let reconnected = state == ConnState::Connected && self.conn != ConnState::Connected;
                self.conn = state;
                if reconnected
                    && matches!(self.screen, Screen::Chat)
                    && let Some(room) = self.current_name()
                {
                    return vec![Effect::Command(Command::History { room, limit: HISTORY_PAGE })];
                }
            }
            EngineEvent::UnknownServer { server, fingerprint } => {
                self.trust = Some(TrustPrompt { server, fingerprint });
            }
            EngineEvent::ServerTrusted { server } => return self.server_trusted(server),
            EngineEvent::Registration { server, mode } => self.registration_mode(server, mode),
            EngineEvent::AuthFailed { message } => match &mut self.screen {
                Screen::Form(form) => {
                    form.busy = false;
                    form.error = Some(message);
                }
                Screen::Enrol(enrol) => {
                    enrol.busy = false;
                    enrol.code.clear();
                    enrol.error = Some(message);
                }
                _ => self.error(message),
            },
            EngineEvent::LoggedIn { user, server } => {
                self.me = user;
                self.server = server.to_string();
                if !matches!(self.screen, Screen::RecoveryCodes(_)) {
                    self.screen = Screen::Chat;
                }
            }
            EngineEvent::Registered { recovery_codes } => self.screen = Screen::RecoveryCodes(recovery_codes),
            EngineEvent::SessionEnded { message } => {
                let mut form = Form::login(&self.server, &self.me);
                form.error = Some(message);
                self.screen = Screen::Form(form);
                self.rooms.clear();
                self.users.clear();
                self.selected = 0;
            }
            EngineEvent::Snapshot { rooms, users } => return self.snapshot(rooms, users),
            EngineEvent::Updates(updates) => {
                return updates.into_iter().flat_map(|u| self.live(u)).collect();
            }
            EngineEvent::History { room, messages } => {
                if let Some(i) = self.room_index(&room) {
                    let r = &mut self.rooms[i];
                    if messages.len() < usize::try_from(HISTORY_PAGE).unwrap_or(usize::MAX) && !r.loaded {
                        r.complete = true;
                    }
                    r.merge_newest(messages);
                    r.loaded = true;
                }
            }
            EngineEvent::Older { room, messages, complete } => {
                if let Some(i) = self.room_index(&room) {
                    let r = &mut self.rooms[i];
                    r.prepend(messages);
                    r.complete = complete;
                    r.loading_older = false;
                }
            }
            EngineEvent::Sent { message } => {
                if let Some(i) = self.room_index(&message.room) {
                    self.rooms[i].insert(message);
                }
            }
            EngineEvent::SendFailed { room, text, error } => {
                self.composer.restore(&text);
                if self.room_index(&room) != Some(self.selected)
                    && let Some(i) = self.room_index(&room)
                {
                    self.selected = i;
                }
                self.error(format!(
                    "not sent ({error}); the message is back in the input line: Enter retries"
                ));
            }
            EngineEvent::Opened { room } => {
                let i = self.add_room(&room);
                return self.select(i);
            }
            EngineEvent::Left { room } => {
                if let Some(i) = self.room_index(&room) {
                    self.rooms.remove(i);
                    self.info(format!(
                        "you left {}",
                        if room.starts_with('@') { room } else { format!("#{room}") }
                    ));
                    let lobby = self.rooms.iter().position(|r| r.kind == RoomKind::Lobby).unwrap_or(0);
                    self.selected = 0;
                    return self.select(lobby);
                }
            }
            EngineEvent::Members { room, members } => self.overlay = Some(Overlay::Members { room, members }),
            EngineEvent::Devices(devices) => self.overlay = Some(Overlay::Devices(devices)),
            EngineEvent::Notice(text) => self.info(text),
            EngineEvent::Failed(text) => {
                if let Some(room) = self.current_mut() {
                    room.loading_older = false;
                }
                self.error(text);
            }
        }
        Vec::new()
    }

    /// The server's identity is settled: carry on with what the form asked.
    fn server_trusted(&mut self, server: ServerAddress) -> Vec<Effect> {
        self.trust = None;
        let Screen::Form(form) = &self.screen else { return Vec::new() };
        if !form.busy {
            return Vec::new();
        }
        match form.kind {
            FormKind::Login => {
                let command = Command::Login {
                    server,
                    user: form.value(1).to_ascii_lowercase(),
                    password: Secret(form.fields[2].value.clone()),
                    code: Secret(form.value(3).to_owned()),
                };
                vec![Effect::Command(command)]
            }
            // Whether (and how) the server lets people register is asked
            // before a secret is enrolled in an authenticator for nothing.
            FormKind::Register => vec![Effect::Command(Command::CheckRegistration { server })],
        }
    }

    /// The server said who may register: say it is closed, ask for a token,
    /// or go on to the TOTP enrolment.
    fn registration_mode(&mut self, server: ServerAddress, mode: RegistrationMode) {
        let Screen::Form(form) = &mut self.screen else { return };
        if !form.busy || form.kind != FormKind::Register {
            return;
        }
        form.busy = false;
        match (mode, form.token()) {
            (RegistrationMode::Closed, _) => {
                form.error =
                    Some("registration is closed on this server: ask its operator for an account".into());
            }
            (RegistrationMode::Invite, None) => {
                form.add_token_field();
                form.error = Some(
                    "this server lets people register only with a registration token from its operator: \
                     enter it below"
                        .into(),
                );
            }
            (mode, token) => {
                let user = form.value(1).to_ascii_lowercase();
                let secret = TotpSecret::generate();
                let uri = secret.otpauth_uri(&user, Some(server.host()));
                let token = token.filter(|_| mode == RegistrationMode::Invite).map(str::to_owned);
                self.screen = Screen::Enrol(Enrolment {
                    server,
                    user,
                    password: form.fields[2].value.clone(),
                    token,
                    secret: secret.to_base32(),
                    uri,
                    code: String::new(),
                    error: None,
                    busy: false,
                });
            }
        }
    }

    fn add_room(&mut self, info: &RoomInfo) -> usize {
        if let Some(i) = self.room_index(&info.name) {
            return i;
        }
        let current = self.current_name();
        self.rooms.push(Room::new(&info.name, info.kind));
        self.sort_rooms(current.as_deref());
        self.room_index(&info.name).unwrap_or(0)
    }

    /// Keeps the sidebar order, and the same conversation on screen.
    fn sort_rooms(&mut self, current: Option<&str>) {
        self.rooms.sort_by_key(Room::order);
        if let Some(i) = current.and_then(|name| self.room_index(name)) {
            self.selected = i;
        }
    }

    fn snapshot(&mut self, rooms: Vec<RoomInfo>, mut users: Vec<UserPresence>) -> Vec<Effect> {
        let first = self.rooms.is_empty();
        let current = self.current_name();
        let names: Vec<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
        self.rooms.retain(|r| names.contains(&r.name.as_str()));
        for info in &rooms {
            if self.room_index(&info.name).is_none() {
                self.rooms.push(Room::new(&info.name, info.kind));
            }
        }
        self.sort_rooms(current.as_deref());
        users.sort_by(|a, b| a.username.cmp(&b.username));
        self.users = users;
        if self.selected >= self.rooms.len() {
            self.selected = 0;
        }
        if first || current.is_none() || self.current_name() != current {
            let lobby = self.rooms.iter().position(|r| r.kind == RoomKind::Lobby).unwrap_or(0);
            let target = current.and_then(|c| self.room_index(&c)).unwrap_or(lobby);
            self.selected = target;
            return self.select(target);
        }
        Vec::new()
    }

    /// Whether `text` mentions the user: their name as a word, with or without `@`.
    #[must_use]
    pub fn mentions_me(&self, text: &str) -> bool {
        if self.me.is_empty() {
            return false;
        }
        let lower = text.to_lowercase();
        lower
            .split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .any(|word| word.trim_matches('.') == self.me)
    }

    fn live(&mut self, update: Update) -> Vec<Effect> {
        match update {
            Update::Message(message) => return self.message(message),
            Update::Deleted { room, id } => {
                if let Some(i) = self.room_index(&room) {
                    self.rooms[i].remove(id);
                }
            }
            Update::Membership { room, text } => {
                let at = self.now_ms();
                if let Some(i) = self.room_index(&room) {
                    self.rooms[i].note(text, at);
                }
            }
            Update::Joined { room } => {
                let at = self.now_ms();
                if let Some(i) = self.room_index(&room) {
                    self.rooms[i]
                        .note("you joined; messages from before are not readable on this device".into(), at);
                }
            }
            Update::Removed { room } => {
                let label = if room.starts_with('@') { room.clone() } else { format!("#{room}") };
                self.error(format!("you were removed from {label}"));
            }
            Update::Presence(presence) => {
                match self.users.iter().position(|u| u.username == presence.username) {
                    Some(i) => self.users[i].online = presence.online,
                    None => {
                        self.users.push(presence);
                        self.users.sort_by(|a, b| a.username.cmp(&b.username));
                    }
                }
            }
            Update::Typing { room, user } => {
                if user != self.me {
                    let until = self.clock + TYPING_SHOWN;
                    match self.typing.iter().position(|t| t.room == room && t.user == user) {
                        Some(i) => self.typing[i].until = until,
                        None => self.typing.push(Typing { room, user, until }),
                    }
                }
            }
        }
        Vec::new()
    }

    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// A new message: shown, counted as unread when its conversation is not on
    /// screen, and announced (bell, notification) unless muted — mentions
    /// always are.
    fn message(&mut self, message: StoredMessage) -> Vec<Effect> {
        self.typing.retain(|t| !(t.room == message.room && t.user == message.sender));
        let i = match self.room_index(&message.room) {
            Some(i) => i,
            None => {
                let kind = if message.room.starts_with('@') { RoomKind::Direct } else { RoomKind::Private };
                let current = self.current_name();
                self.rooms.push(Room::new(&message.room, kind));
                self.sort_rooms(current.as_deref());
                self.room_index(&message.room).unwrap_or(0)
            }
        };
        let mine = message.sender == self.me;
        let mention = !mine && message.text.as_deref().is_some_and(|t| self.mentions_me(t));
        let on_screen = i == self.selected && matches!(self.screen, Screen::Chat);
        let (seq, sender, text) =
            (message.seq, message.sender.clone(), message.text.clone().unwrap_or_default());
        let room = &mut self.rooms[i];
        if !room.insert(message) || mine {
            return Vec::new();
        }
        if !on_screen {
            room.unread += 1;
            room.mentioned |= mention;
            room.unread_from.get_or_insert(seq);
        } else if room.scroll > 0 {
            // Scrolled back: the marker shows where the new messages start.
            room.unread_from.get_or_insert(seq);
        }
        if !mention && (on_screen || room.muted) {
            return Vec::new();
        }
        let title = format!("{sender} in {}", room.label());
        vec![Effect::Bell, Effect::Notify { title, body: text }]
    }
}
