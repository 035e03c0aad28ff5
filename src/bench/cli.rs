//! The `jitape bench` command line: options, and what the command prints and exits with.
//!
//! In: parsed arguments. Out: the report on stdout (and as JSON with `--json`); an error if
//! the run could not be made or any recording failed verification.

use std::path::PathBuf;
use std::time::Duration;

use super::{BenchError, BenchOptions, LargeShape, micro};

fn parse_duration(s: &str) -> Result<Duration, String> {
    jitape::config::parse_duration(s)
}

/// Measure jitape's cost on a simulated deployment (or, with `--micro`, its stages).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent conferences.
    #[arg(long, default_value_t = 10)]
    pub conferences: usize,
    /// Speakers per conference.
    #[arg(long, default_value_t = 4)]
    pub speakers: usize,
    /// How long each conference lasts (default 60s; 180s with --large).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Conferences start evenly over this long (default: a quarter of the duration, ≤ 30s).
    #[arg(long, value_parser = parse_duration)]
    pub ramp: Option<Duration>,
    /// One large audio-only conference instead (see --participants, --unmuted, --join-over).
    #[arg(long)]
    pub large: bool,
    #[arg(long, default_value_t = 500)]
    pub participants: usize,
    /// Participants sending audio at any time in the large conference.
    #[arg(long, default_value_t = 20)]
    pub unmuted: usize,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub join_over: Duration,
    /// Write the report as JSON here (for comparisons between commits).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the recordings and jitape's log here (default: a temporary directory, removed
    /// when every file verified).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The jitape binary under test (default: this one).
    #[arg(long)]
    pub jitape: Option<PathBuf>,
    /// Seeds the conversations (the same seed plays the same conferences).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 48_000)]
    pub sample_rate: u32,
    /// Only `flac -t` and the sidecar; skip decoding and comparing every recording.
    #[arg(long)]
    pub no_analysis: bool,
    /// Run a busy loop (one core) and a disk writer (256 MiB passes, fsync after each, on the
    /// recording filesystem) beside jitape for the whole run.
    #[arg(long)]
    pub contention: bool,
    /// Run the per-stage micro-benchmarks instead (multiples of real time, one core).
    #[arg(long)]
    pub micro: bool,
    /// Measure instead what Opus in-band FEC and RED (distance 1, 2) recover under random
    /// loss and loss bursts, through jitape's timeline (--duration of speech per case,
    /// default 60s; --seed seeds the loss).
    #[arg(long)]
    pub loss: bool,
}

impl BenchArgs {
    /// The benchmark options these arguments ask for.
    pub fn options(&self) -> Result<BenchOptions, BenchError> {
        let jitape = match &self.jitape {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| BenchError::io("locate", &PathBuf::from("jitape"), e))?,
        };
        let mut o = BenchOptions::new(jitape);
        o.conferences = self.conferences;
        o.speakers = self.speakers;
        o.ramp = self.ramp;
        o.out = self.out.clone();
        o.contention = self.contention;
        o.seed = self.seed;
        o.sample_rate = self.sample_rate;
        o.analyse = !self.no_analysis;
        if self.large {
            let duration = self.duration.unwrap_or(Duration::from_secs(180));
            o.conferences = 1;
            o.duration = duration;
            o.large = Some(LargeShape {
                participants: self.participants,
                unmuted: self.unmuted,
                join_over: self.join_over,
                duration,
            });
        } else if let Some(d) = self.duration {
            o.duration = d;
        }
        Ok(o)
    }

    /// Run what was asked; the simulation logs at warn unless `JITAPE_LOG` says otherwise.
    pub async fn run(self) -> Result<(), BenchError> {
        let filter = tracing_subscriber::EnvFilter::try_from_env("JITAPE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,webrtc=error,rtc=error"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
        if self.micro {
            return self.run_micro().await;
        }
        if self.loss {
            return self.run_loss().await;
        }
        let opts = self.options()?;
        let report = super::bench(&opts).await?;
        println!("{report}");
        if let Some(path) = &self.json {
            super::write_json(&report, path)?;
            println!("report written to {}", path.display());
        }
        if report.verification.all_ok {
            Ok(())
        } else {
            Err(BenchError::Failed(
                report.verification.files
                    - report.verification.verified
                    - report.verification.refused,
            ))
        }
    }

    async fn run_loss(&self) -> Result<(), BenchError> {
        let seconds = self
            .duration
            .unwrap_or(Duration::from_secs(60))
            .as_secs_f64();
        let seed = self.seed;
        eprintln!("jitape bench --loss: {seconds:.0} s of speech per case");
        let results = tokio::task::spawn_blocking(move || super::loss::run_all(seconds, seed))
            .await
            .map_err(|e| BenchError::Sim(format!("the loss measurement panicked: {e}")))?;
        print!("{}", super::loss::table(&results));
        if let Some(path) = &self.json {
            let text = serde_json::to_string_pretty(&results)
                .map_err(|e| BenchError::io("serialize", path, std::io::Error::other(e)))?;
            std::fs::write(path, text + "\n").map_err(|e| BenchError::io("write", path, e))?;
        }
        Ok(())
    }

    async fn run_micro(&self) -> Result<(), BenchError> {
        eprintln!("jitape bench --micro: each stage about 3 s on one core");
        let results = tokio::task::spawn_blocking(|| micro::run_all(Duration::from_secs(3)))
            .await
            .map_err(|e| BenchError::Sim(format!("micro-benchmarks panicked: {e}")))?;
        println!(
            "{:<42} {:>10} {:>12} {:>14}",
            "stage", "unit", "time/unit", "x real time"
        );
        for r in &results {
            println!(
                "{:<42} {:>8.0}ms {:>10.2}us {:>13.0}x",
                r.stage, r.unit_ms, r.time_us, r.realtime_multiple
            );
        }
        let pipeline = results.iter().find(|r| r.stage.starts_with("pipeline"));
        let decode = results.iter().find(|r| r.stage.starts_with("decode only"));
        if let (Some(p), Some(d)) = (pipeline, decode) {
            println!(
                "pipeline / decode-only lower bound: {:.2} (the pipeline costs {:.2}x the decoding alone)",
                p.realtime_multiple / d.realtime_multiple,
                d.realtime_multiple / p.realtime_multiple
            );
        }
        if let Some(path) = &self.json {
            let text = serde_json::to_string_pretty(&results)
                .map_err(|e| BenchError::io("serialize", path, std::io::Error::other(e)))?;
            std::fs::write(path, text + "\n").map_err(|e| BenchError::io("write", path, e))?;
        }
        Ok(())
    }
}
