//! The one error type of the file stage, grouped by whose fault it is.
//!
//! In: failures of the writer, the repair scanner, the sidecar and inspect. Out: a [`SinkError`]
//! that always names the file it is about, plus [`SinkError::fault`] for callers that count or
//! log by cause. I/O errors keep the operation that failed ("write", "fsync", "rename", ...).

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Whose fault a [`SinkError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operating system refused (disk full, read-only, permissions, EIO).
    Io,
    /// A file on disk is damaged or is not what jitape wrote.
    Corrupt,
    /// A valid file or a request jitape does not handle (stereo, 24-bit, another sample rate).
    Unsupported,
    /// An internal invariant broke: a bug in jitape or a library.
    Bug,
}

/// Everything that can go wrong in `sink/`.
#[derive(Debug, Error)]
pub enum SinkError {
    // ---- the environment's fault ----
    /// An operation on a file or directory failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // ---- damaged input ----
    /// The file is not a valid (or not a repairable) jitape FLAC/sidecar.
    #[error("{}: corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },

    // ---- valid but not ours to handle ----
    /// The file or request is valid but outside what the writer supports.
    #[error("{}: unsupported: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },

    // ---- our bug ----
    /// An internal invariant broke (encoder rejected our input, counters disagree).
    #[error("{}: internal error: {reason}", path.display())]
    Bug { path: PathBuf, reason: String },
}

impl SinkError {
    /// Whose fault this error is.
    pub fn fault(&self) -> Fault {
        match self {
            SinkError::Io { .. } => Fault::Io,
            SinkError::Corrupt { .. } => Fault::Corrupt,
            SinkError::Unsupported { .. } => Fault::Unsupported,
            SinkError::Bug { .. } => Fault::Bug,
        }
    }

    /// The file (or directory) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SinkError::Io { path, .. }
            | SinkError::Corrupt { path, .. }
            | SinkError::Unsupported { path, .. }
            | SinkError::Bug { path, .. } => path,
        }
    }

    /// The underlying OS error, if this is an I/O failure.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            SinkError::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the disk (or quota) is full: the caller should stop starting new recordings.
    pub fn is_disk_full(&self) -> bool {
        self.io_error().is_some_and(|e| {
            matches!(
                e.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            )
        })
    }

    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        SinkError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        SinkError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(path: &Path, reason: impl Into<String>) -> Self {
        SinkError::Unsupported {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bug(path: &Path, reason: impl Into<String>) -> Self {
        SinkError::Bug {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
