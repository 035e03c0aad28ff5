//! The JSON sidecar: who was in a recording, who spoke when, and what interrupted it.
//!
//! In: what the conference task learns (room, meeting id, participants from presence, speaking
//! segments from the audio path, interruptions). Out: `<name>.json.partial` while recording
//! (rewritten atomically, so a restart can resume with the start time and participants) and
//! `<name>.json` at finalize. [`read`] parses one back (for resume and `jitape inspect`).
//!
//! # Schema `jitape.sidecar/1`
//!
//! Every key is always present (`null` when unknown). Every time is a [`TimePoint`]:
//! `{"utc": "2026-11-21T19:35:09.250Z", "sample": 12000}` — RFC 3339 UTC with milliseconds, and
//! the offset in samples on the recording's timeline (`utc = start.utc + sample / sample_rate`).
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `schema` | string | `"jitape.sidecar/1"`; a reader accepts any `jitape.sidecar/1*` |
//! | `recorder` | string | `"jitape <version>"` |
//! | `room` | string | room JID as Prosody reports it (a tenant room: `[tenant]room@muc…`) |
//! | `tenant` | string? | the tenant of a tenant room (`https://host/<tenant>/<room>`), else `null` |
//! | `room_name` | string | the room as in its URL: the node without the tenant, percent-decoded |
//! | `room_dir` | string | the directory name the room maps to (see `paths`) |
//! | `meeting_id` | string? | Jitsi's meeting id, when known |
//! | `file` | string | the FLAC's file name (final name, in the same directory) |
//! | `sample_rate` | int | Hz |
//! | `start` | time | sample 0 |
//! | `end` | time? | `null` while recording |
//! | `total_samples` | int | samples in the FLAC (last known while recording) |
//! | `status` | `"recording"` \| `"final"` | |
//! | `end_reason` | string? | why the recording ended (`room-destroyed`, `empty`, ...) |
//! | `participants` | array | see below |
//! | `gaps` | array | `{start, end, kind, detail}`; `kind` is one of the gap kinds below; a `jitape-takeover` gap also names `previous_instance` and `next_instance` |
//!
//! A participant: `key` (stable id jitape assigns; stems are named after it), `nicks` and
//! `endpoint_ids` seen, `display_name`, `identity` (`id`, `email`, `name`, any further string
//! fields of the JWT context user; all optional), `hidden_from_recorder` (such a participant is
//! not recorded and appears only with this flag), `stem` (file name or `null`), `presence`
//! (`[{join, leave}]`, `leave` `null` while present) and `speaking` (`[{start, end}]`).
//!
//! A gap's `kind` (the file holds digital silence over every gap):
//!
//! | kind | what happened |
//! | --- | --- |
//! | `jitape-restart` | jitape was not running (crash, restart); the downtime |
//! | `jitape-takeover` | the instance recording the room was gone (killed, cut off from Prosody) until another one took the room over and continued this file; from the previous instance's last written audio to the moment the next one continued |
//! | `xmpp-reconnect` | the XMPP link to Prosody was down |
//! | `media-session` | no working media session (re-invite, ICE restart, a failed offer) |
//! | `away` | jitape was out of the room on purpose (fewer than `min_participants` others) |
//! | `disk-full` | the disk refused the audio (full, read-only, I/O error) for longer than the writer could hold it |
//! | `disk-backlog` | the disk was too slow: audio waiting for it exceeded `recording.write_backlog` (or the process-wide `recording.write_backlog_total`) and was replaced by silence |
//! | `other` | a kind written by a newer jitape |
//!
//! `disk-backlog` and `jitape-takeover` (with the gap's two instance fields) were added within
//! `jitape.sidecar/1` (an older reader sees them as `other`).
//! `tenant` and `room_name` were added within `jitape.sidecar/1` (readers that ignore unknown
//! keys are unaffected); [`read`] fills them in from `room` for files written before. Jitsi
//! lowercases room names and a deployment may have changed the tenant's spelling (docker
//! turns `.` into `_`), so they are the names as the server knows them.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::error::SinkError;
use super::flac::{partial_path, samples_to_duration, sync_parent};
use crate::room::RoomName;

/// The schema this module writes.
pub const SCHEMA: &str = "jitape.sidecar/1";

/// A moment on the recording's timeline, as UTC and as a sample offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimePoint {
    #[serde(with = "utc_millis")]
    pub utc: DateTime<Utc>,
    pub sample: u64,
}

impl TimePoint {
    /// The point `sample` samples after `start` (UTC truncated to milliseconds).
    pub fn at_sample(start: DateTime<Utc>, sample_rate: u32, sample: u64) -> Self {
        let offset = samples_to_duration(sample, sample_rate);
        let utc = chrono::Duration::from_std(offset)
            .ok()
            .and_then(|d| start.checked_add_signed(d))
            .unwrap_or(start);
        TimePoint {
            utc: utc.trunc_subsecs(3),
            sample,
        }
    }

    /// The point at wall time `utc` (clamped to the start).
    pub fn at_utc(start: DateTime<Utc>, sample_rate: u32, utc: DateTime<Utc>) -> Self {
        // Negative (a start in the future) is 0; no overflow however far apart they are.
        let elapsed = (utc - start).to_std().unwrap_or_default();
        let sample = elapsed.as_nanos() * u128::from(sample_rate) / 1_000_000_000;
        Self::at_sample(
            start,
            sample_rate,
            u64::try_from(sample).unwrap_or(u64::MAX),
        )
    }
}

/// Whether the recording is still being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Recording,
    Final,
}

/// The whole sidecar document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    pub schema: String,
    pub recorder: String,
    pub room: String,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub room_name: String,
    pub room_dir: String,
    pub meeting_id: Option<String>,
    pub file: String,
    pub sample_rate: u32,
    pub start: TimePoint,
    pub end: Option<TimePoint>,
    pub total_samples: u64,
    pub status: Status,
    pub end_reason: Option<String>,
    #[serde(default)]
    pub participants: Vec<Participant>,
    #[serde(default)]
    pub gaps: Vec<Gap>,
}

/// One participant as jitape saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub key: String,
    #[serde(default)]
    pub nicks: Vec<String>,
    #[serde(default)]
    pub endpoint_ids: Vec<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default)]
    pub hidden_from_recorder: bool,
    #[serde(default)]
    pub stem: Option<String>,
    #[serde(default)]
    pub presence: Vec<Presence>,
    #[serde(default)]
    pub speaking: Vec<Segment>,
}

/// Identity fields presence carried (JWT context user); all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Any further string fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// One stay in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub join: TimePoint,
    pub leave: Option<TimePoint>,
}

/// A span of time (speech).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub start: TimePoint,
    pub end: TimePoint,
}

/// What caused a gap in the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GapKind {
    /// jitape was not running (crash, restart); the downtime is silence.
    JitapeRestart,
    /// Another jitape instance took the room over from one that was gone and continued the
    /// file; the time between is silence.
    JitapeTakeover,
    /// The XMPP link was down.
    XmppReconnect,
    /// No media session (Jicofo re-invite, ICE restart, bridge move).
    MediaSession,
    /// jitape was out of the room on purpose: fewer than `min_participants` others were in
    /// it (nothing was on the bridge for it to record, or only one person talking alone).
    Away,
    /// The disk refused the audio; it was replaced by silence.
    DiskFull,
    /// The disk was too slow: more audio was waiting for it than the writer's bounds allow
    /// (`recording.write_backlog`, `recording.write_backlog_total`); silence instead.
    DiskBacklog,
    /// Written by a newer jitape.
    #[serde(other)]
    Other,
}

/// An interruption of the recording (the file holds silence there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub start: TimePoint,
    pub end: TimePoint,
    pub kind: GapKind,
    pub detail: Option<String>,
    /// A takeover's instance that recorded before the gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_instance: Option<String>,
    /// A takeover's instance that recorded after the gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_instance: Option<String>,
}

impl Sidecar {
    /// A new sidecar of a recording that starts now (status `recording`).
    pub fn new(
        room: &str,
        room_dir: &str,
        file: &str,
        sample_rate: u32,
        start: DateTime<Utc>,
    ) -> Self {
        let name = RoomName::of(room);
        Sidecar {
            schema: SCHEMA.to_string(),
            recorder: concat!("jitape ", env!("CARGO_PKG_VERSION")).to_string(),
            room: room.to_string(),
            tenant: name.tenant,
            room_name: name.room,
            room_dir: room_dir.to_string(),
            meeting_id: None,
            file: file.to_string(),
            sample_rate,
            start: TimePoint {
                utc: start.trunc_subsecs(3),
                sample: 0,
            },
            end: None,
            total_samples: 0,
            status: Status::Recording,
            end_reason: None,
            participants: Vec::new(),
            gaps: Vec::new(),
        }
    }

    /// The point `sample` samples into the recording.
    pub fn at_sample(&self, sample: u64) -> TimePoint {
        TimePoint::at_sample(self.start.utc, self.sample_rate, sample)
    }

    /// The participant with `key`, added if new.
    pub fn participant_mut(&mut self, key: &str) -> &mut Participant {
        let idx = match self.participants.iter().position(|p| p.key == key) {
            Some(i) => i,
            None => {
                self.participants.push(Participant {
                    key: key.to_string(),
                    ..Participant::default()
                });
                self.participants.len() - 1
            }
        };
        &mut self.participants[idx]
    }

    /// Records a gap from sample `start` to `end`.
    pub fn add_gap(&mut self, start: u64, end: u64, kind: GapKind, detail: Option<String>) {
        self.gaps.push(Gap {
            start: self.at_sample(start),
            end: self.at_sample(end),
            kind,
            detail,
            previous_instance: None,
            next_instance: None,
        });
    }

    /// Records a gap from sample `start` to `end`, extending the last gap instead when it is
    /// of the same kind and ends at `start` (a long stretch is one gap, not one per render).
    pub fn add_or_extend_gap(&mut self, start: u64, end: u64, kind: GapKind, detail: &str) {
        match self.gaps.last_mut() {
            Some(last) if last.kind == kind && last.end.sample == start => {
                last.end = TimePoint::at_sample(self.start.utc, self.sample_rate, end);
            }
            _ => self.add_gap(start, end, kind, Some(detail.to_string())),
        }
    }

    /// Marks the recording final at `total_samples`; open presences are closed at the end.
    pub fn finish(&mut self, total_samples: u64, reason: &str) {
        let end = self.at_sample(total_samples);
        self.total_samples = total_samples;
        self.end = Some(end);
        self.status = Status::Final;
        self.end_reason = Some(reason.to_string());
        for p in &mut self.participants {
            for stay in &mut p.presence {
                stay.leave.get_or_insert(end);
            }
        }
    }

    /// The recording's length by `total_samples`.
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.total_samples, self.sample_rate)
    }
}

/// Writes `sidecar` to `path` atomically: a temporary file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, sidecar: &Sidecar) -> Result<(), SinkError> {
    let json = serde_json::to_vec_pretty(sidecar)
        .map_err(|e| SinkError::bug(path, format!("serialize sidecar: {e}")))?;
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let written = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()
        })
        .map_err(|e| SinkError::io("write", &tmp, e));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(|e| SinkError::io("rename", &tmp, e))?;
    sync_parent(path)
}

/// Writes the final `<name>.json` and removes `<name>.json.partial`.
pub fn write_final(path: &Path, sidecar: &Sidecar) -> Result<(), SinkError> {
    write_atomic(path, sidecar)?;
    let partial = partial_path(path);
    match fs::remove_file(&partial) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SinkError::io("remove", &partial, e)),
    }
}

/// Reads a sidecar; a document of another schema is unsupported, broken JSON is corrupt.
pub fn read(path: &Path) -> Result<Sidecar, SinkError> {
    let bytes = fs::read(path).map_err(|e| SinkError::io("read", path, e))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| SinkError::corrupt(path, e.to_string()))?;
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if !schema.starts_with(SCHEMA) {
        return Err(SinkError::unsupported(path, format!("schema {schema:?}")));
    }
    let mut sc: Sidecar =
        serde_json::from_value(value).map_err(|e| SinkError::corrupt(path, e.to_string()))?;
    if sc.room_name.is_empty() {
        // Written before the names were recorded.
        let name = RoomName::of(&sc.room);
        (sc.tenant, sc.room_name) = (name.tenant, name.room);
    }
    Ok(sc)
}

/// RFC 3339 UTC with milliseconds and `Z`.
mod utc_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests;
