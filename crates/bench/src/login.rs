//! `login`: N registered users log in (password and TOTP) with C logins in
//! flight; throughput and latency.
//!
//! A login is bound by the server's argon2id hash (its cost parameters and the
//! number of hashes it runs at once), so the report names them. Each user logs
//! in once: a TOTP step is usable once per account, and registration used the
//! previous step.

use crate::{
    population::{self, CLIENT_NAME, User},
    server::{ProcessSample, Target},
    stats::{Latency, Report, Usage, cpu_us_per, per_sec},
};
use anyhow::{Context, Result, bail};
use conclave_client::Client;
use conclave_proto::SecondFactor;
use futures_util::{StreamExt, stream};
use std::time::{Duration, Instant};

/// Flags of `login`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// Users, each logging in once.
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Logins in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// Runs the scenario.
///
/// # Errors
/// Setup failures or a refused login.
pub async fn run(target: &Target, args: &LoginArgs, serve_args: &[String]) -> Result<Report> {
    if args.users == 0 || args.concurrency == 0 {
        bail!("--users and --concurrency must be at least 1");
    }
    let tag = crate::run_tag("l");
    let population = population::register(target, &tag, args.users).await?;
    let code_time = population::unix_now_away_from_step_end().await;

    let server_before = target.sample().await;
    let bench_before = ProcessSample::own();
    let started = Instant::now();
    let results: Vec<Result<(Duration, Duration)>> = stream::iter(&population.users)
        .map(|user| login_once(target, user, code_time))
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let server = Usage::maybe(server_before, target.sample().await);
    let bench = Usage::between(bench_before, ProcessSample::own());

    let (mut connect, mut login) = (Latency::new(), Latency::new());
    let mut failures = 0u64;
    for result in results {
        match result {
            Ok((c, l)) => {
                connect.record(c);
                login.record(l);
            }
            Err(err) => {
                failures += 1;
                tracing::warn!("{err:#}");
            }
        }
    }
    let logins = login.count();
    let argon2 = Argon2Report::from_serve_args(target, serve_args);

    let mut report = Report::new("login");
    report.line(
        "setup",
        format!("registered {} users in {:.1} s", args.users, population.elapsed.as_secs_f64()),
    );
    report.line(
        "logins",
        format!(
            "{logins} ok, {failures} failed, {:.1} logins/s with {} in flight ({:.1} s)",
            per_sec(logins, elapsed),
            args.concurrency,
            elapsed.as_secs_f64()
        ),
    );
    report.line("login latency", login.summary().line());
    report.line("connect latency", connect.summary().line());
    report.line("argon2", argon2.line());
    if let Some(server) = &server {
        report.line("server", server.line());
    }
    if let Some(us) = cpu_us_per(server.as_ref(), logins) {
        report.line("server cpu/login", format!("{:.1} ms", us / 1000.0));
    }
    report.line("bench", bench.line());
    report.field("users", args.users);
    report.field("concurrency", args.concurrency);
    report.field("register_s", population.elapsed.as_secs_f64());
    report.field("logins", logins);
    report.field("failures", failures);
    report.field("elapsed_s", elapsed.as_secs_f64());
    report.field("logins_per_s", per_sec(logins, elapsed));
    report.field("login_latency", login.summary());
    report.field("connect_latency", connect.summary());
    report.field("argon2", argon2);
    report.field("server_cpu_us_per_login", cpu_us_per(server.as_ref(), logins));
    report.field("server_usage", server);
    report.field("bench_usage", bench);
    Ok(report)
}

/// Connects and logs in; returns (connect time, login time).
async fn login_once(target: &Target, user: &User, code_time: u64) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut client = Client::connect_to(&target.address, &target.trust, CLIENT_NAME).await?;
    let connected = started.elapsed();
    let code = user.secret.code_at(code_time);
    let started = Instant::now();
    client
        .login(&user.name, &user.password, SecondFactor::Totp(code), None)
        .await
        .with_context(|| format!("login of {}", user.name))?;
    let login = started.elapsed();
    client.close().await.ok();
    Ok((connected, login))
}

/// The password-hash cost the server runs with, as far as the bench knows it.
#[derive(Debug, Clone, serde::Serialize)]
struct Argon2Report {
    /// `argon2id`.
    algorithm: &'static str,
    /// Memory per hash, KiB.
    memory_kib: Option<u32>,
    /// Iterations.
    iterations: Option<u32>,
    /// Lanes.
    parallelism: u32,
    /// Hashes computed at once.
    hash_concurrency: Option<usize>,
    /// Where the figures come from.
    source: &'static str,
}

impl Argon2Report {
    /// Server defaults (`crates/server/src/config.rs`) overridden by any
    /// `--serve-arg` flags; unknown for a server the bench did not start.
    fn from_serve_args(target: &Target, serve_args: &[String]) -> Self {
        if !target.info.started_by_bench {
            return Self {
                algorithm: "argon2id",
                memory_kib: None,
                iterations: None,
                parallelism: 1,
                hash_concurrency: None,
                source: "external server: see its configuration",
            };
        }
        let flag = |name: &str| {
            serve_args
                .iter()
                .position(|a| a == name)
                .and_then(|i| serve_args.get(i + 1))
                .and_then(|v| v.parse().ok())
        };
        Self {
            algorithm: "argon2id",
            memory_kib: Some(flag("--argon2-memory-kib").unwrap_or(19_456)),
            iterations: Some(flag("--argon2-iterations").unwrap_or(2)),
            parallelism: 1,
            hash_concurrency: Some(flag("--hash-concurrency").map(|v: u32| v as usize).unwrap_or_else(
                || std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
            source: "server defaults and --serve-arg flags",
        }
    }

    fn line(&self) -> String {
        let show = |v: Option<String>| v.unwrap_or_else(|| "?".to_owned());
        format!(
            "{} m={} KiB t={} p={}, {} hashes at once ({})",
            self.algorithm,
            show(self.memory_kib.map(|v| v.to_string())),
            show(self.iterations.map(|v| v.to_string())),
            self.parallelism,
            show(self.hash_concurrency.map(|v| v.to_string())),
            self.source
        )
    }
}
