//! The message pane: timestamps, nicknames in their colours, day separators,
//! the "new messages" marker, and scrolling over everything loaded.
//!
//! Only a message's first line starts at the left edge: every further line of
//! it, whether the sender broke it or it wrapped, starts with a dim
//! [`GUTTER`] in the time column, so no line a sender wrote (or padded out to
//! wrap) can pass for another message's header.
//!
//! A [`StatefulWidget`], like iamb's scrollback: the widget borrows the room,
//! and the state carries the scroll offset in and the measured size out, so
//! the next PgUp knows whether the top was reached and older messages must be
//! loaded.

use super::{clean, nick};
use crate::{
    app::{Item, Room, View},
    timestamp,
};
use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, StatefulWidget, Widget},
};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Width of `HH:MM ` in front of every line.
const TIME_WIDTH: usize = 6;

/// What begins every continuation line of a message, in the time column
/// ([`TIME_WIDTH`] wide): the TUI's form of
/// [`conclave_client::text::CONTINUATION`].
pub const GUTTER: &str = "    │ ";

/// Scroll position in, measurements out.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimelineState {
    /// Lines scrolled up from the newest (clamped when drawn).
    pub scroll: usize,
    /// What the drawing measured.
    pub view: View,
}

/// A conversation's messages.
pub struct Timeline<'a> {
    /// The conversation.
    pub room: &'a Room,
    /// The user (their own messages are not highlighted as mentions).
    pub me: &'a str,
}

/// The pane when there is no conversation yet.
pub struct Empty;

impl Widget for Empty {
    fn render(self, area: Rect, buf: &mut Buffer) {
        Paragraph::new("waiting for the server…")
            .style(Style::new().fg(Color::DarkGray))
            .block(Block::new().borders(Borders::TOP))
            .render(area, buf);
    }
}

/// "bob is typing…".
pub struct TypingLine<'a> {
    /// Who, on screen.
    pub users: &'a [&'a str],
}

impl Widget for TypingLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let names: Vec<String> = self.users.iter().map(|u| clean(u)).collect();
        let text = match names.as_slice() {
            [] => return,
            [one] => format!("{one} is typing…"),
            [a, b] => format!("{a} and {b} are typing…"),
            _ => "several people are typing…".to_owned(),
        };
        Paragraph::new(text)
            .style(Style::new().fg(Color::DarkGray).add_modifier(Modifier::ITALIC))
            .render(area, buf);
    }
}

impl StatefulWidget for Timeline<'_> {
    type State = TimelineState;

    fn render(self, area: Rect, buf: &mut Buffer, state: &mut TimelineState) {
        let room = self.room;
        let block = Block::new().borders(Borders::TOP).title(Line::from(vec![
            Span::styled(format!(" {} ", clean(&room.label())), Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(if room.muted { "(muted) " } else { "" }, Style::new().fg(Color::DarkGray)),
        ]));
        let inner = block.inner(area);
        block.render(area, buf);
        let width = usize::from(inner.width);
        let height = usize::from(inner.height);
        let mut lines = header(room);
        lines.extend(lines_of(room, self.me, width));
        let total = lines.len();
        let max_scroll = total.saturating_sub(height);
        state.scroll = state.scroll.min(max_scroll);
        state.view = View { total_lines: total, height };
        let end = total - state.scroll;
        let start = end.saturating_sub(height);
        // Short histories sit at the bottom, next to the input line, as in
        // every chat client.
        let pad = height.saturating_sub(end - start);
        let mut shown: Vec<Line<'static>> = vec![Line::default(); pad];
        shown.extend(lines.drain(start..end));
        Paragraph::new(shown).render(inner, buf);
        if state.scroll > 0 && inner.height > 0 {
            let text = format!(" ↓ {} more ", state.scroll);
            let x = inner.right().saturating_sub(u16::try_from(text.width()).unwrap_or(0));
            buf.set_string(x, inner.bottom() - 1, text, Style::new().fg(Color::Black).bg(Color::Yellow));
        }
    }
}

/// The first line: where the history starts, or that more is loading.
fn header(room: &Room) -> Vec<Line<'static>> {
    let dim = Style::new().fg(Color::DarkGray);
    if !room.loaded {
        vec![Line::styled("loading…", dim)]
    } else if room.loading_older {
        vec![Line::styled("loading older messages…", dim)]
    } else if room.complete {
        vec![Line::styled("─ start of the history on this device ─", dim)]
    } else {
        vec![Line::styled("─ PgUp loads older messages ─", dim)]
    }
}

/// Every line of the loaded history at `width` columns.
#[must_use]
pub fn lines_of(room: &Room, me: &str, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut last_day = None;
    let mut marker_done = false;
    for item in &room.items {
        let at = match item {
            Item::Message(m) => m.sent_at_ms,
            Item::Note { at_ms, .. } => *at_ms,
        };
        let day = timestamp::day(at);
        if last_day != Some(day) {
            lines.push(separator(&timestamp::day_label(day), width, Style::new().fg(Color::DarkGray)));
            last_day = Some(day);
        }
        match item {
            Item::Message(m) => {
                if !marker_done && room.unread_from.is_some_and(|from| m.seq >= from) {
                    lines.push(separator("new messages", width, Style::new().fg(Color::LightRed)));
                    marker_done = true;
                }
                let selected = room.selected == Some(m.id);
                let name = clean(&m.sender);
                let (text, text_style) = match &m.text {
                    Some(text) => (clean(text), Style::new()),
                    None => (
                        "[not readable on this device]".to_owned(),
                        Style::new().fg(Color::DarkGray).add_modifier(Modifier::ITALIC),
                    ),
                };
                let text_style = if m.sender != me && mentions(&text, me) {
                    text_style.fg(Color::LightRed).add_modifier(Modifier::BOLD)
                } else {
                    text_style
                };
                let nick_style = Style::new().fg(nick::colour(&m.sender)).add_modifier(Modifier::BOLD);
                let prefix = vec![
                    Span::styled(
                        format!("{} ", timestamp::hour_minute(m.sent_at_ms)),
                        Style::new().fg(Color::DarkGray),
                    ),
                    Span::styled(name.clone(), nick_style),
                    Span::raw(": "),
                ];
                let prefix_width = TIME_WIDTH + name.width() + 2;
                let mut message_lines = wrapped(prefix, prefix_width, &text, text_style, width);
                if selected {
                    for line in &mut message_lines {
                        line.style = Style::new().add_modifier(Modifier::REVERSED);
                    }
                }
                lines.extend(message_lines);
            }
            Item::Note { text, at_ms } => {
                let prefix = vec![
                    Span::styled(
                        format!("{} ", timestamp::hour_minute(*at_ms)),
                        Style::new().fg(Color::DarkGray),
                    ),
                    Span::styled("∙ ", Style::new().fg(Color::DarkGray)),
                ];
                let style = Style::new().fg(Color::DarkGray);
                lines.extend(wrapped(prefix, TIME_WIDTH + 2, &clean(text), style, width));
            }
        }
    }
    lines
}

/// Whether `text` names `me` as a word.
fn mentions(text: &str, me: &str) -> bool {
    !me.is_empty()
        && text
            .to_lowercase()
            .split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .any(|w| w.trim_matches('.') == me)
}

/// `── label ──` across the width.
fn separator(label: &str, width: usize, style: Style) -> Line<'static> {
    let label = format!(" {label} ");
    let side = width.saturating_sub(label.width()) / 2;
    let right = width.saturating_sub(label.width() + side);
    Line::styled(format!("{}{label}{}", "─".repeat(side), "─".repeat(right)), style)
}

/// The prefix, then `text` wrapped at `width` with continuation lines indented
/// under the text behind the [`GUTTER`]; line breaks in the text are kept.
fn wrapped(
    prefix: Vec<Span<'static>>,
    prefix_width: usize,
    text: &str,
    style: Style,
    width: usize,
) -> Vec<Line<'static>> {
    let indent = if prefix_width + 10 > width { TIME_WIDTH.min(width / 2) } else { prefix_width };
    let mut lines = Vec::new();
    let mut first = Some(prefix);
    for paragraph in text.split('\n') {
        let available_first =
            if first.is_some() { width.saturating_sub(prefix_width) } else { width - indent.min(width) };
        let chunks = wrap(paragraph, available_first.max(1), width.saturating_sub(indent).max(1));
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut spans = match (i, first.take()) {
                (0, Some(prefix)) => prefix,
                _ => gutter(indent),
            };
            spans.push(Span::styled(chunk, style));
            lines.push(Line::from(spans));
        }
    }
    lines
}

/// The start of a continuation line `indent` columns wide: the [`GUTTER`]
/// (or as much of its bar as fits), then spaces.
fn gutter(indent: usize) -> Vec<Span<'static>> {
    let dim = Style::new().fg(Color::DarkGray);
    if indent >= TIME_WIDTH {
        vec![Span::styled(GUTTER, dim), Span::raw(" ".repeat(indent - TIME_WIDTH))]
    } else if indent > 0 {
        vec![Span::styled("│", dim), Span::raw(" ".repeat(indent - 1))]
    } else {
        Vec::new()
    }
}

/// Splits `text` into pieces no wider than `first` (the first) and `rest` (the
/// others) columns, breaking at spaces where possible.
#[must_use]
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    let mut line_width = 0;
    let limit = |out: &Vec<String>| if out.is_empty() { first } else { rest };
    for word in text.split_inclusive(' ') {
        let word_width = word.trim_end().width();
        if line_width + word_width > limit(&out) && !line.is_empty() {
            out.push(line.trim_end().to_owned());
            line.clear();
            line_width = 0;
        }
        if word_width > limit(&out) {
            // A word longer than a line: break it anywhere.
            for c in word.chars() {
                let w = c.width().unwrap_or(0);
                if line_width + w > limit(&out) && !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                    line_width = 0;
                }
                line.push(c);
                line_width += w;
            }
        } else {
            line.push_str(word);
            line_width += word.width();
        }
    }
    out.push(line.trim_end().to_owned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_at_spaces_and_inside_long_words() {
        assert_eq!(wrap("hello world again", 11, 11), ["hello world", "again"]);
        assert_eq!(wrap("abcdefghij", 4, 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 5, 5), [""]);
        assert_eq!(wrap("aa bb cc", 2, 5), ["aa", "bb cc"]);
    }
}
