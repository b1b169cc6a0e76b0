//! The input line at the bottom: the message being typed (several lines with
//! Alt-Enter), and completion hints for `/commands`.

use crate::app::App;
use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph},
};
use unicode_width::UnicodeWidthStr;

/// Draws the composer; returns where the terminal cursor goes.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) -> (u16, u16) {
    let room = app.current().map(|r| super::clean(&r.label())).unwrap_or_default();
    let hint = if app.user_focus.is_some() {
        " ↑/↓ pick a user · Enter: direct conversation · Esc: back ".to_owned()
    } else {
        format!(" {room} · Enter send · Alt-Enter new line · Tab complete ")
    };
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(Style::new().fg(Color::DarkGray))
        .title(Span::styled(hint, Style::new().fg(Color::DarkGray)));
    let inner = block.inner(area);
    let (lines, (line, column)) = app.composer.lines_and_cursor();
    let height = usize::from(inner.height.max(1));
    // Keep the cursor's line visible when the text is taller than the box.
    let first = (line + 1).saturating_sub(height);
    let prompt = "> ";
    let width = usize::from(inner.width).saturating_sub(prompt.len());
    let cursor_prefix: String = lines.get(line).map(|l| l.chars().take(column).collect()).unwrap_or_default();
    let cursor_col = cursor_prefix.width();
    // Scroll a long line horizontally so the cursor stays in view.
    let skip_cols = cursor_col.saturating_sub(width.saturating_sub(1));
    let shown: Vec<Line<'_>> = lines
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, text)| {
            let lead = if i == 0 { prompt } else { "  " };
            let visible: String = skip_columns(text, if i == line { skip_cols } else { 0 });
            Line::from(vec![Span::styled(lead, Style::new().fg(Color::DarkGray)), Span::raw(visible)])
        })
        .collect();
    frame.render_widget(Paragraph::new(shown).block(block), area);
    let x = inner.x + u16::try_from(prompt.len() + cursor_col - skip_cols).unwrap_or(0);
    let y = inner.y + u16::try_from(line - first).unwrap_or(0);
    (x.min(inner.right().saturating_sub(1)), y)
}

fn skip_columns(text: &str, columns: usize) -> String {
    let mut skipped = 0;
    text.chars()
        .skip_while(|c| {
            if skipped >= columns {
                return false;
            }
            skipped += unicode_width::UnicodeWidthChar::width(*c).unwrap_or(0);
            true
        })
        .collect()
}
