//! Who may write a recording: the owner record beside its files, for several jitape instances
//! that share one recording directory (issue 14, docs/architecture.md "Never two writers").
//!
//! In: the record on disk (`<name>.owner`, JSON: the instance and when it last renewed), the
//! lease mod_jitape announces, this instance's name and the wall time. Out: whether this
//! instance may take the recording now or from when ([`judge`]), and until when an owner may
//! write after its last renewal ([`Lease::write_by`]).
//!
//! The argument, in short: an owner renews its record only while its link to Prosody is up,
//! and its writer thread writes nothing after `renewed + lease − margin`. A taker writes
//! nothing before `renewed + lease` of the record it read. So the old owner's last byte
//! precedes the taker's first by the margin, as long as the two clocks differ by less.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::SinkError;
use super::paths::RecordingPaths;

/// The record: which instance writes the recording, and when it last said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub instance: String,
    pub renewed: DateTime<Utc>,
}

/// The lease mod_jitape keeps a disconnected instance's rooms for (`jitape_lease`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease(pub Duration);

impl Lease {
    /// How long before the lease ends an owner without a renewal stops writing: covers the
    /// time one write takes to land and the clocks' difference between instances.
    pub fn margin(self) -> Duration {
        (self.0 / 4).min(Duration::from_secs(2))
    }

    /// The last moment an owner that renewed at `renewed` may write.
    pub fn write_by(self, renewed: DateTime<Utc>) -> DateTime<Utc> {
        renewed + self.0.saturating_sub(self.margin())
    }

    /// The first moment another instance may write after a renewal at `renewed`.
    pub fn free_at(self, renewed: DateTime<Utc>) -> DateTime<Utc> {
        renewed + self.0
    }

    /// How often an owner renews: well inside the margin, so that one missed renewal (a
    /// slow disk) does not fence a healthy owner.
    pub fn renew_every(self) -> Duration {
        (self.margin() / 2).max(Duration::from_millis(100))
    }
}

/// An instance's claim on the recordings it writes, when several instances share the
/// recording directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub instance: String,
    pub lease: Lease,
}

impl Ownership {
    /// Writes this instance's record for `paths` as renewed now; returns that moment.
    pub fn claim(&self, paths: &RecordingPaths) -> Result<DateTime<Utc>, SinkError> {
        let renewed = Utc::now();
        write(
            paths,
            &OwnerRecord {
                instance: self.instance.clone(),
                renewed,
            },
        )?;
        Ok(renewed)
    }
}

/// Whether this instance may write an unfinished recording it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Now. `previous` is the instance the record named (none: no record, or it was ours).
    Now { previous: Option<String> },
    /// Not before this moment; read the record again then (the owner may have renewed).
    WaitUntil(DateTime<Utc>),
}

/// Judges a record at `now`. Without a record, the files' last change (`modified`) stands in
/// for the renewal: a writer that changed them less than a lease ago may still be writing.
pub fn judge(
    record: Option<&OwnerRecord>,
    modified: Option<DateTime<Utc>>,
    me: &str,
    lease: Lease,
    now: DateTime<Utc>,
) -> Claim {
    let (previous, renewed) = match record {
        Some(r) if r.instance == me => return Claim::Now { previous: None },
        Some(r) => (Some(r.instance.clone()), Some(r.renewed)),
        None => (None, modified),
    };
    match renewed.map(|r| lease.free_at(r)) {
        Some(free) if free > now => Claim::WaitUntil(free),
        _ => Claim::Now { previous },
    }
}

/// `<room dir>/<name>.owner`.
pub fn path(paths: &RecordingPaths) -> PathBuf {
    paths.dir.join(format!("{}.owner", paths.name))
}

/// The record of `paths`; `None` when there is none. An unreadable record is an error: the
/// caller must not take a recording it cannot tell the owner of.
pub fn read(paths: &RecordingPaths) -> Result<Option<OwnerRecord>, SinkError> {
    let p = path(paths);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SinkError::corrupt(&p, format!("owner record: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SinkError::io("read", &p, e)),
    }
}

/// Writes the record of `paths`: a new file renamed over the old one, so a reader sees the
/// old record or the new one. Not fsynced: every conference renews it every second or so,
/// and a record a crash leaves torn is judged by its file's age ([`read_for_judging`]);
/// closing the file hands it to a network filesystem's server (close-to-open).
pub fn write(paths: &RecordingPaths, record: &OwnerRecord) -> Result<(), SinkError> {
    let p = path(paths);
    let tmp = paths.dir.join(format!(".{}.owner.tmp", paths.name));
    let bytes = serde_json::to_vec(record).map_err(|e| SinkError::corrupt(&p, e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        drop(f);
        std::fs::rename(&tmp, &p)
    };
    write().map_err(|e| SinkError::io("write", &p, e))
}

/// Removes the record of a recording that is final (nobody writes it any more).
pub fn remove(paths: &RecordingPaths) {
    let p = path(paths);
    if let Err(e) = std::fs::remove_file(&p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %p.display(), error = %e, "owner record not removed");
    }
}

/// When the mix `.partial` of `paths` last changed.
pub fn modified(paths: &RecordingPaths) -> Option<DateTime<Utc>> {
    modified_at(&paths.flac_partial)
}

/// What [`judge`] needs about `paths`: the record, and the moment that stands in for its
/// renewal when there is none. A record that cannot be parsed (torn by a crash) counts as
/// none, and then the later of its own last change and the mix's stands in: whoever wrote
/// either may still be writing until a lease after that. Only an I/O error is an error.
pub fn read_for_judging(
    paths: &RecordingPaths,
) -> Result<(Option<OwnerRecord>, Option<DateTime<Utc>>), SinkError> {
    match read(paths) {
        Ok(record) => Ok((record, modified(paths))),
        Err(SinkError::Corrupt { .. }) => {
            tracing::warn!(file = %path(paths).display(), "an unreadable owner record; judged by its age");
            Ok((None, modified(paths).max(modified_at(&path(paths)))))
        }
        Err(e) => Err(e),
    }
}

fn modified_at(p: &Path) -> Option<DateTime<Utc>> {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from)
}

#[cfg(test)]
mod tests;
