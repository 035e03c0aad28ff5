//! What passes between a recording's conference side ([`super::backlog`]) and its writer
//! thread ([`super::writer`]): the commands, what each costs while it waits, the recording's
//! progress as the thread reports it, and the counts both sides share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::error::SinkError;
use super::files::{AudioBlock, OpenFiles};
use super::hook::FinalizedFiles;
use super::sidecar::Sidecar;
use crate::metrics::Metrics;

/// How the writer pool is sized and bounded (`[recording]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSettings {
    /// Writer threads, started with the process.
    pub threads: usize,
    /// Audio one recording may have waiting for its writer; beyond it audio becomes silence
    /// (a `disk-backlog` gap).
    pub backlog: Duration,
    /// PCM bytes all recordings together may have waiting; beyond it the same.
    pub backlog_total: usize,
}

impl WriterSettings {
    /// The writer pool's settings from `[recording]`.
    pub fn new(recording: &crate::config::RecordingConfig) -> Self {
        WriterSettings {
            threads: recording.writer_threads,
            backlog: recording.write_backlog,
            backlog_total: recording.write_backlog_total,
        }
    }
}

impl Default for WriterSettings {
    fn default() -> Self {
        WriterSettings {
            threads: 2,
            backlog: Duration::from_secs(180),
            backlog_total: 256 << 20,
        }
    }
}

/// A recording's progress as its writer thread reports it (read by the conference side).
#[derive(Debug, Default)]
pub struct Progress {
    /// Commands sent and not yet served.
    pub in_flight: AtomicUsize,
    /// PCM bytes in those commands.
    pub bytes: AtomicUsize,
    /// Mix samples in those commands.
    pub samples: AtomicU64,
    /// Size of the mix in whole frames.
    pub file_bytes: AtomicU64,
    /// Writes the disk refused (the audio stays in memory up to a bound, then is silence).
    pub write_failures: AtomicU64,
    /// The writer stopped writing: the owner record was not renewed within the lease, so
    /// another instance may own the recording now ([`super::owner`]). Final.
    pub fenced: std::sync::atomic::AtomicBool,
    /// Signalled after each served command.
    pub served: Notify,
}

/// What one command costs while it waits: released by the writer thread once served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub bytes: usize,
    pub samples: u64,
    pub micros: u64,
}

/// What a recording's conference asks of its writer thread.
pub enum Cmd {
    Audio(AudioBlock),
    /// Flush every file and rewrite the `.json.partial`.
    Sidecar(Box<Sidecar>),
    /// fsync the mix.
    Sync,
    /// Whether the disk takes what finishing needs (everything buffered written, the
    /// sidecar rewritten); nothing is lost when it does not.
    Probe(Box<Sidecar>, oneshot::Sender<Result<(), SinkError>>),
    /// Pad the stems, finalize every file and the sidecar with this end reason.
    Finish(
        Box<Sidecar>,
        String,
        oneshot::Sender<Result<FinalizedFiles, SinkError>>,
    ),
    /// The conference side is gone without finishing: finalize with this reason (it
    /// panicked) or leave the `.partial` files to startup recovery (`None`).
    Abandon(Option<&'static str>),
    /// Renew this instance's owner record (sent only while the link to Prosody is up).
    Renew,
}

pub(super) enum Msg {
    Adopt(u64, Box<OpenFiles>, Arc<Progress>),
    Cmd(u64, Cmd, Cost),
}

/// What the threads and the conference sides share.
#[derive(Debug)]
pub(super) struct PoolShared {
    pub settings: WriterSettings,
    pub metrics: Arc<Metrics>,
    /// PCM bytes waiting in every recording (sent or still in the conference's backlog).
    pub queued_bytes: AtomicUsize,
    /// Times a writer thread found its queue empty and waited for the next command.
    pub idle_waits: AtomicU64,
}

impl PoolShared {
    /// Releases a served (or discarded) command's cost.
    pub fn release(&self, progress: &Progress, cost: Cost) {
        progress.in_flight.fetch_sub(1, Relaxed);
        progress.bytes.fetch_sub(cost.bytes, Relaxed);
        progress.samples.fetch_sub(cost.samples, Relaxed);
        self.unqueue(cost);
        progress.served.notify_one();
    }

    /// Takes a cost off the process-wide counts.
    pub fn unqueue(&self, cost: Cost) {
        self.queued_bytes.fetch_sub(cost.bytes, Relaxed);
        self.metrics.write_backlog_bytes.add(-(cost.bytes as i64));
        self.metrics.write_backlog_micros.add(-(cost.micros as i64));
    }
}
