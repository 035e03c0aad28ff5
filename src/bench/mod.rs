//! `jitape bench`: what jitape costs, measured on a simulated deployment.
//!
//! The simulated Jitsi side (the loopback XMPP server with its MUC, a Jicofo-like focus, the
//! participants and a webrtc-rs videobridge replaying pre-encoded Opus, all from
//! [`jitape_sim`]) runs in this process; the jitape under test runs as its own process
//! (`jitape run` on a generated configuration), so only its own cost is measured, from
//! `/proc/<pid>`. M conferences of N speakers are started over a ramp and played for D
//! seconds each with realistic talk (see [`scenario`]); or, with `--large`, one audio-only
//! conference of hundreds of participants. Every recording is then verified.
//!
//! In: [`BenchOptions`]. Out: a [`report::BenchReport`] (table on stdout, JSON on request).
//! The stages: `scenario` (plans, pure), `run` (drives the deployment and samples `/proc`),
//! `procfs`, `logscan` and `verify` (what is read back), `report` (the figures), and
//! `micro` (the per-stage micro-benchmarks shared with `benches/`), `loss` (what FEC and RED
//! recover under loss, `--loss`), `cli` (the command).

mod cli;
pub mod contention;
pub mod health;
pub mod logscan;
pub mod loss;
pub mod micro;
pub mod process;
pub mod procfs;
pub mod report;
mod run;
pub mod scenario;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cli::BenchArgs;
pub use report::BenchReport;
pub use scenario::LargeShape;

/// How to run the benchmark.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub conferences: usize,
    pub speakers: usize,
    /// How long each conference lasts.
    pub duration: Duration,
    /// Conferences start evenly over this long (`None`: a quarter of the duration, ≤ 30 s).
    pub ramp: Option<Duration>,
    /// One large conference instead.
    pub large: Option<LargeShape>,
    /// The jitape binary under test.
    pub jitape: PathBuf,
    /// Where the recordings and the log go; `None`: a temporary directory, removed when
    /// every file verified.
    pub out: Option<PathBuf>,
    pub seed: u64,
    pub sample_rate: u32,
    /// Decode and analyse every recording (`flac -t` always runs).
    pub analyse: bool,
    /// Run a busy loop and an fsync-ing disk writer beside jitape ([`contention`]).
    pub contention: bool,
}

impl BenchOptions {
    /// The defaults of `jitape bench` with the given binary.
    pub fn new(jitape: PathBuf) -> Self {
        BenchOptions {
            conferences: 10,
            speakers: 4,
            duration: Duration::from_secs(60),
            ramp: None,
            large: None,
            jitape,
            out: None,
            seed: 1,
            sample_rate: 48_000,
            analyse: true,
            contention: false,
        }
    }

    /// The ramp actually used.
    pub fn ramp(&self) -> Duration {
        if self.large.is_some() {
            return Duration::ZERO;
        }
        self.ramp
            .unwrap_or_else(|| (self.duration / 4).min(Duration::from_secs(30)))
    }

    fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::Options(m.to_string()));
        if let Some(l) = &self.large {
            if l.participants == 0 || l.participants > 2000 {
                return bad("--participants must be 1..=2000");
            }
            if l.duration < l.join_over + Duration::from_secs(10) {
                return bad("--duration must exceed the join period by 10 s or more");
            }
            return Ok(());
        }
        if self.conferences == 0 || self.conferences > 1000 {
            return bad("--conferences must be 1..=1000");
        }
        if self.speakers == 0 || self.speakers > 60 {
            return bad("--speakers must be 1..=60 (each speaker has a distinct tone)");
        }
        if self.duration < Duration::from_secs(10) {
            return bad("--duration must be at least 10 s");
        }
        Ok(())
    }
}

/// Why the benchmark could not run (a failed verification is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("simulated deployment: {0}")]
    Sim(String),
    #[error("jitape under test: {0}")]
    Jitape(String),
    #[error("{0} recording(s) failed verification")]
    Failed(usize),
}

impl BenchError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        BenchError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Run the benchmark. Prints progress on stderr; returns the report.
pub async fn bench(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    opts.validate()?;
    run::run(opts).await
}

/// Write the report as JSON.
pub fn write_json(report: &BenchReport, path: &Path) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| BenchError::io("serialize", path, std::io::Error::other(e)))?;
    std::fs::write(path, text + "\n").map_err(|e| BenchError::io("write", path, e))
}
