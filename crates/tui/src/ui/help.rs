//! `/help` and F1: keys and commands.

use super::layout::centered;
use crate::action::COMMANDS;
use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph},
};

const KEYS: &[(&str, &str)] = &[
    ("Enter", "send / run a command"),
    ("Alt-Enter", "new line in the message"),
    ("Ctrl-N / Ctrl-P", "next / previous conversation"),
    ("Alt-1..9, click", "go to a conversation"),
    ("PgUp / PgDn, wheel", "scroll (older messages load)"),
    ("Alt-Up / Alt-Down", "select a message (for /delete)"),
    ("Ctrl-O, click a user", "direct conversation with a user"),
    ("Tab", "complete a command or name"),
    ("Esc", "close, clear selection, back to newest"),
    ("Ctrl-C", "quit"),
];

/// Draws the help window.
pub fn draw(frame: &mut Frame<'_>, area: Rect) {
    let key = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let mut lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:<21}"), key), Span::raw(*what)]))
        .collect();
    // The blank line between keys and commands goes first when the terminal
    // is too short for everything (80x24 shows every line without it).
    if usize::from(area.height) >= KEYS.len() + COMMANDS.len() + 3 {
        lines.push(Line::default());
    }
    lines.extend(COMMANDS.iter().map(|(command, args, what)| {
        Line::from(vec![Span::styled(format!("{:<21}", format!("{command} {args}")), key), Span::raw(*what)])
    }));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, 76, height);
    frame.render_widget(Clear, rect);
    let block = Block::new().borders(Borders::ALL).title(" Help — Esc closes ");
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
