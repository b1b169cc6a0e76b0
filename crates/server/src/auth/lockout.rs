//! Which login attempts are judged, and how long an account or a device waits
//! after failures.
//!
//! Every attempt is judged on one set of counters: the attempted username's
//! for clients without a valid device cookie ("untrusted"), or, with one, the
//! cookie's own consecutive failures together with the failures of all the
//! user's known devices in the last hour. So someone without the password and
//! without a cookie can put the untrusted counters into a back-off, but never
//! the cookie of a device that logged in before (the OWASP "device cookies"
//! pattern).
//!
//! * **Back-off:** after `max_failures` consecutive failures, `backoff`,
//!   doubling with each further failure up to `backoff_max`. A back-off always
//!   ends; a success resets the count.
//! * **Hourly cap:** at most `failures_per_hour` failures are judged in any 60
//!   minutes; then attempts wait until the oldest of them is an hour old.
//! * An attempt that waits is refused (with the same answer as a wrong
//!   password) *without being judged or counted*, so attempts during a back-off,
//!   the user's correct one included, never extend it.
//!
//! **The bound.** A guess is an attempt whose password is judged. Per account
//! and any 60 minutes, untrusted clients get at most `failures_per_hour` wrong
//! guesses and the account's known devices together at most as many more;
//! configuration allows at most [`MAX_FAILURES_PER_HOUR`] (50), so no account
//! ever sees more than 100 wrong guesses an hour, whatever the back-off
//! settings. With the default back-off (5 failures, then 30 s doubling to
//! 15 min) the back-off alone allows 12 an hour to each counter (see the tests).

use crate::store::AttemptCounters;
use std::time::Duration;

/// The highest `login_failures_per_hour` a server accepts: twice this is the
/// most wrong guesses an account can see in an hour.
pub const MAX_FAILURES_PER_HOUR: u32 = 50;

/// How long a failure counts towards the hourly cap.
const HOUR_SECS: i64 = 3600;

/// The login limits from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Consecutive failures before a back-off starts.
    pub max_failures: u32,
    /// The first back-off.
    pub backoff: Duration,
    /// The longest back-off.
    pub backoff_max: Duration,
    /// Failures judged in any 60 minutes.
    pub failures_per_hour: u32,
}

impl LoginLimits {
    /// The counters after judging one more attempt at `now`, counted as a
    /// failure until it succeeds; `None` when the attempt must wait (and then
    /// nothing changes).
    #[must_use]
    pub fn count(&self, counters: &AttemptCounters, now: i64) -> Option<AttemptCounters> {
        let mut recent: Vec<i64> =
            counters.recent.iter().copied().filter(|&at| at > now - HOUR_SECS).collect();
        if counters.locked_until > now || recent.len() >= self.cap() {
            return None;
        }
        recent.push(now);
        let failures = counters.failures.saturating_add(1);
        let locked_until = match backoff(failures, self.max_failures, self.backoff, self.backoff_max) {
            // Times are whole seconds: round up, so a back-off is never shorter
            // than configured (a failure at 10.9 s with a 2 s back-off lasts
            // until 13 s).
            Some(wait) => {
                let secs = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
                now.saturating_add(secs).saturating_add(1).max(counters.locked_until)
            }
            None => counters.locked_until,
        };
        Some(AttemptCounters { failures, locked_until, recent })
    }

    /// Until when attempts on `counters` wait, if they do at `now`: the end of
    /// the back-off, or the moment the hour's oldest counted failure expires.
    #[must_use]
    pub fn waits_until(&self, counters: &AttemptCounters, now: i64) -> Option<i64> {
        let recent: Vec<i64> = counters.recent.iter().copied().filter(|&at| at > now - HOUR_SECS).collect();
        let capped = recent.len().checked_sub(self.cap()).map(|i| recent[i] + HOUR_SECS);
        let until = capped.unwrap_or(0).max(counters.locked_until);
        (until > now).then_some(until)
    }

    fn cap(&self) -> usize {
        usize::try_from(self.failures_per_hour).unwrap_or(usize::MAX)
    }
}

/// The back-off after `failures` consecutive failures: none below
/// `threshold`, then `base`, doubling per further failure, capped at `max`.
#[must_use]
pub fn backoff(failures: i64, threshold: u32, base: Duration, max: Duration) -> Option<Duration> {
    let over = failures.checked_sub(i64::from(threshold))?;
    if over < 0 {
        return None;
    }
    let factor = 1u32.checked_shl(u32::try_from(over).unwrap_or(u32::MAX).min(31)).unwrap_or(u32::MAX);
    Some(base.saturating_mul(factor).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: LoginLimits = LoginLimits {
        max_failures: 5,
        backoff: Duration::from_secs(30),
        backoff_max: Duration::from_secs(900),
        failures_per_hour: MAX_FAILURES_PER_HOUR,
    };

    /// An attacker who tries once a second for `secs`; returns the times of
    /// the attempts that were judged.
    fn judged_attempts(limits: LoginLimits, secs: i64) -> Vec<i64> {
        let mut counters = AttemptCounters::default();
        let mut judged = Vec::new();
        for now in 0..secs {
            if let Some(next) = limits.count(&counters, now) {
                counters = next;
                judged.push(now);
            }
        }
        judged
    }

    fn most_in_any_hour(times: &[i64]) -> usize {
        times
            .iter()
            .map(|&start| times.iter().filter(|&&t| t >= start && t < start + HOUR_SECS).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn backoff_starts_at_threshold_doubles_and_is_capped() {
        let (base, max) = (Duration::from_secs(30), Duration::from_secs(900));
        assert_eq!(backoff(4, 5, base, max), None);
        assert_eq!(backoff(5, 5, base, max), Some(Duration::from_secs(30)));
        assert_eq!(backoff(6, 5, base, max), Some(Duration::from_secs(60)));
        assert_eq!(backoff(9, 5, base, max), Some(Duration::from_secs(480)));
        assert_eq!(backoff(10, 5, base, max), Some(max));
        assert_eq!(backoff(1_000, 5, base, max), Some(max));
    }

    #[test]
    fn the_default_backoff_allows_12_guesses_an_hour_to_each_counter() {
        let judged = judged_attempts(DEFAULTS, 4 * 3600);
        assert_eq!(most_in_any_hour(&judged), 12);
    }

    #[test]
    fn the_hourly_cap_holds_whatever_the_backoff_allows() {
        let lax = LoginLimits {
            max_failures: 1_000,
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(1),
            failures_per_hour: MAX_FAILURES_PER_HOUR,
        };
        let judged = judged_attempts(lax, 4 * 3600);
        assert_eq!(most_in_any_hour(&judged), 50, "untrusted and known devices: at most 100 together");
        assert!(judged.len() >= 4 * 50, "the cap frees up as failures age: {}", judged.len());
    }

    #[test]
    fn an_attempt_that_waits_is_not_counted_and_does_not_extend_the_backoff() {
        let limits = LoginLimits { max_failures: 2, ..DEFAULTS };
        let first = limits.count(&AttemptCounters::default(), 100).unwrap();
        assert_eq!(first.locked_until, 0);
        let second = limits.count(&first, 101).unwrap();
        assert_eq!(second.locked_until, 101 + 30 + 1, "the second failure starts a back-off");
        assert_eq!(limits.waits_until(&second, 101), Some(132));
        for now in 102..132 {
            assert_eq!(limits.count(&second, now), None, "at {now}: waits, nothing counted");
        }
        let third = limits.count(&second, 132).unwrap();
        assert_eq!(third.locked_until, 132 + 60 + 1, "the next judged failure doubles it");
        assert_eq!(limits.waits_until(&third, 200), None);
    }

    #[test]
    fn a_full_hour_waits_for_its_oldest_failure_to_expire() {
        let limits = LoginLimits { max_failures: 100, failures_per_hour: 3, ..DEFAULTS };
        let mut counters = AttemptCounters::default();
        for now in [10, 20, 30] {
            counters = limits.count(&counters, now).unwrap();
        }
        assert_eq!(limits.count(&counters, 40), None);
        assert_eq!(limits.waits_until(&counters, 40), Some(10 + 3600));
        assert!(limits.count(&counters, 3610).is_some(), "the failure at 10 no longer counts");
    }
}
