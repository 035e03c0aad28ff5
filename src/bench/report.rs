//! The benchmark's figures: computed from the `/proc` samples, the simulation's outcomes, the
//! jitape log and the verdicts; printed as a table and written as JSON (schema
//! `jitape.bench/1`) for comparisons between commits.
//!
//! In: [`RunData`]. Out: a [`BenchReport`]. The arithmetic is pure and tested with synthetic
//! samples.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::logscan::LogScan;
use super::procfs::ProcSample;
use super::verify::Verdict;

/// One periodic look at jitape (and the simulation's own CPU).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    /// Conferences being played at that moment.
    pub active: usize,
    pub jitape: ProcSample,
    pub sim_cpu: Duration,
}

/// What one conference of the run produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConferenceFigures {
    pub room: String,
    pub wall_seconds: f64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub lost: u64,
    pub late: u64,
    pub sim_skipped_ticks: u64,
    /// The latest a talk spurt's first packet left the simulated bridge, after its schedule.
    pub sim_max_late_ms: f64,
    pub verdict: Verdict,
}

/// Everything measured in a run, before the arithmetic.
#[derive(Debug, Clone)]
pub struct RunData {
    pub idle: ProcSample,
    pub samples: Vec<Sample>,
    /// After every recording was finalized, and again a few seconds later.
    pub end: ProcSample,
    pub after: ProcSample,
    pub sim_cpu_run: Duration,
    pub run_wall: Duration,
    pub conferences: Vec<ConferenceFigures>,
    pub log: LogScan,
    pub exit: String,
    /// What the contention beside jitape did (`--contention`).
    pub contention: Option<super::contention::ContentionReport>,
    /// What jitape said about its load (`/ready`, `/metrics`).
    pub health: super::health::Health,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_mib: u64,
    /// 1-minute load average when the run started (other work on the machine).
    pub load_before: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Options {
    pub conferences: usize,
    pub speakers: usize,
    pub duration_s: f64,
    pub ramp_s: f64,
    pub large: Option<LargeOptions>,
    pub seed: u64,
    pub sample_rate: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LargeOptions {
    pub participants: usize,
    pub unmuted: usize,
    pub join_over_s: f64,
}

/// jitape's cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    pub cpu_seconds: f64,
    pub conference_hours: f64,
    pub cpu_seconds_per_conference_hour: f64,
    /// Whole-process CPU while every conference ran, in % of one core (None: run too short).
    pub steady_cpu_percent: Option<f64>,
    pub steady_cpu_percent_per_conference: Option<f64>,
    pub steady_window_s: f64,
    /// Conference audio seconds recorded per CPU second (the whole process, network included).
    pub realtime_factor: f64,
    /// FLAC size per hour of conference.
    pub flac_mib_per_hour: f64,
    pub rss_idle_mib: f64,
    pub rss_steady_mib: Option<f64>,
    pub rss_peak_mib: f64,
    pub rss_after_mib: f64,
    pub rss_per_conference_mib: Option<f64>,
    pub threads_idle: u64,
    pub threads_max: u64,
    pub threads_after: u64,
    pub fds_idle: u64,
    pub fds_max: u64,
    pub fds_after: u64,
    pub exit: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Packets {
    pub sent: u64,
    pub received: u64,
    /// Sent by the simulated bridge but never counted by jitape's timeline.
    pub missing: u64,
    pub lost: u64,
    pub late: u64,
    pub concealed: u64,
    pub unknown_ssrc: u64,
    pub write_failures: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Renegotiations {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    pub max_m_lines: u64,
    /// Those at 90 % or more of the largest m-line count.
    pub at_max_count: usize,
    pub at_max_mean_ms: f64,
    pub at_max_max_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SimFigures {
    /// The simulation's CPU over the run, % of one core.
    pub cpu_percent: f64,
    /// Sender ticks the simulated bridges skipped (more than 100 ms behind; includes the
    /// ticks between a conference's start and the session's acceptance).
    pub skipped_ticks: u64,
    /// The latest any talk spurt started on the wire after its schedule: the simulation
    /// kept real time if this stays within a few ms.
    pub max_late_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    pub files: usize,
    /// Verified: exact for the whole conference, or (shed) exact up to where jitape ended it
    /// for overload, with that reason in the sidecar.
    pub verified: usize,
    pub shed: usize,
    /// Not recorded, and jitape said why (a refusal it logged and counted): not damaged.
    pub refused: usize,
    /// Every conference verified or refused with a reason, and at least one verified.
    pub all_ok: bool,
    /// Of the files not verified: those exact everywhere except in talk windows the
    /// simulation itself sent late (it shares the machine). Not counted as verified: they
    /// say only that the failure lies where the plan cannot tell what is right.
    pub exact_where_sent_on_time: usize,
    /// Talk windows the simulation sent late, over all files.
    pub sent_late_windows: usize,
    /// The share of all files' audio those windows cover (0..1).
    pub sent_late_share: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeriesPoint {
    pub t: f64,
    pub active: usize,
    pub cpu_s: f64,
    pub rss_mib: f64,
    pub threads: u64,
    pub fds: u64,
}

/// The whole report (`--json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    pub schema: &'static str,
    pub started_utc: String,
    pub jitape_binary: String,
    pub machine: Machine,
    pub options: Options,
    pub jitape: Cost,
    pub packets: Packets,
    pub renegotiation: Renegotiations,
    pub sim: SimFigures,
    pub verification: Verification,
    pub log_warnings: u64,
    pub log_errors: u64,
    pub log_first_problems: Vec<String>,
    /// The busy loop and disk writer run beside jitape, if any (`--contention`).
    pub contention: Option<super::contention::ContentionReport>,
    /// What jitape said about its load during the run (`/ready`, `/metrics`).
    pub health: super::health::Health,
    pub conferences: Vec<ConferenceFigures>,
    pub series: Vec<SeriesPoint>,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The samples while all `m` conferences ran, minus a warm-up (a quarter, at most 10 s) and
/// the last 3 s. `None` if that leaves under 2 s.
pub fn steady_window(samples: &[Sample], m: usize) -> Option<(Sample, Sample, Vec<Sample>)> {
    let first = samples.iter().position(|s| s.active >= m && m > 0)?;
    let last = samples[first..]
        .iter()
        .position(|s| s.active < m)
        .map_or(samples.len() - 1, |p| first + p - 1);
    let (t0, t1) = (samples[first].t, samples[last].t);
    let from = t0 + ((t1 - t0) / 4.0).min(10.0);
    let to = t1 - 3.0;
    let inside: Vec<Sample> = samples[first..=last]
        .iter()
        .filter(|s| s.t >= from && s.t <= to)
        .copied()
        .collect();
    let (a, b) = (*inside.first()?, *inside.last()?);
    (b.t - a.t >= 2.0).then_some((a, b, inside))
}

/// Renegotiation statistics (all of them, and those near the largest m-line count).
pub fn renegotiations(log: &LogScan) -> Renegotiations {
    let mut all: Vec<f64> = log
        .renegotiations
        .iter()
        .map(|r| r.took_us as f64 / 1000.0)
        .collect();
    all.sort_by(f64::total_cmp);
    let max_m = log
        .renegotiations
        .iter()
        .map(|r| r.m_lines)
        .max()
        .unwrap_or(0);
    let near: Vec<f64> = log
        .renegotiations
        .iter()
        .filter(|r| r.m_lines * 10 >= max_m * 9)
        .map(|r| r.took_us as f64 / 1000.0)
        .collect();
    Renegotiations {
        count: all.len(),
        p50_ms: percentile(&all, 0.5),
        p95_ms: percentile(&all, 0.95),
        max_ms: all.last().copied().unwrap_or(0.0),
        max_m_lines: max_m,
        at_max_count: near.len(),
        at_max_mean_ms: near.iter().sum::<f64>() / near.len().max(1) as f64,
        at_max_max_ms: near.iter().copied().fold(0.0, f64::max),
    }
}

/// The cost figures from the samples.
pub fn cost(d: &RunData, m: usize) -> Cost {
    let cpu = d.end.cpu.saturating_sub(d.idle.cpu).as_secs_f64();
    let conf_seconds: f64 = d.conferences.iter().map(|c| c.wall_seconds).sum();
    let audio_seconds: f64 = d.conferences.iter().map(|c| c.verdict.file_seconds).sum();
    let steady = steady_window(&d.samples, m);
    let (steady_cpu, steady_rss, window) = match &steady {
        Some((a, b, inside)) => {
            let dt = b.t - a.t;
            let pct = b.jitape.cpu.saturating_sub(a.jitape.cpu).as_secs_f64() / dt * 100.0;
            let rss = median(inside.iter().map(|s| mib(s.jitape.rss_kib)).collect());
            (Some(pct), rss, dt)
        }
        None => (None, None, 0.0),
    };
    let all = d.samples.iter().map(|s| &s.jitape);
    let idle_rss = mib(d.idle.rss_kib);
    Cost {
        cpu_seconds: cpu,
        conference_hours: conf_seconds / 3600.0,
        cpu_seconds_per_conference_hour: if conf_seconds > 0.0 {
            cpu / (conf_seconds / 3600.0)
        } else {
            0.0
        },
        steady_cpu_percent: steady_cpu,
        steady_cpu_percent_per_conference: steady_cpu.map(|p| p / m.max(1) as f64),
        steady_window_s: window,
        realtime_factor: if cpu > 0.0 { audio_seconds / cpu } else { 0.0 },
        flac_mib_per_hour: if audio_seconds > 0.0 {
            d.conferences
                .iter()
                .map(|c| c.verdict.file_bytes)
                .sum::<u64>() as f64
                / 1_048_576.0
                / (audio_seconds / 3600.0)
        } else {
            0.0
        },
        rss_idle_mib: idle_rss,
        rss_steady_mib: steady_rss,
        rss_peak_mib: mib(d.after.peak_rss_kib.max(d.end.peak_rss_kib)),
        rss_after_mib: mib(d.after.rss_kib),
        rss_per_conference_mib: steady_rss.map(|r| (r - idle_rss) / m.max(1) as f64),
        threads_idle: d.idle.threads,
        threads_max: all.clone().map(|s| s.threads).max().unwrap_or(0),
        threads_after: d.after.threads,
        fds_idle: d.idle.fds,
        fds_max: all.map(|s| s.fds).max().unwrap_or(0),
        fds_after: d.after.fds,
        exit: d.exit.clone(),
    }
}

/// Packet totals over all conferences.
pub fn packets(d: &RunData) -> Packets {
    let mut p = Packets::default();
    for c in &d.conferences {
        p.sent += c.packets_sent;
    }
    for t in d.log.totals.values() {
        p.received += t.packets;
        p.lost += t.lost;
        p.late += t.late;
        p.concealed += t.concealed;
        p.unknown_ssrc += t.unknown_ssrc;
        p.write_failures += t.write_failures;
    }
    p.missing = p.sent.saturating_sub(p.received);
    p
}

/// Downsampled series for the JSON (at most ~300 points).
pub fn series(samples: &[Sample]) -> Vec<SeriesPoint> {
    let step = samples.len().div_ceil(300).max(1);
    samples
        .iter()
        .step_by(step)
        .map(|s| SeriesPoint {
            t: (s.t * 10.0).round() / 10.0,
            active: s.active,
            cpu_s: s.jitape.cpu.as_secs_f64(),
            rss_mib: (mib(s.jitape.rss_kib) * 100.0).round() / 100.0,
            threads: s.jitape.threads,
            fds: s.jitape.fds,
        })
        .collect()
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.digits$}"))
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let j = &self.jitape;
        let p = &self.packets;
        let r = &self.renegotiation;
        match &o.large {
            Some(l) => writeln!(
                f,
                "jitape bench --large: 1 conference, {} participants ({} unmuted at a time, joining over {:.0} s), {:.0} s",
                l.participants, l.unmuted, l.join_over_s, o.duration_s
            )?,
            None => writeln!(
                f,
                "jitape bench: {} conferences x {} speakers, {:.0} s each (ramp {:.0} s)",
                o.conferences, o.speakers, o.duration_s, o.ramp_s
            )?,
        }
        writeln!(
            f,
            "machine: {} CPUs, {}, {} MiB RAM, load {:.2} before the run",
            self.machine.cpus,
            self.machine.cpu_model,
            self.machine.mem_mib,
            self.machine.load_before
        )?;
        if let Some(c) = &self.contention {
            writeln!(
                f,
                "contention beside jitape: a busy loop ({:.0} CPU s) and a disk writer ({} MiB in 256 MiB passes, {} fsyncs, slowest {:.2} s)",
                c.busy_cpu_s, c.written_mib, c.fsyncs, c.worst_fsync_s
            )?;
        }
        let h = &self.health;
        writeln!(
            f,
            "jitape said: /ready {} ready, {} not ready{}, {} unanswered; load level max {:.0}, intake delay max {:.0} ms; {:.0} recordings refused, {:.0} conferences shed",
            h.ready,
            h.not_ready,
            if h.reasons.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    h.reasons.iter().cloned().collect::<Vec<_>>().join("; ")
                )
            },
            h.unreachable,
            h.max_load_level,
            h.max_intake_delay_ms,
            h.recordings_refused,
            h.conferences_shed
        )?;
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "  {k:<38} {v}");
        row(
            f,
            "CPU s per conference-hour",
            format!("{:.1}", j.cpu_seconds_per_conference_hour),
        )?;
        row(
            f,
            "CPU while all ran (% of one core)",
            opt(j.steady_cpu_percent, 1),
        )?;
        row(
            f,
            "  per conference (% of one core)",
            opt(j.steady_cpu_percent_per_conference, 3),
        )?;
        row(
            f,
            "real-time factor (audio s / CPU s)",
            format!("{:.0}x", j.realtime_factor),
        )?;
        row(
            f,
            "FLAC size (MiB per conference-hour)",
            format!("{:.1}", j.flac_mib_per_hour),
        )?;
        row(
            f,
            "RSS idle / steady / peak / after (MiB)",
            format!(
                "{:.1} / {} / {:.1} / {:.1}",
                j.rss_idle_mib,
                opt(j.rss_steady_mib, 1),
                j.rss_peak_mib,
                j.rss_after_mib
            ),
        )?;
        row(
            f,
            "RSS per added conference (MiB)",
            opt(j.rss_per_conference_mib, 3),
        )?;
        row(
            f,
            "threads idle / max / after",
            format!(
                "{} / {} / {}",
                j.threads_idle, j.threads_max, j.threads_after
            ),
        )?;
        row(
            f,
            "open fds idle / max / after",
            format!("{} / {} / {}", j.fds_idle, j.fds_max, j.fds_after),
        )?;
        row(
            f,
            "packets sent / received / missing",
            format!("{} / {} / {}", p.sent, p.received, p.missing),
        )?;
        row(
            f,
            "  lost / late / concealed / unknown",
            format!(
                "{} / {} / {} / {}",
                p.lost, p.late, p.concealed, p.unknown_ssrc
            ),
        )?;
        row(
            f,
            "renegotiations (n, p50, p95, max ms)",
            format!(
                "{}, {:.2}, {:.2}, {:.2}",
                r.count, r.p50_ms, r.p95_ms, r.max_ms
            ),
        )?;
        row(
            f,
            "  at the largest source count",
            format!(
                "{} m-lines: {} of them, mean {:.2} ms, max {:.2} ms",
                r.max_m_lines, r.at_max_count, r.at_max_mean_ms, r.at_max_max_ms
            ),
        )?;
        row(
            f,
            "simulation CPU (% of one core)",
            format!("{:.1}", self.sim.cpu_percent),
        )?;
        row(
            f,
            "  latest spurt start behind schedule",
            format!("{:.1} ms", self.sim.max_late_ms),
        )?;
        row(
            f,
            "jitape warnings / errors in log",
            format!("{} / {}", self.log_warnings, self.log_errors),
        )?;
        row(f, "jitape exit", j.exit.clone())?;
        row(
            f,
            "files verified",
            format!(
                "{} of {}{}{} {}",
                self.verification.verified,
                self.verification.files,
                if self.verification.shed > 0 {
                    format!(
                        " ({} of them shed for overload, exact up to their end)",
                        self.verification.shed
                    )
                } else {
                    String::new()
                },
                if self.verification.refused > 0 {
                    format!(
                        "; {} not recorded, refused with a reason",
                        self.verification.refused
                    )
                } else {
                    String::new()
                },
                if self.verification.all_ok {
                    "(all ok)"
                } else {
                    "(FAILURES)"
                }
            ),
        )?;
        if self.verification.sent_late_windows > 0 {
            row(
                f,
                "talk windows the simulation sent late",
                format!(
                    "{} (over {} ms behind its schedule; {:.1} % of the audio); {} of the failed files are exact outside them",
                    self.verification.sent_late_windows,
                    super::verify::SENT_LATE.as_millis(),
                    self.verification.sent_late_share * 100.0,
                    self.verification.exact_where_sent_on_time
                ),
            )?;
        }
        for c in self
            .conferences
            .iter()
            .filter(|c| !c.verdict.ok() && !c.verdict.refused)
            .take(5)
        {
            writeln!(f, "  FAILED {}: {}", c.room, c.verdict.problems.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
