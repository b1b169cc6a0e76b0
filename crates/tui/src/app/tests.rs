//! `App::update` without a terminal or a server: events in, state and effects
//! out.

use super::*;
use crate::engine::ConnState;
use conclave_client::{Fingerprint, ServerAddress};
use conclave_proto::{Bytes, DeviceId, MessageId, RoomId, Seq};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// 2026-06-22 10:00 UTC.
pub const T0: i64 = 1_782_122_400_000;

pub fn message(room: &str, seq: i64, sender: &str, text: &str) -> StoredMessage {
    StoredMessage {
        id: MessageId(1000 + seq),
        seq: Seq(seq),
        room: room.to_owned(),
        sender: sender.to_owned(),
        device: DeviceId(1),
        text: Some(text.to_owned()),
        sent_at_ms: T0 + seq * 60_000,
    }
}

pub fn room_info(name: &str, kind: RoomKind) -> RoomInfo {
    RoomInfo {
        id: RoomId(name.len() as i64),
        name: name.to_owned(),
        kind,
        owner: None,
        member: true,
        group_id: Bytes(name.as_bytes().to_vec()),
        epoch: Some(1),
        last_seq: Seq(0),
    }
}

fn presence(name: &str, online: bool) -> UserPresence {
    UserPresence { username: name.to_owned(), online }
}

/// Alice, logged in and connected, with the lobby on screen and its history
/// loaded; also in `#team` and a direct conversation with bob.
pub fn chat() -> App {
    let mut app = App::new(true, "127.0.0.1:8443", "alice", Instant::now());
    app.update(AppEvent::Engine(EngineEvent::LoggedIn {
        user: "alice".into(),
        server: "127.0.0.1:8443".parse().unwrap(),
    }));
    let effects = app.update(AppEvent::Engine(EngineEvent::Snapshot {
        rooms: vec![
            room_info("@bob", RoomKind::Direct),
            room_info("team", RoomKind::Private),
            room_info("lobby", RoomKind::Lobby),
        ],
        users: vec![presence("carol", false), presence("bob", true), presence("alice", true)],
    }));
    assert_eq!(effects, [Effect::Command(Command::History { room: "lobby".into(), limit: HISTORY_PAGE })]);
    app.update(AppEvent::Engine(EngineEvent::Connection(ConnState::Connected)));
    app.update(AppEvent::Engine(EngineEvent::History {
        room: "lobby".into(),
        messages: vec![message("lobby", 1, "bob", "hello"), message("lobby", 2, "alice", "hi bob")],
    }));
    app
}

fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    app.update(AppEvent::Terminal(Event::Key(KeyEvent::new(code, modifiers))))
}

fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| key(app, KeyCode::Char(c), KeyModifiers::NONE)).collect()
}

fn enter(app: &mut App) -> Vec<Effect> {
    key(app, KeyCode::Enter, KeyModifiers::NONE)
}

fn updates(app: &mut App, updates: Vec<Update>) -> Vec<Effect> {
    app.update(AppEvent::Engine(EngineEvent::Updates(updates)))
}

fn room<'a>(app: &'a App, name: &str) -> &'a Room {
    app.rooms.iter().find(|r| r.name == name).unwrap()
}

fn sends(effects: &[Effect]) -> Vec<(String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Command(Command::Send { room, text }) => Some((room.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

/// The sidebar order is the lobby, then groups, then direct conversations.
#[test]
fn conversations_are_ordered_lobby_groups_direct() {
    let app = chat();
    let names: Vec<&str> = app.rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["lobby", "team", "@bob"]);
    assert_eq!(app.current().unwrap().name, "lobby");
    let users: Vec<&str> = app.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(users, ["alice", "bob", "carol"]);
}

/// Enter sends the composer's text to the conversation on screen and empties
/// the composer; Alt-Enter makes a line break instead.
#[test]
fn enter_sends_and_alt_enter_breaks_the_line() {
    let mut app = chat();
    type_text(&mut app, "two");
    key(&mut app, KeyCode::Enter, KeyModifiers::ALT);
    type_text(&mut app, "lines");
    let effects = enter(&mut app);
    assert_eq!(sends(&effects), [("lobby".to_owned(), "two\nlines".to_owned())]);
    assert!(app.composer.is_empty());
    assert!(sends(&enter(&mut app)).is_empty(), "an empty composer sends nothing");
}

/// A message whose sending failed comes back to the composer, before anything
/// typed since.
#[test]
fn a_failed_send_gives_the_text_back() {
    let mut app = chat();
    type_text(&mut app, "important");
    enter(&mut app);
    type_text(&mut app, "more");
    app.update(AppEvent::Engine(EngineEvent::SendFailed {
        room: "lobby".into(),
        text: "important".into(),
        error: "connection lost".into(),
    }));
    assert_eq!(app.composer.text(), "important\nmore");
    assert_eq!(app.notice.as_ref().unwrap().level, Level::Error);
}

/// Input typed while the connection is down stays in the composer through the
/// reconnection, and Enter sends it afterwards.
#[test]
fn input_is_kept_across_a_reconnection() {
    let mut app = chat();
    let at = app.clock + Duration::from_secs(4);
    app.update(AppEvent::Engine(EngineEvent::Connection(ConnState::Reconnecting {
        at,
        reason: "gone".into(),
    })));
    type_text(&mut app, "typed offline");
    assert!(sends(&enter(&mut app)).is_empty());
    assert_eq!(app.composer.text(), "typed offline");
    app.update(AppEvent::Engine(EngineEvent::Connection(ConnState::Connecting)));
    let effects = app.update(AppEvent::Engine(EngineEvent::Connection(ConnState::Connected)));
    assert!(
        effects.contains(&Effect::Command(Command::History { room: "lobby".into(), limit: HISTORY_PAGE }))
    );
    assert_eq!(app.composer.text(), "typed offline");
    assert_eq!(sends(&enter(&mut app)), [("lobby".to_owned(), "typed offline".to_owned())]);
}

/// Ctrl-N/Ctrl-P and Alt-digits switch conversations, and the history of the
/// one selected is loaded.
#[test]
fn switching_conversations_loads_their_history() {
    let mut app = chat();
    let effects = key(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(effects, [Effect::Command(Command::History { room: "team".into(), limit: HISTORY_PAGE })]);
    key(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(app.current().unwrap().name, "@bob");
    key(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(app.current().unwrap().name, "lobby", "wraps around");
    key(&mut app, KeyCode::Char('p'), KeyModifiers::CONTROL);
    assert_eq!(app.current().unwrap().name, "@bob");
    key(&mut app, KeyCode::Char('2'), KeyModifiers::ALT);
    assert_eq!(app.current().unwrap().name, "team");
    assert!(key(&mut app, KeyCode::Char('9'), KeyModifiers::ALT).is_empty(), "no ninth conversation");
}

/// Messages in a conversation not on screen count as unread, with a marker
/// for mentions, a bell and a notification; the count clears when it is
/// opened, and the "new messages" marker stays while it is on screen.
#[test]
fn unread_counts_mentions_and_notifications() {
    let mut app = chat();
    let effects = updates(&mut app, vec![Update::Message(message("team", 5, "bob", "standup?"))]);
    assert!(effects.contains(&Effect::Bell));
    assert!(effects.iter().any(
        |e| matches!(e, Effect::Notify { title, body } if title == "bob in #team" && body == "standup?")
    ));
    updates(&mut app, vec![Update::Message(message("team", 6, "bob", "@alice are you there"))]);
    let team = room(&app, "team");
    assert_eq!((team.unread, team.mentioned, team.unread_from), (2, true, Some(Seq(5))));

    // On screen: no unread count, no bell.
    let effects = updates(&mut app, vec![Update::Message(message("lobby", 3, "bob", "quiet"))]);
    assert!(effects.is_empty());
    assert_eq!(room(&app, "lobby").unread, 0);

    key(&mut app, KeyCode::Char('2'), KeyModifiers::ALT);
    let team = room(&app, "team");
    assert_eq!((team.unread, team.mentioned, team.unread_from), (0, false, Some(Seq(5))));
    key(&mut app, KeyCode::Char('1'), KeyModifiers::ALT);
    assert_eq!(room(&app, "team").unread_from, None, "the marker goes when the room is left");
}

/// A mention rings even in the conversation on screen; a muted conversation
/// rings only for mentions.
#[test]
fn mute_silences_all_but_mentions() {
    let mut app = chat();
    assert_eq!(
        updates(&mut app, vec![Update::Message(message("lobby", 3, "bob", "alice: look"))])[0],
        Effect::Bell
    );
    key(&mut app, KeyCode::Char('2'), KeyModifiers::ALT);
    type_text(&mut app, "/mute");
    enter(&mut app);
    assert!(room(&app, "team").muted);
    key(&mut app, KeyCode::Char('1'), KeyModifiers::ALT);
    assert!(updates(&mut app, vec![Update::Message(message("team", 7, "bob", "chatter"))]).is_empty());
    assert_eq!(room(&app, "team").unread, 1, "still counted");
    assert!(!updates(&mut app, vec![Update::Message(message("team", 8, "bob", "alice!"))]).is_empty());
    assert!(!app.mentions_me("malice"), "a name inside a word is no mention");
}

/// A message deleted by anyone disappears from the timeline.
#[test]
fn a_deleted_message_disappears() {
    let mut app = chat();
    assert_eq!(room(&app, "lobby").messages().count(), 2);
    updates(&mut app, vec![Update::Deleted { room: "lobby".into(), id: MessageId(1001) }]);
    let texts: Vec<_> = room(&app, "lobby").messages().map(|m| m.text.clone().unwrap()).collect();
    assert_eq!(texts, ["hi bob"]);
}

/// `/delete` deletes the selected message, or else the user's last one.
#[test]
fn delete_targets_the_selection_or_the_last_own_message() {
    let mut app = chat();
    type_text(&mut app, "/delete");
    assert_eq!(
        enter(&mut app),
        [Effect::Command(Command::Delete { room: "lobby".into(), id: MessageId(1002) })]
    );
    key(&mut app, KeyCode::Up, KeyModifiers::ALT);
    key(&mut app, KeyCode::Up, KeyModifiers::ALT);
    assert_eq!(room(&app, "lobby").selected, Some(MessageId(1001)));
    type_text(&mut app, "/delete");
    assert_eq!(
        enter(&mut app),
        [Effect::Command(Command::Delete { room: "lobby".into(), id: MessageId(1001) })]
    );
}

/// "bob is typing…" shows for a few seconds after his last signal and goes
/// when his message arrives.
#[test]
fn typing_indicators_expire_and_clear_on_a_message() {
    let mut app = chat();
    let start = app.clock;
    updates(&mut app, vec![Update::Typing { room: "lobby".into(), user: "bob".into() }]);
    updates(&mut app, vec![Update::Typing { room: "team".into(), user: "carol".into() }]);
    assert_eq!(app.typing_here(), ["bob"]);
    app.update(AppEvent::Tick(start + Duration::from_secs(5)));
    assert_eq!(app.typing_here(), ["bob"]);
    app.update(AppEvent::Tick(start + Duration::from_secs(7)));
    assert!(app.typing_here().is_empty());
    updates(&mut app, vec![Update::Typing { room: "lobby".into(), user: "bob".into() }]);
    updates(&mut app, vec![Update::Message(message("lobby", 4, "bob", "done"))]);
    assert!(app.typing_here().is_empty());
}

/// Typing a message sends a typing signal at most every three seconds; a
/// command being typed sends none.
#[test]
fn typing_signals_are_throttled() {
    let mut app = chat();
    let start = app.clock;
    let typing = |effects: &[Effect]| {
        effects.iter().filter(|e| matches!(e, Effect::Command(Command::Typing { .. }))).count()
    };
    assert_eq!(typing(&type_text(&mut app, "hel")), 1);
    app.update(AppEvent::Tick(start + Duration::from_secs(2)));
    assert_eq!(typing(&type_text(&mut app, "lo")), 0);
    app.update(AppEvent::Tick(start + Duration::from_secs(3)));
    assert_eq!(typing(&type_text(&mut app, "!")), 1);
    key(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    app.update(AppEvent::Tick(start + Duration::from_secs(9)));
    assert_eq!(typing(&type_text(&mut app, "/help")), 0);
}

/// Scrolling up past the top of what is loaded asks for the page before the
/// oldest message, once.
#[test]
fn scrolling_to_the_top_loads_older_messages() {
    let mut app = chat();
    assert!(app.rooms[0].complete, "a first page shorter than asked is the whole local history");
    app.rooms[0].complete = false;
    app.rooms[0].view = View { total_lines: 40, height: 10 };
    assert!(key(&mut app, KeyCode::PageUp, KeyModifiers::NONE).is_empty());
    assert_eq!(app.rooms[0].scroll, 8);
    let effects: Vec<Effect> =
        (0..4).flat_map(|_| key(&mut app, KeyCode::PageUp, KeyModifiers::NONE)).collect();
    assert_eq!(
        effects,
        [Effect::Command(Command::Older { room: "lobby".into(), before: Seq(1), limit: OLDER_PAGE })]
    );
    assert_eq!(app.rooms[0].scroll, 30);
    app.update(AppEvent::Engine(EngineEvent::Older {
        room: "lobby".into(),
        messages: vec![message("lobby", 0, "carol", "first")],
        complete: true,
    }));
    let lobby = room(&app, "lobby");
    assert_eq!(lobby.messages().next().unwrap().text.as_deref(), Some("first"));
    assert!(lobby.complete && !lobby.loading_older);
    key(&mut app, KeyCode::PageDown, KeyModifiers::NONE);
    assert_eq!(app.rooms[0].scroll, 22);
}

/// Slash commands become engine commands for the conversation on screen.
#[test]
fn slash_commands_become_engine_commands() {
    let mut app = chat();
    let mut run = |line: &str| {
        type_text(&mut app, line);
        enter(&mut app)
    };
    assert_eq!(run("/join #ops"), [Effect::Command(Command::Join { room: "ops".into() })]);
    assert_eq!(
        run("/create ops --public"),
        [Effect::Command(Command::Create { name: "ops".into(), public: true })]
    );
    assert_eq!(
        run("/invite bob"),
        [Effect::Command(Command::Invite { room: "lobby".into(), users: vec!["bob".into()] })]
    );
    assert_eq!(run("/members"), [Effect::Command(Command::Members { room: "lobby".into() })]);
    assert_eq!(run("/devices"), [Effect::Command(Command::Devices)]);
    assert_eq!(run("/devices remove 7"), [Effect::Command(Command::RemoveDevice(DeviceId(7)))]);
    assert!(run("/leave").is_empty(), "the lobby cannot be left");
    assert_eq!(run("/dm carol"), [Effect::Command(Command::Direct { user: "carol".into() })]);
    assert_eq!(
        run("/dm bob"),
        [Effect::Command(Command::History { room: "@bob".into(), limit: HISTORY_PAGE })]
    );
    assert_eq!(run("/leave"), [Effect::Command(Command::Leave { room: "@bob".into() })]);
    assert_eq!(run("/quit"), [Effect::Quit]);
    assert!(run("/nonsense").is_empty());
    assert!(app.notice.as_ref().unwrap().text.contains("unknown command"));
}

/// Tab completes command names and then user names.
#[test]
fn tab_completes_commands_and_names() {
    let mut app = chat();
    type_text(&mut app, "/inv");
    key(&mut app, KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(app.composer.text(), "/invite ");
    type_text(&mut app, "ca");
    key(&mut app, KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(app.composer.text(), "/invite carol");
}

/// Presence changes live; a user selected in the sidebar opens the direct
/// conversation.
#[test]
fn presence_is_live_and_users_open_direct_conversations() {
    let mut app = chat();
    updates(&mut app, vec![Update::Presence(presence("carol", true))]);
    assert!(app.users.iter().find(|u| u.username == "carol").unwrap().online);
    key(&mut app, KeyCode::Char('o'), KeyModifiers::CONTROL);
    key(&mut app, KeyCode::Down, KeyModifiers::NONE);
    key(&mut app, KeyCode::Down, KeyModifiers::NONE);
    assert_eq!(enter(&mut app), [Effect::Command(Command::Direct { user: "carol".into() })]);
    let opened =
        app.update(AppEvent::Engine(EngineEvent::Opened { room: room_info("@carol", RoomKind::Direct) }));
    assert_eq!(opened, [Effect::Command(Command::History { room: "@carol".into(), limit: HISTORY_PAGE })]);
    assert_eq!(app.current().unwrap().name, "@carol");
}

/// A click on a conversation in the sidebar switches to it.
#[test]
fn clicking_the_sidebar_switches() {
    let mut app = chat();
    app.size = (80, 24);
    let click = |row| {
        AppEvent::Terminal(Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 3,
            row,
            modifiers: KeyModifiers::NONE,
        }))
    };
    // Row 0 is the heading; rows 1.. the conversations.
    app.update(click(3));
    assert_eq!(app.current().unwrap().name, "@bob");
    // Heading, three rooms, a blank, "Users", then alice, bob, carol.
    assert_eq!(app.update(click(8)), [Effect::Command(Command::Direct { user: "carol".into() })]);
    assert!(app.update(click(4)).is_empty(), "the blank row is no target");
}

/// The login form asks the engine to settle the server first, then logs in;
/// a first-contact fingerprint is asked about in between.
#[test]
fn login_form_settles_trust_then_logs_in() {
    let mut app = App::new(false, "", "", Instant::now());
    type_text(&mut app, "127.0.0.1:8443");
    enter(&mut app);
    type_text(&mut app, "Alice");
    enter(&mut app);
    type_text(&mut app, "pw");
    enter(&mut app);
    type_text(&mut app, "123456");
    let server: ServerAddress = "127.0.0.1:8443".parse().unwrap();
    assert_eq!(enter(&mut app), [Effect::Command(Command::CheckServer { server: server.clone() })]);
    let fingerprint: Fingerprint =
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".parse().unwrap();
    app.update(AppEvent::Engine(EngineEvent::UnknownServer { server: server.clone(), fingerprint }));
    assert!(app.trust.is_some());
    assert_eq!(
        type_text(&mut app, "y"),
        [Effect::Command(Command::TrustServer { server: server.clone(), fingerprint })]
    );
    let login = app.update(AppEvent::Engine(EngineEvent::ServerTrusted { server: server.clone() }));
    assert_eq!(
        login,
        [Effect::Command(Command::Login {
            server: server.clone(),
            user: "alice".into(),
            password: Secret("pw".into()),
            code: Secret("123456".into()),
        })]
    );
    assert!(!format!("{login:?}").contains("pw\""), "secrets stay out of Debug output");
    app.update(AppEvent::Engine(EngineEvent::AuthFailed { message: "login failed".into() }));
    assert!(matches!(&app.screen, Screen::Form(f) if f.error.as_deref() == Some("login failed") && !f.busy));
    app.update(AppEvent::Engine(EngineEvent::LoggedIn { user: "alice".into(), server }));
    assert_eq!(app.screen, Screen::Chat);
}

/// Registration: the form, then the QR enrolment with a confirming code, then
/// the recovery codes, then the chat.
#[test]
fn registration_enrols_totp_and_shows_recovery_codes() {
    let mut app = App::new(false, "127.0.0.1:8443", "", Instant::now());
    key(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
    type_text(&mut app, "dave");
    enter(&mut app);
    type_text(&mut app, "pw one");
    enter(&mut app);
    type_text(&mut app, "pw two");
    assert!(enter(&mut app).is_empty());
    assert!(matches!(&app.screen, Screen::Form(f) if f.error.as_deref() == Some("the passwords differ")));
    key(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    type_text(&mut app, "pw one");
    let server: ServerAddress = "127.0.0.1:8443".parse().unwrap();
    assert_eq!(enter(&mut app), [Effect::Command(Command::CheckServer { server: server.clone() })]);
    assert_eq!(
        app.update(AppEvent::Engine(EngineEvent::ServerTrusted { server: server.clone() })),
        [Effect::Command(Command::CheckRegistration { server: server.clone() })]
    );
    app.update(AppEvent::Engine(EngineEvent::Registration { server, mode: RegistrationMode::Open }));
    let Screen::Enrol(enrol) = &app.screen else { panic!("{:?}", app.screen) };
    assert_eq!(enrol.token, None);
    assert!(enrol.uri.starts_with("otpauth://totp/"), "{}", enrol.uri);
    let secret = enrol.secret.clone();
    type_text(&mut app, "12a3456");
    let effects = enter(&mut app);
    assert!(
        matches!(&effects[..], [Effect::Command(Command::Register { user, secret: s, code, .. })]
            if user == "dave" && s.0 == secret && code.0 == "123456"),
        "{effects:?}"
    );
    app.update(AppEvent::Engine(EngineEvent::Registered {
        recovery_codes: vec!["aaaa-bbbb-cccc-dddd".into()],
    }));
    app.update(AppEvent::Engine(EngineEvent::LoggedIn {
        user: "dave".into(),
        server: "127.0.0.1:8443".parse().unwrap(),
    }));
    assert!(matches!(app.screen, Screen::RecoveryCodes(_)), "the codes stay up until Enter");
    enter(&mut app);
    assert_eq!(app.screen, Screen::Chat);
}

/// A server that registers only by invitation gets a token field on the form,
/// and the token goes with the registration; a closed server is said to be
/// closed before anything is enrolled.
#[test]
fn registration_asks_for_a_token_only_when_the_server_needs_one() {
    let mut app = App::new(false, "127.0.0.1:8443", "", Instant::now());
    key(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
    for text in ["erin", "pw one", "pw one"] {
        type_text(&mut app, text);
        enter(&mut app);
    }
    let server: ServerAddress = "127.0.0.1:8443".parse().unwrap();
    app.update(AppEvent::Engine(EngineEvent::ServerTrusted { server: server.clone() }));
    app.update(AppEvent::Engine(EngineEvent::Registration {
        server: server.clone(),
        mode: RegistrationMode::Invite,
    }));
    let Screen::Form(form) = &app.screen else { panic!("{:?}", app.screen) };
    assert_eq!(form.fields.last().map(|f| f.label), Some(TOKEN_LABEL));
    assert_eq!(form.focus, form.fields.len() - 1, "the cursor waits in the token field");
    assert!(!form.busy && form.error.as_deref().is_some_and(|e| e.contains("registration token")));

    type_text(&mut app, "not a token");
    assert!(enter(&mut app).is_empty(), "a malformed token is refused on the form");
    key(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    let token = "0a1b2c3d4e5f-abcdefghijklmnopqrstuvwxyz";
    type_text(&mut app, token);
    assert_eq!(enter(&mut app), [Effect::Command(Command::CheckServer { server: server.clone() })]);
    app.update(AppEvent::Engine(EngineEvent::ServerTrusted { server: server.clone() }));
    app.update(AppEvent::Engine(EngineEvent::Registration {
        server: server.clone(),
        mode: RegistrationMode::Invite,
    }));
    let Screen::Enrol(enrol) = &app.screen else { panic!("{:?}", app.screen) };
    assert_eq!(enrol.token.as_deref(), Some(token));
    type_text(&mut app, "123456");
    let effects = enter(&mut app);
    assert!(
        matches!(&effects[..], [Effect::Command(Command::Register { token: Some(t), .. })] if t.0 == token),
        "{effects:?}"
    );

    let mut closed = App::new(false, "127.0.0.1:8443", "", Instant::now());
    key(&mut closed, KeyCode::Char('r'), KeyModifiers::CONTROL);
    for text in ["erin", "pw one", "pw one"] {
        type_text(&mut closed, text);
        enter(&mut closed);
    }
    closed.update(AppEvent::Engine(EngineEvent::ServerTrusted { server: server.clone() }));
    closed.update(AppEvent::Engine(EngineEvent::Registration { server, mode: RegistrationMode::Closed }));
    assert!(
        matches!(&closed.screen, Screen::Form(f) if f.error.as_deref().is_some_and(|e| e.contains("closed")) && f.fields.len() == 4),
        "{:?}",
        closed.screen
    );
}

/// A session that ended brings the login form back, pre-filled.
#[test]
fn an_ended_session_returns_to_the_login_form() {
    let mut app = chat();
    app.update(AppEvent::Engine(EngineEvent::SessionEnded { message: "revoked".into() }));
    let Screen::Form(form) = &app.screen else { panic!() };
    assert_eq!(
        (form.value(0), form.value(1), form.error.as_deref()),
        ("127.0.0.1:8443", "alice", Some("revoked"))
    );
    assert!(app.rooms.is_empty());
}

/// SIGTERM, Ctrl-C and `/quit` all end the program through the same path.
#[test]
fn termination_quits() {
    let mut app = chat();
    assert_eq!(app.update(AppEvent::Terminate), [Effect::Quit]);
    assert_eq!(key(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL), [Effect::Quit]);
}
