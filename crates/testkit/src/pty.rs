//! [`Terminal`]: a `conclave` command in a pseudo-terminal, its screen kept up
//! to date by an in-memory terminal emulator (vt100), so tests can type keys
//! and read what a person would see.

use std::{
    io::{Read, Write},
    num::NonZeroU16,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A process running in a pseudo-terminal. Killed on drop.
pub struct Terminal {
    child: std::process::Child,
    pty: Arc<pty_process::blocking::Pty>,
    /// The emulated screen, fed by a reader thread; a std mutex because only
    /// threads (never async tasks) touch it, briefly.
    parser: Arc<Mutex<vt100::Parser>>,
    /// Every byte the program wrote, for assertions on raw output.
    raw: Arc<Mutex<Vec<u8>>>,
    /// Hears from the reader thread once it has read everything the program
    /// wrote (the terminal reports end of output after the program exits).
    drained: std::sync::mpsc::Receiver<()>,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal").field("pid", &self.child.id()).finish_non_exhaustive()
    }
}

impl Terminal {
    /// Starts `bin ARGS` in a `rows` × `cols` pseudo-terminal with exactly the
    /// environment `env` (plus `PATH` and `TERM`), in directory `dir`.
    ///
    /// # Panics
    /// If no pseudo-terminal can be opened or the program cannot start.
    #[must_use]
    pub fn spawn(bin: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path, rows: u16, cols: u16) -> Self {
        let (pty, pts) = pty_process::blocking::open().expect("open a pseudo-terminal");
        pty.resize(pty_process::Size::new(rows, cols)).expect("size the pseudo-terminal");
        let mut command = pty_process::blocking::Command::new(bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TERM", "xterm-256color")
            .current_dir(dir);
        for (key, value) in env {
            command = command.env(key, value);
        }
        let child = command.spawn(pts).expect("start the program in the pseudo-terminal");
        let pty = Arc::new(pty);
        let rows = NonZeroU16::new(rows).expect("rows");
        let cols = NonZeroU16::new(cols).expect("cols");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (reader, screen, log) = (Arc::clone(&pty), Arc::clone(&parser), Arc::clone(&raw));
        let (done, drained) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Ends when the program exits (EIO on Linux) or the terminal closes.
            while let Ok(n @ 1..) = (&*reader).read(&mut buf) {
                screen.lock().expect("screen").process(&buf[..n]);
                log.lock().expect("raw").extend_from_slice(&buf[..n]);
            }
            done.send(()).ok();
        });
        Self { child, pty, parser, raw, drained }
    }

    /// Types `bytes` as the keyboard would send them.
    ///
    /// # Panics
    /// If the terminal is gone.
    pub fn send(&self, bytes: &[u8]) {
        (&*self.pty).write_all(bytes).expect("write to the pseudo-terminal");
        (&*self.pty).flush().ok();
    }

    /// Types `text`, one key at a time (as a person would, so no key is taken
    /// for a paste).
    pub fn type_text(&self, text: &str) {
        for c in text.chars() {
            let mut buf = [0u8; 4];
            self.send(c.encode_utf8(&mut buf).as_bytes());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Presses Enter.
    pub fn enter(&self) {
        self.send(b"\r");
    }

    /// The screen as text, one line per row.
    #[must_use]
    pub fn screen(&self) -> String {
        self.parser.lock().expect("screen").screen().contents()
    }

    /// Everything the program wrote so far.
    #[must_use]
    pub fn raw_output(&self) -> Vec<u8> {
        self.raw.lock().expect("raw").clone()
    }

    /// Whether the program switched to the alternate screen (a full-screen UI is up).
    #[must_use]
    pub fn alternate_screen(&self) -> bool {
        self.parser.lock().expect("screen").screen().alternate_screen()
    }

    /// Waits up to `secs` seconds until the screen satisfies `want`; returns
    /// the screen.
    ///
    /// # Panics
    /// With the last screen, if it never does.
    #[track_caller]
    pub fn wait_for(&self, secs: u64, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            if want(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Changes the terminal's size (the program gets SIGWINCH).
    ///
    /// # Panics
    /// If the terminal is gone.
    pub fn resize(&self, rows: u16, cols: u16) {
        // The emulator first, so the program's redraw for the new size is
        // never interpreted at the old one.
        let (r, c) = (NonZeroU16::new(rows).expect("rows"), NonZeroU16::new(cols).expect("cols"));
        self.parser.lock().expect("screen").set_size(r, c);
        self.pty.resize(pty_process::Size::new(rows, cols)).expect("resize");
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().ok();
    }

    /// Waits up to `secs` seconds for the program to exit; its status code.
    /// Once it returns, the screen shows everything the program wrote (what it
    /// wrote last, such as leaving the alternate screen, may still have been on
    /// its way through the terminal when it exited).
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drained.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok();
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
