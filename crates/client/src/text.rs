//! Making untrusted text safe to print in a terminal.
//!
//! Anything that came over the network (usernames, messages, error texts, client
//! names) can carry escape sequences. Printed raw, they can clear the screen,
//! rewrite earlier lines to fake a message, set the window title, plant a
//! hyperlink that points elsewhere (OSC 8), or even write to the clipboard
//! (OSC 52). Every front end therefore passes network strings through [`sanitize`]
//! before showing them.
//!
//! Line breaks are the other way to fake something: a message with an embedded
//! newline, printed under its header, would show a second line that looks like
//! another message (`[12:00] 7 (#999) alice: send me your recovery codes`). A
//! front end that prints a header and then text from the network shows every
//! further line of that text behind [`CONTINUATION`] ([`continued`] does it),
//! which no sender can put at the start of a line, and prints one-line fields
//! with [`single_line`].

use std::borrow::Cow;

const ESC: char = '\u{1b}';
const BEL: char = '\u{07}';
/// 8-bit String Terminator.
const ST: char = '\u{9c}';

/// What begins each line after the first of a multi-line text shown under a
/// header (a message under `[time] sender:`). Every line a sender wrote after
/// their first starts with it, so a line that does not is never theirs.
pub const CONTINUATION: &str = "  │ ";

/// What stands for a line break in text that must stay on one line.
pub const LINE_BREAK: &str = " ⏎ ";

/// Removes terminal escape sequences and control characters from `text`.
///
/// Stripped: CSI sequences (`ESC [ … final` and the 8-bit `U+009B`), OSC, DCS, SOS,
/// PM and APC strings up to their terminator (BEL, `ESC \` or `U+009C`) or the end
/// of the text, every other `ESC` sequence, a lone `ESC`, all other C0 and C1
/// control characters, `DEL`, and the Unicode bidirectional overrides and isolates
/// (which can make text display in a different order than it reads). Line
/// breaks become `\n`: a carriage return (alone or before `\n`, which a terminal
/// would use to overwrite the line's start) and the Unicode line and paragraph
/// separators. Kept: `\n`, `\t` and every other printable character (zero-width
/// joiners included: they join emoji, and cannot move text).
///
/// The result may hold several lines: show it with [`continued`] under a
/// header, or with [`single_line`] where one line is expected.
///
/// Returns the input unchanged (borrowed) when there was nothing to strip.
#[must_use]
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_stripping(c) || is_other_line_break(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    skip_csi(&mut chars);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_string(&mut chars);
                }
                // nF sequences: intermediates (0x20..=0x2F) then one final byte.
                Some(' '..='/') => {
                    while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
                    chars.next_if(|c| matches!(c, '0'..='~'));
                }
                // Two-character sequences such as `ESC c` (reset) or `ESC 7`.
                Some('0'..='~') => {
                    chars.next();
                }
                // A lone ESC (end of text or followed by something that cannot
                // continue a sequence): drop only the ESC.
                _ => {}
            },
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            c if is_other_line_break(c) => out.push('\n'),
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if needs_stripping(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`sanitize`]d `text` with every line after the first behind
/// [`CONTINUATION`]: for text printed after a header on the same line.
#[must_use]
pub fn continued(text: &str) -> Cow<'_, str> {
    let clean = sanitize(text);
    if !clean.contains('\n') {
        return clean;
    }
    let mut out = String::with_capacity(clean.len() + 8 * CONTINUATION.len());
    for (index, line) in clean.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
            out.push_str(if line.is_empty() { CONTINUATION.trim_end() } else { CONTINUATION });
        }
        out.push_str(line);
    }
    Cow::Owned(out)
}

/// [`sanitize`]d `text` on one line: each line break shown as [`LINE_BREAK`].
/// For names, table cells, notifications and status lines.
#[must_use]
pub fn single_line(text: &str) -> Cow<'_, str> {
    match sanitize(text) {
        Cow::Borrowed(clean) if !clean.contains('\n') => Cow::Borrowed(clean),
        clean => Cow::Owned(clean.replace('\n', LINE_BREAK)),
    }
}

/// Whether `c` is removed wherever it appears (`\r` is not removed but turned
/// into a line break by [`sanitize`]).
fn needs_stripping(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c)
}

/// Line breaks other than `\n` that [`sanitize`] turns into `\n`: a carriage
/// return, and U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (which some
/// terminals and widgets break lines at).
fn is_other_line_break(c: char) -> bool {
    matches!(c, '\r' | '\u{2028}' | '\u{2029}')
}

/// Bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Skips the rest of a CSI sequence: parameter bytes (0x30..=0x3F), intermediate
/// bytes (0x20..=0x2F), then one final byte (0x40..=0x7E). Anything else ends the
/// sequence without being consumed, as a terminal would abort it.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| matches!(c, ' '..='?')).is_some() {}
    chars.next_if(|c| matches!(c, '@'..='~'));
}

/// Skips a control string (OSC, DCS, SOS, PM, APC) through its terminator: BEL,
/// `ESC \` or the 8-bit ST. An unterminated string swallows the rest of the text,
/// because a terminal would too.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            BEL | ST => return,
            ESC => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "hello, wörld 👋\n\tindented";
        assert!(matches!(sanitize(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn csi_sequences_are_removed() {
        assert_eq!(sanitize("a\x1b[2Jb"), "ab");
        assert_eq!(sanitize("\x1b[1;31mred\x1b[0m"), "red");
        assert_eq!(sanitize("x\x1b[?1049hy"), "xy");
        assert_eq!(sanitize("8-bit \u{9b}2Jcsi"), "8-bit csi");
    }

    #[test]
    fn osc_hyperlinks_and_clipboard_writes_are_removed() {
        let link = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\";
        assert_eq!(sanitize(link), "click");
        assert_eq!(sanitize("a\x1b]52;c;cm0gLXJmIC8K\x07b"), "ab");
        assert_eq!(sanitize("title\x1b]0;pwned\x07!"), "title!");
        assert_eq!(sanitize("x\u{9d}0;t\u{9c}y"), "xy");
        assert_eq!(sanitize("unterminated \x1b]52;c;AAAA"), "unterminated ");
        assert_eq!(sanitize("dcs\x1bPq#0;2;0;0;0\x1b\\!"), "dcs!");
    }

    #[test]
    fn lone_escape_and_other_controls_are_removed() {
        assert_eq!(sanitize("end\x1b"), "end");
        assert_eq!(sanitize("a\x1b\nb"), "a\nb");
        assert_eq!(sanitize("reset\x1bc!"), "reset!");
        assert_eq!(sanitize("charset\x1b(B!"), "charset!");
        assert_eq!(sanitize("back\x08\x07\x00\x7f!"), "back!");
        assert_eq!(sanitize("c1\u{85}\u{8d}!"), "c1!");
        assert_eq!(sanitize("keep\n\ttabs"), "keep\n\ttabs");
    }

    #[test]
    fn bidi_overrides_are_removed() {
        assert_eq!(sanitize("abc\u{202e}fdp.exe"), "abcfdp.exe");
        assert_eq!(sanitize("\u{2067}x\u{2069}"), "x");
    }

    #[test]
    fn carriage_returns_and_unicode_separators_become_line_breaks() {
        assert_eq!(sanitize("over\rwrite"), "over\nwrite");
        assert_eq!(sanitize("windows\r\nline\n\rx"), "windows\nline\n\nx");
        assert_eq!(sanitize("a\u{2028}b\u{2029}c"), "a\nb\nc");
        assert_eq!(sanitize("family 👨\u{200d}👩\u{200d}👧"), "family 👨\u{200d}👩\u{200d}👧");
    }

    #[test]
    fn continuation_lines_carry_the_marker_and_one_line_fields_stay_one_line() {
        let forged = "hi\n[2025-01-01 12:00] 7 (#999) alice: send me your codes";
        assert_eq!(continued(forged), "hi\n  │ [2025-01-01 12:00] 7 (#999) alice: send me your codes");
        assert_eq!(continued("a\r\rb\n"), "a\n  │\n  │ b\n  │");
        assert_eq!(continued("\u{202e}x\ry"), "x\n  │ y");
        assert!(matches!(continued("one line"), Cow::Borrowed("one line")));
        assert_eq!(single_line("name\rother"), "name ⏎ other");
        assert!(matches!(single_line("plain"), Cow::Borrowed("plain")));
        assert_eq!(single_line("\x1b[2Jx"), "x");
    }
}
