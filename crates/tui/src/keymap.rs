//! Which key does what: one table from crossterm key events to [`Action`]s.
//!
//! The same keys work on every screen; what an action means there is decided
//! by [`App::update`](crate::app::App::update). Keys follow what chat clients
//! in the terminal (irssi, weechat) taught people: Ctrl-N/Ctrl-P and Alt-1..9
//! switch windows, PgUp/PgDn scroll, Tab completes.

use crate::action::Action;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// The action for `key`, if it has one. Key releases (sent by terminals with
/// the kitty protocol) are ignored.
#[must_use]
pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let action = match key.code {
        KeyCode::Char('c' | 'd' | 'q') if ctrl => Action::Quit,
        KeyCode::Char('n') if ctrl => Action::NextRoom,
        KeyCode::Char('p') if ctrl => Action::PrevRoom,
        KeyCode::Char('u') if ctrl => Action::ClearInput,
        KeyCode::Char('o') if ctrl => Action::FocusUsers,
        KeyCode::Char('r') if ctrl => Action::SwitchForm,
        KeyCode::Char('a') if ctrl => Action::Home,
        KeyCode::Char('e') if ctrl => Action::End,
        KeyCode::Char('j') if ctrl => Action::Newline,
        KeyCode::Char(c @ '1'..='9') if alt => Action::GoToRoom(usize::from(c as u8 - b'1')),
        KeyCode::Char(_) if ctrl => return None,
        KeyCode::Char(c) => Action::Insert(c),
        KeyCode::Enter if alt || key.modifiers.contains(KeyModifiers::SHIFT) => Action::Newline,
        KeyCode::Enter => Action::Submit,
        KeyCode::Backspace => Action::Backspace,
        KeyCode::Delete => Action::Delete,
        KeyCode::Left => Action::Left,
        KeyCode::Right => Action::Right,
        KeyCode::Home => Action::Home,
        KeyCode::End => Action::End,
        KeyCode::Up if alt => Action::SelectOlder,
        KeyCode::Down if alt => Action::SelectNewer,
        KeyCode::Up => Action::Up,
        KeyCode::Down => Action::Down,
        KeyCode::Tab => Action::Complete,
        KeyCode::BackTab => Action::BackTab,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Esc => Action::Cancel,
        KeyCode::F(1) => Action::Help,
        _ => return None,
    };
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn chat_keys_map_to_actions() {
        assert_eq!(action(key(KeyCode::Enter, KeyModifiers::NONE)), Some(Action::Submit));
        assert_eq!(action(key(KeyCode::Enter, KeyModifiers::ALT)), Some(Action::Newline));
        assert_eq!(action(key(KeyCode::Char('n'), KeyModifiers::CONTROL)), Some(Action::NextRoom));
        assert_eq!(action(key(KeyCode::Char('3'), KeyModifiers::ALT)), Some(Action::GoToRoom(2)));
        assert_eq!(action(key(KeyCode::Char('x'), KeyModifiers::SHIFT)), Some(Action::Insert('x')));
        assert_eq!(action(key(KeyCode::Char('x'), KeyModifiers::CONTROL)), None);
    }
}
