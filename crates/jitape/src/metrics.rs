//! Process-wide counters and gauges, rendered in the OpenMetrics text format (by the
//! `prometheus-client` crate, from a table of the families) for `GET /metrics`.
//!
//! The one piece of state shared across tasks, on purpose: each field is an atomic that any
//! task may bump (relaxed ordering; they are statistics, not synchronisation). Conference
//! tasks publish their per-packet numbers in batches (once per checkpoint), so nothing on the
//! per-packet path touches a shared cache line.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

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
    /// This instance's name (`xmpp.instance`), set once at start: `jitape_instance_info`.
    pub instance: std::sync::OnceLock<String>,
    pub conferences_active: Gauge,
    pub conferences_started: Counter,
    pub conferences_finished: Counter,
    pub recordings_refused: Counter,
    /// Recordings whose writer stopped because the owner record ran out (several instances).
    pub recordings_fenced: Counter,
    /// Recordings continued from another instance's unfinished files.
    pub recordings_taken_over: Counter,
    pub participants: Gauge,
    pub packets_received: Counter,
    pub packets_lost: Counter,
    pub packets_concealed: Counter,
    pub packets_late: Counter,
    pub packets_dropped: Counter,
    pub packets_unstamped: Counter,
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
    /// Recording files (mix, sidecar, stems) served by the recordings page: whole, or a
    /// range of them (a player seeking).
    pub http_file_whole: Counter,
    pub http_file_ranges: Counter,
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

/// The content type of [`Metrics::render`]: the OpenMetrics text format, which Prometheus
/// asks for and reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Metrics {
    /// The OpenMetrics text exposition of every metric, ending in `# EOF`.
    pub fn render(&self) -> String {
        // A registry's collectors live as long as it does, so this one holds the values read
        // now rather than a borrow of `self`.
        let scrape = Scrape(FAMILIES.iter().map(|f| (f, f.read(self))).collect());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(scrape));
        if let Some(name) = self.instance.get() {
            registry.register(
                "jitape_instance",
                "Which jitape instance this is (several can share the rooms of one Prosody)",
                Info::new(vec![("instance".to_string(), name.clone())]),
            );
        }
        let mut body = String::new();
        // Neither writing to a String nor the collector can fail.
        let written = text::encode(&mut body, &registry);
        debug_assert!(written.is_ok(), "{written:?}");
        body
    }
}

/// Where a sample's value is, which also gives its family's type.
#[derive(Debug, Clone, Copy)]
enum Read {
    Count(fn(&Metrics) -> &Counter),
    Level(fn(&Metrics) -> &Gauge),
    /// A count of microseconds, shown in seconds.
    CountMicros(fn(&Metrics) -> &Counter),
    /// A level in microseconds, shown in seconds.
    LevelMicros(fn(&Metrics) -> &Gauge),
}

// The rows of `FAMILIES` name them bare.
use Read::{Count, CountMicros, Level, LevelMicros};

/// A sample's value at the scrape (the `F`s in seconds).
#[derive(Debug, Clone, Copy)]
enum Value {
    Count(u64),
    Level(i64),
    CountF(f64),
    LevelF(f64),
}

impl Read {
    fn kind(self) -> MetricType {
        match self {
            Count(_) | CountMicros(_) => MetricType::Counter,
            Level(_) | LevelMicros(_) => MetricType::Gauge,
        }
    }

    fn value(self, m: &Metrics) -> Value {
        match self {
            Count(f) => Value::Count(f(m).get()),
            Level(f) => Value::Level(f(m).get()),
            CountMicros(f) => Value::CountF(f(m).get() as f64 / 1e6),
            LevelMicros(f) => Value::LevelF(f(m).get() as f64 / 1e6),
        }
    }
}

impl Value {
    fn encode(self, e: MetricEncoder) -> fmt::Result {
        match self {
            Value::Count(v) => ConstCounter::new(v).encode(e),
            Value::Level(v) => ConstGauge::new(v).encode(e),
            Value::CountF(v) => ConstCounter::new(v).encode(e),
            Value::LevelF(v) => ConstGauge::new(v).encode(e),
        }
    }
}

/// A family's samples: one without labels, or one per value of a label (each always shown,
/// zeros included).
#[derive(Debug)]
enum Samples {
    One(Read),
    By(&'static str, &'static [(&'static str, Read)]),
}

/// A metric family, a row of [`FAMILIES`].
#[derive(Debug)]
struct Family {
    /// As the `# TYPE` line names it: a counter's without the `_total` the encoder appends to
    /// its samples; ending in the unit (`_seconds`, `_bytes`) if it has one.
    name: &'static str,
    help: &'static str,
    unit: Option<&'static Unit>,
    samples: Samples,
}

static SECONDS: Unit = Unit::Seconds;
static BYTES: Unit = Unit::Bytes;

const fn one(name: &'static str, help: &'static str, read: Read) -> Family {
    Family {
        name,
        help,
        unit: None,
        samples: Samples::One(read),
    }
}

impl Family {
    const fn in_unit(self, unit: &'static Unit) -> Family {
        Family {
            unit: Some(unit),
            ..self
        }
    }

    fn kind(&self) -> MetricType {
        match self.samples {
            Samples::One(r) => r.kind(),
            Samples::By(_, children) => children[0].1.kind(),
        }
    }

    /// The name without the unit, which the encoder appends.
    fn base_name(&self) -> &'static str {
        let base = |u: &Unit| self.name.strip_suffix(u.as_str())?.strip_suffix('_');
        self.unit.and_then(base).unwrap_or(self.name)
    }

    fn read(&self, m: &Metrics) -> Vec<Value> {
        match self.samples {
            Samples::One(r) => vec![r.value(m)],
            Samples::By(_, children) => children.iter().map(|(_, r)| r.value(m)).collect(),
        }
    }
}

/// One scrape: each family with the values its samples had.
#[derive(Debug)]
struct Scrape(Vec<(&'static Family, Vec<Value>)>);

impl Collector for Scrape {
    fn encode(&self, mut out: DescriptorEncoder) -> fmt::Result {
        for (family, values) in &self.0 {
            let name = family.base_name();
            let mut e = out.encode_descriptor(name, family.help, family.unit, family.kind())?;
            match family.samples {
                Samples::One(_) => values[0].encode(e)?,
                Samples::By(key, children) => {
                    for ((label, _), value) in children.iter().zip(values) {
                        value.encode(e.encode_family(&[(key, *label)])?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every metric, in the order of the exposition.
static FAMILIES: &[Family] = &[
    one(
        "jitape_conferences_active",
        "Conferences being recorded now.",
        Level(|m| &m.conferences_active),
    ),
    one(
        "jitape_conferences_started",
        "Recordings started.",
        Count(|m| &m.conferences_started),
    ),
    one(
        "jitape_conferences_finished",
        "Recordings finalized.",
        Count(|m| &m.conferences_finished),
    ),
    one(
        "jitape_recordings_refused",
        "Recordings not started (disk below the floor, limits).",
        Count(|m| &m.recordings_refused),
    ),
    one(
        "jitape_recordings_fenced",
        "Recordings this instance stopped writing because its owner record was not renewed within the lease (no link to Prosody): another instance continues them.",
        Count(|m| &m.recordings_fenced),
    ),
    one(
        "jitape_recordings_taken_over",
        "Recordings continued in the files another instance left (a takeover).",
        Count(|m| &m.recordings_taken_over),
    ),
    one(
        "jitape_participants",
        "Humans present in the recorded conferences.",
        Level(|m| &m.participants),
    ),
    one(
        "jitape_packets_received",
        "RTP packets received from the bridge.",
        Count(|m| &m.packets_received),
    ),
    one(
        "jitape_packets_lost",
        "RTP packets never received (sequence gaps).",
        Count(|m| &m.packets_lost),
    ),
    one(
        "jitape_packets_concealed",
        "Lost packets concealed with Opus FEC or PLC.",
        Count(|m| &m.packets_concealed),
    ),
    one(
        "jitape_packets_late",
        "Packets that arrived after their playout time.",
        Count(|m| &m.packets_late),
    ),
    one(
        "jitape_packets_dropped",
        "Packets jitape itself dropped (queue full).",
        Count(|m| &m.packets_dropped),
    ),
    one(
        "jitape_packets_unstamped",
        "RTP packets placed by when jitape read them: their kernel receive time was missing or forgotten.",
        Count(|m| &m.packets_unstamped),
    ),
    one(
        "jitape_bytes_written",
        "FLAC bytes written.",
        Count(|m| &m.bytes_written),
    ),
    one(
        "jitape_hook_runs",
        "Finalize hook runs.",
        Count(|m| &m.hook_runs),
    ),
    one(
        "jitape_hook_failures",
        "Finalize hook runs that failed, timed out or could not start.",
        Count(|m| &m.hook_failures),
    ),
    one(
        "jitape_hook_timeouts",
        "Finalize hook runs killed after their timeout.",
        Count(|m| &m.hook_timeouts),
    ),
    one(
        "jitape_xmpp_connected",
        "1 while the component link to Prosody is up.",
        Level(|m| &m.xmpp_connected),
    ),
    one(
        "jitape_xmpp_reconnects",
        "Component link (re)connections after the first.",
        Count(|m| &m.xmpp_reconnects),
    ),
    one(
        "jitape_stanzas_rejected",
        "Stanzas jitape refused with an error reply (malformed, unexpected, over a limit).",
        Count(|m| &m.stanzas_rejected),
    ),
    one(
        "jitape_stanzas_dropped",
        "Inbound stanzas dropped at the wire: too large, too deep or not well-formed.",
        Count(|m| &m.stanzas_dropped),
    ),
    Family {
        name: "jitape_limit_hits",
        help: "Times a configured limit refused something ([limits] in the config).",
        unit: None,
        samples: Samples::By(
            "limit",
            &[
                ("conferences", Count(|m| &m.limit_conferences)),
                ("sources", Count(|m| &m.limit_sources)),
                ("iq_rate", Count(|m| &m.limit_iq_rate)),
                ("stanza_size", Count(|m| &m.limit_stanza_size)),
                ("participants", Count(|m| &m.limit_participants)),
                ("presences", Count(|m| &m.limit_presences)),
            ],
        ),
    },
    one(
        "jitape_disk_free_bytes",
        "Free bytes on the recording filesystem.",
        Level(|m| &m.disk_free_bytes),
    )
    .in_unit(&BYTES),
    one(
        "jitape_disk_low",
        "1 while free space is below the floor (no new recording starts).",
        Level(|m| &m.disk_low),
    ),
    Family {
        name: "jitape_media_failures",
        help: "Media sessions that could not be set up or kept; jitape asked for a new one each time.",
        unit: None,
        samples: Samples::By(
            "reason",
            &[
                ("offer-refused", Count(|m| &m.media_offer_refused)),
                ("ice-dtls-failed", Count(|m| &m.media_failed)),
                ("accept-refused", Count(|m| &m.media_accept_refused)),
                ("no-packets", Count(|m| &m.media_no_packets)),
            ],
        ),
    },
    one(
        "jitape_intake_delay_ms",
        "Worst delay over the last second between a packet's arrival (kernel) and its conference taking it in.",
        Level(|m| &m.intake_delay_ms),
    ),
    one(
        "jitape_load_level",
        "0 normal, 1 strained (no new recording starts), 2 overloaded (conferences are shed, newest first).",
        Level(|m| &m.load_level),
    ),
    one(
        "jitape_conferences_shed",
        "Conferences ended (finalized, reason overload) because jitape could not carry them.",
        Count(|m| &m.conferences_shed),
    ),
    one(
        "jitape_conferences_deaf",
        "Conferences being recorded without a working media session (silence, listed as a gap).",
        Level(|m| &m.conferences_deaf),
    ),
    one(
        "jitape_write_backlog_bytes",
        "PCM bytes waiting for the writer threads (a slow disk), all recordings together.",
        Level(|m| &m.write_backlog_bytes),
    )
    .in_unit(&BYTES),
    one(
        "jitape_write_backlog_seconds",
        "Audio waiting for the writer threads, all recordings together.",
        LevelMicros(|m| &m.write_backlog_micros),
    )
    .in_unit(&SECONDS),
    one(
        "jitape_write_stalls",
        "Times a recording's writer fell behind and its audio waited in memory.",
        Count(|m| &m.write_stalls),
    ),
    one(
        "jitape_write_dropped_seconds",
        "Audio replaced by silence (a disk-backlog gap) because the disk was too slow for the backlog bounds.",
        CountMicros(|m| &m.write_dropped_micros),
    )
    .in_unit(&SECONDS),
    one(
        "jitape_recordings_write_behind",
        "Recordings whose audio waits more than 10 s (or half of recording.write_backlog) for the disk.",
        Level(|m| &m.recordings_write_behind),
    ),
    Family {
        name: "jitape_http_file_responses",
        help: "Recording files served by the recordings page, whole or a byte range (players seeking).",
        unit: None,
        samples: Samples::By(
            "answer",
            &[
                ("whole", Count(|m| &m.http_file_whole)),
                ("range", Count(|m| &m.http_file_ranges)),
            ],
        ),
    },
];
#[cfg(test)]
mod tests;
