//! Human or `--json` output of the client commands.
//!
//! Results go to stdout: as one JSON document with `--json`, as text otherwise.
//! Prompts, QR codes in JSON mode, and notes go to stderr so stdout stays
//! parseable. Every string that came from the network passes through
//! [`untrusted`] before it is printed as text (JSON escapes control characters by
//! itself).

use anyhow::Context;
use conclave_client::text::sanitize;
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

/// Makes a string from the network safe to print in a terminal.
pub fn untrusted(text: &str) -> Cow<'_, str> {
    sanitize(text)
}

/// Formats a Unix time as `YYYY-MM-DD HH:MM` in UTC.
pub fn utc_minutes(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`), to avoid a date library for one column of a table.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
        assert_eq!(utc_minutes(-60), "1969-12-31 23:59");
    }

    #[test]
    fn aligns_table_columns() {
        let rows =
            vec![vec!["*".into(), "abc".into(), "x".into()], vec![String::new(), "a".into(), "yy".into()]];
        assert_eq!(table(&["", "ID", "C"], &rows), "   ID   C\n*  abc  x\n   a    yy\n");
    }

    #[test]
    fn untrusted_text_loses_escapes() {
        assert_eq!(untrusted("a\x1b[2Jb"), "ab");
    }
}
