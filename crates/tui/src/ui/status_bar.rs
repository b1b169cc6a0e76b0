//! The status bar: connection state (with the reconnection count-down), user,
//! server, and the latest notice.

use super::clean;
use crate::{
    app::{App, Level},
    engine::ConnState,
};
use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Paragraph, Widget},
};

/// The bottom line.
pub struct StatusBar<'a> {
    /// What it shows.
    pub app: &'a App,
}

/// The connection state in words, with its colour.
#[must_use]
pub fn connection(app: &App) -> (String, Color) {
    match &app.conn {
        ConnState::Connected => ("● connected".to_owned(), Color::Green),
        ConnState::Connecting => ("◌ connecting…".to_owned(), Color::Yellow),
        ConnState::LoggedOut => ("○ offline".to_owned(), Color::Red),
        ConnState::Reconnecting { at, .. } => {
            let left = at.saturating_duration_since(app.clock);
            // Round up: "in 0 s" would read as stuck.
            let secs = left.as_millis().div_ceil(1000);
            (format!("↻ reconnecting in {secs} s"), Color::Yellow)
        }
    }
}

impl Widget for StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let base = Style::new().bg(Color::DarkGray).fg(Color::White);
        let (state, colour) = connection(app);
        let mut spans = vec![
            Span::styled(format!(" {state} "), base.fg(colour).add_modifier(Modifier::BOLD)),
            Span::styled(format!("│ {}@{} ", clean(&app.me), clean(&app.server)), base),
        ];
        match &app.notice {
            Some(notice) => {
                let colour = if notice.level == Level::Error { Color::LightRed } else { Color::White };
                spans.push(Span::styled(
                    format!("│ {}", clean(&notice.text).replace('\n', " ")),
                    base.fg(colour),
                ));
            }
            None => match &app.conn {
                ConnState::Reconnecting { reason, .. } if !reason.is_empty() => {
                    spans.push(Span::styled(format!("│ {}", clean(reason).replace('\n', " ")), base));
                }
                _ => spans.push(Span::styled("│ F1 help · Ctrl-N/P switch · /quit", base)),
            },
        }
        Paragraph::new(Line::from(spans)).style(base).render(area, buf);
    }
}
