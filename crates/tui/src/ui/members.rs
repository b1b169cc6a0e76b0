//! `/members`: who is in the conversation, owner first.

use super::{clean, layout::centered, nick};
use conclave_proto::MemberInfo;
use ratatui::{
    Frame,
    layout::Rect,
    style::Style,
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph},
};

/// Draws the members window.
pub fn draw(frame: &mut Frame<'_>, area: Rect, room: &str, members: &[MemberInfo]) {
    let mut sorted: Vec<&MemberInfo> = members.iter().collect();
    sorted.sort_by_key(|m| (!m.owner, m.username.clone()));
    let lines: Vec<Line<'_>> = sorted
        .iter()
        .map(|m| {
            let devices = m.devices.len();
            Line::from(vec![
                Span::styled(clean(&m.username), Style::new().fg(nick::colour(&m.username))),
                Span::raw(if m.owner { "  (owner)" } else { "" }),
                Span::raw(format!("  {devices} device{}", if devices == 1 { "" } else { "s" })),
            ])
        })
        .collect();
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, 50, height);
    frame.render_widget(Clear, rect);
    let label = if room.starts_with('@') { clean(room) } else { format!("#{}", clean(room)) };
    let block = Block::new().borders(Borders::ALL).title(format!(" Members of {label} — Esc closes "));
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
