//! `/devices`: the user's devices, this one marked `*`, with how to remove one.

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
            Line::from(vec![
                Span::raw(if d.current { "* " } else { "  " }),
                Span::styled(format!("{:>6}", d.id), Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!("  {} {}", day_label(day(used_ms)), hour_minute(used_ms))),
                Span::raw(format!("  {}", clean(&d.client))),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "* this device · /devices remove ID signs a lost one out of every room",
        Style::new().add_modifier(Modifier::ITALIC),
    ));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, 76, height);
    frame.render_widget(Clear, rect);
    let block = Block::new().borders(Borders::ALL).title(" Your devices (last used, UTC) — Esc closes ");
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
