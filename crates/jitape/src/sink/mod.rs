//! The file stage: everything jitape writes to disk for a conference.
//!
//! In: the mixed (and optionally per-participant) PCM timeline from `audio/`, and what the
//! conference task knows about the room and its participants. Out, per conference, under the
//! recording root:
//!
//! ```text
//! <root>/<room_dir>/<20261121T193509Z>.flac          one mono FLAC, the whole conference
//! <root>/<room_dir>/<20261121T193509Z>.json          the sidecar (schema jitape.sidecar/1)
//! <root>/<room_dir>/<20261121T193509Z>.stem.<key>.flac   optional per-participant stems
//! ```
//!
//! each written as `*.partial` until finalized. The pieces:
//!
//! - [`paths`]: safe room directory names and the file names of a recording;
//! - [`format`]: the FLAC header and frame encoding (pure);
//! - [`flac`]: the incremental, crash-safe, disk-full-tolerant FLAC writer;
//! - [`files`]: a recording's files opened (new or resumed) and the audio blocks for them;
//! - [`writer`]: the writer pool, the fixed set of OS threads that own every open recording
//!   file (encoding, writes, fsync, renames), so a slow disk never stalls the async runtime;
//! - [`backlog`]: a conference's side of its recording's writer: hands it audio without
//!   waiting, bounded, with the backlog counted and visible;
//! - [`scan`] + [`repair`]: find the valid part of a `.partial`, cut the torn tail, resume or
//!   finalize it after a crash;
//! - [`recover`]: at start-up, continue (with the downtime as silence) or finalize them;
//! - [`sidecar`]: the JSON document and its atomic writes;
//! - [`hook`]: the operator's command run after finalize;
//! - [`inspect`]: `jitape inspect`, verify a file and summarize its sidecar.
//! - [`catalog`]: the finished recordings, for the recordings page; safe name-to-path.
//!
//! [`finalize_recording`] ties them together at the end of a conference.

pub mod backlog;
pub mod catalog;
mod command;
mod decode;
pub mod error;
pub mod files;
pub mod flac;
pub mod format;
pub mod hook;
pub mod inspect;
pub mod owner;
pub mod paths;
pub mod recover;
pub mod repair;
pub mod scan;
pub mod sidecar;
pub mod writer;

#[cfg(test)]
pub(crate) mod testutil;

pub use backlog::RecordingWriter;
pub use error::{Fault, SinkError};
pub use files::{AudioBlock, OpenFiles, Pcm};
pub use flac::{DEFAULT_BLOCK_SIZE, Finalized, FlacSettings, FlacWriter};
pub use hook::{FinalizedFiles, HookOutcome, HookSettings, HookStatus, run_hook};
pub use inspect::{InspectReport, inspect};
pub use paths::{
    RecordingPaths, Unfinished, find_unfinished, find_unfinished_of, recording_paths, room_dir_name,
};
pub use recover::{
    Continuation, Resumed, finalize_unfinished, resume_recording, resume_recording_as,
};
pub use repair::{ResumeReport, finalize_partial};
pub use sidecar::{GapKind, Sidecar, TimePoint};
pub use writer::{WriterPool, WriterSettings};

/// Finalizes a conference's files: the mix, the stems (a failing stem is logged and left
/// `.partial`, it never costs the mix), then the sidecar (`finish`ed with the mix's length and
/// `reason`, the mix's disk-full losses added as gaps) is written as `<name>.json` and its
/// `.json.partial` removed. Returns what the finalize hook needs.
pub fn finalize_recording(
    paths: &RecordingPaths,
    mix: FlacWriter,
    stems: Vec<(String, FlacWriter)>,
    sidecar: &mut Sidecar,
    reason: &str,
) -> Result<FinalizedFiles, SinkError> {
    let mix = mix.finalize()?;
    for lost in &mix.lost_ranges {
        sidecar.add_gap(
            lost.start,
            lost.end,
            GapKind::DiskFull,
            Some("the disk refused the audio; silence instead".into()),
        );
    }
    let mut stem_paths = Vec::new();
    for (key, writer) in stems {
        match writer.finalize() {
            Ok(done) => {
                if let Some(name) = done.path.file_name() {
                    sidecar.participant_mut(&key).stem = Some(name.to_string_lossy().into_owned());
                }
                stem_paths.push(done.path);
            }
            Err(e) => tracing::warn!(error = %e, "stem not finalized"),
        }
    }
    sidecar.finish(mix.total_samples, reason);
    sidecar::write_final(&paths.sidecar, sidecar)?;
    owner::remove(paths);
    tracing::info!(
        samples = mix.total_samples,
        lost = mix.samples_lost,
        "recording finalized"
    );
    Ok(FinalizedFiles {
        room: sidecar.room.clone(),
        room_dir: sidecar.room_dir.clone(),
        meeting_id: sidecar.meeting_id.clone(),
        flac: mix.path,
        sidecar: paths.sidecar.clone(),
        stems: stem_paths,
    })
}

#[cfg(test)]
mod tests;
