//! Start-up recovery: continue or close the recordings a crash left unfinished.
//!
//! In: an [`Unfinished`] recording (from [`super::paths::find_unfinished`]), and either the
//! current wall time (the conference is still running: continue it) or an end reason (it is
//! over: finalize it). Out: open writers positioned at "now" with the downtime written as
//! silence and recorded as a `jitape-restart` gap ([`Resumed`]), or the finalized files.
//!
//! The sidecar `.json.partial` supplies the start time and the participants; if it is missing or
//! unreadable, a fresh one is made from the file name (`20261121T193509Z`) so audio is never
//! lost for want of metadata. Stems are resumed and padded to the mix's length; a stem that
//! cannot be repaired is logged and left alone, it never costs the mix.

use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::error::SinkError;
use super::flac::{FlacSettings, FlacWriter, final_path_of};
use super::hook::FinalizedFiles;
use super::paths::Unfinished;
use super::repair::{ResumeReport, finalize_partial, scan};
use super::sidecar::{self, GapKind, Sidecar, TimePoint};

/// A recording that started longer ago than this is not continued: jitape ends every
/// recording after `recording.max_duration` (6 h by default), and padding days of downtime
/// (a stale or damaged sidecar, a clock jump, a room name reused the next week) with silence
/// would burn CPU and disk for nothing. [`resume_recording`] refuses it; the caller finalizes
/// the old file and starts a new one.
pub const MAX_RESUME_SPAN: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A recording continued after a restart.
#[derive(Debug)]
pub struct Resumed {
    pub mix: FlacWriter,
    /// Stems by their final path.
    pub stems: Vec<(PathBuf, FlacWriter)>,
    pub sidecar: Sidecar,
    pub report: ResumeReport,
    /// The timeline samples filled with silence for the downtime.
    pub gap: Range<u64>,
}

/// Why a recording is continued: what its gap says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    /// This jitape (or the only one there is) was not running: a `jitape-restart` gap.
    Restart,
    /// Instance `next` takes over the room from `previous` (unknown when the files carried no
    /// owner record): a `jitape-takeover` gap naming both. `since`: when the room moved to
    /// `next`; the previous owner was put out of the room then, so what it wrote after that
    /// moment (until its lease ran out) is silence, and the gap starts there.
    Takeover {
        previous: Option<String>,
        next: String,
        since: Option<DateTime<Utc>>,
    },
}

/// Continues `u` (a conference that is still running) at wall time `now`; refused (before
/// any file is touched) when the recording started more than [`MAX_RESUME_SPAN`] before `now`.
pub fn resume_recording(
    u: &Unfinished,
    room_jid: &str,
    sample_rate: u32,
    now: DateTime<Utc>,
    opts: FlacSettings,
) -> Result<Resumed, SinkError> {
    resume_recording_as(u, room_jid, sample_rate, now, opts, &Continuation::Restart)
}

/// [`resume_recording`], with the gap saying why the recording was interrupted.
pub fn resume_recording_as(
    u: &Unfinished,
    room_jid: &str,
    sample_rate: u32,
    now: DateTime<Utc>,
    opts: FlacSettings,
    how: &Continuation,
) -> Result<Resumed, SinkError> {
    let paths = &u.paths;
    let mut sc = load_sidecar(u, room_jid, sample_rate)?;
    if sc.sample_rate != sample_rate {
        return Err(SinkError::unsupported(
            &paths.sidecar_partial,
            format!(
                "recorded at {} Hz, configured {sample_rate} Hz",
                sc.sample_rate
            ),
        ));
    }
    let span = (now - sc.start.utc).to_std().unwrap_or_default();
    if span > MAX_RESUME_SPAN {
        return Err(SinkError::unsupported(
            &paths.sidecar_partial,
            format!(
                "started {} h ago, more than the {} h a recording may be continued after",
                span.as_secs() / 3600,
                MAX_RESUME_SPAN.as_secs() / 3600
            ),
        ));
    }
    let (mut mix, report) =
        FlacWriter::resume_with(&paths.flac_partial, sample_rate, opts.clone())?;
    let mut stems = Vec::new();
    for stem in &u.stems {
        match (
            final_path_of(stem),
            FlacWriter::resume_with(stem, sample_rate, opts.clone()),
        ) {
            (Some(path), Ok((w, _))) => stems.push((path, w)),
            (_, Err(e)) => tracing::warn!(error = %e, "stem not resumed"),
            (None, Ok(_)) => {}
        }
    }
    let kept = mix.samples_written();
    let target = stems
        .iter()
        .map(|(_, w)| w.samples_written())
        .chain([
            kept,
            TimePoint::at_utc(sc.start.utc, sample_rate, now).sample,
        ])
        .max()
        .unwrap_or(kept);
    pad(&mut mix, target);
    for (_, w) in &mut stems {
        pad(w, target);
    }
    if target > kept {
        let cut = report.bytes_cut;
        match how {
            Continuation::Restart => {
                let detail = format!("jitape was not running; {cut} bytes of a torn frame cut");
                sc.add_gap(kept, target, GapKind::JitapeRestart, Some(detail));
            }
            Continuation::Takeover {
                previous,
                next,
                since,
            } => {
                let was = previous.as_deref().unwrap_or("an unknown instance");
                let detail = format!(
                    "{was} stopped recording; {next} took the room over and continued this file; {cut} bytes of a torn frame cut"
                );
                let moved = since.map_or(kept, |t| {
                    TimePoint::at_utc(sc.start.utc, sample_rate, t).sample
                });
                sc.add_gap(
                    kept.min(moved),
                    target,
                    GapKind::JitapeTakeover,
                    Some(detail),
                );
                if let Some(g) = sc.gaps.last_mut() {
                    g.previous_instance = previous.clone();
                    g.next_instance = Some(next.clone());
                }
            }
        }
    }
    sc.total_samples = target;
    sidecar::write_atomic(&paths.sidecar_partial, &sc)?;
    tracing::info!(
        samples = kept,
        silence = target - kept,
        "recording resumed after a restart"
    );
    Ok(Resumed {
        mix,
        stems,
        sidecar: sc,
        report,
        gap: kept..target,
    })
}

/// Writes silence until `w` reaches `target` samples; disk errors only leave it degraded.
fn pad(w: &mut FlacWriter, target: u64) {
    let missing = target.saturating_sub(w.samples_written());
    if let Err(e) = w.write_silence(missing) {
        tracing::warn!(error = %e, "padding after a restart");
    }
}

/// Finalizes `u` (a conference that ended while jitape was down): mix, stems and sidecar.
pub fn finalize_unfinished(u: &Unfinished, reason: &str) -> Result<FinalizedFiles, SinkError> {
    let paths = &u.paths;
    let (total, rate) = if u.has_flac {
        let done = finalize_partial(&paths.flac_partial)?;
        (done.total_samples, done.sample_rate)
    } else if paths.flac.exists() {
        let rep = scan(&paths.flac)?; // finalized just before the crash
        (rep.samples, rep.header.sample_rate)
    } else {
        return Err(SinkError::corrupt(
            &paths.flac_partial,
            "no FLAC for this sidecar",
        ));
    };
    let mut stems = Vec::new();
    for stem in &u.stems {
        match finalize_partial(stem) {
            Ok(done) => stems.push(done.path),
            Err(e) => tracing::warn!(error = %e, "stem not finalized"),
        }
    }
    let mut sc = load_sidecar(u, &paths.room_dir, rate)?;
    sc.finish(total, reason);
    sidecar::write_final(&paths.sidecar, &sc)?;
    super::owner::remove(paths);
    tracing::info!(samples = total, "interrupted recording finalized");
    Ok(FinalizedFiles {
        room: sc.room.clone(),
        room_dir: sc.room_dir.clone(),
        meeting_id: sc.meeting_id.clone(),
        flac: paths.flac.clone(),
        sidecar: paths.sidecar.clone(),
        stems,
    })
}

/// The `.json.partial` of `u`, or a fresh sidecar named after the file if it is unusable.
fn load_sidecar(u: &Unfinished, room: &str, sample_rate: u32) -> Result<Sidecar, SinkError> {
    let paths = &u.paths;
    if u.has_sidecar {
        match sidecar::read(&paths.sidecar_partial) {
            Ok(sc) => return Ok(sc),
            Err(e) => tracing::warn!(error = %e, "unreadable sidecar, starting a fresh one"),
        }
    }
    let start = start_from_name(&paths.name)
        .ok_or_else(|| SinkError::corrupt(&paths.flac_partial, "no start time in the file name"))?;
    let file = file_name(&paths.flac);
    Ok(Sidecar::new(
        room,
        &paths.room_dir,
        &file,
        sample_rate,
        start,
    ))
}

/// `20261121T193509Z` (optionally followed by `-2`...) as a UTC time.
fn start_from_name(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.get(..16)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
