//! Times of messages for the timeline: `HH:MM` and the day, in UTC (as the
//! CLI shows them), computed without a time-zone database.

/// `HH:MM` of a Unix time in milliseconds, UTC.
#[must_use]
pub fn hour_minute(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let of_day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}", of_day / 3600, of_day % 3600 / 60)
}

/// The day number (days since 1970-01-01, UTC) of a Unix time in milliseconds.
#[must_use]
pub fn day(ms: i64) -> i64 {
    ms.div_euclid(1000).div_euclid(86_400)
}

/// `Mon 2026-06-22` for a day number.
#[must_use]
pub fn day_label(day: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let (y, m, d) = civil_from_days(day);
    let weekday = WEEKDAYS[usize::try_from(day.rem_euclid(7)).unwrap_or(0)];
    format!("{weekday} {y:04}-{m:02}-{d:02}")
}

/// Year, month, day of a day number (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_days_in_utc() {
        assert_eq!(hour_minute(0), "00:00");
        // 2024-02-29T13:45:10Z
        let leap = 1_709_214_310_000;
        assert_eq!(hour_minute(leap), "13:45");
        assert_eq!(day_label(day(leap)), "Thu 2024-02-29");
        assert_eq!(day_label(0), "Thu 1970-01-01");
        assert_eq!(day_label(day(1_782_086_400_000)), "Mon 2026-06-22");
    }
}
