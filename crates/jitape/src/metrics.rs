//! Process-wide counters and gauges, rendered in the Prometheus text format for
//! `GET /metrics`.
//!
//! The one piece of state shared across tasks, on purpose: each field is an atomic that any
//! task may bump (relaxed ordering; they are statistics, not synchronisation). Conference
//! tasks publish their per-packet numbers in batches (once per checkpoint), so nothing on the
//! per-packet path touches a shared cache line.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed);
    }
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Everything jitape counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub conferences_active: Gauge,
    pub conferences_started: Counter,
    pub conferences_finished: Counter,
    pub recordings_refused: Counter,
    pub participants: Gauge,
    pub packets_received: Counter,
    pub packets_lost: Counter,
    pub packets_concealed: Counter,
    pub packets_late: Counter,
    pub packets_dropped: Counter,
    pub bytes_written: Counter,
    pub hook_runs: Counter,
    pub hook_failures: Counter,
    pub hook_timeouts: Counter,
    pub xmpp_connected: Gauge,
    pub xmpp_reconnects: Counter,
    pub stanzas_rejected: Counter,
    pub stanzas_dropped: Counter,
    pub limit_conferences: Counter,
    pub limit_sources: Counter,
    pub limit_iq_rate: Counter,
    pub limit_stanza_size: Counter,
    /// Participants refused a ledger entry of their own (`limits.max_participants`).
    pub limit_participants: Counter,
    /// Presence intervals merged into a participant's last one (`limits.max_presences`).
    pub limit_presences: Counter,
    pub disk_free_bytes: Gauge,
    pub disk_low: Gauge,
    /// Media sessions that could not be set up or kept, by kind (`conference::machine::MediaProblem`).
    pub media_offer_refused: Counter,
    pub media_failed: Counter,
    pub media_accept_refused: Counter,
    pub media_no_packets: Counter,
    /// Conferences recording now without a working media session (deaf).
    pub conferences_deaf: Gauge,
    /// The worst intake delay (µs) the conferences reported since the load guard last
    /// looked: how long after the kernel received a packet its conference took it in.
    intake_delay_max_us: AtomicU64,
    /// That worst delay over the last period (ms), and the load level (0 normal, 1 strained,
    /// 2 overloaded; see `crate::load`).
    pub intake_delay_ms: Gauge,
    pub load_level: Gauge,
    /// Conferences ended because jitape could not carry them.
    pub conferences_shed: Counter,
    /// PCM bytes waiting for the writer threads (sent or in the conferences' backlogs).
    pub write_backlog_bytes: Gauge,
    /// Audio waiting for the writer threads, all recordings together (microseconds).
    pub write_backlog_micros: Gauge,
    /// Times a recording's writer fell behind and audio waited in its conference's backlog.
    pub write_stalls: Counter,
    /// Audio replaced by silence because a backlog bound was exceeded (microseconds).
    pub write_dropped_micros: Counter,
    /// Recordings whose writer is far behind (a `/ready` reason).
    pub recordings_write_behind: Gauge,
}

impl Metrics {
    /// A conference saw packets taken in up to `us` after they arrived (published about
    /// every 100 ms per conference, not per packet).
    pub fn note_intake_delay_us(&self, us: u64) {
        self.intake_delay_max_us.fetch_max(us, Relaxed);
    }

    /// The worst intake delay since the last call (and start over).
    pub fn take_intake_delay_us(&self) -> u64 {
        self.intake_delay_max_us.swap(0, Relaxed)
    }
}

struct Line<'a> {
    name: &'a str,
    /// `{key="value"}` or empty.
    labels: &'a str,
    kind: &'a str,
    help: &'a str,
    value: i128,
    /// The value is in millionths of the unit the name says (seconds).
    micro: bool,
}

impl Metrics {
    fn lines(&self) -> Vec<Line<'static>> {
        let c = |name, help, v: &Counter| Line {
            name,
            labels: "",
            kind: "counter",
            help,
            value: i128::from(v.get()),
            micro: false,
        };
        let limit = |labels, v: &Counter| Line {
            name: "jitape_limit_hits_total",
            labels,
            kind: "counter",
            help: "Times a configured limit refused something ([limits] in the config).",
            value: i128::from(v.get()),
            micro: false,
        };
        let media = |labels, v: &Counter| Line {
            name: "jitape_media_failures_total",
            labels,
            kind: "counter",
            help: "Media sessions that could not be set up or kept; jitape asked for a new one each time.",
            value: i128::from(v.get()),
            micro: false,
        };
        let g = |name, help, v: &Gauge| Line {
            name,
            labels: "",
            kind: "gauge",
            help,
            value: i128::from(v.get()),
            micro: false,
        };
        let seconds = |line: Line<'static>| Line {
            micro: true,
            ..line
        };
        vec![
            g(
                "jitape_conferences_active",
                "Conferences being recorded now.",
                &self.conferences_active,
            ),
            c(
                "jitape_conferences_started_total",
                "Recordings started.",
                &self.conferences_started,
            ),
            c(
                "jitape_conferences_finished_total",
                "Recordings finalized.",
                &self.conferences_finished,
            ),
            c(
                "jitape_recordings_refused_total",
                "Recordings not started (disk below the floor, limits).",
                &self.recordings_refused,
            ),
            g(
                "jitape_participants",
                "Humans present in the recorded conferences.",
                &self.participants,
            ),
            c(
                "jitape_packets_received_total",
                "RTP packets received from the bridge.",
                &self.packets_received,
            ),
            c(
                "jitape_packets_lost_total",
                "RTP packets never received (sequence gaps).",
                &self.packets_lost,
            ),
            c(
                "jitape_packets_concealed_total",
                "Lost packets concealed with Opus FEC or PLC.",
                &self.packets_concealed,
            ),
            c(
                "jitape_packets_late_total",
                "Packets that arrived after their playout time.",
                &self.packets_late,
            ),
            c(
                "jitape_packets_dropped_total",
                "Packets jitape itself dropped (queue full).",
                &self.packets_dropped,
            ),
            c(
                "jitape_bytes_written_total",
                "FLAC bytes written.",
                &self.bytes_written,
            ),
            c(
                "jitape_hook_runs_total",
                "Finalize hook runs.",
                &self.hook_runs,
            ),
            c(
                "jitape_hook_failures_total",
                "Finalize hook runs that failed, timed out or could not start.",
                &self.hook_failures,
            ),
            c(
                "jitape_hook_timeouts_total",
                "Finalize hook runs killed after their timeout.",
                &self.hook_timeouts,
            ),
            g(
                "jitape_xmpp_connected",
                "1 while the component link to Prosody is up.",
                &self.xmpp_connected,
            ),
            c(
                "jitape_xmpp_reconnects_total",
                "Component link (re)connections after the first.",
                &self.xmpp_reconnects,
            ),
            c(
                "jitape_stanzas_rejected_total",
                "Stanzas jitape refused with an error reply (malformed, unexpected, over a limit).",
                &self.stanzas_rejected,
            ),
            c(
                "jitape_stanzas_dropped_total",
                "Inbound stanzas dropped at the wire: too large, too deep or not well-formed.",
                &self.stanzas_dropped,
            ),
            limit("{limit=\"conferences\"}", &self.limit_conferences),
            limit("{limit=\"sources\"}", &self.limit_sources),
            limit("{limit=\"iq_rate\"}", &self.limit_iq_rate),
            limit("{limit=\"stanza_size\"}", &self.limit_stanza_size),
            limit("{limit=\"participants\"}", &self.limit_participants),
            limit("{limit=\"presences\"}", &self.limit_presences),
            g(
                "jitape_disk_free_bytes",
                "Free bytes on the recording filesystem.",
                &self.disk_free_bytes,
            ),
            g(
                "jitape_disk_low",
                "1 while free space is below the floor (no new recording starts).",
                &self.disk_low,
            ),
            media("{reason=\"offer-refused\"}", &self.media_offer_refused),
            media("{reason=\"ice-dtls-failed\"}", &self.media_failed),
            media("{reason=\"accept-refused\"}", &self.media_accept_refused),
            media("{reason=\"no-packets\"}", &self.media_no_packets),
            g(
                "jitape_intake_delay_ms",
                "Worst delay over the last second between a packet's arrival (kernel) and its conference taking it in.",
                &self.intake_delay_ms,
            ),
            g(
                "jitape_load_level",
                "0 normal, 1 strained (no new recording starts), 2 overloaded (conferences are shed, newest first).",
                &self.load_level,
            ),
            c(
                "jitape_conferences_shed_total",
                "Conferences ended (finalized, reason overload) because jitape could not carry them.",
                &self.conferences_shed,
            ),
            g(
                "jitape_conferences_deaf",
                "Conferences being recorded without a working media session (silence, listed as a gap).",
                &self.conferences_deaf,
            ),
            g(
                "jitape_write_backlog_bytes",
                "PCM bytes waiting for the writer threads (a slow disk), all recordings together.",
                &self.write_backlog_bytes,
            ),
            seconds(g(
                "jitape_write_backlog_seconds",
                "Audio waiting for the writer threads, all recordings together.",
                &self.write_backlog_micros,
            )),
            c(
                "jitape_write_stalls_total",
                "Times a recording's writer fell behind and its audio waited in memory.",
                &self.write_stalls,
            ),
            seconds(c(
                "jitape_write_dropped_seconds_total",
                "Audio replaced by silence (a disk-backlog gap) because the disk was too slow for the backlog bounds.",
                &self.write_dropped_micros,
            )),
            g(
                "jitape_recordings_write_behind",
                "Recordings whose audio waits more than 10 s (or half of recording.write_backlog) for the disk.",
                &self.recordings_write_behind,
            ),
        ]
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut previous = "";
        for l in self.lines() {
            if l.name != previous {
                let _ = writeln!(out, "# HELP {} {}", l.name, l.help);
                let _ = writeln!(out, "# TYPE {} {}", l.name, l.kind);
                previous = l.name;
            }
            if l.micro {
                let sign = if l.value < 0 { "-" } else { "" };
                let v = l.value.unsigned_abs();
                let _ = writeln!(
                    out,
                    "{}{} {sign}{}.{:06}",
                    l.name,
                    l.labels,
                    v / 1_000_000,
                    v % 1_000_000
                );
            } else {
                let _ = writeln!(out, "{}{} {}", l.name, l.labels, l.value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
