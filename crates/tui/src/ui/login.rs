//! The login and registration forms.

use super::{clean, layout::centered};
use crate::app::{Form, FormKind};
use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Wrap},
};

/// Draws `form` in the middle of `area`.
pub fn draw(frame: &mut Frame<'_>, area: Rect, form: &Form) {
    let title = match form.kind {
        FormKind::Login => " Conclave — log in ",
        FormKind::Register => " Conclave — create an account ",
    };
    let mut lines = vec![Line::default()];
    let label_width = form.fields.iter().map(|f| f.label.len()).max().unwrap_or(0);
    let mut cursor = None;
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let value =
            if field.secret { "•".repeat(field.value.chars().count()) } else { field.value.clone() };
        let style = if focused { Style::new().add_modifier(Modifier::BOLD) } else { Style::new() };
        let marker = if focused { "▸ " } else { "  " };
        if focused {
            cursor = Some((
                lines.len(),
                2 + label_width + 2 + unicode_width::UnicodeWidthStr::width(value.as_str()),
            ));
        }
        lines.push(Line::from(vec![
            Span::styled(marker, Style::new().fg(Color::Cyan)),
            Span::styled(format!("{:label_width$}  ", field.label), style),
            Span::styled(value, Style::new().fg(Color::White).add_modifier(Modifier::UNDERLINED)),
        ]));
    }
    lines.push(Line::default());
    if form.busy {
        lines.push(Line::styled("  connecting…", Style::new().fg(Color::Yellow)));
    } else if let Some(error) = &form.error {
        lines.push(Line::styled(format!("  {}", clean(error)), Style::new().fg(Color::LightRed)));
    } else {
        lines.push(Line::default());
    }
    lines.push(Line::default());
    let other = match form.kind {
        FormKind::Login => "Ctrl-R: create an account instead",
        FormKind::Register => "Ctrl-R: log in instead",
    };
    let dim = Style::new().fg(Color::DarkGray);
    lines.push(Line::styled("  Enter: next field / submit · Tab, ↑/↓: move", dim));
    lines.push(Line::styled(format!("  {other} · Ctrl-C: quit"), dim));
    if form.kind == FormKind::Login {
        lines.push(Line::styled("  The code may also be a recovery code (abcd-efgh-ijkl-mnop).", dim));
    }
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, 72, height);
    frame.render_widget(Clear, rect);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title, Style::new().add_modifier(Modifier::BOLD)));
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), rect);
    if let Some((row, col)) = cursor
        && !form.busy
    {
        let x = rect.x + 1 + u16::try_from(col).unwrap_or(0);
        let y = rect.y + 1 + u16::try_from(row).unwrap_or(0);
        frame.set_cursor_position((x.min(rect.right().saturating_sub(2)), y));
    }
}
