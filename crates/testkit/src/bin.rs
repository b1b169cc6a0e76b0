//! [`Home`]: runs `conclave` client commands with an isolated client home and a
//! clean environment, like ripgrep's `TestCommand`.

use crate::server::ServerProcess;
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// One client home (one device of one user) and the binary to run.
#[derive(Debug)]
pub struct Home {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status (`-1` if killed by a signal).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Asserts success and returns self.
    ///
    /// # Panics
    /// If the command failed.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.status, 0, "command failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// Asserts failure (non-zero status) and returns self.
    ///
    /// # Panics
    /// If the command succeeded.
    #[track_caller]
    pub fn fails(self) -> Self {
        assert_ne!(
            self.status, 0,
            "command unexpectedly succeeded:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Standard output parsed as one JSON value.
    ///
    /// # Panics
    /// If it is not JSON.
    #[track_caller]
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// A registered test user.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Base32 TOTP secret.
    pub secret: String,
    /// The recovery codes shown at registration.
    pub recovery_codes: Vec<String>,
}

impl Home {
    /// A fresh, empty client home.
    ///
    /// # Panics
    /// If no temp dir can be made.
    #[must_use]
    pub fn new(bin: &Path) -> Self {
        Self { bin: bin.to_owned(), dir: tempfile::tempdir().expect("temp dir") }
    }

    /// The home directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `conclave ARGS` with this home, `CONCLAVE_PASSWORD` set when given, no
    /// standard input and nothing else from the caller's environment.
    ///
    /// # Panics
    /// If the binary cannot be run.
    #[must_use]
    pub fn run(&self, args: &[&str], password: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CONCLAVE_HOME", self.path())
            .current_dir(self.path())
            .stdin(std::process::Stdio::null());
        if let Some(password) = password {
            cmd.env("CONCLAVE_PASSWORD", password);
        }
        let out = cmd.output().expect("run conclave");
        Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts `conclave ARGS` in the background (same environment as
    /// [`run`](Self::run)); its standard output is read line by line.
    ///
    /// # Panics
    /// If the binary cannot be started.
    #[must_use]
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = Command::new(&self.bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CONCLAVE_HOME", self.path())
            .current_dir(self.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(self.path().join("stderr.log")).expect("stderr log"))
            .spawn()
            .expect("spawn conclave");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines, stderr: self.path().join("stderr.log") }
    }

    /// Registers `user` non-interactively (fresh secret, confirming code of the
    /// previous step, the server's fingerprint accepted) and returns the secret
    /// and recovery codes. The home is logged in afterwards.
    ///
    /// # Panics
    /// If registration fails.
    pub fn register(&self, server: &ServerProcess, user: &str, password: &str) -> Registered {
        let secret = crate::new_secret();
        let code = crate::code_previous_step(&secret);
        let out = self
            .run(
                &[
                    "register",
                    "--server",
                    &server.address(),
                    "--user",
                    user,
                    "--totp-secret",
                    &secret,
                    "--totp-code",
                    &code,
                    "--accept-fingerprint",
                    &server.fingerprint,
                    "--json",
                ],
                Some(password),
            )
            .ok();
        let json = out.json();
        let recovery_codes = json["recovery_codes"]
            .as_array()
            .expect("recovery_codes in register --json")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        Registered { secret, recovery_codes }
    }

    /// `conclave login` with a TOTP code (fingerprint accepted, `--json`).
    #[must_use]
    pub fn login(&self, server: &ServerProcess, user: &str, password: &str, code: &str) -> Output {
        self.run(
            &[
                "login",
                "--server",
                &server.address(),
                "--user",
                user,
                "--totp-code",
                code,
                "--accept-fingerprint",
                &server.fingerprint,
                "--json",
            ],
            Some(password),
        )
    }

    /// `conclave login` with a recovery code (fingerprint accepted, `--json`).
    #[must_use]
    pub fn login_recovery(&self, server: &ServerProcess, user: &str, password: &str, code: &str) -> Output {
        self.run(
            &[
                "login",
                "--server",
                &server.address(),
                "--user",
                user,
                "--recovery-code",
                code,
                "--accept-fingerprint",
                &server.fingerprint,
                "--json",
            ],
            Some(password),
        )
    }
}

/// A `conclave` process running in the background; killed on drop.
#[derive(Debug)]
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Running {
    /// What the process wrote to standard error so far.
    #[must_use]
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The next line of standard output, waiting up to `secs` seconds.
    #[must_use]
    pub fn next_line(&self, secs: u64) -> Option<String> {
        self.lines.recv_timeout(std::time::Duration::from_secs(secs)).ok()
    }

    /// Lines until one satisfies `want` (returned), or `None` after `secs` seconds
    /// in all.
    #[must_use]
    pub fn wait_for(&self, secs: u64, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if want(&line) {
                return Some(line);
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
