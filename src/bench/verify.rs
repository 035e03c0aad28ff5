//! Checking every recording of a benchmark run: the file is there and final, Debian's
//! `flac -t` accepts it, an independent decoder (claxon) reads it, and its content matches
//! what the simulation played, by the same analysis the tests use ([`check_recording`]: every
//! tone at its place within 10 ms, no hole, its level and pitch, silence elsewhere, the
//! file's duration the room's), for ordinary conferences and the large one alike (there no
//! two people talking at once share a tone, and the limiter's gain is taken into account).
//!
//! In: the recording directory, the room and the [`ConferenceOutcome`]. Out: a [`Verdict`].

use std::path::{Path, PathBuf};
use std::process::Command;

use jitape::conference::machine::EndReason;
use jitape::sink::{self, Sidecar, sidecar};
use jitape_sim::analyze::{Expected, Tolerances, analyse, decode_flac, muted, sent_late};
use jitape_sim::world::ConferenceOutcome;

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
    /// File duration minus the room's wall duration up to the simulation destroying it
    /// (the file may end as late as the server's confirmation, which the check allows).
    pub duration_error_ms: f64,
    /// Worst talk-window edge error.
    pub worst_edge_ms: f64,
    /// jitape ended this recording because it could not carry it (sidecar `end_reason`
    /// `overload`); the audio is then checked up to that end.
    pub shed: bool,
    /// No recording, and jitape said why (`not recording this room for now`, counted in
    /// `jitape_recordings_refused_total`): refused, not damaged.
    pub refused: bool,
    /// Talk windows the simulation itself started more than [`SENT_LATE`] behind its schedule
    /// (it shares the machine with jitape): where they belong cannot be told from the plan.
    pub sent_late_windows: usize,
    /// Seconds of the file those windows' spans cover (each to its end plus the lateness,
    /// ±[`SENT_LATE_PAD`], overlaps counted once).
    pub sent_late_s: f64,
    /// When the content differs from the plan and the simulation sent windows late: whether
    /// everything outside those windows (each to its end plus the lateness, ±[`SENT_LATE_PAD`])
    /// is exact. `None` when not asked.
    pub exact_where_sent_on_time: Option<bool>,
    pub problems: Vec<String>,
}

/// A talk window whose first packet the simulation sent later than this is not judged by
/// the second check ([`Verdict::exact_where_sent_on_time`]): the edge tolerance.
pub const SENT_LATE: std::time::Duration = std::time::Duration::from_millis(10);
/// Seconds around such a window also left out: the edge search of the analysis.
pub const SENT_LATE_PAD: f64 = 0.05;

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
pub fn verify(dir: &Path, outcome: &ConferenceOutcome, analyse: bool) -> Verdict {
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
    v.shed = sc.end_reason == Some(EndReason::Overload.to_string());
    let checked = if analyse {
        check_content(&files.flac, &sc, outcome, &mut v)
    } else {
        Ok(())
    };
    match checked {
        Ok(()) => v.content = v.problems.is_empty(),
        Err(e) => v.problems.push(e),
    }
    v
}

fn check_content(
    flac: &Path,
    sc: &Sidecar,
    outcome: &ConferenceOutcome,
    v: &mut Verdict,
) -> Result<(), String> {
    let expected = Expected::from_outcome(outcome, sc)?;
    let expected = if v.shed {
        // Shed with a reason: what it recorded must be exact, up to where it ended.
        expected.until(sc.total_samples as f64 / f64::from(sc.sample_rate.max(1)))
    } else {
        expected
    };
    let decoded = decode_flac(flac)?;
    let report = analyse(&decoded, &expected, &Tolerances::default());
    v.file_seconds = report.file_duration;
    v.duration_error_ms = (report.file_duration - report.wall_duration) * 1000.0;
    v.worst_edge_ms = report
        .speakers
        .iter()
        .map(|s| s.worst_edge)
        .fold(0.0, f64::max)
        * 1000.0;
    let late = sent_late(outcome, sc, SENT_LATE, SENT_LATE_PAD);
    v.sent_late_windows = late.windows;
    v.sent_late_s = late.spans.iter().map(|(a, b)| b - a).sum();
    if !report.ok() {
        v.problems
            .push(format!("content differs from the plan:\n{report}"));
        if !late.spans.is_empty() {
            // The file stays failed; this only says whether the failure lies where the
            // simulation, not jitape, was late.
            let outside = analyse(
                &muted(decoded, &late.spans),
                &expected.without(&late.spans),
                &Tolerances::default(),
            );
            v.exact_where_sent_on_time = Some(outside.ok());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
