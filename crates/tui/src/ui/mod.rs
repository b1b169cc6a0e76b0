//! Drawing: one widget per file, each a short-lived struct borrowing the
//! state it shows. [`draw`] puts the screen together.
//!
//! Every string that came from the network goes through [`clean`] (the client
//! library's `sanitize`) before it reaches a cell: ratatui writes whatever it
//! is given, escape sequences included.

pub mod composer;
pub mod devices;
pub mod help;
pub mod layout;
pub mod login;
pub mod members;
pub mod nick;
pub mod register;
pub mod sidebar;
pub mod status_bar;
#[cfg(test)]
mod tests;
pub mod timeline;
pub mod trust;

use crate::app::{App, Overlay, Screen};
use layout::Areas;
use ratatui::Frame;

/// Untrusted text made safe for the terminal: escape sequences and control
/// characters stripped, tabs widened.
#[must_use]
pub fn clean(text: &str) -> String {
    conclave_client::text::sanitize(text).replace('\t', "    ")
}

/// Draws the whole screen. Takes the state mutably only to record what the
/// timeline measured (for scrolling).
pub fn draw(frame: &mut Frame<'_>, app: &mut App) {
    let area = frame.area();
    match &app.screen {
        Screen::Form(form) => login::draw(frame, area, form),
        Screen::Enrol(enrol) => register::draw_enrolment(frame, area, enrol),
        Screen::RecoveryCodes(codes) => register::draw_recovery_codes(frame, area, codes),
        Screen::Chat => draw_chat(frame, app),
    }
    if let Some(prompt) = &app.trust {
        trust::draw(frame, area, prompt);
    }
}

fn draw_chat(frame: &mut Frame<'_>, app: &mut App) {
    let area = frame.area();
    let composer_lines = u16::try_from(app.composer.lines_and_cursor().0.len()).unwrap_or(u16::MAX);
    let areas = Areas::new(area.width, area.height, composer_lines);
    frame.render_widget(sidebar::Sidebar { app }, areas.sidebar);
    let me = app.me.clone();
    if let Some(room) = app.rooms.get_mut(app.selected) {
        let mut state = timeline::TimelineState { scroll: room.scroll, view: room.view };
        frame.render_stateful_widget(timeline::Timeline { room, me: &me }, areas.timeline, &mut state);
        room.scroll = state.scroll;
        room.view = state.view;
    } else {
        frame.render_widget(timeline::Empty, areas.timeline);
    }
    frame.render_widget(timeline::TypingLine { users: &app.typing_here() }, areas.typing);
    let cursor = composer::draw(frame, areas.composer, app);
    frame.render_widget(status_bar::StatusBar { app }, areas.status);
    match &app.overlay {
        Some(Overlay::Help) => help::draw(frame, area),
        Some(Overlay::Members { room, members }) => members::draw(frame, area, room, members),
        Some(Overlay::Devices(list)) => devices::draw(frame, area, list),
        None if app.trust.is_none() && app.user_focus.is_none() => frame.set_cursor_position(cursor),
        None => {}
    }
}
