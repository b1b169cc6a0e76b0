//! [`ServerProcess`]: the real `conclave serve` on 127.0.0.1 with a fresh data
//! directory and database.

use crate::db::{Backend, TestDb};
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running `conclave serve`. Killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it serves `/metrics` (plain HTTP, its `--metrics-listen`).
    pub metrics_addr: SocketAddr,
    /// The SHA-256 public key fingerprint it printed.
    pub fingerprint: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its log file (stderr).
    pub log: PathBuf,
    /// The database it uses.
    pub db: std::sync::Arc<TestDb>,
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    _dir: std::sync::Arc<tempfile::TempDir>,
}

impl ServerProcess {
    /// Starts `bin serve` for `backend` with `extra` flags and waits until it
    /// prints its address and fingerprint.
    ///
    /// # Panics
    /// If the server does not start within 30 s.
    pub async fn start(bin: &Path, backend: Backend, extra: &[&str]) -> Self {
        let db = TestDb::create(backend).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let mut args = vec!["serve".to_owned(), "--data-dir".to_owned(), data_dir.display().to_string()];
        if let Some(url) = &db.url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let log = dir.path().join("server.log");
        let mut server = Self {
            addr: "127.0.0.1:0".parse().expect("address"),
            metrics_addr: "127.0.0.1:0".parse().expect("address"),
            fingerprint: String::new(),
            data_dir,
            log,
            db: std::sync::Arc::new(db),
            bin: bin.to_owned(),
            args,
            child: None,
            _dir: std::sync::Arc::new(dir),
        };
        server.spawn("127.0.0.1:0", "127.0.0.1:0");
        server
    }

    /// Starts the binary with the stored arguments on `listen` (and its metrics
    /// on `metrics_listen`), reading the addresses and fingerprint it prints.
    fn spawn(&mut self, listen: &str, metrics_listen: &str) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut child = Command::new(&self.bin)
            .args(&self.args)
            .args(["--listen", listen, "--metrics-listen", metrics_listen])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", std::env::var("CONCLAVE_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn conclave serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut addr, mut metrics_addr, mut fingerprint) = (None, None, None);
        while addr.is_none() || metrics_addr.is_none() || fingerprint.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("server did not start; log:\n{log}")
            });
            if let Some(rest) = line.split("listening on https://").nth(1) {
                addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.strip_prefix("metrics on http://") {
                metrics_addr = rest.split('/').next().and_then(|a| a.parse().ok());
            }
            if let Some(fp) = line.strip_prefix("public key fingerprint (SHA-256): ") {
                fingerprint = Some(fp.trim().to_owned());
            }
        }
        self.addr = addr.expect("address");
        self.metrics_addr = metrics_addr.expect("metrics address");
        self.fingerprint = fingerprint.expect("fingerprint");
        self.child = Some(child);
    }

    /// The server's process id while it runs, to read its memory and CPU time
    /// from `/proc` (the load generator does).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The flags that point `conclave admin` at this server's storage.
    #[must_use]
    pub fn storage_args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), self.data_dir.display().to_string()];
        if let Some(url) = &self.db.url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        args
    }

    /// Runs `sql` on the server's database directly: for tests that set up
    /// what an older server left behind.
    ///
    /// # Panics
    /// If the database cannot be reached or the statement fails.
    pub async fn execute_sql(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db.url {
            Some(url) => {
                let mut conn = PgConnection::connect(url).await.expect("connect to PostgreSQL");
                sqlx::query(sql).execute(&mut conn).await.expect("statement");
            }
            None => {
                let mut conn = SqliteConnection::connect(&self.sqlite_url()).await.expect("open SQLite");
                sqlx::query(sql).execute(&mut conn).await.expect("statement");
            }
        }
    }

    /// One integer read from the server's database directly: for tests that
    /// check what was stored.
    ///
    /// # Panics
    /// If the database cannot be reached or the query does not return one
    /// integer.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db.url {
            Some(url) => {
                let mut conn = PgConnection::connect(url).await.expect("connect to PostgreSQL");
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
            }
            None => {
                let mut conn = SqliteConnection::connect(&self.sqlite_url()).await.expect("open SQLite");
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
            }
        }
    }

    fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.data_dir.join("conclave.db").display())
    }

    /// The value of the metric `name` (with no labels) on `/metrics`.
    ///
    /// # Panics
    /// If `/metrics` does not answer or lacks the metric.
    pub async fn metric(&self, name: &str) -> f64 {
        let (status, body) = crate::http_get(self.metrics_addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in\n{body}"))
    }

    /// `HOST:PORT` as the CLI takes it.
    #[must_use]
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited with
    /// status 0 within 15 s.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().ok();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts the server again on the same addresses, data directory and database.
    pub fn restart(&mut self) {
        let (listen, metrics) = (self.addr.to_string(), self.metrics_addr.to_string());
        self.spawn(&listen, &metrics);
    }

    /// A second server with its own data directory (so its own certificate) on
    /// this one's address — the situation of a server whose certificate changed.
    /// This server must be stopped first.
    pub async fn impostor(&self, backend: Backend) -> Self {
        let mut other = Self::start(&self.bin, backend, &[]).await;
        other.stop();
        other.spawn(&self.addr.to_string(), &self.metrics_addr.to_string());
        other
    }

    /// Everything the server logged so far.
    #[must_use]
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- server log ({}) ---\n{log}", self.log.display());
        }
    }
}
