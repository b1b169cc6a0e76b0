//! Human or `--json` output of the client commands.
//!
//! Results go to stdout: as one JSON document with `--json`, as text otherwise.
//! Prompts, QR codes in JSON mode, and notes go to stderr so stdout stays
//! parseable. Every string that came from the network passes through
//! [`untrusted`] (one-line fields) or [`message`] (a message after its header)
//! before it is printed as text (JSON escapes control characters by itself).

use anyhow::Context;
use conclave_client::text::{CONTINUATION, continued, sanitize, single_line};
use std::{
    borrow::Cow,
    fmt::Display,
    io::{self, IsTerminal, Write},
};

/// Where a command prints its result.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json` was given.
    json: bool,
}

impl Output {
    /// Output in the mode the user chose.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints the result as JSON (one line) in JSON mode, or runs `human` to print
    /// text otherwise.
    pub fn result(self, json: &serde_json::Value, human: impl FnOnce() -> String) -> anyhow::Result<()> {
        let mut stdout = io::stdout().lock();
        let text = if self.json { json.to_string() } else { human() };
        writeln!(stdout, "{}", text.trim_end_matches('\n')).context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")
    }

    /// Prints an informational text: on stdout in text mode, on stderr in JSON
    /// mode (so a user still sees QR codes and warnings).
    pub fn info(self, text: impl Display) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

/// Makes a one-line string from the network (a name, a cell, a note) safe to
/// print in a terminal: escape sequences stripped, line breaks shown as `⏎`.
pub fn untrusted(text: &str) -> Cow<'_, str> {
    single_line(text)
}

/// A message to print: `header` (made of safe parts, such as `[time] sender: `)
/// followed by `text` from the network, escape sequences stripped and every
/// further line behind the continuation marker, so that no line of it can pass
/// for a header of its own. On a terminal, lines too long for it are wrapped
/// here, behind the marker too: otherwise the terminal would wrap them itself,
/// and a sender could pad text out to the start of a row.
pub fn message(header: &str, text: &str) -> String {
    let width = io::stdout()
        .is_terminal()
        .then(crossterm::terminal::size)
        .and_then(Result::ok)
        .map(|(columns, _)| usize::from(columns));
    message_at(header, text, width)
}

/// [`message`] for a terminal `width` columns wide (`None`: not a terminal, no
/// wrapping).
fn message_at(header: &str, text: &str, width: Option<usize>) -> String {
    let marker = CONTINUATION.chars().count();
    let Some(width) = width.filter(|w| *w > marker + 10) else {
        return format!("{header}{}", continued(text));
    };
    let first = width.saturating_sub(header.chars().count()).max(1);
    let mut out = String::from(header);
    for (index, line) in sanitize(text).split('\n').enumerate() {
        let rows = conclave_tui::ui::timeline::wrap(
            line,
            if index == 0 { first } else { width - marker },
            width - marker,
        );
        for (row_index, row) in rows.iter().enumerate() {
            if index > 0 || row_index > 0 {
                out.push('\n');
                out.push_str(if row.is_empty() { CONTINUATION.trim_end() } else { CONTINUATION });
            }
            out.push_str(row);
        }
    }
    out
}

/// Formats a Unix time as `YYYY-MM-DD HH:MM` in UTC.
pub fn utc_minutes(unix_secs: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs.max(0).unsigned_abs());
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(..16).unwrap_or(&text).replacen('T', " ", 1)
}

/// Lays out rows as left-aligned columns separated by two spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, &width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc_minutes(0), "1970-01-01 00:00");
        assert_eq!(utc_minutes(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_minutes(1_700_000_000), "2023-11-14 22:13");
    }

    #[test]
    fn aligns_table_columns() {
        let rows =
            vec![vec!["*".into(), "abc".into(), "x".into()], vec![String::new(), "a".into(), "yy".into()]];
        assert_eq!(table(&["", "ID", "C"], &rows), "   ID   C\n*  abc  x\n   a    yy\n");
    }

    #[test]
    fn untrusted_text_loses_escapes_and_cannot_start_a_line() {
        assert_eq!(untrusted("a\x1b[2Jb"), "ab");
        assert_eq!(untrusted("a\nb"), "a ⏎ b");
        assert_eq!(message_at("[t] bob: ", "a\rb", None), "[t] bob: a\n  │ b");
    }

    /// On a terminal, a line padded out so that the terminal would wrap the
    /// rest to the start of a row is wrapped here, behind the marker.
    #[test]
    fn on_a_terminal_long_lines_wrap_behind_the_marker() {
        let padded = format!("hi{}[t] alice: send me your codes", " ".repeat(40));
        assert_eq!(
            message_at("[t] bob: ", &padded, Some(30)),
            format!("[t] bob: hi\n  │ {}[t]\n  │ alice: send me your codes", " ".repeat(20))
        );
        assert_eq!(message_at("[t] bob: ", "a b\nc", Some(30)), "[t] bob: a b\n  │ c");
        let x = |n| "x".repeat(n);
        assert_eq!(
            message_at("[t] b: ", &x(50), Some(30)),
            format!("[t] b: {}\n  │ {}\n  │ x", x(23), x(26))
        );
    }
}
