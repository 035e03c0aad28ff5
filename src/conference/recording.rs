//! One conference's recording: the audio timeline and the files it feeds.
//!
//! In: RTP packets, the SSRC → track mapping, the roster (for the sidecar), and the instant.
//! Out: the FLAC (and optional stems) growing on disk, a `.json.partial` sidecar rewritten at
//! every checkpoint, and at the end the finalized files. Owned by the conference task; the
//! timeline's sample 0 is the moment [`Recording::start`] runs, so the file's duration is the
//! conference's wall duration by construction.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::roster::{OccupantKind, Roster};
use crate::audio::{AudioConfig, AudioStats, SpeechEvent, Timeline, TrackId};
use crate::media::RtpPacket;
use crate::sink::paths::{safe_component, unused_recording_paths};
use crate::sink::sidecar::{self, GapKind, Presence, Segment, Sidecar};
use crate::sink::{
    FinalizedFiles, FlacWriter, RecordingPaths, SinkError, Unfinished, WriterOptions,
    resume_recording,
};

/// What a recording needs from the configuration.
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    pub dir: PathBuf,
    pub audio: AudioConfig,
}

/// Why a recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("audio configuration: {0}")]
    Audio(#[from] crate::audio::AudioError),
}

/// Totals already published to the metrics (to publish deltas).
#[derive(Default)]
struct Published {
    received: u64,
    lost: u64,
    concealed: u64,
    late: u64,
    bytes: u64,
}

/// What the sidecar already held for a participant when the recording was resumed.
#[derive(Default)]
struct Earlier {
    presence: Vec<Presence>,
    speaking: Vec<Segment>,
}

/// A per-participant stem file.
struct Stem {
    key: String,
    writer: FlacWriter,
}

pub struct Recording {
    paths: RecordingPaths,
    timeline: Timeline,
    origin: Instant,
    mix: FlacWriter,
    stems: HashMap<TrackId, Stem>,
    sidecar: Sidecar,
    tracks: BTreeMap<u32, TrackId>,
    /// Track → participant key, for speech segments and stems.
    keys: HashMap<TrackId, String>,
    open_speech: HashMap<TrackId, u64>,
    segments: HashMap<String, Vec<(u64, u64)>>,
    /// What has been added to the process-wide metrics so far.
    published: Published,
    /// Sample offset of `origin` (non-zero after a resume).
    origin_sample: u64,
    /// Participants and their history from before a resume, by key.
    earlier: HashMap<String, Earlier>,
    write_failures: u64,
}

impl Recording {
    /// Open a new recording of `room` whose sample 0 is (`origin`, `start_utc`).
    pub fn start(
        s: &RecordingSettings,
        room: &str,
        origin: Instant,
        start_utc: DateTime<Utc>,
    ) -> Result<Recording, RecordingError> {
        let timeline = Timeline::new(s.audio.clone(), origin, 0)?;
        let paths = unused_recording_paths(&s.dir, room, start_utc)?;
        paths.create_dir()?;
        let mix =
            FlacWriter::create_with(&paths.flac, s.audio.sample_rate, WriterOptions::default())?;
        let file = paths
            .flac
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sidecar = Sidecar::new(room, &paths.room_dir, &file, s.audio.sample_rate, start_utc);
        sidecar::write_atomic(&paths.sidecar_partial, &sidecar)?;
        info!(file = %paths.flac_partial.display(), "recording started");
        Ok(Recording {
            paths,
            timeline,
            origin,
            mix,
            stems: HashMap::new(),
            sidecar,
            tracks: BTreeMap::new(),
            keys: HashMap::new(),
            open_speech: HashMap::new(),
            segments: HashMap::new(),
            published: Published::default(),
            origin_sample: 0,
            earlier: HashMap::new(),
            write_failures: 0,
        })
    }

    /// Continue a recording a previous jitape left unfinished: the torn tail is cut, the
    /// downtime becomes silence (and a `jitape-restart` gap in the sidecar), and the
    /// timeline carries on at the sample that corresponds to `now`.
    pub fn resume(
        s: &RecordingSettings,
        room: &str,
        u: &Unfinished,
        origin: Instant,
        now: DateTime<Utc>,
    ) -> Result<Recording, RecordingError> {
        let resumed =
            resume_recording(u, room, s.audio.sample_rate, now, WriterOptions::default())?;
        let origin_sample = resumed.mix.samples_written();
        let resumed_bytes = resumed.mix.file_bytes();
        let timeline = Timeline::new(s.audio.clone(), origin, origin_sample)?;
        let mut sidecar = resumed.sidecar;
        sidecar.status = sidecar::Status::Recording;
        sidecar::write_atomic(&u.paths.sidecar_partial, &sidecar)?;
        let earlier = sidecar
            .participants
            .iter()
            .map(|p| {
                (
                    p.key.clone(),
                    Earlier {
                        presence: p.presence.clone(),
                        speaking: p.speaking.clone(),
                    },
                )
            })
            .collect();
        let mut stems = HashMap::new();
        for (path, writer) in resumed.stems {
            // Stems continue under placeholder tracks until their participant is mapped again.
            let key = sidecar
                .participants
                .iter()
                .find(|p| {
                    p.stem.is_some() && u.paths.stem(&safe_component(&p.key, "participant")) == path
                })
                .map_or_else(|| path.display().to_string(), |p| p.key.clone());
            stems.insert(TrackId(u32::MAX - stems.len() as u32), Stem { key, writer });
            debug_assert!(stems.len() < (u32::MAX - RESUMED_TRACKS) as usize);
        }
        info!(
            file = %u.paths.flac_partial.display(),
            kept = resumed.report.samples_kept,
            cut_bytes = resumed.report.bytes_cut,
            downtime_samples = resumed.gap.end - resumed.gap.start,
            "recording resumed after a restart"
        );
        Ok(Recording {
            paths: u.paths.clone(),
            timeline,
            origin,
            mix: resumed.mix,
            stems,
            sidecar,
            tracks: BTreeMap::new(),
            keys: HashMap::new(),
            open_speech: HashMap::new(),
            segments: HashMap::new(),
            published: Published {
                bytes: resumed_bytes,
                ..Published::default()
            },
            origin_sample,
            earlier,
            write_failures: 0,
        })
    }

    pub fn paths(&self) -> &RecordingPaths {
        &self.paths
    }

    pub fn stats(&self) -> AudioStats {
        self.timeline.stats()
    }

    /// Samples in the file so far.
    pub fn samples(&self) -> u64 {
        self.mix.samples_written()
    }

    pub fn sample_rate(&self) -> u32 {
        self.sidecar.sample_rate
    }

    pub fn start_utc(&self) -> DateTime<Utc> {
        self.sidecar.start.utc
    }

    /// Bytes of the mix FLAC on disk.
    pub fn file_bytes(&self) -> u64 {
        self.mix.file_bytes()
    }

    fn sample_at(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.origin);
        self.origin_sample
            + (d.as_nanos() * u128::from(self.sidecar.sample_rate) / 1_000_000_000) as u64
    }

    /// How long ago the recording started (wall clock; more than the process's uptime
    /// after a resume).
    pub fn elapsed(&self) -> Duration {
        (chrono::Utc::now() - self.sidecar.start.utc)
            .to_std()
            .unwrap_or_default()
    }

    /// Add what happened since the last call to the process-wide metrics.
    pub fn publish(&mut self, m: &crate::metrics::Metrics) {
        let t = self.timeline.stats().total;
        let concealed = t.concealed_fec + t.concealed_plc;
        let bytes = self.mix.file_bytes();
        let p = &mut self.published;
        m.packets_received
            .add(t.received.saturating_sub(p.received));
        m.packets_lost.add(t.lost.saturating_sub(p.lost));
        m.packets_concealed
            .add(concealed.saturating_sub(p.concealed));
        m.packets_late.add(t.late.saturating_sub(p.late));
        m.bytes_written.add(bytes.saturating_sub(p.bytes));
        *p = Published {
            received: t.received,
            lost: t.lost,
            concealed,
            late: t.late,
            bytes,
        };
    }

    pub fn set_meeting_id(&mut self, id: &str) {
        self.sidecar.meeting_id = Some(id.to_string());
    }

    /// Note an interruption in the sidecar.
    pub fn add_gap(&mut self, start: Instant, end: Instant, kind: GapKind, detail: String) {
        let (a, b) = (self.sample_at(start), self.sample_at(end));
        if b > a {
            self.sidecar.add_gap(a, b, kind, Some(detail));
        }
    }

    pub fn push(&mut self, pkt: &RtpPacket) {
        self.timeline.push(pkt);
    }

    /// The current session's Opus and RED payload types (from its offer).
    pub fn set_payload_types(&mut self, opus: u8, red: Option<u8>) {
        self.timeline.set_payload_types(opus, red);
    }

    /// Apply a new SSRC → track mapping (only the differences reach the timeline).
    pub fn set_tracks(&mut self, mapping: &[(u32, TrackId)], roster: &Roster) {
        let new: BTreeMap<u32, TrackId> = mapping.iter().copied().collect();
        for ssrc in self.tracks.keys() {
            if !new.contains_key(ssrc) {
                self.timeline.unmap_source(*ssrc);
            }
        }
        for (ssrc, track) in &new {
            if self.tracks.get(ssrc) != Some(track)
                && let Err(e) = self.timeline.map_source(*ssrc, *track)
            {
                warn!(ssrc, error = %e, "source not mapped");
            }
        }
        self.tracks = new;
        for p in roster.participants() {
            self.keys.insert(p.track, p.key.clone());
        }
    }

    /// Render everything due at `now` into the files, and hand every complete frame to the
    /// OS: a crash (even `kill -9`) then loses at most the frame being filled and the
    /// playout delay, never seconds.
    pub fn render(&mut self, now: Instant) {
        let r = self.timeline.render(now);
        if r.mix.is_empty() && r.speech.is_empty() {
            return;
        }
        self.write_mix(&r.mix);
        for (track, samples) in &r.stems {
            self.write_stem(*track, r.start_sample, samples);
        }
        for ev in r.speech {
            self.on_speech(ev);
        }
        if let Err(e) = self.mix.flush() {
            crate::util::log_limited("recording-flush", format_args!("flush failed: {e}"));
        }
    }

    fn write_mix(&mut self, samples: &[i16]) {
        if let Err(e) = self.mix.write(samples) {
            self.write_failures += 1;
            crate::util::log_limited(
                "recording-write",
                format_args!(
                    "{}: writing audio failed: {e}",
                    self.paths.flac_partial.display()
                ),
            );
        }
    }

    fn write_stem(&mut self, track: TrackId, start_sample: u64, samples: &[i16]) {
        if !self.stems.contains_key(&track) {
            let key = self
                .keys
                .get(&track)
                .cloned()
                .unwrap_or_else(|| track.to_string());
            // A stem resumed after a restart continues under the participant's new track.
            let resumed = self
                .stems
                .iter()
                .find(|(t, s)| t.0 >= RESUMED_TRACKS && s.key == key)
                .map(|(t, _)| *t);
            if let Some(stem) = resumed.and_then(|t| self.stems.remove(&t)) {
                self.stems.insert(track, stem);
            } else {
                let file_key = safe_component(&key, "participant");
                match FlacWriter::create(&self.paths.stem(&file_key), self.sidecar.sample_rate) {
                    Ok(writer) => {
                        self.stems.insert(track, Stem { key, writer });
                    }
                    Err(e) => {
                        crate::util::log_limited(
                            "stem-create",
                            format_args!("stem for {key} not created: {e}"),
                        );
                        return;
                    }
                }
            }
        }
        if let Some(stem) = self.stems.get_mut(&track) {
            // Stems have the mix's length: pad whatever this stem missed.
            let behind = start_sample.saturating_sub(stem.writer.samples_written());
            let result = stem
                .writer
                .write_silence(behind)
                .and_then(|()| stem.writer.write(samples));
            if let Err(e) = result {
                crate::util::log_limited("stem-write", format_args!("stem write failed: {e}"));
            }
        }
    }

    fn on_speech(&mut self, ev: SpeechEvent) {
        match ev {
            SpeechEvent::Start { track, sample } => {
                self.open_speech.insert(track, sample);
            }
            SpeechEvent::End { track, sample } => {
                if let Some(start) = self.open_speech.remove(&track) {
                    let key = self
                        .keys
                        .get(&track)
                        .cloned()
                        .unwrap_or_else(|| track.to_string());
                    self.segments.entry(key).or_default().push((start, sample));
                }
            }
        }
    }

    /// Bring the sidecar up to date with the roster.
    fn update_sidecar(&mut self, roster: &Roster) {
        let rate = self.sidecar.sample_rate;
        let start = self.sidecar.start.utc;
        let at = |s: u64| sidecar::TimePoint::at_sample(start, rate, s);
        for p in roster.participants() {
            if matches!(p.kind, OccupantKind::Us | OccupantKind::Focus) {
                continue;
            }
            if p.identity.hidden_from_recorder {
                // Not recorded, and nothing about them is kept: only that someone was.
                self.sidecar.participants.retain(|e| e.key != p.key);
                let entry = self
                    .sidecar
                    .participant_mut(&format!("hidden-{}", p.track.0));
                entry.hidden_from_recorder = true;
                continue;
            }
            let presence: Vec<Presence> = p
                .intervals
                .iter()
                .map(|(join, leave)| Presence {
                    join: at(self.sample_at(*join)),
                    leave: leave.map(|l| at(self.sample_at(l))),
                })
                .collect();
            let speaking: Vec<Segment> = self
                .segments
                .get(&p.key)
                .map(|v| {
                    v.iter()
                        .map(|(s, e)| Segment {
                            start: at(*s),
                            end: at(*e),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let earlier = self.earlier.get(&p.key);
            let presence: Vec<Presence> = earlier
                .map(|e| e.presence.clone())
                .unwrap_or_default()
                .into_iter()
                .chain(presence)
                .collect();
            let speaking: Vec<Segment> = earlier
                .map(|e| e.speaking.clone())
                .unwrap_or_default()
                .into_iter()
                .chain(speaking)
                .collect();
            let entry = self.sidecar.participant_mut(&p.key);
            entry.nicks = p.nicks.clone();
            entry.endpoint_ids = p.nicks.clone();
            entry.display_name = p.display_name.clone();
            entry.identity.id = p.identity.id.clone();
            entry.identity.email = p.identity.email.clone();
            entry.identity.name = p.identity.name.clone();
            entry.presence = presence;
            entry.speaking = speaking;
        }
        self.sidecar.total_samples = self.mix.samples_written();
    }

    /// Flush audio to the OS and rewrite the `.json.partial` (called every few seconds).
    pub fn checkpoint(&mut self, roster: &Roster) {
        if let Err(e) = self.mix.flush() {
            crate::util::log_limited("recording-flush", format_args!("flush failed: {e}"));
        }
        for stem in self.stems.values_mut() {
            let _ = stem.writer.flush();
        }
        self.update_sidecar(roster);
        if let Err(e) = sidecar::write_atomic(&self.paths.sidecar_partial, &self.sidecar) {
            crate::util::log_limited("sidecar-write", format_args!("sidecar not written: {e}"));
        }
    }

    /// Whether the disk takes what finishing needs: every buffered frame of the mix and the
    /// stems written, and the sidecar rewritten (a create and a rename in the room's
    /// directory). An error means it still refuses; nothing buffered is lost, try again later.
    pub fn ready_to_finish(&mut self, roster: &Roster) -> Result<(), SinkError> {
        self.mix.flush()?;
        for stem in self.stems.values_mut() {
            stem.writer.flush()?;
        }
        self.update_sidecar(roster);
        sidecar::write_atomic(&self.paths.sidecar_partial, &self.sidecar)
    }

    /// Make the file durable (fsync); less often than checkpoints.
    pub fn sync(&mut self) {
        if let Err(e) = self.mix.sync() {
            crate::util::log_limited("recording-sync", format_args!("fsync failed: {e}"));
        }
    }

    /// Render everything received up to `now` (the playout delay is not waited out: the
    /// conference is over), close open speech, and finalize every file. The file's length is
    /// then exactly the wall time from start to `now`.
    pub fn finish(
        mut self,
        now: Instant,
        reason: &str,
        roster: &Roster,
    ) -> Result<FinalizedFiles, SinkError> {
        let delay = self.timeline.config().late_window;
        self.render(now + delay);
        for ev in self.timeline.finish_speech() {
            self.on_speech(ev);
        }
        self.update_sidecar(roster);
        let stats = self.timeline.stats();
        info!(
            packets = stats.total.received,
            lost = stats.total.lost,
            concealed = stats.total.concealed_fec + stats.total.concealed_plc,
            late = stats.total.late,
            unknown_ssrc = stats.unknown_ssrc,
            write_failures = self.write_failures,
            "audio totals"
        );
        let total = self.mix.samples_written();
        let stems = self
            .stems
            .into_values()
            .map(|mut s| {
                let behind = total.saturating_sub(s.writer.samples_written());
                if let Err(e) = s.writer.write_silence(behind) {
                    warn!(error = %e, "stem padding failed");
                }
                (s.key, s.writer)
            })
            .collect();
        crate::sink::finalize_recording(&self.paths, self.mix, stems, &mut self.sidecar, reason)
    }
}

/// Track ids at and above this hold stems resumed after a restart until their participant
/// is mapped again.
const RESUMED_TRACKS: u32 = u32::MAX - 100_000;

/// How often the conference task renders and checkpoints.
pub const RENDER_EVERY: Duration = Duration::from_millis(100);
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
pub const SYNC_EVERY: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::roster::Classifier;

    fn settings(dir: &std::path::Path) -> RecordingSettings {
        RecordingSettings {
            dir: dir.to_path_buf(),
            audio: AudioConfig::default(),
        }
    }

    #[test]
    fn gaps_reach_the_final_sidecar() {
        let tmp = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let mut rec =
            Recording::start(&settings(tmp.path()), "r@muc.example", t0, Utc::now()).unwrap();
        rec.render(t0 + Duration::from_secs(1));
        rec.add_gap(
            t0 + Duration::from_millis(300),
            t0 + Duration::from_millis(700),
            GapKind::XmppReconnect,
            "test".into(),
        );
        let roster = Roster::new(Classifier::default());
        rec.checkpoint(&roster);
        let files = rec
            .finish(t0 + Duration::from_secs(2), "stopped", &roster)
            .unwrap();
        let sc = sidecar::read(&files.sidecar).unwrap();
        assert_eq!(sc.gaps.len(), 1, "{sc:?}");
        assert_eq!(sc.gaps[0].start.sample, 48_000 * 3 / 10);
    }
}
