//! Getting the user's attention: the terminal bell, and a desktop notification
//! through `notify-send` where it is installed (no D-Bus library linked in).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Longest notification body; the rest is cut.
const BODY_CHARS: usize = 200;

/// Rings the bell and sends notifications.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// `notify-send`, if it is on `PATH`.
    notify_send: Option<PathBuf>,
}

impl Notifier {
    /// Looks for `notify-send` on `PATH` once.
    #[must_use]
    pub fn detect() -> Self {
        let notify_send = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path).map(|dir| dir.join("notify-send")).find(|p| is_executable(p))
        });
        Self { notify_send }
    }

    /// The terminal bell.
    pub fn bell(&self) {
        let mut out = std::io::stdout();
        out.write_all(b"\x07").ok();
        out.flush().ok();
    }

    /// A desktop notification, if available. Argument vector, no shell; the
    /// texts are sanitized (they come from other users) and kept on one line,
    /// so no line of a message can pass for a notification's own text.
    pub fn notify(&self, title: &str, body: &str) {
        let Some(program) = &self.notify_send else { return };
        let title = one_line(title);
        let body: String = one_line(body).chars().take(BODY_CHARS).collect();
        let spawned = Command::new(program)
            .args(["--app-name=Conclave", "--", &title, &body])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            // Reap it in the background so no zombie is left.
            Ok(mut child) => {
                std::thread::spawn(move || child.wait().ok());
            }
            Err(err) => tracing::debug!(%err, "notify-send failed"),
        }
    }
}

/// Untrusted text for a notification: sanitized, line breaks shown as `⏎`,
/// tabs as spaces.
fn one_line(text: &str) -> String {
    conclave_client::text::single_line(text).replace('\t', " ")
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification shows a multi-line message on one line: its second line
    /// cannot look like the start of another notification's text.
    #[test]
    fn notification_texts_stay_on_one_line() {
        assert_eq!(one_line("hi\r\nalice: send codes\u{202e}\t!"), "hi ⏎ alice: send codes !");
    }
}
