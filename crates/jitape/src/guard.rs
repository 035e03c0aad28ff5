//! The disk guard and retention: how much room the recording filesystem has, whether jitape
//! can write there, whether new recordings may start, and deleting old finalized files.
//!
//! In: the recording directory, the floor, the retention, and (each period) the XMPP link
//! state from the metrics. Out: [`Readiness`] on a watch channel (for `/ready`), a `disk_ok`
//! watch the router obeys (no new recording below the floor), gauges, and deleted files.
//! [`readiness`] and [`expired`] are pure; the task around them does the I/O.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// How often the guard looks.
pub const PERIOD: Duration = Duration::from_secs(2);
/// How often retention runs.
const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

/// What the guard measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub free_bytes: u64,
    pub writable: bool,
    pub xmpp_connected: bool,
}

/// Whether jitape can do its job now, and if not, why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub xmpp_connected: bool,
    pub recording_dir_writable: bool,
    pub disk_free_bytes: u64,
    pub disk_above_floor: bool,
    pub reasons: Vec<String>,
}

/// Readiness from what was observed. Pure.
pub fn readiness(o: Observed, floor: u64) -> Readiness {
    let above = o.free_bytes >= floor;
    let mut reasons = Vec::new();
    if !o.xmpp_connected {
        reasons.push("not connected to Prosody".to_string());
    }
    if !o.writable {
        reasons.push("the recording directory is not writable".to_string());
    }
    if !above {
        reasons.push(format!(
            "free space {} MB is below the floor of {} MB: no new recording starts",
            o.free_bytes / 1_000_000,
            floor / 1_000_000
        ));
    }
    Readiness {
        ready: reasons.is_empty(),
        xmpp_connected: o.xmpp_connected,
        recording_dir_writable: o.writable,
        disk_free_bytes: o.free_bytes,
        disk_above_floor: above,
        reasons,
    }
}

/// Free bytes available to jitape on the filesystem of `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Whether a file can be created (and removed) in `dir`.
pub fn writable(dir: &Path) -> bool {
    probe_write(dir).is_ok()
}

/// Creates (and removes) an empty file in `dir`: a real write, so ownership, mode, ACLs and
/// read-only mounts all count. The error says why not.
pub fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(".jitape-write-probe");
    let result = std::fs::write(&probe, b"");
    let _ = std::fs::remove_file(&probe);
    result
}

/// A finalized recording file and its age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAge {
    pub path: PathBuf,
    pub modified: SystemTime,
}

/// Files older than `retention` at `now`; `.partial` files are never expired. Pure.
pub fn expired(files: &[FileAge], now: SystemTime, retention: Duration) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| !f.path.to_string_lossy().ends_with(".partial"))
        .filter(|f| {
            let name = f.path.to_string_lossy();
            name.ends_with(".flac") || name.ends_with(".json")
        })
        .filter(|f| {
            now.duration_since(f.modified)
                .is_ok_and(|age| age > retention)
        })
        .map(|f| f.path.clone())
        .collect()
}

fn list_recordings(dir: &Path) -> Vec<FileAge> {
    let mut out = Vec::new();
    let Ok(rooms) = std::fs::read_dir(dir) else {
        return out;
    };
    for room in rooms.flatten() {
        let Ok(files) = std::fs::read_dir(room.path()) else {
            continue;
        };
        for f in files.flatten() {
            if let Ok(modified) = f.metadata().and_then(|m| m.modified()) {
                out.push(FileAge {
                    path: f.path(),
                    modified,
                });
            }
        }
    }
    out
}

fn apply_retention(dir: &Path, retention: Duration) {
    for path in expired(&list_recordings(dir), SystemTime::now(), retention) {
        match std::fs::remove_file(&path) {
            Ok(()) => info!(file = %path.display(), "retention: deleted"),
            Err(e) => warn!(file = %path.display(), error = %e, "retention: could not delete"),
        }
        if let Some(parent) = path.parent() {
            // Removes the room directory only when it is empty.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// What the guard task is configured with.
pub struct GuardSettings {
    pub dir: PathBuf,
    pub floor: u64,
    pub retention: Option<Duration>,
}

impl GuardSettings {
    /// The guard's settings from `[recording]`.
    pub fn new(recording: &crate::config::RecordingConfig) -> Self {
        GuardSettings {
            dir: recording.dir.clone(),
            floor: recording.disk_floor,
            retention: recording.retention,
        }
    }
}

/// Run the guard until the process stops.
pub async fn run(
    s: GuardSettings,
    metrics: Arc<Metrics>,
    ready: watch::Sender<Readiness>,
    disk_ok: watch::Sender<bool>,
) {
    let mut last_retention: Option<std::time::Instant> = None;
    loop {
        let dir = s.dir.clone();
        let (free, can_write) =
            tokio::task::spawn_blocking(move || (free_bytes(&dir).unwrap_or(0), writable(&dir)))
                .await
                .unwrap_or((0, false));
        let r = readiness(
            Observed {
                free_bytes: free,
                writable: can_write,
                xmpp_connected: metrics.xmpp_connected.get() == 1,
            },
            s.floor,
        );
        metrics
            .disk_free_bytes
            .set(i64::try_from(free).unwrap_or(i64::MAX));
        metrics.disk_low.set(i64::from(!r.disk_above_floor));
        let ok = r.disk_above_floor && r.recording_dir_writable;
        if *disk_ok.borrow() != ok {
            if ok {
                info!(
                    free_mb = free / 1_000_000,
                    "recording filesystem usable again"
                );
            } else {
                warn!(
                    free_mb = free / 1_000_000,
                    floor_mb = s.floor / 1_000_000,
                    writable = can_write,
                    "recording filesystem below the floor or not writable: no new recording starts"
                );
            }
            let _ = disk_ok.send(ok);
        }
        ready.send_if_modified(|old| {
            let changed = *old != r;
            *old = r;
            changed
        });
        if let Some(retention) = s.retention
            && last_retention.is_none_or(|t| t.elapsed() >= RETENTION_PERIOD)
        {
            last_retention = Some(std::time::Instant::now());
            let dir = s.dir.clone();
            let _ = tokio::task::spawn_blocking(move || apply_retention(&dir, retention)).await;
        }
        tokio::time::sleep(PERIOD).await;
    }
}

#[cfg(test)]
mod tests;
