//! The first-contact prompt: the fingerprint of a server's public key to compare
//! with the one the server printed, like ssh's.

use super::{clean, layout::centered};
use crate::app::TrustPrompt;
use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Block, Borders, Clear, Paragraph, Wrap},
};

/// Draws the prompt over whatever is on screen.
pub fn draw(frame: &mut Frame<'_>, area: Rect, prompt: &TrustPrompt) {
    let fingerprint = prompt.fingerprint.to_string();
    let lines = vec![
        Line::raw(format!(
            "The authenticity of server {} can't be established.",
            clean(&prompt.server.to_string())
        )),
        Line::default(),
        Line::raw("Public key SHA-256 fingerprint:"),
        Line::styled(fingerprint, Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)),
        Line::default(),
        Line::raw("Compare it with the fingerprint the server printed at startup (ask its operator)."),
        Line::default(),
        Line::styled("Trust it?  y: yes, remember it   n: no", Style::new().add_modifier(Modifier::BOLD)),
    ];
    let rect = centered(area, 78, 12);
    frame.render_widget(Clear, rect);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(" Unknown server ")
        .border_style(Style::new().fg(Color::Yellow));
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), rect);
}
