//! `/devices`: the user's devices, this one marked, with how to remove one.

use super::{clean, layout::centered};
use crate::timestamp::{day, day_label, hour_minute};
use conclave_proto::DeviceInfo;
use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph},
};

/// Draws the devices window.
pub fn draw(frame: &mut Frame<'_>, area: Rect, devices: &[DeviceInfo]) {
    let mut lines: Vec<Line<'_>> = devices
        .iter()
        .map(|d| {
            let used_ms = d.last_bound_at.saturating_mul(1000);
            let mut spans = vec![
                Span::styled(format!("{:>6}", d.id), Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!("  {} {}", day_label(day(used_ms)), hour_minute(used_ms))),
                Span::raw(format!("  {}", clean(&d.client))),
            ];
            if d.current {
                spans.push(Span::styled("  (this device)", Style::new().add_modifier(Modifier::ITALIC)));
            }
            Line::from(spans)
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw("/devices remove ID signs a lost device out of every room"));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, 64, height);
    frame.render_widget(Clear, rect);
    let block = Block::new().borders(Borders::ALL).title(" Your devices (last used, UTC) — Esc closes ");
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
