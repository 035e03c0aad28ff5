//! Checking every recording of a benchmark run: the file is there and final, Debian's
//! `flac -t` accepts it, an independent decoder (claxon) reads it, and its content matches
//! what the simulation played.
//!
//! In: the recording directory, the room and the [`ConferenceOutcome`]. Out: a [`Verdict`].
//! Ordinary conferences are checked tone by tone ([`check_recording`]: every speaker's tone
//! exactly in their talk windows, ±[`EDGE_TOLERANCE`], silence elsewhere, file duration =
//! wall duration). In the large conference many tones overlap, so there the check is per
//! track: each talker's speaking segments in the sidecar (jitape's per-track voice activity)
//! must match their windows, the mix must be silent outside all windows, and every
//! participant must be in the sidecar.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::sim::analyze::{check_recording, decode_flac, stray_sound};
use crate::sim::world::ConferenceOutcome;
use crate::sink::{self, Sidecar, sidecar};

/// Each talk window's edges must be found within this (as `jitape demo` promises).
pub const EDGE_TOLERANCE: Duration = Duration::from_millis(40);
/// Speaking-segment edges (10 ms voice-activity blocks, fades) in the large case.
pub const SEGMENT_TOLERANCE: Duration = Duration::from_millis(80);
/// The file's duration against the room's wall duration.
pub const DURATION_TOLERANCE: Duration = Duration::from_millis(250);

/// The finalized files of one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomFiles {
    pub flac: PathBuf,
    pub sidecar: PathBuf,
}

/// The outcome of checking one recording.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verdict {
    pub room: String,
    pub flac: Option<PathBuf>,
    pub flac_test: bool,
    pub content: bool,
    /// Seconds of audio in the file.
    pub file_seconds: f64,
    pub file_bytes: u64,
    /// File duration minus the room's wall duration.
    pub duration_error_ms: f64,
    /// Worst talk-window edge error.
    pub worst_edge_ms: f64,
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.flac_test && self.content && self.problems.is_empty()
    }
}

/// The one finalized recording of `room` under `dir`, if it is complete (`.flac` and `.json`
/// there, nothing `.partial` left).
pub fn find_room_files(dir: &Path, room: &str) -> Result<RoomFiles, String> {
    let room_dir = dir.join(sink::room_dir_name(room));
    let entries = std::fs::read_dir(&room_dir)
        .map_err(|e| format!("{}: {e}", room_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect::<Vec<_>>();
    if let Some(p) = entries
        .iter()
        .find(|p| p.to_string_lossy().ends_with(sink::flac::PARTIAL_SUFFIX))
    {
        return Err(format!("{} is still partial", p.display()));
    }
    let sidecars: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    match sidecars.as_slice() {
        [one] => {
            let flac = one.with_extension("flac");
            if flac.exists() {
                Ok(RoomFiles {
                    flac,
                    sidecar: (*one).clone(),
                })
            } else {
                Err(format!("{} has no FLAC", one.display()))
            }
        }
        [] => Err(format!("no finalized recording in {}", room_dir.display())),
        more => Err(format!(
            "{} recordings of one conference in {}",
            more.len(),
            room_dir.display()
        )),
    }
}

/// `flac -t -w` (Debian's reference decoder; refuses unset STREAMINFO totals and MD5).
pub fn flac_test(path: &Path) -> Result<(), String> {
    let out = Command::new("flac")
        .args(["-t", "-w", "-s"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run flac (apt-get install flac): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "flac -t: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Check one room's recording against its outcome (`analyse`: decode and compare the
/// content too; otherwise only `flac -t` and the sidecar).
pub fn verify(dir: &Path, outcome: &ConferenceOutcome, large: bool, analyse: bool) -> Verdict {
    let room = outcome.plan.room.to_lowercase();
    let mut v = Verdict {
        room: room.clone(),
        ..Verdict::default()
    };
    let files = match find_room_files(dir, &room) {
        Ok(f) => f,
        Err(e) => {
            v.problems.push(e);
            return v;
        }
    };
    v.flac = Some(files.flac.clone());
    v.file_bytes = std::fs::metadata(&files.flac).map_or(0, |m| m.len());
    match flac_test(&files.flac) {
        Ok(()) => v.flac_test = true,
        Err(e) => v.problems.push(e),
    }
    let sc = match sidecar::read(&files.sidecar) {
        Ok(sc) => sc,
        Err(e) => {
            v.problems.push(format!("sidecar: {e}"));
            return v;
        }
    };
    v.file_seconds = sc.total_samples as f64 / f64::from(sc.sample_rate.max(1));
    let checked = if !analyse {
        Ok(())
    } else if large {
        check_tracks(&files.flac, &sc, outcome, &mut v)
    } else {
        check_tones(&files.flac, &sc, outcome, &mut v)
    };
    match checked {
        Ok(()) => v.content = v.problems.is_empty(),
        Err(e) => v.problems.push(e),
    }
    v
}

fn check_tones(
    flac: &Path,
    sc: &Sidecar,
    outcome: &ConferenceOutcome,
    v: &mut Verdict,
) -> Result<(), String> {
    let report = check_recording(flac, sc, outcome, EDGE_TOLERANCE)?;
    v.file_seconds = report.file_duration;
    v.duration_error_ms = (report.file_duration - report.wall_duration) * 1000.0;
    v.worst_edge_ms = report
        .speakers
        .iter()
        .map(|s| s.worst_edge)
        .fold(0.0, f64::max)
        * 1000.0;
    if !report.ok(DURATION_TOLERANCE) {
        v.problems
            .push(format!("content differs from the plan:\n{report}"));
    }
    Ok(())
}

fn seconds_between(start: DateTime<Utc>, t: SystemTime) -> f64 {
    let t: DateTime<Utc> = t.into();
    (t - start).num_microseconds().unwrap_or(0) as f64 / 1e6
}

/// The large case: per-track speaking segments, silence elsewhere, everyone listed.
fn check_tracks(
    flac: &Path,
    sc: &Sidecar,
    outcome: &ConferenceOutcome,
    v: &mut Verdict,
) -> Result<(), String> {
    let decoded = decode_flac(flac)?;
    let epoch = seconds_between(sc.start.utc, outcome.wall_epoch);
    let end = epoch + outcome.plan.end_at.as_secs_f64();
    v.file_seconds = decoded.duration().as_secs_f64();
    v.duration_error_ms = (v.file_seconds - end) * 1000.0;
    if v.duration_error_ms.abs() > DURATION_TOLERANCE.as_secs_f64() * 1000.0 {
        v.problems
            .push(format!("duration {:.3} s, wall {end:.3} s", v.file_seconds));
    }
    let rate = f64::from(sc.sample_rate.max(1));
    let tol = SEGMENT_TOLERANCE.as_secs_f64();
    let mut all: Vec<(f64, f64)> = Vec::new();
    let mut missing = 0usize;
    for (sp, windows) in outcome.plan.audible() {
        let expected: Vec<(f64, f64)> = windows
            .iter()
            .map(|w| (epoch + w.start.as_secs_f64(), epoch + w.end.as_secs_f64()))
            .collect();
        all.extend(&expected);
        let endpoints: Vec<&str> = sp.stints.iter().map(|s| s.endpoint.as_str()).collect();
        let Some(p) = sc.participants.iter().find(|p| {
            p.endpoint_ids
                .iter()
                .chain(&p.nicks)
                .any(|n| endpoints.contains(&n.as_str()))
        }) else {
            missing += 1;
            continue;
        };
        let found: Vec<(f64, f64)> = p
            .speaking
            .iter()
            .map(|s| (s.start.sample as f64 / rate, s.end.sample as f64 / rate))
            .collect();
        if found.len() != expected.len() {
            v.problems.push(format!(
                "{}: {} speaking segments for {} talk windows",
                sp.display_name,
                found.len(),
                expected.len()
            ));
            continue;
        }
        for (e, f) in expected.iter().zip(&found) {
            let edge = (e.0 - f.0).abs().max((e.1 - f.1).abs());
            v.worst_edge_ms = v.worst_edge_ms.max(edge * 1000.0);
            if edge > tol {
                v.problems.push(format!(
                    "{}: window {:.2}-{:.2} s heard {:.2}-{:.2} s",
                    sp.display_name, e.0, e.1, f.0, f.1
                ));
            }
        }
    }
    if missing > 0 {
        v.problems
            .push(format!("{missing} participants missing from the sidecar"));
    }
    let slack = tol + 0.01;
    let stray = stray_sound(&decoded, |t| {
        all.iter().any(|(a, b)| t >= a - slack && t <= b + slack)
    });
    if !stray.is_empty() {
        v.problems.push(format!(
            "sound outside the talk windows: {:?}",
            stray.iter().take(5).collect::<Vec<_>>()
        ));
    }
    v.problems.truncate(20);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_files_must_be_final_and_unique() {
        let root = tempfile::tempdir().expect("tempdir");
        let tmp = root.path();
        let room = "bench000@conference.localhost";
        let dir = tmp.join(sink::room_dir_name(room));
        std::fs::create_dir_all(&dir).expect("dir");
        assert!(find_room_files(tmp, room).is_err(), "empty");
        std::fs::write(dir.join("a.json"), "{}").expect("write");
        assert!(find_room_files(tmp, room).is_err(), "no flac");
        std::fs::write(dir.join("a.flac"), "x").expect("write");
        let found = find_room_files(tmp, room).expect("found");
        assert_eq!(found.flac, dir.join("a.flac"));
        std::fs::write(dir.join("b.flac.partial"), "x").expect("write");
        assert!(find_room_files(tmp, room).is_err(), "partial left");
        std::fs::remove_file(dir.join("b.flac.partial")).expect("rm");
        std::fs::write(dir.join("b.json"), "{}").expect("write");
        assert!(find_room_files(tmp, room).is_err(), "two recordings");
    }
}
