//! What the benchmark reads about a process from `/proc`: CPU time (user + system), resident
//! memory (now and peak), threads and open file descriptors.
//!
//! In: a pid (or the text of `/proc/<pid>/stat` and `/status` for the pure parsers). Out: a
//! [`ProcSample`].

use std::time::{Duration, Instant};

/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 per second on every Linux ABI.
const USER_HZ: u64 = 100;

/// One look at a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    pub at: Instant,
    /// utime + stime of all its threads.
    pub cpu: Duration,
    pub rss_kib: u64,
    /// Peak resident set (VmHWM).
    pub peak_rss_kib: u64,
    pub threads: u64,
    pub fds: u64,
}

/// utime + stime in ticks from the text of `/proc/<pid>/stat`. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15 (1-based).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (VmRSS, VmHWM in KiB, Threads) from the text of `/proc/<pid>/status`.
pub fn parse_status(status: &str) -> Option<(u64, u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?, field("Threads:")?))
}

/// A sample of `pid`, or `None` if it is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    let (rss_kib, peak_rss_kib, threads) = parse_status(&status)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcSample {
        at,
        cpu: Duration::from_millis(ticks * 1000 / USER_HZ),
        rss_kib,
        peak_rss_kib,
        threads,
        fds,
    })
}

/// The CPU time of this process (the simulation) so far.
pub fn own_cpu() -> Duration {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat_ticks(&s))
        .map_or(Duration::ZERO, |t| {
            Duration::from_millis(t * 1000 / USER_HZ)
        })
}

/// Facts about the machine for the report: CPUs, CPU model, memory.
pub fn machine() -> (usize, String, u64) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_default();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    (cpus, model, mem_kib)
}

#[cfg(test)]
mod tests;
