//! What a process costs the machine — memory, CPU time, open files, threads —
//! as the kernel counts it in `/proc`.
//!
//! The server exports its own figures on `/metrics` under the names every
//! Prometheus client library uses (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, …), so an operator's usual dashboards work
//! unchanged, and a load generator on another machine can still divide the
//! server's CPU time by the deliveries it measured. [`ProcessSample::parse`]
//! reads those lines back; keeping it beside the names it reads means the two
//! cannot drift apart.

use serde::Serialize;
use std::io;

/// `process_cpu_seconds_total`: user plus system CPU time.
pub const CPU_SECONDS: &str = "process_cpu_seconds";
/// `process_resident_memory_bytes`: resident memory (`VmRSS`).
pub const RESIDENT_BYTES: &str = "process_resident_memory_bytes";
/// `process_resident_memory_peak_bytes`: the most resident memory so far
/// (`VmHWM`). Not one of the usual names; memory per connection is read
/// against it.
pub const PEAK_RESIDENT_BYTES: &str = "process_resident_memory_peak_bytes";
/// `process_open_fds`: open file descriptors (connections, database, log).
pub const OPEN_FDS: &str = "process_open_fds";
/// `process_threads`: the process's threads.
pub const THREADS: &str = "process_threads";

/// Clock ticks per second of `/proc/PID/stat` times: `USER_HZ`, which Linux
/// fixes at 100 for user space on every architecture.
const USER_HZ: f64 = 100.0;

/// One reading of a process's resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcessSample {
    /// Resident memory, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident memory so far, KiB (`VmHWM`).
    pub peak_rss_kib: u64,
    /// User plus system CPU time, seconds (100 Hz ticks).
    pub cpu_secs: f64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
}

impl ProcessSample {
    /// Reads `/proc/<pid>/…`; `pid` may be `self`.
    ///
    /// # Errors
    /// When the process is gone, there is no `/proc` (not Linux), or its files
    /// do not parse.
    pub fn read(pid: &str) -> io::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name may contain spaces and parentheses: fields start after
        // the last ')'. utime and stime are fields 14 and 15 (1-based), i.e. the
        // 12th and 13th after the name.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc stat"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
        #[allow(clippy::cast_precision_loss)] // CPU ticks stay far below 2^52.
        let cpu_secs = (ticks(11) + ticks(12)) as f64 / USER_HZ;
        Ok(Self {
            rss_kib: field("VmRSS:"),
            peak_rss_kib: field("VmHWM:"),
            cpu_secs,
            fds: u64::try_from(fds).unwrap_or(u64::MAX),
            threads: field("Threads:"),
        })
    }

    /// This process, or nothing where `/proc` cannot be read.
    #[must_use]
    pub fn own() -> Self {
        Self::read("self").unwrap_or_default()
    }

    /// Reads a server's figures from its `/metrics` text; `None` when one of
    /// them is missing or does not parse (a server of another make, or one
    /// that could not read its own `/proc`).
    #[must_use]
    pub fn parse(metrics: &str) -> Option<Self> {
        let value = |name: &str| -> Option<f64> {
            metrics.lines().find_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
                rest.split_whitespace().next()?.parse().ok()
            })
        };
        let kib = |name: &str| value(name).map(|bytes| whole(bytes) / 1024);
        Some(Self {
            rss_kib: kib(RESIDENT_BYTES)?,
            peak_rss_kib: kib(PEAK_RESIDENT_BYTES)?,
            cpu_secs: value(&format!("{CPU_SECONDS}_total"))?,
            fds: whole(value(OPEN_FDS)?),
            threads: whole(value(THREADS)?),
        })
    }
}

/// Raises this process's soft limit on open files to its hard limit, and
/// returns the limit now in force.
///
/// Every connection holds a file descriptor, and the soft limit a shell or
/// service manager usually starts a process with (1,024) would refuse
/// connections long before `max_connections` (20,000 by default), while the
/// hard limit is usually far higher. Raising the soft limit up to the hard one
/// needs no privilege.
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_open_files_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// A gauge's value as the whole number it counts; negative or absurd values
/// read as 0.
fn whole(value: f64) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // Checked range.
    if value.is_finite() && value >= 0.0 && value < 2f64.powi(63) { value as u64 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reads_as_alive() {
        let sample = ProcessSample::read("self").expect("/proc/self");
        assert!(sample.rss_kib > 0 && sample.peak_rss_kib >= sample.rss_kib, "{sample:?}");
        assert!(sample.fds >= 3 && sample.threads >= 1, "{sample:?}");
    }

    #[test]
    fn a_process_that_does_not_exist_is_an_error() {
        assert!(ProcessSample::read("not-a-pid").is_err());
    }

    #[test]
    fn metrics_lines_read_back_and_a_missing_one_is_no_reading() {
        let text = "# TYPE process_cpu_seconds counter\n\
                    process_cpu_seconds_total 12.5\n\
                    process_resident_memory_bytes 2097152\n\
                    process_resident_memory_peak_bytes 3145728\n\
                    process_open_fds 1029\n\
                    process_threads 13\n";
        let sample = ProcessSample::parse(text).expect("all five");
        assert_eq!(
            sample,
            ProcessSample { rss_kib: 2048, peak_rss_kib: 3072, cpu_secs: 12.5, fds: 1029, threads: 13 }
        );
        let without_threads: String =
            text.lines().filter(|l| !l.starts_with(THREADS)).collect::<Vec<_>>().join("\n");
        assert_eq!(ProcessSample::parse(&without_threads), None);
        assert_eq!(ProcessSample::parse(&text.replace("1029", "many")), None);
    }
}
