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
