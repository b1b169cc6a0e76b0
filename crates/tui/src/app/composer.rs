//! [`Composer`]: the text being typed, with a cursor; multi-line.

/// An editable text with a cursor, counted in characters (not bytes), so
/// editing never splits a UTF-8 sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Composer {
    text: String,
    /// Cursor position in characters, `0..=len`.
    cursor: usize,
}

impl Composer {
    /// A composer holding `text`, cursor at its end.
    #[must_use]
    pub fn with_text(text: &str) -> Self {
        Self { text: text.to_owned(), cursor: text.chars().count() }
    }

    /// The text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, in characters.
    #[must_use]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether nothing is typed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text.char_indices().nth(chars).map_or(self.text.len(), |(i, _)| i)
    }

    /// Inserts `c` at the cursor.
    pub fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Inserts `s` at the cursor (a paste).
    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            self.insert(c);
        }
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.text.chars().count() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    /// Cursor one left.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Cursor one right.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.text.chars().count());
    }

    /// Cursor to the start of its line.
    pub fn home(&mut self) {
        let before: Vec<char> = self.text.chars().take(self.cursor).collect();
        self.cursor = before.iter().rposition(|c| *c == '\n').map_or(0, |i| i + 1);
    }

    /// Cursor to the end of its line.
    pub fn end(&mut self) {
        let after = self.text.chars().skip(self.cursor).position(|c| c == '\n');
        self.cursor = after.map_or(self.text.chars().count(), |n| self.cursor + n);
    }

    /// Takes the text out, leaving the composer empty.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Replaces the text, cursor at the end.
    pub fn set(&mut self, text: &str) {
        *self = Self::with_text(text);
    }

    /// Puts back a message that could not be sent, before whatever was typed
    /// meanwhile, so no input is lost.
    pub fn restore(&mut self, unsent: &str) {
        if self.text.is_empty() {
            self.set(unsent);
        } else {
            let typed = self.take();
            self.set(&format!("{unsent}\n{typed}"));
        }
    }

    /// The lines, and the cursor as (line, column in characters).
    #[must_use]
    pub fn lines_and_cursor(&self) -> (Vec<&str>, (usize, usize)) {
        let lines: Vec<&str> = self.text.split('\n').collect();
        let before: String = self.text.chars().take(self.cursor).collect();
        let line = before.matches('\n').count();
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
        (lines, (line, column))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_at_the_cursor_in_characters() {
        let mut c = Composer::default();
        for ch in "héllo".chars() {
            c.insert(ch);
        }
        c.left();
        c.left();
        c.backspace();
        assert_eq!(c.text(), "hélo");
        c.home();
        c.delete();
        assert_eq!(c.text(), "élo");
        c.end();
        c.insert('\n');
        c.insert('x');
        assert_eq!(c.lines_and_cursor(), (vec!["élo", "x"], (1, 1)));
    }

    #[test]
    fn an_unsent_message_comes_back_before_new_input() {
        let mut c = Composer::with_text("typed later");
        c.restore("first");
        assert_eq!(c.text(), "first\ntyped later");
        let mut empty = Composer::default();
        empty.restore("first");
        assert_eq!(empty.text(), "first");
    }
}
