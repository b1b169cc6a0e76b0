//! Wall-clock time as stored in the database. One place, so tests and code agree
//! on units.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now.
#[must_use]
pub fn now_secs() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Unix milliseconds now.
#[must_use]
pub fn now_ms() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}
