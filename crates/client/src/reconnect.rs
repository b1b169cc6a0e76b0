//! When to try again after a connection drops: exponential back-off with jitter,
//! capped, reset after a connection that lasted. Pure, so it is unit-tested
//! without waiting.

use std::time::Duration;

/// Back-off state for one reconnecting client.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Starts at `base`, doubles per failed attempt, never exceeds `max`.
    #[must_use]
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { attempt: 0, base, max }
    }

    /// The wait before the next attempt. `jitter` in `[0, 1)` spreads clients
    /// that lost the same server so they do not all return at once (up to +50 %).
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX);
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.base.saturating_mul(factor).min(self.max);
        delay.mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 2.0).min(self.max)
    }

    /// A connection succeeded: start from `base` again next time.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let delays: Vec<_> = (0..6).map(|_| b.next_delay(0.0)).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 4000, 4000].map(Duration::from_millis).to_vec());
        assert_eq!(b.next_delay(0.99), Duration::from_secs(4), "jitter never exceeds the cap");
        b.reset();
        assert_eq!(b.next_delay(0.5), Duration::from_millis(625));
    }
}
