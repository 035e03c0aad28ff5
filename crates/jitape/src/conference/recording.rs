//! One conference's recording: the audio timeline, the sidecar model, and the handle to the
//! files on a writer thread.
//!
//! In: RTP packets, the SSRC → track mapping, the roster (for the sidecar), and the instant.
//! Out: rendered PCM handed to the recording's writer thread ([`RecordingWriter`]; FLAC
//! encoding and every disk operation happen there), a sidecar snapshot at every checkpoint,
//! and at the end the finalized files. Owned by the conference task; no method blocks on
//! the disk (only opening, on a blocking thread, and the async end). The timeline's sample
//! 0 is the moment [`Recording::start`] runs, so the file's duration is the conference's
//! wall duration by construction.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::roster::{OccupantKind, Roster};
use crate::audio::{AudioSettings, AudioStats, SpeechEvent, Timeline, TrackId};
use crate::media::RtpPacket;
use crate::room::RoomJid;
use crate::sink::owner::Ownership;
use crate::sink::sidecar::{self, GapKind, Presence, Segment, Sidecar};
use crate::sink::{
    AudioBlock, Continuation, FinalizedFiles, OpenFiles, Pcm, RecordingPaths, RecordingWriter,
    SinkError, Unfinished, WriterPool,
};
use crate::types::Ssrc;

/// What a recording needs from the configuration.
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    pub dir: PathBuf,
    pub audio: AudioSettings,
}

impl RecordingSettings {
    /// Where and how conferences are recorded, from `[recording]`.
    pub fn new(recording: &crate::config::RecordingConfig) -> Self {
        RecordingSettings {
            dir: recording.dir.clone(),
            audio: AudioSettings::new(recording),
        }
    }
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
}

/// What the sidecar already held for a participant when the recording was resumed.
#[derive(Default)]
struct Earlier {
    presence: Vec<Presence>,
    speaking: Vec<Segment>,
}

/// The sidecar's words for audio the disk was too slow to take.
const BACKLOG_GAP: &str = "the disk was too slow: more audio waited for it than recording.write_backlog (or write_backlog_total) allows; silence instead";

pub struct Recording {
    paths: RecordingPaths,
    timeline: Timeline,
    origin: Instant,
    files: RecordingWriter,
    sidecar: Sidecar,
    tracks: BTreeMap<Ssrc, TrackId>,
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
}

impl Recording {
    /// Open a new recording of `room` whose sample 0 is (`origin`, `start_utc`), its files
    /// on a thread of `pool`. Blocking: creates and fsyncs the first files.
    pub fn start(
        s: &RecordingSettings,
        pool: &WriterPool,
        room: &RoomJid,
        origin: Instant,
        start_utc: DateTime<Utc>,
        owner: Option<&Ownership>,
    ) -> Result<Recording, RecordingError> {
        let timeline = Timeline::new(s.audio.clone(), origin, 0)?;
        let files = OpenFiles::create(&s.dir, room, s.audio.sample_rate, start_utc, owner)?;
        Ok(Self::adopt(pool, files, timeline, origin, 0))
    }

    /// Continue a recording a previous jitape (or instance) left unfinished: the torn tail is
    /// cut, the downtime becomes silence (and a `jitape-restart` or `jitape-takeover` gap in
    /// the sidecar, as `how` says), and the timeline carries on at the sample that
    /// corresponds to `now`. Blocking (repairs).
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        s: &RecordingSettings,
        pool: &WriterPool,
        room: &RoomJid,
        u: &Unfinished,
        origin: Instant,
        now: DateTime<Utc>,
        owner: Option<&Ownership>,
        how: &Continuation,
    ) -> Result<Recording, RecordingError> {
        let files = OpenFiles::resume(u, room, s.audio.sample_rate, now, owner, how)?;
        let origin_sample = files.mix.samples_written();
        let timeline = Timeline::new(s.audio.clone(), origin, origin_sample)?;
        Ok(Self::adopt(pool, files, timeline, origin, origin_sample))
    }

    fn adopt(
        pool: &WriterPool,
        files: OpenFiles,
        timeline: Timeline,
        origin: Instant,
        origin_sample: u64,
    ) -> Recording {
        let paths = files.paths.clone();
        let sidecar = files.sidecar.clone();
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
        Recording {
            paths,
            timeline,
            origin,
            files: pool.adopt(files),
            sidecar,
            tracks: BTreeMap::new(),
            keys: HashMap::new(),
            open_speech: HashMap::new(),
            segments: HashMap::new(),
            published: Published::default(),
            origin_sample,
            earlier,
        }
    }

    pub fn paths(&self) -> &RecordingPaths {
        &self.paths
    }

    pub fn stats(&self) -> AudioStats {
        self.timeline.stats()
    }

    /// Samples handed to the files so far (written, or waiting for the disk).
    pub fn samples(&self) -> u64 {
        self.files.samples()
    }

    pub fn sample_rate(&self) -> u32 {
        self.sidecar.sample_rate
    }

    pub fn start_utc(&self) -> DateTime<Utc> {
        self.sidecar.start.utc
    }

    /// Bytes of the mix FLAC on disk.
    pub fn file_bytes(&self) -> u64 {
        self.files.file_bytes()
    }

    /// Audio waiting for the disk (sent to the writer thread or still held here).
    /// The participants (sidecar keys) speaking right now.
    pub fn speaking_now(&self) -> Vec<String> {
        self.open_speech.keys().map(|t| self.key_of(*t)).collect()
    }

    /// Writes the disk refused so far.
    pub fn write_failures(&self) -> u64 {
        self.files.write_failures()
    }

    pub fn write_backlog(&self) -> Duration {
        let rate = u64::from(self.sidecar.sample_rate.max(1));
        Duration::from_micros(self.files.samples_waiting().saturating_mul(1_000_000) / rate)
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

    /// Add what happened since the last call to the process-wide metrics (the writer
    /// thread counts the bytes it writes itself).
    pub fn publish(&mut self, m: &crate::metrics::Metrics) {
        let t = self.timeline.stats().total;
        let concealed = t.concealed_fec + t.concealed_plc;
        let p = &mut self.published;
        m.packets_received
            .add(t.received.saturating_sub(p.received));
        m.packets_lost.add(t.lost.saturating_sub(p.lost));
        m.packets_concealed
            .add(concealed.saturating_sub(p.concealed));
        m.packets_late.add(t.late.saturating_sub(p.late));
        *p = Published {
            received: t.received,
            lost: t.lost,
            concealed,
            late: t.late,
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
    pub fn set_tracks(&mut self, mapping: &[(Ssrc, TrackId)], at: Instant, roster: &Roster) {
        let new: BTreeMap<Ssrc, TrackId> = mapping.iter().copied().collect();
        for ssrc in self.tracks.keys() {
            if !new.contains_key(ssrc) {
                self.timeline.unmap_source(*ssrc, at);
            }
        }
        for (ssrc, track) in &new {
            if self.tracks.get(ssrc) != Some(track)
                && let Err(e) = self.timeline.map_source(*ssrc, *track)
            {
                warn!(%ssrc, error = %e, "source not mapped");
            }
        }
        self.tracks = new;
        for p in roster.participants() {
            self.keys.insert(p.track, p.key.clone());
        }
    }

    /// Render everything due at `now` and hand it to the writer thread (which hands every
    /// complete frame to the OS at once: a crash, even `kill -9`, loses the frame being
    /// filled, the playout delay and whatever still waits for a slow disk). Never waits; audio
    /// beyond the backlog bounds becomes silence listed as a `disk-backlog` gap.
    pub fn render(&mut self, now: Instant) {
        let r = self.timeline.render(now);
        if !r.mix.is_empty() {
            let stems = r
                .stems
                .into_iter()
                .map(|(track, samples)| (self.key_of(track), Pcm::from_samples(samples)))
                .collect();
            let block = AudioBlock {
                start: r.start_sample,
                mix: Pcm::from_samples(r.mix),
                stems,
            };
            if let Some(lost) = self.files.audio(block) {
                self.sidecar.add_or_extend_gap(
                    lost.start,
                    lost.end,
                    GapKind::DiskBacklog,
                    BACKLOG_GAP,
                );
            }
        }
        for ev in r.speech {
            self.on_speech(ev);
        }
    }

    fn key_of(&self, track: TrackId) -> String {
        self.keys
            .get(&track)
            .cloned()
            .unwrap_or_else(|| track.to_string())
    }

    fn on_speech(&mut self, ev: SpeechEvent) {
        match ev {
            SpeechEvent::Start { track, sample } => {
                self.open_speech.insert(track, sample);
            }
            SpeechEvent::End { track, sample } => {
                if let Some(start) = self.open_speech.remove(&track) {
                    let key = self.key_of(track);
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
        self.sidecar.total_samples = self.files.samples();
    }

    /// Have the writer flush every file and rewrite the `.json.partial` (called every few
    /// seconds; never waits).
    pub fn checkpoint(&mut self, roster: &Roster) {
        self.update_sidecar(roster);
        self.files.sidecar(self.sidecar.clone());
    }

    /// Whether the disk takes what finishing needs: once the backlog has drained, every
    /// buffered frame of the mix and the stems written and the sidecar rewritten (a create
    /// and a rename in the room's directory). An error means it still refuses; nothing
    /// buffered is lost, try again later.
    pub async fn ready_to_finish(&mut self, roster: &Roster) -> Result<(), SinkError> {
        self.update_sidecar(roster);
        self.files.probe(self.sidecar.clone()).await
    }

    /// Have the writer renew this instance's owner record (only while the link is up).
    pub fn renew(&mut self) {
        self.files.renew();
    }

    /// Whether the writer has stopped for good: the owner record ran out, another instance
    /// may continue these files.
    pub fn fenced(&self) -> bool {
        self.files.fenced()
    }

    /// Have the writer make the mix durable (fsync); less often than checkpoints.
    pub fn sync(&mut self) {
        self.files.sync();
    }

    /// The conference is over at `now`: render everything received up to it (the playout
    /// delay is not waited out) and close open speech. The file's length is then exactly the
    /// wall time from start to `now`. Never waits.
    pub fn end(&mut self, now: Instant, roster: &Roster) {
        let delay = self.timeline.config().late_window.get();
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
            write_failures = self.files.write_failures(),
            "audio totals"
        );
    }

    /// Finalize every file (after [`Self::end`]): waits for the writer thread.
    pub async fn finish(self, reason: &str) -> Result<FinalizedFiles, SinkError> {
        self.files.finish(self.sidecar, reason).await
    }
}

/// How often the conference task renders and checkpoints.
pub const RENDER_EVERY: Duration = Duration::from_millis(100);
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
pub const SYNC_EVERY: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests;
