//! Accounts for a run: registered with bounded concurrency, each with its own
//! TOTP secret and session token.
//!
//! Registration costs one argon2 hash on the server (tens of milliseconds, on as
//! many hash slots as the server has cores), so it is the slow part of setting up
//! large scenarios; it is timed and reported apart from the measured phase.

use crate::server::Target;
use anyhow::{Context, Result, bail};
use conclave_client::{Client, ClientError, SessionToken, TotpSecret};
use conclave_proto::ErrorCode;
use futures_util::{StreamExt, stream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `client` name the bench gives in `hello`.
pub const CLIENT_NAME: &str = "conclave-bench/0.1.0";

/// Registrations in flight at once: enough to keep every server hash slot busy
/// while the next requests cross TLS.
pub const REGISTER_CONCURRENCY: usize = 8;

/// A registered account.
#[derive(Debug, Clone)]
pub struct User {
    /// Lower-case username.
    pub name: String,
    /// Its password.
    pub password: String,
    /// Its TOTP secret.
    pub secret: TotpSecret,
    /// The session registration created.
    pub token: SessionToken,
}

/// The accounts of one run, and what making them cost.
#[derive(Debug)]
pub struct Population {
    /// The accounts, in order.
    pub users: Vec<User>,
    /// Wall time of the registrations.
    pub elapsed: Duration,
}

/// Registers `count` accounts named `<prefix><index>`. Registration confirms
/// TOTP with the code of the *previous* 30-second step (the server accepts it),
/// so that the current step stays free for a `login` right away.
///
/// # Errors
/// The first registration that fails.
pub async fn register(target: &Target, prefix: &str, count: usize) -> Result<Population> {
    let started = Instant::now();
    let password = format!("bench password {:016x}", rand::random::<u64>());
    let results: Vec<Result<User>> = stream::iter(0..count)
        .map(|i| {
            let password = password.clone();
            async move { register_one(target, &format!("{prefix}{i}"), &password).await }
        })
        .buffered(REGISTER_CONCURRENCY)
        .collect()
        .await;
    let users = results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(Population { users, elapsed: started.elapsed() })
}

async fn register_one(target: &Target, name: &str, password: &str) -> Result<User> {
    let secret = TotpSecret::generate();
    for _ in 0..3 {
        let mut client = Client::connect_to(&target.address, &target.trust, CLIENT_NAME).await?;
        let code = secret.code_at(unix_now_away_from_step_end().await - 30);
        match client.register(name, password, &secret, &code, None).await {
            Ok(registered) => {
                client.close().await.ok();
                return Ok(User {
                    name: registered.session.user.username,
                    password: password.to_owned(),
                    secret,
                    token: registered.session.token,
                });
            }
            // The step turned between computing the code and the server's check.
            Err(ClientError::Server { code: ErrorCode::InvalidTotp, .. }) => {}
            Err(err) => return Err(err).with_context(|| format!("registering {name}")),
        }
    }
    bail!("registering {name}: TOTP code refused three times (is the clock right?)")
}

/// Unix seconds now, after waiting out the last three seconds of a TOTP step, so
/// a code computed now is still inside its window when the server checks it.
#[must_use]
pub async fn unix_now_away_from_step_end() -> u64 {
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let into_step = now().as_millis() % 30_000;
    if into_step >= 27_000 {
        let wait = u64::try_from(30_000 - into_step).unwrap_or(0) + 50;
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    now().as_secs()
}
