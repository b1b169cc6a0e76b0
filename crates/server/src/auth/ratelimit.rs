//! Attempt limits in memory.
//!
//! * Per client address: login attempts per minute, and registration attempts
//!   per hour (governor's keyed GCRA limiter; idle keys are purged periodically
//!   so the map stays bounded). The same limiter, keyed by user and by
//!   (claimer, claimed user), bounds KeyPackage claims, and keyed by account the
//!   rates of [`crate::quota`].
//! * Per connection: requests per second, so one socket cannot monopolise a core.
//!
//! Per-account limits (back-off, hourly cap) live in the database, so every
//! server node sees the same ones: see [`super::lockout`].

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use std::{hash::Hash, net::IpAddr, num::NonZeroU32};

/// Login or registration attempts per client address.
pub type AddressLimiter = KeyedLimiter<IpAddr>;

/// Attempts per key (a client address, a user) per minute.
#[derive(Debug)]
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// Allows `per_minute` attempts per key per minute, in bursts of up to
    /// `per_minute`.
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self { limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)) }
    }

    /// Allows `per_hour` attempts per key per hour, in bursts of up to
    /// `per_hour`.
    #[must_use]
    pub fn per_hour(per_hour: u32) -> Self {
        let n = NonZeroU32::new(per_hour).unwrap_or(NonZeroU32::MIN);
        Self { limiter: DefaultKeyedRateLimiter::keyed(Quota::per_hour(n)) }
    }

    /// Takes one attempt for `key`; `false` when over the limit.
    #[must_use]
    pub fn allow(&self, key: &K) -> bool {
        self.allow_n(key, 1)
    }

    /// Takes `n` attempts for `key` at once, or none; `false` when over the
    /// limit (and always for `n` beyond the burst, which never fits).
    #[must_use]
    pub fn allow_n(&self, key: &K, n: u32) -> bool {
        let Some(n) = NonZeroU32::new(n) else { return true };
        matches!(self.limiter.check_key_n(key, n), Ok(Ok(())))
    }

    /// Forgets keys whose allowance is full again.
    pub fn purge(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Requests per second on one connection.
#[derive(Debug)]
pub struct ConnectionLimiter {
    limiter: DefaultDirectRateLimiter,
}

impl ConnectionLimiter {
    /// Allows `per_second` requests per second, bursts of twice that.
    #[must_use]
    pub fn new(per_second: u32) -> Self {
        let n = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = n.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Self { limiter: DefaultDirectRateLimiter::direct(Quota::per_second(n).allow_burst(burst)) }
    }

    /// Takes one request; `false` when over the limit.
    #[must_use]
    pub fn allow(&self) -> bool {
        self.limiter.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_limiter_limits_per_address() {
        let limiter = AddressLimiter::new(3);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        assert!(limiter.allow(&a) && limiter.allow(&a) && limiter.allow(&a));
        assert!(!limiter.allow(&a));
        assert!(limiter.allow(&b));
    }

    #[test]
    fn allow_n_takes_all_or_nothing() {
        let limiter = KeyedLimiter::new(10);
        assert!(limiter.allow_n(&1u8, 7));
        assert!(!limiter.allow_n(&1u8, 4), "only 3 left");
        assert!(limiter.allow_n(&1u8, 3), "the refused request took nothing");
        assert!(!limiter.allow(&1u8));
        assert!(!limiter.allow_n(&2u8, 11), "more than the burst never fits");
        assert!(limiter.allow_n(&2u8, 10));
        assert!(limiter.allow_n(&3u8, 0));
    }
}
