//! Contention beside jitape for a benchmark run (`--contention`): what a recorder meets on a
//! host it shares with a videobridge, Jicofo and Prosody. A busy loop keeps one core spinning,
//! and a disk writer writes 256 MiB at a time to the recording filesystem with an `fsync`
//! after each (like `dd … conv=fsync`), so jitape's own writes and fsyncs queue behind it.
//!
//! In: the directory to write in. Out: threads that run until stopped, and what they did.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;

/// Bytes written per pass before the `fsync`.
const PASS: u64 = 256 << 20;
const CHUNK: usize = 1 << 20;

/// What the contention did during the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ContentionReport {
    /// CPU seconds the busy loop burnt.
    pub busy_cpu_s: f64,
    pub written_mib: u64,
    pub fsyncs: u64,
    /// The slowest single `fsync` (seconds).
    pub worst_fsync_s: f64,
}

/// The running contention.
pub struct Contention {
    stop: Arc<AtomicBool>,
    busy: Option<JoinHandle<f64>>,
    writer: Option<JoinHandle<(u64, u64, f64)>>,
    file: PathBuf,
}

impl Contention {
    /// Starts the busy loop and the disk writer (writing into `dir`).
    pub fn start(dir: &Path) -> std::io::Result<Contention> {
        let stop = Arc::new(AtomicBool::new(false));
        let file = dir.join("contention.bin");
        let s = Arc::clone(&stop);
        let busy = std::thread::Builder::new()
            .name("bench-busy".into())
            .spawn(move || {
                let started = Instant::now();
                let mut x = 0u64;
                while !s.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                }
                std::hint::black_box(x);
                started.elapsed().as_secs_f64()
            })?;
        let s = Arc::clone(&stop);
        let path = file.clone();
        let writer = std::thread::Builder::new()
            .name("bench-disk".into())
            .spawn(move || write_passes(&path, &s))?;
        Ok(Contention {
            stop,
            busy: Some(busy),
            writer: Some(writer),
            file,
        })
    }

    /// Stops both and says what they did.
    pub fn stop(mut self) -> ContentionReport {
        self.stop.store(true, Ordering::Relaxed);
        let busy_cpu_s = self.busy.take().and_then(|h| h.join().ok()).unwrap_or(0.0);
        let (bytes, fsyncs, worst) = self
            .writer
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&self.file);
        ContentionReport {
            busy_cpu_s,
            written_mib: bytes >> 20,
            fsyncs,
            worst_fsync_s: worst,
        }
    }
}

/// Rewrites `path` 256 MiB at a time, fsync after each pass, until `stop`.
fn write_passes(path: &Path, stop: &AtomicBool) -> (u64, u64, f64) {
    let written = AtomicU64::new(0);
    let (mut fsyncs, mut worst) = (0u64, 0f64);
    let chunk = vec![0u8; CHUNK];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut f) = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
        else {
            return (written.into_inner(), fsyncs, worst);
        };
        let mut pass = 0u64;
        while pass < PASS && !stop.load(Ordering::Relaxed) {
            if f.write_all(&chunk).is_err() {
                break;
            }
            pass += CHUNK as u64;
            written.fetch_add(CHUNK as u64, Ordering::Relaxed);
        }
        let t = Instant::now();
        if f.sync_all().is_ok() {
            fsyncs += 1;
            worst = worst.max(t.elapsed().as_secs_f64());
        }
    }
    (written.into_inner(), fsyncs, worst)
}
