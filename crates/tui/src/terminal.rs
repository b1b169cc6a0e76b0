//! Taking over the terminal and giving it back: raw mode, the alternate
//! screen, mouse capture and bracketed paste on; all of it undone on normal
//! exit, on error (the guard's `Drop`), and on panic (a hook that restores
//! before the panic message is printed, so it is readable).

use crossterm::{
    cursor::Show,
    event::{DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture},
    execute,
    terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode},
};
use ratatui::{Terminal, backend::CrosstermBackend};
use std::{
    io::{self, Stdout},
    sync::atomic::{AtomicBool, Ordering},
};

/// The terminal as ratatui draws on it.
pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Whether the terminal is currently taken over; restoring twice is harmless
/// but would print stray sequences after the program's last words.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Restores the terminal when dropped.
pub struct Guard {
    /// The terminal.
    pub terminal: Tui,
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Takes over the terminal and installs the panic hook.
///
/// # Errors
/// When stdout is not a terminal or cannot be configured.
pub fn enter() -> io::Result<Guard> {
    install_panic_hook();
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let mut stdout = io::stdout();
    if let Err(err) = execute!(stdout, EnterAlternateScreen, EnableMouseCapture, EnableBracketedPaste) {
        restore();
        return Err(err);
    }
    let terminal = Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| restore())?;
    Ok(Guard { terminal })
}

/// Gives the terminal back: cooked mode, main screen, cursor shown. Safe to
/// call from anywhere, any number of times.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        // Best effort: there is nobody left to report a failure to.
        execute!(io::stdout(), DisableBracketedPaste, DisableMouseCapture, LeaveAlternateScreen, Show).ok();
        disable_raw_mode().ok();
    }
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}
