//! `conclave chat`: Conclave's full-screen terminal client, built with ratatui
//! and crossterm on the same client library as the CLI.
//!
//! ```text
//!  terminal input ─┐
//!  ticks, signals ─┼─▶ one bounded channel ─▶ App::update (pure) ─▶ effects
//!  engine events ──┘                                    │             │
//!        ▲                                              ▼             ▼
//!        └──────── Engine task (owns the Messenger) ◀─ commands    bell, notify
//! ```
//!
//! The [`app::App`] holds all UI state and changes only in
//! [`app::App::update`], which is pure and unit-tested. The [`engine::Engine`]
//! owns the network connection and reconnects by itself. Widgets borrow the
//! state for one frame; nothing is shared behind a lock.
//!
//! # Layout
//! * [`app`] — [`app::App`], events, effects; `composer`, `room`, `forms`.
//! * [`action`] — what keys and `/commands` mean.
//! * [`keymap`] — key → action.
//! * [`event`] — the event sources merged into one channel.
//! * [`engine`] — the network task: login, trust, reconnects, commands.
//! * [`ui`] — widgets, one per file, and the layout.
//! * [`terminal`] — taking over the terminal and restoring it (also on panic).
//! * [`notify`] — bell and desktop notifications.
//! * [`timestamp`] — times and days for the timeline.
//! * [`error`] — [`Error`].

#![warn(missing_docs)]

pub mod action;
pub mod app;
pub mod engine;
pub mod error;
pub mod event;
pub mod keymap;
pub mod notify;
pub mod terminal;
pub mod timestamp;
pub mod ui;

pub use engine::TrustOptions;
pub use error::Error;

use app::{App, AppEvent, Effect};
use conclave_client::{Home, ServerAddress};
use engine::{Engine, EngineEvent};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How `conclave chat` was started.
#[derive(Debug)]
pub struct Options {
    /// The client home (saved session, known servers, device, history).
    pub home: Home,
    /// `--ca-file` / `--accept-fingerprint`.
    pub trust: TrustOptions,
    /// Pre-fills the login form.
    pub server: Option<ServerAddress>,
    /// Pre-fills the login form.
    pub user: Option<String>,
}

/// Commands waiting for the engine; more than this and the user is told the
/// client is busy (the text stays in the composer).
const COMMAND_CAPACITY: usize = 64;
/// How long the engine may take to close its connection at exit.
const ENGINE_STOP: Duration = Duration::from_secs(2);

/// Runs the terminal UI until the user quits, SIGTERM or SIGHUP.
///
/// # Errors
/// When the terminal cannot be used, or the client home cannot be read.
pub async fn run(options: Options) -> Result<(), Error> {
    let saved = options.home.load_session()?;
    let (server, user) = match &saved {
        Some(s) => (s.server.clone(), s.username.clone()),
        None => (
            options.server.as_ref().map(ToString::to_string).unwrap_or_default(),
            options.user.clone().unwrap_or_default(),
        ),
    };
    let mut app = App::new(saved.is_some(), &server, &user, tokio::time::Instant::now());

    let (events_tx, mut events) = mpsc::channel(event::CAPACITY);
    let (commands, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (stop, shutdown) = watch::channel(false);
    let mut guard = terminal::enter()?;
    let size = guard.terminal.size()?;
    app.size = (size.width, size.height);

    event::spawn_sources(&events_tx, &shutdown);
    let engine =
        tokio::spawn(Engine::new(options.home, options.trust, commands_rx, events_tx, shutdown).run());
    let notifier = notify::Notifier::detect();

    let result = async {
        loop {
            guard.terminal.draw(|frame| ui::draw(frame, &mut app))?;
            let Some(event) = events.recv().await else { return Ok(()) };
            let mut effects = app.update(event);
            // Take everything that is already waiting before drawing again, so a
            // burst (a catch-up, a paste) costs one frame.
            while let Ok(event) = events.try_recv() {
                effects.extend(app.update(event));
            }
            for effect in effects {
                match effect {
                    Effect::Command(command) => {
                        if let Err(err) = commands.try_send(command) {
                            let refused = err.into_inner();
                            let event = match refused {
                                engine::Command::Send { room, text } => EngineEvent::SendFailed {
                                    room,
                                    text,
                                    error: "the client is busy".to_owned(),
                                },
                                _ => EngineEvent::Failed("the client is busy; try again".to_owned()),
                            };
                            app.update(AppEvent::Engine(event));
                        }
                    }
                    Effect::Bell => notifier.bell(),
                    Effect::Notify { title, body } => notifier.notify(&title, &body),
                    Effect::Quit => return Ok::<(), Error>(()),
                }
            }
        }
    }
    .await;

    stop.send(true).ok();
    drop(commands);
    tokio::time::timeout(ENGINE_STOP, engine).await.ok();
    drop(guard);
    result
}
