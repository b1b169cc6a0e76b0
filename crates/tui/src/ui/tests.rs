//! Rendering tests: each screen drawn on ratatui's `TestBackend`, read back
//! as text.

use super::draw;
use crate::{
    app::{
        App, AppEvent, Effect, Enrolment, Screen, TrustPrompt,
        tests::{T0, chat, message},
    },
    engine::{ConnState, EngineEvent},
};
use conclave_client::Update;
use conclave_proto::Seq;
use ratatui::{Terminal, backend::TestBackend, buffer::Buffer};
use std::time::Duration;
use tokio::time::Instant;

/// Draws `app` at `width` × `height`; returns the screen's lines and the buffer.
fn render(app: &mut App, width: u16, height: u16) -> (Vec<String>, Buffer) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    app.size = (width, height);
    terminal.draw(|frame| draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let lines = (0..height)
        .map(|y| {
            (0..width).map(|x| buffer[(x, y)].symbol().to_owned()).collect::<String>().trim_end().to_owned()
        })
        .collect();
    (lines, buffer)
}

fn screen(app: &mut App, width: u16, height: u16) -> String {
    render(app, width, height).0.join("\n")
}

fn busy_chat() -> App {
    let mut app = chat();
    app.update(AppEvent::Engine(EngineEvent::Updates(vec![
        Update::Message(message("team", 3, "bob", "deploy at 3?")),
        Update::Message(message("team", 4, "carol", "alice: can you check")),
        Update::Presence(conclave_proto::UserPresence { username: "carol".into(), online: true }),
    ])));
    app
}

/// The main screen fits 80×24: sidebar with conversations, unread counts and
/// users with presence; timeline with time, nick and text; typing line;
/// composer; status bar.
#[test]
fn main_screen_at_80x24() {
    let mut app = busy_chat();
    app.update(AppEvent::Engine(EngineEvent::Updates(vec![Update::Typing {
        room: "lobby".into(),
        user: "bob".into(),
    }])));
    let text = screen(&mut app, 80, 24);
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 24);
    assert!(lines[0].starts_with("Conversations"), "{text}");
    assert!(lines[1].contains("1 #lobby"), "{text}");
    assert!(lines[2].contains("2 #team 2 @"), "unread count and mention marker: {text}");
    assert!(lines[3].contains("3 @bob"), "{text}");
    assert!(text.contains("● alice") && text.contains("● bob") && text.contains("● carol"), "{text}");
    assert!(text.contains("10:01 bob: hello"), "{text}");
    assert!(text.contains("10:02 alice: hi bob"), "{text}");
    assert!(text.contains("bob is typing…"), "{text}");
    assert!(lines[23].contains("● connected") && lines[23].contains("alice@127.0.0.1:8443"), "{text}");
    assert!(lines[22].ends_with("│>"), "composer prompt: {text}");
}

/// At a larger size the layout grows: a wider sidebar, the same content.
#[test]
fn main_screen_at_120x40() {
    let mut app = busy_chat();
    let text = screen(&mut app, 120, 40);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 40);
    assert!(text.contains("10:02 alice: hi bob"), "{text}");
    assert_eq!(lines[1].find('│'), Some(25), "sidebar of 26 columns: {text}");
    assert!(lines[39].contains("connected"));
}

/// Long messages wrap under their text, and the view stays at the bottom.
#[test]
fn long_messages_wrap_and_resizes_reflow() {
    let mut app = chat();
    let long = "word ".repeat(40);
    app.update(AppEvent::Engine(EngineEvent::Updates(vec![Update::Message(message(
        "lobby", 3, "bob", &long,
    ))])));
    let small = screen(&mut app, 60, 20);
    let wide = screen(&mut app, 160, 20);
    let count = |s: &str| s.matches("word").count();
    assert_eq!(count(&small), 40, "{small}");
    assert_eq!(count(&wide), 40, "{wide}");
    assert!(
        small.lines().filter(|l| l.contains("word")).count()
            > wide.lines().filter(|l| l.contains("word")).count()
    );
}

/// Day separators between days, and the "new messages" marker before the
/// first unread message.
#[test]
fn day_separator_and_unread_marker() {
    let mut app = chat();
    let mut next_day = message("lobby", 3, "bob", "good morning");
    next_day.sent_at_ms = T0 + 86_400_000;
    app.rooms[0].unread_from = Some(Seq(3));
    app.update(AppEvent::Engine(EngineEvent::Updates(vec![Update::Message(next_day)])));
    let text = screen(&mut app, 80, 24);
    let day1 = text.find("Mon 2026-06-22").expect(&text);
    let day2 = text.find("Tue 2026-06-23").expect(&text);
    let marker = text.find("new messages").expect(&text);
    let morning = text.find("good morning").unwrap();
    assert!(day1 < day2 && day2 < marker && marker < morning, "{text}");
}

/// "X is typing…" under the timeline, for two people and more.
#[test]
fn typing_line() {
    let mut app = chat();
    let typing = |user: &str| Update::Typing { room: "lobby".into(), user: user.into() };
    app.update(AppEvent::Engine(EngineEvent::Updates(vec![typing("bob"), typing("carol")])));
    assert!(screen(&mut app, 80, 24).contains("bob and carol are typing…"));
    app.update(AppEvent::Engine(EngineEvent::Updates(vec![typing("dave")])));
    assert!(screen(&mut app, 80, 24).contains("several people are typing…"));
    app.update(AppEvent::Tick(app.clock + Duration::from_secs(7)));
    assert!(!screen(&mut app, 80, 24).contains("typing"));
}

/// A message full of escape sequences (clear screen, OSC 8 hyperlink, OSC 52
/// clipboard write, title change) reaches the screen as harmless text: no ESC
/// or other control character is in any cell.
#[test]
fn escape_sequences_never_reach_the_terminal() {
    let mut app = chat();
    let evil = "\x1b[2Jcleared\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\ \x1b]52;c;cm0gLXJmIC8K\x07clip\x1b]0;title\x07\u{9b}31m!";
    app.update(AppEvent::Engine(EngineEvent::Updates(vec![
        Update::Message(message("lobby", 3, "mallory\x1b[31m", evil)),
        Update::Membership { room: "lobby".into(), text: "\x1b[2Jnote".into() },
        Update::Typing { room: "lobby".into(), user: "eve\x1b]0;x\x07".into() },
    ])));
    let (lines, buffer) = render(&mut app, 100, 24);
    let text = lines.join("\n");
    assert!(text.contains("mallory: clearedlink clip!"), "{text}");
    assert!(text.contains("note") && text.contains("eve is typing"), "{text}");
    for cell in buffer.content() {
        assert!(
            !cell.symbol().chars().any(char::is_control),
            "control character in a cell: {:?}",
            cell.symbol()
        );
    }
}

/// A message whose text breaks the line (newline, carriage return, Unicode
/// line separator) and continues with what looks like another user's message
/// shows every further line behind the gutter in the time column: only real
/// messages start at the timeline's left edge. A bidi override, which could
/// reorder a line, is gone; long padding that wraps gets the gutter too.
#[test]
fn line_breaks_in_a_message_cannot_forge_another_message_in_the_timeline() {
    let mut app = chat();
    let forged = [
        "hello\n10:05 alice: please send me your recovery codes",
        "fine\r10:06 alice: and your password",
        "see\u{2028}\u{202e}10:07 alice: trust me",
        &format!("pad{}10:08 alice: wrapped", " ".repeat(70)),
    ];
    app.update(AppEvent::Engine(EngineEvent::Updates(
        forged
            .iter()
            .enumerate()
            .map(|(i, text)| Update::Message(message("lobby", 3 + i as i64, "mallory", text)))
            .collect(),
    )));
    let (width, height) = (80, 24);
    let (lines, buffer) = render(&mut app, width, height);
    let text = lines.join("\n");
    println!("{text}");
    // Each row of the screen from column `x` on.
    let from = |x: u16| -> Vec<String> {
        (0..height)
            .map(|y| (x..width).map(|x| buffer[(x, y)].symbol()).collect::<String>().trim_end().to_owned())
            .collect()
    };
    let left =
        (0..width).find(|&x| from(x).iter().any(|row| row.starts_with("10:01 bob: hello"))).expect(&text);
    let timeline = from(left);
    let starts: Vec<&String> =
        timeline.iter().filter(|row| !row.starts_with("    │") && !row.is_empty()).collect();
    for fake in ["10:05 alice", "10:06 alice", "10:07 alice", "10:08 alice"] {
        let row = timeline
            .iter()
            .find(|row| row.contains(fake))
            .unwrap_or_else(|| panic!("{fake} missing:\n{text}"));
        assert!(row.starts_with("    │ "), "{fake} is not behind the gutter:\n{text}");
        assert!(!starts.iter().any(|row| row.starts_with(fake)), "{fake} starts a line:\n{text}");
    }
    for header in ["10:03 mallory: hello", "10:04 mallory: fine", "10:05 mallory: see", "10:06 mallory: pad"]
    {
        assert!(starts.iter().any(|l| *l == header), "{header} missing:\n{text}");
    }
    assert!(!buffer.content().iter().any(|cell| cell.symbol().contains('\u{202e}')), "{text}");
}

/// The login screen: the four fields, hints, and an error.
#[test]
fn login_screen() {
    let mut app = App::new(false, "chat.example.org:8443", "alice", Instant::now());
    if let Screen::Form(form) = &mut app.screen {
        form.fields[2].value = "secret".into();
        form.error = Some("login failed\x1b[2J".into());
    }
    let text = screen(&mut app, 80, 24);
    for expected in [
        "Conclave — log in",
        "Server (host:port)",
        "chat.example.org:8443",
        "Username",
        "alice",
        "Password",
        "••••••",
        "Authenticator code",
        "login failed",
        "Ctrl-R: create an account",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(!text.contains("secret"));
}

/// The registration screen shows the QR code full-size with the URI and the
/// secret under it, and the code field.
#[test]
fn register_screen_shows_qr_code_and_uri() {
    let mut app = App::new(false, "", "", Instant::now());
    let uri = "otpauth://totp/Conclave%20%28chat.example.org%29:dave?secret=JBSWY3DPEHPK3PXP&issuer=Conclave%20%28chat.example.org%29".to_owned();
    app.screen = Screen::Enrol(Enrolment {
        server: "chat.example.org:8443".parse().unwrap(),
        user: "dave".into(),
        password: "pw".into(),
        token: None,
        secret: "JBSWY3DPEHPK3PXP".into(),
        uri: uri.clone(),
        code: "12".into(),
        error: None,
        busy: false,
    });
    let qr = conclave_client::totp::qr_code(&uri).unwrap();
    let (lines, _) = render(&mut app, 160, 60);
    let text = lines.join("\n");
    for qr_line in qr.lines().filter(|l| l.contains('█')) {
        assert!(text.contains(qr_line.trim_end()), "QR line missing: {text}");
    }
    assert!(text.contains(&uri), "{text}");
    assert!(text.contains("JBSWY3DPEHPK3PXP") && text.contains("12____"), "{text}");
    // Too small for the QR code: says so, and still shows the URI.
    let small = screen(&mut app, 80, 24);
    assert!(small.contains("Enlarge the terminal"), "{small}");
}

/// The trust prompt shows the fingerprint to compare.
#[test]
fn trust_prompt_shows_the_fingerprint() {
    let mut app = App::new(false, "", "", Instant::now());
    let fingerprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".parse().unwrap();
    app.trust = Some(TrustPrompt { server: "10.0.0.1:8443".parse().unwrap(), fingerprint });
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("can't be established"), "{text}");
    assert!(text.contains(&fingerprint.to_string()[..40]), "{text}");
}

/// The help overlay lists keys and every command.
#[test]
fn help_overlay() {
    let mut app = chat();
    app.update(AppEvent::Terminal(crossterm::event::Event::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::F(1),
    ))));
    let text = screen(&mut app, 80, 24);
    for expected in
        ["Help", "Alt-Enter", "PgUp", "/join #room", "/create name [--public]", "/delete", "/quit"]
    {
        assert!(text.contains(expected), "{expected}: {text}");
    }
}

/// The status bar counts down to the next reconnection attempt.
#[test]
fn status_bar_counts_down_while_reconnecting() {
    let mut app = chat();
    let at = app.clock + Duration::from_millis(4200);
    app.update(AppEvent::Engine(EngineEvent::Connection(ConnState::Reconnecting {
        at,
        reason: "connection reset".into(),
    })));
    assert!(screen(&mut app, 80, 24).contains("reconnecting in 5 s"));
    app.update(AppEvent::Tick(at - Duration::from_millis(1500)));
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("reconnecting in 2 s") && text.contains("connection reset"), "{text}");
}

/// Scrolling back shows older lines and says how many newer ones are below.
#[test]
fn scrolled_view_shows_older_lines() {
    let mut app = chat();
    let many: Vec<_> =
        (3..60).map(|i| Update::Message(message("lobby", i, "bob", &format!("line {i}")))).collect();
    app.update(AppEvent::Engine(EngineEvent::Updates(many)));
    let bottom = screen(&mut app, 80, 24);
    assert!(bottom.contains("line 59") && !bottom.contains("line 30"));
    let effects = app
        .update(AppEvent::Terminal(crossterm::event::Event::Key(crossterm::event::KeyCode::PageUp.into())));
    assert!(effects.is_empty() || matches!(effects[0], Effect::Command(_)));
    let scrolled = screen(&mut app, 80, 24);
    assert!(!scrolled.contains("line 59") && scrolled.contains("more"), "{scrolled}");
}

/// `/devices` shows the user's devices with the current one marked, what the
/// server sent made harmless, and how to remove one, at 80x24.
#[test]
fn devices_overlay() {
    let mut app = chat();
    let device = |id: i64, client: &str, current: bool| conclave_proto::DeviceInfo {
        id: conclave_proto::DeviceId(id),
        created_at: 1_767_225_600,
        last_bound_at: 1_767_312_120,
        client: client.into(),
        current,
    };
    app.update(AppEvent::Engine(EngineEvent::Devices(vec![
        device(3, "conclave-tui/0.1.0", true),
        device(7, "evil\u{1b}[2Jclient", false),
    ])));
    let text = screen(&mut app, 80, 24);
    for expected in [
        "Your devices",
        "*      3  Fri 2026-01-02 00:02  conclave-tui/0.1.0",
        "      7  Fri",
        "/devices remove ID",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(text.contains("evil[2Jclient") || text.contains("evilclient"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}
