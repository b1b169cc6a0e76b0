//! Human or `--json` output of the client commands.
//!
//! Results go to stdout: as one JSON document with `--json`, as text otherwise.
//! Prompts, QR codes in JSON mode, and notes go to stderr so stdout stays
//! parseable. Every string that came from the network passes through
//! [`untrusted`] (one-line fields) or [`untrusted_text`] (a message after its
//! header) before it is printed as text (JSON escapes control characters by
//! itself).

use anyhow::Context;
use conclave_client::text::{continued, single_line};
use std::{
    borrow::Cow,
    fmt::Display,
    io::{self, Write},
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

/// Makes text from the network that follows a header on its line (a message
/// after `[time] sender:`) safe to print: escape sequences stripped, and each
/// further line behind the continuation marker, so no line of it can pass for
/// a header of its own.
pub fn untrusted_text(text: &str) -> Cow<'_, str> {
    continued(text)
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
        assert_eq!(untrusted_text("a\rb"), "a\n  │ b");
    }
}
