//! The counters that decide when logins must wait: per attempted username for
//! untrusted clients, per device cookie for known devices, and per username the
//! failures of all its known devices in the last hour.
//!
//! An attempt is counted *before* its password is checked, in one transaction
//! that holds the counters' rows: however many attempts race (on one node or
//! several), each sees the count the one before it left, so none slips past a
//! back-off that an earlier one started. A successful attempt then gives its
//! count back. What counting means is the caller's `decide` function; this
//! module only reads and writes the rows.

use super::{Result, Store, with_pool};

/// The counters one attempt is judged on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptCounters {
    /// Consecutive failures.
    pub failures: i64,
    /// End of the back-off (Unix seconds; 0 or past when none).
    pub locked_until: i64,
    /// Times of the failures in the last hour, oldest first (Unix seconds).
    pub recent: Vec<i64>,
}

/// Which counters an attempt is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// A client without a valid device cookie: the attempted username's
    /// counters (whether or not the account exists).
    Untrusted {
        /// The attempted (lower-case) username.
        username: &'a str,
    },
    /// A client with a valid device cookie: the cookie's back-off, and the
    /// hourly failures of all the user's known devices.
    KnownDevice {
        /// The user's (lower-case) username.
        username: &'a str,
        /// The cookie's row.
        cookie: i64,
    },
}

impl Scope<'_> {
    fn username(&self) -> &str {
        match self {
            Self::Untrusted { username } | Self::KnownDevice { username, .. } => username,
        }
    }
}

fn decode(recent: &str) -> Vec<i64> {
    // Written only by `encode`; anything else is treated as no failures.
    serde_json::from_str(recent).unwrap_or_default()
}

fn encode(recent: &[i64]) -> String {
    serde_json::to_string(recent).unwrap_or_else(|_| "[]".to_owned())
}

impl Store {
    /// After a successful login: the consecutive failures of `scope` start
    /// again from none, and the attempt counted at `counted_at` is given back.
    pub async fn attempt_succeeded(&self, scope: Scope<'_>, now: i64, counted_at: i64) -> Result<()> {
        self.count_attempt(scope, now, |counters| {
            let mut recent = counters.recent.clone();
            if let Some(i) = recent.iter().position(|&at| at == counted_at) {
                recent.remove(i);
            }
            Some(AttemptCounters { failures: 0, locked_until: 0, recent })
        })
        .await
        .map(drop)
    }

    /// Reads the counters of `scope` with their rows locked, lets `decide`
    /// turn them into the counters after this attempt (`None`: the attempt is
    /// not judged, and nothing changes), writes those and returns them.
    ///
    /// One transaction: it locks the username's row (creating it), then the
    /// cookie's — in that order everywhere, so two attempts never wait on each
    /// other in a circle.
    pub async fn count_attempt(
        &self,
        scope: Scope<'_>,
        now: i64,
        decide: impl FnOnce(&AttemptCounters) -> Option<AttemptCounters>,
    ) -> Result<Option<AttemptCounters>> {
        let (lock_row, write_row) = match scope {
            Scope::Untrusted { .. } => (
                "INSERT INTO login_failures (username, failures, last_failure_at) VALUES ($1, 0, $2) \
                 ON CONFLICT (username) DO UPDATE SET username = excluded.username \
                 RETURNING failures, locked_until, recent_failures",
                "UPDATE login_failures SET failures = $2, locked_until = $3, recent_failures = $4, \
                 last_failure_at = $5 WHERE username = $1",
            ),
            Scope::KnownDevice { .. } => (
                "INSERT INTO login_failures (username, failures, last_failure_at) VALUES ($1, 0, $2) \
                 ON CONFLICT (username) DO UPDATE SET username = excluded.username \
                 RETURNING failures, locked_until, device_recent_failures",
                "UPDATE login_failures SET device_recent_failures = $2, last_failure_at = $3 WHERE username = $1",
            ),
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let (failures, locked_until, recent): (i64, i64, String) =
                sqlx::query_as(lock_row).bind(scope.username()).bind(now).fetch_one(&mut *tx).await?;
            let mut counters = AttemptCounters { failures, locked_until, recent: decode(&recent) };
            if let Scope::KnownDevice { cookie, .. } = scope {
                // A no-op write, so the row is locked on both backends.
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "UPDATE device_cookies SET failures = failures WHERE id = $1 RETURNING failures, locked_until",
                )
                .bind(cookie)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((failures, locked_until)) = row else {
                    // Revoked meanwhile: nothing to count on.
                    return Ok(None);
                };
                counters.failures = failures;
                counters.locked_until = locked_until;
            }
            let Some(next) = decide(&counters) else { return Ok(None) };
            match scope {
                Scope::Untrusted { username } => {
                    sqlx::query(write_row)
                        .bind(username)
                        .bind(next.failures)
                        .bind(next.locked_until)
                        .bind(encode(&next.recent))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                Scope::KnownDevice { username, cookie } => {
                    sqlx::query(write_row)
                        .bind(username)
                        .bind(encode(&next.recent))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE device_cookies SET failures = $2, locked_until = $3 WHERE id = $1")
                        .bind(cookie)
                        .bind(next.failures)
                        .bind(next.locked_until)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(Some(next))
        })
    }

    /// Deletes counter rows whose last failure is older than `before` and
    /// whose back-off has ended, so the table stays bounded.
    pub async fn prune_login_failures(&self, before: i64) -> Result<u64> {
        Ok(with_pool!(self, pool => sqlx::query(
            "DELETE FROM login_failures WHERE last_failure_at < $1 AND locked_until < $1",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
