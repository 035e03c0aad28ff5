//! The writer pool: a fixed number of OS threads that own every open recording file.
//!
//! In: recordings opened on a blocking thread ([`OpenFiles::create`], [`OpenFiles::resume`])
//! and handed over with [`WriterPool::adopt`], then each recording's commands in order
//! (audio blocks, sidecar snapshots, sync, the "ready to finish" probe, finish) from its
//! conference's [`RecordingWriter`]. Out: FLAC frames and sidecars on disk, each recording's
//! progress in shared atomics ([`Progress`]), the replies to probe and finish, and
//! `jitape_bytes_written_total`.
//!
//! FLAC encoding, writes, `fsync`, renames and directory syncs of a running recording all
//! happen here, never on the async runtime's worker threads: a slow disk or a long fsync
//! stalls a writer thread and the audio waits in the conference's bounded backlog
//! ([`super::backlog`]), while packet intake goes on. The threads are started with the
//! process (`recording.writer_threads`) and never per conference. Each recording is pinned
//! to the thread that had the fewest when it was adopted; a thread serves commands in
//! arrival order. A panic while serving one recording costs that recording only: its
//! writers are dropped (whole frames reach the OS) and its files are finalized from disk.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{debug, error, info, warn};

use super::backlog::RecordingWriter;
pub use super::command::{Cmd, Cost, Progress, WriterSettings};
use super::command::{Msg, PoolShared};
use super::error::SinkError;
pub use super::files::{AudioBlock, OpenFiles, Pcm};
use super::flac::FlacWriter;
use super::hook::FinalizedFiles;
use super::owner::Ownership;
use super::paths::RecordingPaths;
use super::sidecar::{self, Sidecar};
use crate::metrics::Metrics;
use crate::util::log_limited;

struct Lane {
    tx: mpsc::Sender<Msg>,
    load: Arc<AtomicUsize>,
}

/// The process's writer threads. Dropping it lets each thread end once the recordings
/// pinned to it are closed.
pub struct WriterPool {
    lanes: Vec<Lane>,
    shared: Arc<PoolShared>,
    next_id: AtomicU64,
}

impl WriterPool {
    /// Starts `settings.threads` writer threads (`jitape-writer-N`).
    pub fn start(settings: WriterSettings, metrics: Arc<Metrics>) -> std::io::Result<WriterPool> {
        let shared = Arc::new(PoolShared {
            settings: settings.clone(),
            metrics,
            queued_bytes: AtomicUsize::new(0),
            idle_waits: AtomicU64::new(0),
        });
        let mut lanes = Vec::new();
        for i in 0..settings.threads.max(1) {
            let (tx, rx) = mpsc::channel();
            let load = Arc::new(AtomicUsize::new(0));
            let (s, l) = (Arc::clone(&shared), Arc::clone(&load));
            std::thread::Builder::new()
                .name(format!("jitape-writer-{i}"))
                .spawn(move || serve(rx, &s, &l))?;
            lanes.push(Lane { tx, load });
        }
        Ok(WriterPool {
            lanes,
            shared,
            next_id: AtomicU64::new(1),
        })
    }

    pub fn settings(&self) -> &WriterSettings {
        &self.shared.settings
    }

    /// Hands `files` to the least loaded writer thread; never blocks.
    pub fn adopt(&self, files: OpenFiles) -> RecordingWriter {
        let lane = self
            .lanes
            .iter()
            .min_by_key(|l| l.load.load(Relaxed))
            .unwrap_or(&self.lanes[0]);
        lane.load.fetch_add(1, Relaxed);
        let id = self.next_id.fetch_add(1, Relaxed);
        let progress = Arc::new(Progress::default());
        progress.file_bytes.store(files.mix.file_bytes(), Relaxed);
        let rate = files.sidecar.sample_rate;
        let next = files.mix.samples_written();
        if lane
            .tx
            .send(Msg::Adopt(id, Box::new(files), Arc::clone(&progress)))
            .is_err()
        {
            error!("writer thread gone; the recording's commands are discarded");
        }
        RecordingWriter::new(
            id,
            lane.tx.clone(),
            progress,
            Arc::clone(&self.shared),
            rate,
            next,
        )
    }
}

/// A recording as its writer thread holds it.
enum Slot {
    Open(Box<Open>),
    /// The writer panicked on it (its files were finalized from disk); its commands are only
    /// accounted for until the conference side closes it.
    Lost(Arc<Progress>),
}

/// How long a writer thread lets commands gather while they keep coming. Every conference
/// hands over a block each render (100 ms), so a thread woken per command woke hundreds of
/// times a second, each wake a futex call on the sending worker thread and a context switch;
/// taken in rounds, the senders find the thread awake and the queue does the handing over.
/// A recorder loses nothing by writing 50 ms later; an idle thread still waits for the next
/// command and serves it at once.
pub const GATHER: Duration = Duration::from_millis(50);

/// A writer thread: serves its recordings until every sender is gone.
fn serve(rx: mpsc::Receiver<Msg>, shared: &PoolShared, load: &AtomicUsize) {
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    // Idle: wait for a command.
    while let Ok(first) = rx.recv() {
        shared.idle_waits.fetch_add(1, Relaxed);
        let mut msg = Some(first);
        // Busy: serve what came, then let the next round gather.
        loop {
            let round = Instant::now();
            let mut served = 0;
            loop {
                let m = match msg.take().map_or_else(|| rx.try_recv(), Ok) {
                    Ok(m) => m,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                };
                serve_one(m, &mut slots, shared, load);
                served += 1;
            }
            if served == 0 {
                break;
            }
            std::thread::sleep(GATHER.saturating_sub(round.elapsed()));
        }
    }
}

/// Serves one message of a writer thread's queue.
fn serve_one(msg: Msg, slots: &mut HashMap<u64, Slot>, shared: &PoolShared, load: &AtomicUsize) {
    match msg {
        Msg::Adopt(id, files, progress) => {
            let counted = files.mix.file_bytes()
                + files.stems.iter().map(|(_, w)| w.file_bytes()).sum::<u64>();
            let OpenFiles {
                paths,
                mix,
                stems,
                sidecar,
                owner,
            } = *files;
            let open = Open {
                paths,
                mix,
                stems: stems.into_iter().collect(),
                sidecar,
                progress,
                counted,
                owner: owner.map(|(own, renewed)| Owned {
                    write_by: own.lease.write_by(renewed),
                    own,
                    fenced: false,
                }),
            };
            slots.insert(id, Slot::Open(Box::new(open)));
        }
        Msg::Cmd(id, cmd, cost) => {
            let closing = matches!(cmd, Cmd::Finish(..) | Cmd::Abandon(_));
            let progress = match slots.remove(&id) {
                Some(Slot::Open(open)) => {
                    let progress = Arc::clone(&open.progress);
                    if let Some(open) = run(open, cmd, &shared.metrics) {
                        slots.insert(id, Slot::Open(open));
                    } else if !closing {
                        slots.insert(id, Slot::Lost(Arc::clone(&progress)));
                    }
                    progress
                }
                Some(Slot::Lost(progress)) => {
                    // Replies (probe, finish) are dropped: the conference side sees an error.
                    if !closing {
                        slots.insert(id, Slot::Lost(Arc::clone(&progress)));
                    }
                    progress
                }
                None => {
                    error!(id, "a command for a recording this writer does not hold");
                    shared.unqueue(cost);
                    return;
                }
            };
            if closing {
                load.fetch_sub(1, Relaxed);
            }
            shared.release(&progress, cost);
        }
    }
}

/// Serves one command; the recording back unless it was closed or lost to a panic (then its
/// writers are dropped, whole frames reaching the OS, and what the disk holds is finalized).
/// The recording is served where it lies: an audio block moves no writer state.
fn run(mut open: Box<Open>, cmd: Cmd, metrics: &Metrics) -> Option<Box<Open>> {
    if matches!(cmd, Cmd::Finish(..) | Cmd::Abandon(_)) {
        let paths = open.paths.clone();
        let closed = catch_unwind(AssertUnwindSafe(move || open.close(cmd, metrics)));
        if closed.is_err() {
            lost(&paths);
        }
        return None;
    }
    if catch_unwind(AssertUnwindSafe(|| open.serve(cmd, metrics))).is_ok() {
        return Some(open);
    }
    let paths = open.paths.clone();
    drop(open);
    lost(&paths);
    None
}

/// After a panic on a recording whose writers are gone: finalize what the disk holds.
fn lost(paths: &RecordingPaths) {
    error!(dir = %paths.dir.display(), "the writer panicked on a recording; finalizing it from disk");
    let _ = catch_unwind(|| finalize_from_disk(paths, "internal-error"));
}

/// Finalizes the unfinished files of `paths` as they are on disk.
pub fn finalize_from_disk(paths: &RecordingPaths, reason: &str) {
    let root = paths.dir.parent().unwrap_or(&paths.dir);
    match super::paths::find_unfinished(root) {
        Ok(list) => {
            for u in list.iter().filter(|u| u.paths == *paths) {
                match super::recover::finalize_unfinished(u, reason) {
                    Ok(files) => info!(flac = %files.flac.display(), "finalized from disk"),
                    Err(e) => error!(error = %e, "could not finalize from disk"),
                }
            }
        }
        Err(e) => error!(error = %e, "could not look for unfinished files"),
    }
}

/// This instance's claim on a recording, as its writer enforces it.
struct Owned {
    own: Ownership,
    /// Nothing is written from this moment on unless a renewal moves it.
    write_by: DateTime<Utc>,
    /// The moment passed: nothing more is written, whatever comes.
    fenced: bool,
}

/// A recording's open files on its writer thread.
struct Open {
    paths: RecordingPaths,
    mix: FlacWriter,
    stems: HashMap<String, FlacWriter>,
    /// The last sidecar the conference sent.
    sidecar: Sidecar,
    progress: Arc<Progress>,
    /// File bytes already added to `jitape_bytes_written_total` (or there before we were).
    counted: u64,
    /// With several instances: the claim that bounds when this thread may write.
    owner: Option<Owned>,
}

impl Open {
    /// Whether this recording is fenced: its owner record was last renewed longer ago than
    /// the lease allows a writer (checked before every disk operation).
    fn fenced(&mut self, metrics: &Metrics) -> bool {
        let Some(o) = &mut self.owner else {
            return false;
        };
        if !o.fenced && Utc::now() >= o.write_by {
            o.fenced = true;
            self.progress.fenced.store(true, Relaxed);
            metrics.recordings_fenced.inc();
            warn!(
                file = %self.paths.flac_partial.display(),
                instance = %o.own.instance,
                write_by = %o.write_by,
                "stopped writing this recording: its owner record was not renewed within the lease (no link to Prosody), so another instance may continue it"
            );
        }
        o.fenced
    }

    /// Writes the owner record again and moves the fence, unless it has already passed.
    fn renew(&mut self, metrics: &Metrics) {
        if self.fenced(metrics) {
            return;
        }
        let Some(o) = &mut self.owner else {
            return;
        };
        match o.own.claim(&self.paths) {
            Ok(renewed) => o.write_by = o.own.lease.write_by(renewed),
            Err(e) => log_limited("owner-renew", format_args!("owner record not renewed: {e}")),
        }
    }

    fn fenced_error(&self) -> SinkError {
        SinkError::unsupported(
            &self.paths.flac_partial,
            "fenced: the owner record was not renewed within the lease; another instance continues this recording",
        )
    }

    fn serve(&mut self, cmd: Cmd, metrics: &Metrics) {
        if self.fenced(metrics) {
            if let Cmd::Probe(_, reply) = cmd {
                let _ = reply.send(Err(self.fenced_error()));
            }
            return;
        }
        match cmd {
            Cmd::Renew => self.renew(metrics),
            Cmd::Audio(block) => self.audio(block),
            Cmd::Sidecar(sc) => {
                self.sidecar = *sc;
                self.checkpoint();
            }
            Cmd::Sync => {
                if let Err(e) = self.mix.sync() {
                    log_limited("recording-sync", format_args!("fsync failed: {e}"));
                }
            }
            Cmd::Probe(sc, reply) => {
                self.sidecar = *sc;
                let _ = reply.send(self.ready());
            }
            Cmd::Finish(..) | Cmd::Abandon(_) => {}
        }
        let now =
            self.mix.file_bytes() + self.stems.values().map(FlacWriter::file_bytes).sum::<u64>();
        metrics.bytes_written.add(now.saturating_sub(self.counted));
        self.counted = self.counted.max(now);
        self.progress
            .file_bytes
            .store(self.mix.file_bytes(), Relaxed);
    }

    fn close(mut self, cmd: Cmd, metrics: &Metrics) {
        if self.fenced(metrics) {
            if let Cmd::Finish(_, _, reply) = cmd {
                let _ = reply.send(Err(self.fenced_error()));
            }
            // Not one byte more: the next owner may be writing these files.
            self.mix.discard();
            self.stems.into_values().for_each(FlacWriter::discard);
            return;
        }
        match cmd {
            Cmd::Finish(sc, reason, reply) => {
                let _ = reply.send(self.finish(*sc, &reason));
            }
            Cmd::Abandon(Some(reason)) => {
                let sc = self.sidecar.clone();
                match self.finish(sc, reason) {
                    Ok(files) => {
                        warn!(flac = %files.flac.display(), reason, "an abandoned recording was finalized")
                    }
                    Err(e) => {
                        error!(error = %e, "an abandoned recording could not be finalized; the .partial stays for repair")
                    }
                }
            }
            // Dropping the writers hands their whole frames to the OS; startup recovery
            // finalizes or continues the `.partial` files.
            _ => debug!(dir = %self.paths.dir.display(), "recording closed unfinished"),
        }
    }

    fn audio(&mut self, block: AudioBlock) {
        let behind = block.start.saturating_sub(self.mix.samples_written());
        let written = self
            .mix
            .write_silence(behind)
            .and_then(|()| match &block.mix {
                Pcm::Samples(v) => self.mix.write(v),
                Pcm::Silence(n) => self.mix.write_silence(*n),
            });
        if let Err(e) = written {
            self.progress.write_failures.fetch_add(1, Relaxed);
            log_limited(
                "recording-write",
                format_args!(
                    "{}: writing audio failed: {e}",
                    self.paths.flac_partial.display()
                ),
            );
        }
        for (key, pcm) in &block.stems {
            self.stem(key, block.start, pcm);
        }
        // Every complete frame to the OS now: a crash then loses at most the frame being
        // filled.
        if let Err(e) = self.mix.flush() {
            log_limited("recording-flush", format_args!("flush failed: {e}"));
        }
    }

    fn stem(&mut self, key: &str, start: u64, pcm: &Pcm) {
        if !self.stems.contains_key(key) {
            let path = self.paths.stem(key);
            match FlacWriter::create(&path, self.sidecar.sample_rate) {
                Ok(w) => {
                    self.stems.insert(key.to_string(), w);
                }
                Err(e) => {
                    log_limited(
                        "stem-create",
                        format_args!("stem for {key} not created: {e}"),
                    );
                    return;
                }
            }
        }
        let Some(w) = self.stems.get_mut(key) else {
            return;
        };
        // Stems have the mix's length: pad whatever this stem missed.
        let behind = start.saturating_sub(w.samples_written());
        let result = w.write_silence(behind).and_then(|()| match pcm {
            Pcm::Samples(v) => w.write(v),
            Pcm::Silence(n) => w.write_silence(*n),
        });
        if let Err(e) = result {
            log_limited("stem-write", format_args!("stem write failed: {e}"));
        }
    }

    /// Every file's whole frames to the OS and the `.json.partial` rewritten, each as far as
    /// the disk takes it (what it refuses stays buffered).
    fn checkpoint(&mut self) {
        if let Err(e) = self.mix.flush() {
            log_limited("recording-flush", format_args!("flush failed: {e}"));
        }
        for w in self.stems.values_mut() {
            let _ = w.flush();
        }
        self.sidecar.total_samples = self.mix.samples_written();
        if let Err(e) = sidecar::write_atomic(&self.paths.sidecar_partial, &self.sidecar) {
            log_limited("sidecar-write", format_args!("sidecar not written: {e}"));
        }
    }

    /// Everything buffered written and the sidecar rewritten, or the error that stopped it.
    fn ready(&mut self) -> Result<(), SinkError> {
        self.mix.flush()?;
        for w in self.stems.values_mut() {
            w.flush()?;
        }
        self.sidecar.total_samples = self.mix.samples_written();
        sidecar::write_atomic(&self.paths.sidecar_partial, &self.sidecar)
    }

    fn finish(self, mut sc: Sidecar, reason: &str) -> Result<FinalizedFiles, SinkError> {
        let total = self.mix.samples_written();
        let stems: Vec<(String, FlacWriter)> = self
            .stems
            .into_iter()
            .map(|(key, mut w)| {
                let behind = total.saturating_sub(w.samples_written());
                if let Err(e) = w.write_silence(behind) {
                    warn!(error = %e, "stem padding failed");
                }
                (key, w)
            })
            .collect();
        super::finalize_recording(&self.paths, self.mix, stems, &mut sc, reason)
    }
}

#[cfg(test)]
mod tests;
