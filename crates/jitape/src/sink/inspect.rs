//! `jitape inspect FILE.flac`: verify a recording and summarize its sidecar.
//!
//! In: the path of a `.flac` (or a `.flac.partial`). Out: an [`InspectReport`]: the frame scan
//! (valid part, torn bytes), a full claxon decode (sample count, MD5 against STREAMINFO, peak,
//! share of non-silent audio), the sidecar next to the file (`.json`, or `.json.partial` for a
//! partial) with the room's names, participants, speaking totals and gaps, and the list of
//! problems found.
//! `Display` prints a short human summary. Reading only: nothing is changed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::Digest;

use super::decode::{decode_file_with, le_bytes};
use super::error::SinkError;
use super::flac::{PARTIAL_SUFFIX, samples_to_duration};
use super::repair::scan;
use super::sidecar::{self, Sidecar, Status};

/// The result of the MD5 check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Md5Check {
    Match,
    Mismatch,
    /// STREAMINFO holds no MD5 (a file still being written).
    NotSet,
}

/// Everything `inspect` found.
#[derive(Debug, Clone)]
pub struct InspectReport {
    pub flac: PathBuf,
    pub partial: bool,
    pub sample_rate: u32,
    /// STREAMINFO's total (0 = unknown, while recording).
    pub streaminfo_samples: u64,
    pub decoded_samples: u64,
    pub frames: u64,
    /// Bytes after the last valid frame.
    pub torn_bytes: u64,
    pub md5: Md5Check,
    /// Largest absolute sample value.
    pub peak: u32,
    /// Samples with a value other than 0.
    pub nonsilent_samples: u64,
    pub sidecar_path: PathBuf,
    pub sidecar: Option<Sidecar>,
    /// Things that are wrong; empty for a good file.
    pub problems: Vec<String>,
}

impl InspectReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn duration(&self) -> Duration {
        samples_to_duration(self.decoded_samples, self.sample_rate)
    }
}

/// The sidecar path belonging to a `.flac` / `.flac.partial` path.
pub fn sidecar_path_for(flac: &Path) -> PathBuf {
    let s = flac.to_string_lossy();
    let (base, partial) = match s.strip_suffix(PARTIAL_SUFFIX) {
        Some(b) => (b, PARTIAL_SUFFIX),
        None => (&*s, ""),
    };
    let base = base.strip_suffix(".flac").unwrap_or(base);
    PathBuf::from(format!("{base}.json{partial}"))
}

/// Verifies `flac` and reads its sidecar. Errors only when the FLAC cannot be read at all.
pub fn inspect(flac: &Path) -> Result<InspectReport, SinkError> {
    let scanned = scan(flac)?;
    let (mut peak, mut nonsilent) = (0u32, 0u64);
    let decoded = decode_file_with(flac, Some(scanned.frames), |samples| {
        for &s in samples {
            peak = peak.max(s.unsigned_abs());
            nonsilent += u64::from(s != 0);
        }
    })?;
    let header = scanned.header;
    let mut md5 = decoded.md5;
    md5.update(le_bytes(&decoded.last));
    let digest: [u8; 16] = md5.finalize().into();
    let md5 = match header.md5 {
        m if m == [0; 16] => Md5Check::NotSet,
        m if m == digest => Md5Check::Match,
        _ => Md5Check::Mismatch,
    };
    let sidecar_path = sidecar_path_for(flac);
    let mut rep = InspectReport {
        flac: flac.to_path_buf(),
        partial: flac.to_string_lossy().ends_with(PARTIAL_SUFFIX),
        sample_rate: header.sample_rate,
        streaminfo_samples: header.total_samples,
        decoded_samples: decoded.samples,
        frames: decoded.frames,
        torn_bytes: scanned.torn_bytes(),
        md5,
        peak,
        nonsilent_samples: nonsilent,
        sidecar: None,
        sidecar_path,
        problems: Vec::new(),
    };
    check_audio(&mut rep, scanned.stop.as_deref());
    match sidecar::read(&rep.sidecar_path) {
        Ok(sc) => {
            check_sidecar(&mut rep, &sc);
            rep.sidecar = Some(sc);
        }
        Err(e) => rep.problems.push(format!("sidecar: {e}")),
    }
    Ok(rep)
}

fn check_audio(rep: &mut InspectReport, stop: Option<&str>) {
    if rep.torn_bytes > 0 {
        rep.problems.push(format!(
            "{} bytes after the last valid frame ({}); `repair` cuts them",
            rep.torn_bytes,
            stop.unwrap_or("damaged")
        ));
    }
    if rep.streaminfo_samples == 0 && !rep.partial && rep.decoded_samples > 0 {
        rep.problems
            .push("STREAMINFO has no total (never finalized)".into());
    }
    if rep.streaminfo_samples != 0 && rep.streaminfo_samples != rep.decoded_samples {
        rep.problems.push(format!(
            "STREAMINFO says {} samples, the file holds {}",
            rep.streaminfo_samples, rep.decoded_samples
        ));
    }
    if rep.md5 == Md5Check::Mismatch {
        rep.problems
            .push("MD5 of the decoded audio differs from STREAMINFO".into());
    }
    if rep.md5 == Md5Check::NotSet && !rep.partial && rep.decoded_samples > 0 {
        rep.problems.push("STREAMINFO has no MD5".into());
    }
}

fn check_sidecar(rep: &mut InspectReport, sc: &Sidecar) {
    if sc.sample_rate != rep.sample_rate {
        rep.problems.push(format!(
            "sidecar sample rate {} differs from the FLAC's {}",
            sc.sample_rate, rep.sample_rate
        ));
    }
    let file_name = rep
        .flac
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let expected = file_name
        .as_deref()
        .map(|n| n.strip_suffix(PARTIAL_SUFFIX).unwrap_or(n));
    if expected != Some(sc.file.as_str()) {
        rep.problems
            .push(format!("sidecar names another file: {:?}", sc.file));
    }
    if sc.status == Status::Final && sc.total_samples != rep.decoded_samples {
        rep.problems.push(format!(
            "sidecar says {} samples, the file holds {}",
            sc.total_samples, rep.decoded_samples
        ));
    }
    if sc.status == Status::Recording && !rep.partial {
        rep.problems
            .push("sidecar still says \"recording\" for a final file".into());
    }
}

/// `h:mm:ss.mmm`.
struct Hms(Duration);

impl fmt::Display for Hms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
        write!(f, "{h}:{m:02}:{s:02}.{:03}", ms % 1000)
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file:    {}", self.flac.display())?;
        let dbfs = if self.peak == 0 {
            "silent".to_string()
        } else {
            format!(
                "peak {:.1} dBFS",
                20.0 * (f64::from(self.peak) / 32768.0).log10()
            )
        };
        let share = 100.0 * self.nonsilent_samples as f64 / self.decoded_samples.max(1) as f64;
        writeln!(
            f,
            "audio:   {} Hz mono 16-bit, {} ({} samples, {} frames), md5 {:?}, {dbfs}, {share:.0}% non-silent",
            self.sample_rate,
            Hms(self.duration()),
            self.decoded_samples,
            self.frames,
            self.md5,
        )?;
        if let Some(sc) = &self.sidecar {
            fmt_sidecar(f, sc)?;
        }
        if self.problems.is_empty() {
            writeln!(f, "verdict: OK")
        } else {
            writeln!(f, "verdict: {} problem(s)", self.problems.len())?;
            self.problems
                .iter()
                .try_for_each(|p| writeln!(f, "  - {p}"))
        }
    }
}

fn fmt_sidecar(f: &mut fmt::Formatter<'_>, sc: &Sidecar) -> fmt::Result {
    let meeting = sc.meeting_id.as_deref().map(|m| format!(" (meeting {m})"));
    writeln!(f, "room:    {}{}", sc.room, meeting.unwrap_or_default())?;
    match &sc.tenant {
        Some(t) => writeln!(f, "name:    {} (tenant {t})", sc.room_name)?,
        None => writeln!(f, "name:    {}", sc.room_name)?,
    }
    let end = sc
        .end
        .map(|e| e.utc.to_rfc3339())
        .unwrap_or_else(|| "-".into());
    let reason = sc.end_reason.as_deref().unwrap_or("-");
    writeln!(
        f,
        "time:    {} .. {end}, {:?} ({reason})",
        sc.start.utc.to_rfc3339(),
        sc.status
    )?;
    let rate = sc.sample_rate;
    let secs = |a: u64, b: u64| samples_to_duration(b.saturating_sub(a), rate);
    writeln!(f, "participants: {}", sc.participants.len())?;
    for p in &sc.participants {
        let name = p
            .display_name
            .as_deref()
            .or(p.nicks.first().map(String::as_str));
        if p.hidden_from_recorder {
            writeln!(f, "  {} [hidden from recorder]", name.unwrap_or(&p.key))?;
            continue;
        }
        let end = sc.total_samples;
        let present: Duration = p
            .presence
            .iter()
            .map(|s| secs(s.join.sample, s.leave.map_or(end, |l| l.sample)))
            .sum();
        let spoke: Duration = p
            .speaking
            .iter()
            .map(|s| secs(s.start.sample, s.end.sample))
            .sum();
        writeln!(
            f,
            "  {}: present {}, spoke {} in {} segment(s)",
            name.unwrap_or(&p.key),
            Hms(present),
            Hms(spoke),
            p.speaking.len()
        )?;
    }
    writeln!(f, "gaps:    {}", sc.gaps.len())?;
    for g in &sc.gaps {
        writeln!(
            f,
            "  at {} for {}: {:?} {}",
            Hms(samples_to_duration(g.start.sample, rate)),
            Hms(secs(g.start.sample, g.end.sample)),
            g.kind,
            g.detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
