//! What a recording's writer works on: its open files before a writer thread takes them
//! ([`OpenFiles`], made on a blocking thread when a recording starts or resumes), and the
//! audio a conference renders for them ([`AudioBlock`] of [`Pcm`]).
//!
//! In: the recording root, the room, the sample rate and the start (or an unfinished
//! recording and the time now); rendered PCM. Out: the mix's `.flac.partial` and a first
//! `.json.partial` on disk, with the open writers; blocks that say which samples are silence
//! (so silence waiting for a slow disk costs no memory).

use chrono::{DateTime, Utc};
use tracing::info;

use super::error::SinkError;
use super::flac::{FlacSettings, FlacWriter};
use super::owner::Ownership;
use super::paths::{RecordingPaths, Unfinished, safe_component, unused_recording_paths};
use super::recover::{Continuation, resume_recording_as};
use super::sidecar::{self, Sidecar, Status};
use crate::room::RoomJid;
use crate::types::SampleRate;

/// PCM for a file: samples, or a run of digital silence (free to hold while the disk is slow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pcm {
    Samples(Vec<i16>),
    Silence(u64),
}

impl Pcm {
    /// `samples`, or a silence of their length if they are all zero.
    pub fn from_samples(samples: Vec<i16>) -> Pcm {
        if samples.iter().all(|&s| s == 0) {
            Pcm::Silence(samples.len() as u64)
        } else {
            Pcm::Samples(samples)
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Pcm::Samples(v) => v.len() as u64,
            Pcm::Silence(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory it holds.
    pub fn bytes(&self) -> usize {
        match self {
            Pcm::Samples(v) => v.len() * 2,
            Pcm::Silence(_) => 0,
        }
    }

    pub fn is_silence(&self) -> bool {
        matches!(self, Pcm::Silence(_))
    }
}

/// One render's audio: the mix from timeline sample `start`, and the stems of the same span
/// by participant key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioBlock {
    pub start: u64,
    pub mix: Pcm,
    pub stems: Vec<(String, Pcm)>,
}

impl AudioBlock {
    /// The timeline sample after this block.
    pub fn end(&self) -> u64 {
        self.start + self.mix.len()
    }

    pub fn bytes(&self) -> usize {
        self.mix.bytes() + self.stems.iter().map(|(_, p)| p.bytes()).sum::<usize>()
    }

    pub fn is_silence(&self) -> bool {
        self.mix.is_silence() && self.stems.iter().all(|(_, p)| p.is_silence())
    }

    /// The same span with every sample replaced by silence.
    pub fn silenced(self) -> AudioBlock {
        let n = self.mix.len();
        AudioBlock {
            start: self.start,
            mix: Pcm::Silence(n),
            stems: self
                .stems
                .into_iter()
                .map(|(k, _)| (k, Pcm::Silence(n)))
                .collect(),
        }
    }
}

/// A recording's files, open, before they are handed to a writer thread.
#[derive(Debug)]
pub struct OpenFiles {
    pub paths: RecordingPaths,
    pub mix: FlacWriter,
    /// Stems continued after a restart, by participant key.
    pub stems: Vec<(String, FlacWriter)>,
    /// The sidecar as written so far (the conference keeps the model from here on).
    pub sidecar: Sidecar,
    /// With several instances: this one's claim and when it wrote its owner record (its
    /// writer thread writes nothing after the lease says so, see [`super::owner`]).
    pub owner: Option<(Ownership, DateTime<Utc>)>,
}

impl OpenFiles {
    /// Creates a new recording of `room` in `dir` whose sample 0 is `start_utc`: the mix's
    /// `.flac.partial` and a first `.json.partial`. Blocking (creates, writes, fsyncs).
    pub fn create(
        dir: &std::path::Path,
        room: &RoomJid,
        sample_rate: SampleRate,
        start_utc: DateTime<Utc>,
        owner: Option<&Ownership>,
    ) -> Result<OpenFiles, SinkError> {
        let (room, sample_rate) = (room.as_str(), sample_rate.hz());
        let paths = unused_recording_paths(dir, room, start_utc)?;
        paths.create_dir()?;
        let owner = match owner {
            Some(o) => Some((o.clone(), o.claim(&paths)?)),
            None => None,
        };
        let mix = FlacWriter::create_with(&paths.flac, sample_rate, FlacSettings::default())?;
        let file = paths
            .flac
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sidecar = Sidecar::new(room, &paths.room_dir, &file, sample_rate, start_utc);
        sidecar::write_atomic(&paths.sidecar_partial, &sidecar)?;
        info!(file = %paths.flac_partial.display(), "recording started");
        Ok(OpenFiles {
            paths,
            mix,
            stems: Vec::new(),
            sidecar,
            owner,
        })
    }

    /// Continues a recording a previous jitape (or another instance, `how`) left unfinished,
    /// at wall time `now` (the downtime is silence and a gap). With `owner`, this instance's
    /// record is written first, before any of the files is touched. Blocking (repairs,
    /// decodes, writes).
    pub fn resume(
        u: &Unfinished,
        room: &RoomJid,
        sample_rate: SampleRate,
        now: DateTime<Utc>,
        owner: Option<&Ownership>,
        how: &Continuation,
    ) -> Result<OpenFiles, SinkError> {
        let room = room.as_str();
        let owner = match owner {
            Some(o) => Some((o.clone(), o.claim(&u.paths)?)),
            None => None,
        };
        let opts = FlacSettings::default();
        let resumed = resume_recording_as(u, room, sample_rate.hz(), now, opts, how)?;
        let mut sidecar = resumed.sidecar;
        sidecar.status = Status::Recording;
        sidecar::write_atomic(&u.paths.sidecar_partial, &sidecar)?;
        let stems = resumed
            .stems
            .into_iter()
            .map(|(path, writer)| {
                // The participant whose stem this is; an unknown one keeps its path as key.
                let key = sidecar
                    .participants
                    .iter()
                    .find(|p| {
                        p.stem.is_some()
                            && u.paths.stem(&safe_component(&p.key, "participant")) == path
                    })
                    .map_or_else(|| path.display().to_string(), |p| p.key.clone());
                (key, writer)
            })
            .collect();
        info!(
            file = %u.paths.flac_partial.display(),
            kept = resumed.report.samples_kept,
            cut_bytes = resumed.report.bytes_cut,
            downtime_samples = resumed.gap.end - resumed.gap.start,
            "recording resumed after a restart"
        );
        Ok(OpenFiles {
            paths: u.paths.clone(),
            mix: resumed.mix,
            stems,
            sidecar,
            owner,
        })
    }
}
