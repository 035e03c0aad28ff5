//! The conference side of a recording's files: hands audio, sidecar snapshots and syncs to
//! the recording's writer thread without ever waiting for it, and holds what the thread has
//! not taken yet.
//!
//! In: [`AudioBlock`]s as the conference renders them, sidecar snapshots, sync requests.
//! Out: [`Cmd`]s to the writer thread, at most [`IN_FLIGHT`] at a time per recording; the
//! rest waits here in order (runs of silence merged, a newer sidecar replacing an older
//! one). No call blocks and none awaits, except the end of a recording ([`RecordingWriter::probe`],
//! [`RecordingWriter::finish`]), which waits for the backlog to drain.
//!
//! Bounds: the audio waiting for one recording (sent or not) may not exceed
//! `recording.write_backlog`, and the PCM waiting in the whole process may not exceed
//! `recording.write_backlog_total`. A block that would exceed either is replaced by digital
//! silence of its length (the file keeps its length; the caller lists the span as a
//! `disk-backlog` gap) and counted (`jitape_write_dropped_seconds_total`). What waits is
//! visible: `jitape_write_backlog_bytes` and `_seconds`, `jitape_write_stalls_total` (times a
//! recording's writer fell behind), `jitape_recordings_write_behind` (recordings more than
//! [`behind_threshold`] behind, also a `/ready` reason).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::command::{Cmd, Cost, Msg, PoolShared, Progress};
use super::error::SinkError;
use super::files::{AudioBlock, Pcm};
use super::hook::FinalizedFiles;
use super::sidecar::Sidecar;

/// Commands one recording may have with its writer thread at once; more wait here.
pub const IN_FLIGHT: usize = 8;

/// A recording this far behind its writer counts in `jitape_recordings_write_behind`.
pub fn behind_threshold(backlog: Duration) -> Duration {
    (backlog / 2).min(Duration::from_secs(10))
}

/// How often a draining end of recording looks again if no progress was signalled.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// A recording's files as its conference sees them. Dropped without [`Self::finish`], it
/// sends what waits and lets the writer close the files: finalized (`internal-error`) if the
/// conference is unwinding from a panic, else left `.partial` for startup recovery.
pub struct RecordingWriter {
    id: u64,
    lane: mpsc::Sender<Msg>,
    progress: Arc<Progress>,
    pool: Arc<PoolShared>,
    rate: u32,
    /// Waiting here, in order.
    waiting: VecDeque<(Cmd, Cost)>,
    waiting_samples: u64,
    /// Timeline sample after the last block taken.
    next: u64,
    limit_samples: u64,
    behind_samples: u64,
    /// Counted in `write_stalls` (the writer has fallen behind; reset once caught up).
    stalled: bool,
    /// Counted in `recordings_write_behind`.
    behind: bool,
    /// Finish was sent.
    closed: bool,
}

impl RecordingWriter {
    pub(super) fn new(
        id: u64,
        lane: mpsc::Sender<Msg>,
        progress: Arc<Progress>,
        pool: Arc<PoolShared>,
        rate: u32,
        next: u64,
    ) -> Self {
        let samples = |d: Duration| (d.as_millis() as u64).saturating_mul(u64::from(rate)) / 1000;
        let backlog = pool.settings.backlog;
        RecordingWriter {
            id,
            lane,
            progress,
            rate,
            waiting: VecDeque::new(),
            waiting_samples: 0,
            next,
            limit_samples: samples(backlog),
            behind_samples: samples(behind_threshold(backlog)),
            stalled: false,
            behind: false,
            closed: false,
            pool,
        }
    }

    /// Timeline sample after the last block handed over (where the next one starts).
    pub fn samples(&self) -> u64 {
        self.next
    }

    /// Bytes of the mix in whole frames on disk.
    pub fn file_bytes(&self) -> u64 {
        self.progress.file_bytes.load(Relaxed)
    }

    /// Writes the disk refused so far.
    pub fn write_failures(&self) -> u64 {
        self.progress.write_failures.load(Relaxed)
    }

    /// Mix samples waiting for the writer (sent or still here).
    pub fn samples_waiting(&self) -> u64 {
        self.progress.samples.load(Relaxed) + self.waiting_samples
    }

    /// Takes a block of audio. If it would exceed a bound it is taken as silence instead and
    /// its span is returned: the caller lists it as a `disk-backlog` gap.
    pub fn audio(&mut self, block: AudioBlock) -> Option<Range<u64>> {
        let len = block.mix.len();
        self.next = block.end();
        let bytes = block.bytes();
        let m = &self.pool.metrics;
        let over = self.samples_waiting() + len > self.limit_samples
            || self.pool.queued_bytes.load(Relaxed) + bytes > self.pool.settings.backlog_total;
        let (block, dropped) = if over && bytes > 0 {
            let span = block.start..block.end();
            m.write_dropped_micros.add(self.micros(len));
            crate::util::log_limited(
                "write-backlog",
                format_args!(
                    "the disk is too slow: {:.1} s of audio wait for it; new audio becomes silence (a disk-backlog gap)",
                    self.samples_waiting() as f64 / f64::from(self.rate.max(1))
                ),
            );
            (block.silenced(), Some(span))
        } else {
            (block, None)
        };
        let cost = Cost {
            bytes: block.bytes(),
            samples: len,
            micros: self.micros(len),
        };
        self.pool.queued_bytes.fetch_add(cost.bytes, Relaxed);
        m.write_backlog_bytes.add(cost.bytes as i64);
        m.write_backlog_micros.add(cost.micros as i64);
        self.push(Cmd::Audio(block), cost);
        self.pump();
        dropped
    }

    /// Queues a sidecar snapshot (flushes every file and rewrites the `.json.partial`); an
    /// older snapshot still waiting here is replaced.
    pub fn sidecar(&mut self, sc: Sidecar) {
        let waiting = self
            .waiting
            .iter_mut()
            .find(|(c, _)| matches!(c, Cmd::Sidecar(_)));
        match waiting {
            Some((c, _)) => *c = Cmd::Sidecar(Box::new(sc)),
            None => self.push(Cmd::Sidecar(Box::new(sc)), Cost::default()),
        }
        self.pump();
    }

    /// Queues a renewal of this instance's owner record (once, however often asked while it
    /// waits; a renewal that waits behind audio renews when it is served, which only makes
    /// the fence earlier).
    pub fn renew(&mut self) {
        if !self.waiting.iter().any(|(c, _)| matches!(c, Cmd::Renew)) {
            self.push(Cmd::Renew, Cost::default());
        }
        self.pump();
    }

    /// Whether the writer stopped writing for good: the owner record ran out.
    pub fn fenced(&self) -> bool {
        self.progress.fenced.load(Relaxed)
    }

    /// Queues an fsync of the mix (once, however often asked while it waits).
    pub fn sync(&mut self) {
        if !self.waiting.iter().any(|(c, _)| matches!(c, Cmd::Sync)) {
            self.push(Cmd::Sync, Cost::default());
        }
        self.pump();
    }

    /// Sends what the writer has room for, and updates the stall and behind counts.
    pub fn pump(&mut self) {
        while self.progress.in_flight.load(Relaxed) < IN_FLIGHT {
            let Some((cmd, cost)) = self.waiting.pop_front() else {
                break;
            };
            self.waiting_samples -= cost.samples;
            self.send(cmd, cost);
        }
        let m = &self.pool.metrics;
        if !self.waiting.is_empty() && !self.stalled {
            self.stalled = true;
            m.write_stalls.inc();
            tracing::debug!("the writer fell behind; audio waits in the conference's backlog");
        } else if self.waiting.is_empty() && self.samples_waiting() == 0 {
            self.stalled = false;
        }
        let behind = self.samples_waiting() > self.behind_samples;
        self.set_behind(behind);
    }

    /// Waits until everything here is sent, then whether the disk takes what finishing needs
    /// (every buffered frame written, `sc` written as the `.json.partial`). An error means it
    /// still refuses; nothing buffered is lost: try again later.
    pub async fn probe(&mut self, sc: Sidecar) -> Result<(), SinkError> {
        self.drain().await;
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Probe(Box::new(sc), tx), Cost::default());
        rx.await.unwrap_or_else(|_| Err(self.lost()))
    }

    /// Waits until everything here is sent, then has the writer finalize every file with
    /// `sc` and `reason`.
    pub async fn finish(mut self, sc: Sidecar, reason: &str) -> Result<FinalizedFiles, SinkError> {
        self.drain().await;
        let (tx, rx) = oneshot::channel();
        self.closed = true;
        self.send(
            Cmd::Finish(Box::new(sc), reason.to_string(), tx),
            Cost::default(),
        );
        self.set_behind(false);
        rx.await.unwrap_or_else(|_| Err(self.lost()))
    }

    async fn drain(&mut self) {
        loop {
            self.pump();
            if self.waiting.is_empty() {
                return;
            }
            let _ = tokio::time::timeout(DRAIN_POLL, self.progress.served.notified()).await;
        }
    }

    fn push(&mut self, cmd: Cmd, cost: Cost) {
        if let (Cmd::Audio(new), Some((Cmd::Audio(last), last_cost))) =
            (&cmd, self.waiting.back_mut())
            && new.is_silence()
            && last.is_silence()
            && last.end() == new.start
            && same_keys(&last.stems, &new.stems)
        {
            // A run of silence waits as one block of any length.
            let n = new.mix.len();
            last.mix = Pcm::Silence(last.mix.len() + n);
            for (_, p) in &mut last.stems {
                *p = Pcm::Silence(p.len() + n);
            }
            last_cost.samples += cost.samples;
            last_cost.micros += cost.micros;
            self.waiting_samples += cost.samples;
            return;
        }
        self.waiting_samples += cost.samples;
        self.waiting.push_back((cmd, cost));
    }

    fn send(&mut self, cmd: Cmd, cost: Cost) {
        let p = &self.progress;
        p.in_flight.fetch_add(1, Relaxed);
        p.bytes.fetch_add(cost.bytes, Relaxed);
        p.samples.fetch_add(cost.samples, Relaxed);
        if self.lane.send(Msg::Cmd(self.id, cmd, cost)).is_err() {
            // The writer thread is gone (only if the pool was torn down): nothing to wait for.
            self.pool.release(p, cost);
        }
    }

    fn set_behind(&mut self, behind: bool) {
        if behind != self.behind {
            self.pool
                .metrics
                .recordings_write_behind
                .add(if behind { 1 } else { -1 });
            self.behind = behind;
        }
    }

    fn micros(&self, samples: u64) -> u64 {
        samples.saturating_mul(1_000_000) / u64::from(self.rate.max(1))
    }

    fn lost(&self) -> SinkError {
        SinkError::bug(
            std::path::Path::new("."),
            "the writer thread dropped the recording (it panicked on it)",
        )
    }
}

fn same_keys(a: &[(String, Pcm)], b: &[(String, Pcm)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((x, _), (y, _))| x == y)
}

impl Drop for RecordingWriter {
    fn drop(&mut self) {
        self.set_behind(false);
        if self.closed {
            return;
        }
        while let Some((cmd, cost)) = self.waiting.pop_front() {
            self.send(cmd, cost);
        }
        let reason = std::thread::panicking().then_some("internal-error");
        self.send(Cmd::Abandon(reason), Cost::default());
    }
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("id", &self.id)
            .field("next", &self.next)
            .field("waiting", &self.waiting.len())
            .field("samples_waiting", &self.samples_waiting())
            .finish_non_exhaustive()
    }
}
