//! Checking a recording against what the simulation sent, sharply: decode the FLAC with an
//! independent decoder (claxon), measure every speaker's tone each millisecond, and compare
//! with what a correct recording holds ([`Expected`]: built from the frames that reached the
//! wire and those the emulated network dropped, placed on the file's timeline through the
//! sidecar's start time).
//!
//! In: a FLAC path, its sidecar, the conference outcome (or a decoded signal and an
//! [`Expected`]). Out: a [`Report`], `ok` when nothing below is found:
//! - an edge of a talk spurt more than [`Tolerances::edge`] (10 ms) from where it belongs;
//! - a hole: the tone below half its level for [`Tolerances::hole`] (15 ms) of expected speech
//!   (so every hole of 20 ms is found), where no dropped packet explains it;
//! - a level more than [`Tolerances::level_db`] (2 dB) off over 100 ms of steady tone (a 3 dB
//!   error is found), the limiter's gain accounted for when many talk at once;
//! - a pitch more than [`Tolerances::pitch`] (1.5 %) off over a stretch of steady tone (a 2 %
//!   error, e.g. a wrong sample rate, is found; 1 % is not flagged);
//! - a tone where its speaker is silent, concealment louder than the voice, or any sound
//!   (RMS above −60 dBFS over 10 ms) where nobody speaks;
//! - a file whose duration differs from the room's wall duration by more than
//!   [`Tolerances::duration`] (20 ms: the room's end reaches jitape as one stanza over
//!   loopback, acted on in a few milliseconds; more is time jitape added or dropped). The
//!   room ends between the simulation sending its destruction and the server confirming it
//!   (Prosody took 3–10 ms on an idle machine, more on a busy one), so the file may end
//!   anywhere in that span, with the same 20 ms either side.

mod expect;
mod measure;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::time::Duration;

pub use expect::{Expected, MIN_GAP, PLC_MAX, SentLate, TICK, ToneExpect, sent_late};

use super::plan::TONE_AMPLITUDE;
use super::world::ConferenceOutcome;
use jitape::sink::Sidecar;
use measure::{Envelope, HALF_WINDOW_MS, Zone, distance_outside, envelope, file_ms, per_ms, zones};

/// Decoded mono PCM.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub samples: Vec<i16>,
    pub rate: u32,
}

impl Decoded {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }
}

/// Decode a whole FLAC file (mono, 16-bit) with claxon.
pub fn decode_flac(path: &Path) -> Result<Decoded, String> {
    let mut reader =
        claxon::FlacReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let info = reader.streaminfo();
    if info.channels != 1 || info.bits_per_sample != 16 {
        return Err(format!("{}: expected mono 16-bit", path.display()));
    }
    let mut samples = Vec::new();
    for s in reader.samples() {
        let s = s.map_err(|e| format!("{}: {e}", path.display()))?;
        samples.push(s.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
    }
    Ok(Decoded {
        samples,
        rate: info.sample_rate,
    })
}

/// What the analysis lets pass (each field says what it still catches).
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    /// An edge further than this from its place is an error (one 12 ms off is caught).
    pub edge: Duration,
    /// Expected speech with the tone below half its level for this long is a hole (a 20 ms
    /// hole is caught with 5 ms to spare for fades and the 1 ms grid).
    pub hole: Duration,
    /// A level further than this (dB) from the tone's over 100 ms is an error (3 dB is
    /// caught; Opus keeps a steady tone within a few tenths of a dB).
    pub level_db: f64,
    /// A frequency further than this (fraction) from the tone's is an error (2 % is caught,
    /// 1 % passes).
    pub pitch: f64,
    /// A tone above this fraction of its level (−20 dB) where its speaker is silent.
    pub stray_tone: f64,
    /// Any sound above this RMS (−60 dBFS, over 10 ms) where nobody speaks.
    pub stray_rms: f64,
    /// File duration against the room's wall duration.
    pub duration: Duration,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            edge: Duration::from_millis(10),
            hole: Duration::from_millis(15),
            level_db: 2.0,
            pitch: 0.015,
            stray_tone: 0.1,
            stray_rms: 0.001,
            duration: Duration::from_millis(20),
        }
    }
}

/// One tone's verdict (one speaker, or several of the same tone).
#[derive(Debug, Clone, Default)]
pub struct SpeakerCheck {
    pub name: String,
    pub hz: f32,
    /// Where the tone must sound (seconds on the file's timeline).
    pub expected: Vec<(f64, f64)>,
    /// Where it sounds at half its level or more.
    pub found: Vec<(f64, f64)>,
    /// Edges between speech and silence that were checked, and the largest error (s).
    pub edges_checked: usize,
    pub worst_edge: f64,
    /// Lowest and highest level over 100 ms of steady tone (dB against the tone's).
    pub level_db: (f64, f64),
    /// The largest relative frequency error over a stretch of steady tone.
    pub pitch_error: f64,
    pub holes: Vec<(f64, f64)>,
    /// The tone where it must be silent (or too loud where concealment is allowed).
    pub stray: Vec<(f64, f64)>,
    pub problems: Vec<String>,
}

/// The whole verdict.
#[derive(Debug, Clone)]
pub struct Report {
    pub file_duration: f64,
    /// Wall duration from the sidecar's start to the room's end (the simulation destroying
    /// it)...
    pub wall_duration: f64,
    /// ...or as late as the server confirming that.
    pub latest_wall_duration: f64,
    pub speakers: Vec<SpeakerCheck>,
    /// Sound where nobody speaks.
    pub stray: Vec<(f64, f64)>,
    pub tolerances: Tolerances,
    /// Everything not as expected, one line each (empty: the recording is right).
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Compare a recording with the outcome of the simulated conference it recorded, with the
/// default [`Tolerances`].
pub fn check_recording(
    flac: &Path,
    sidecar: &Sidecar,
    outcome: &ConferenceOutcome,
) -> Result<Report, String> {
    check_recording_with(flac, sidecar, outcome, &Tolerances::default())
}

/// [`check_recording`] with other tolerances (a caller that needs them says why).
pub fn check_recording_with(
    flac: &Path,
    sidecar: &Sidecar,
    outcome: &ConferenceOutcome,
    tol: &Tolerances,
) -> Result<Report, String> {
    let decoded = decode_flac(flac)?;
    let expected = Expected::from_outcome(outcome, sidecar)?;
    Ok(analyse(&decoded, &expected, tol))
}

/// Check the stem of the participant displayed as `name`: their tone as in the mix, and no
/// other voice.
pub fn check_stem(
    stem: &Path,
    sidecar: &Sidecar,
    outcome: &ConferenceOutcome,
    name: &str,
) -> Result<Report, String> {
    let decoded = decode_flac(stem)?;
    let expected = Expected::from_outcome(outcome, sidecar)?.only(name);
    Ok(analyse(&decoded, &expected, &Tolerances::default()))
}

/// Intervals (seconds from the file's start) where a tone of `hz` at the simulation's level
/// sounds at half that level or more.
pub fn tone_intervals(d: &Decoded, hz: f32) -> Vec<(f64, f64)> {
    let env = envelope(d, f64::from(hz));
    let t = ToneExpect {
        names: vec![String::new()],
        hz,
        amplitude: f64::from(TONE_AMPLITUDE),
        on: Vec::new(),
        free: Vec::new(),
    };
    let gain = vec![1.0; env.amp.len()];
    let gains = [gain.clone(), gain];
    measure::check_tone(&t, &env, &gains, &Tolerances::default(), f64::INFINITY, &[]).found
}

/// `d` with every sample inside `spans` (seconds of the file) silenced: analysed against an
/// expectation [`Expected::without`] the same spans, a check of everything outside them.
pub fn muted(mut d: Decoded, spans: &[(f64, f64)]) -> Decoded {
    let rate = f64::from(d.rate);
    let n = d.samples.len();
    for &(a, b) in spans {
        let from = ((a * rate).floor().max(0.0) as usize).min(n);
        let to = ((b * rate).ceil().max(0.0) as usize).min(n);
        if let Some(s) = d.samples.get_mut(from..to) {
            s.fill(0);
        }
    }
    d
}

/// Analyse decoded audio against an expectation.
pub fn analyse(d: &Decoded, e: &Expected, tol: &Tolerances) -> Report {
    let n = file_ms(d);
    let envs: Vec<Envelope> = e
        .tones
        .iter()
        .map(|t| envelope(d, f64::from(t.hz)))
        .collect();
    let gain = limiter_gain(e, &envs, n);
    let gains = [held(&gain), gain];
    let speakers: Vec<SpeakerCheck> = e
        .tones
        .iter()
        .enumerate()
        .zip(&envs)
        .map(|((i, t), env)| {
            let others: Vec<f64> = e
                .tones
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, o)| o.on.iter().flat_map(|&(a, b)| [a, b]))
                .collect();
            measure::check_tone(t, env, &gains, tol, e.duration, &others)
        })
        .collect();
    let stray = stray_sound(d, e, tol);
    let file_duration = d.samples.len() as f64 / f64::from(d.rate.max(1));
    let mut problems = Vec::new();
    let slack = tol.duration.as_secs_f64();
    if file_duration < e.duration - slack || file_duration > e.latest_duration + slack {
        problems.push(format!(
            "duration {file_duration:.3} s, the room lasted {} ({:+.1} ms)",
            lasted(e.duration, e.latest_duration),
            (file_duration - e.duration) * 1000.0
        ));
    }
    for s in &speakers {
        problems.extend(
            s.problems
                .iter()
                .map(|p| format!("{} ({:.0} Hz): {p}", s.name, s.hz)),
        );
    }
    for (a, b) in &stray {
        problems.push(format!("sound where nobody speaks at {a:.3}-{b:.3} s"));
    }
    Report {
        file_duration,
        wall_duration: e.duration,
        latest_wall_duration: e.latest_duration,
        speakers,
        stray,
        tolerances: tol.clone(),
        problems,
    }
}

/// The room's wall duration, or the span it lies in when its end is known only to lie
/// between the simulation destroying the room and the server confirming it.
fn lasted(duration: f64, latest: f64) -> String {
    if latest > duration + 0.0005 {
        format!("{duration:.3}..{latest:.3} s")
    } else {
        format!("{duration:.3} s")
    }
}

/// jitape's limiter ceiling (its default, −1 dBFS).
const CEILING: f64 = 0.891;
/// How long the limiter's gain takes to recover (its release is 80 ms; from a peak six times
/// the ceiling, 150 ms).
const RELEASE_MS: usize = 200;

/// The limiter's gain per millisecond: 1 unless the voices sounding (now or within the
/// release) could together exceed the ceiling; then the median, over the tones steady there
/// (their whole envelope window inside their speech), of their measured level against their
/// own (the limiter scales all of them alike), or NaN when fewer than three tell. A tone
/// whose window straddles its start or end reads low for its own reason, not the limiter's.
fn limiter_gain(e: &Expected, envs: &[Envelope], n: usize) -> Vec<f64> {
    let zs: Vec<Vec<Zone>> = e.tones.iter().map(|t| zones(t, n)).collect();
    let inner: Vec<Vec<usize>> = zs
        .iter()
        .map(|z| distance_outside(z, |x| x == Zone::On))
        .collect();
    let other = zones(
        &ToneExpect {
            names: Vec::new(),
            hz: 0.0,
            amplitude: 0.0,
            on: e.other.clone(),
            free: Vec::new(),
        },
        n,
    );
    let amplitude = f64::from(TONE_AMPLITUDE);
    let mut last_over: Option<usize> = None;
    let mut gain = vec![1.0; n];
    for i in 0..n {
        let sounding =
            zs.iter().filter(|z| z[i] != Zone::Off).count() + usize::from(other[i] != Zone::Off);
        if sounding as f64 * amplitude > CEILING {
            last_over = Some(i);
        }
        if last_over.is_none_or(|l| i - l > RELEASE_MS) {
            continue;
        }
        let mut ratios: Vec<f64> = e
            .tones
            .iter()
            .zip(envs)
            .zip(&inner)
            .filter(|(_, d)| d[i] > HALF_WINDOW_MS)
            .map(|((t, env), _)| env.amp[i] / t.amplitude)
            .filter(|r| r.is_finite())
            .collect();
        gain[i] = if ratios.len() >= 3 {
            ratios.sort_by(f64::total_cmp);
            ratios[ratios.len() / 2].min(1.0)
        } else {
            f64::NAN
        };
    }
    gain
}

/// `gain` with each unknown value replaced by the last known one (1 before any): for finding
/// edges, where the envelope still holds what the gain was just before.
fn held(gain: &[f64]) -> Vec<f64> {
    let mut last = 1.0;
    gain.iter()
        .map(|g| {
            if g.is_finite() {
                last = *g;
            }
            last
        })
        .collect()
}

/// 10 ms blocks with sound where no voice may be (beyond the edge tolerance and fades).
fn stray_sound(d: &Decoded, e: &Expected, tol: &Tolerances) -> Vec<(f64, f64)> {
    let n = file_ms(d);
    let h = per_ms(d.rate);
    let mut quiet = vec![true; n];
    let all = ToneExpect {
        names: Vec::new(),
        hz: 0.0,
        amplitude: 0.0,
        on: e.other.clone(),
        free: e
            .tones
            .iter()
            .flat_map(|t| t.on.iter().chain(&t.free))
            .copied()
            .collect(),
    };
    let z = zones(&all, n);
    let dist = distance_outside(&z, |x| x == Zone::Off);
    let clear = tol.edge.as_millis() as usize + 3;
    for (i, q) in quiet.iter_mut().enumerate() {
        *q = dist[i] >= clear;
    }
    let mut out: Vec<(f64, f64)> = Vec::new();
    for block in 0..n / 10 {
        let range = block * 10..block * 10 + 10;
        if !quiet[range.clone()].iter().all(|q| *q) {
            continue;
        }
        let x = &d.samples[range.start * h..range.end * h];
        let energy: f64 = x.iter().map(|v| (f64::from(*v) / 32768.0).powi(2)).sum();
        if (energy / x.len() as f64).sqrt() <= tol.stray_rms {
            continue;
        }
        let (a, b) = (range.start as f64 / 1000.0, range.end as f64 / 1000.0);
        match out.last_mut() {
            Some(last) if (last.1 - a).abs() < 1e-9 => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tolerances;
        writeln!(
            f,
            "duration {:.3} s (wall {}, difference {:+.1} ms; allowed ±{} ms)",
            self.file_duration,
            lasted(self.wall_duration, self.latest_wall_duration),
            (self.file_duration - self.wall_duration) * 1000.0,
            t.duration.as_millis()
        )?;
        let fmt_iv = |v: &[(f64, f64)]| {
            let mut s = v
                .iter()
                .take(12)
                .map(|(a, b)| format!("{a:.3}-{b:.3}"))
                .collect::<Vec<_>>()
                .join(", ");
            if v.len() > 12 {
                s += &format!(", … ({} in all)", v.len());
            }
            s
        };
        for s in &self.speakers {
            writeln!(
                f,
                "  {:<10} {:>5.0} Hz  expected [{}]\n  {:<18} heard    [{}]\n  {:<18} {} edges, worst {:.1} ms (±{} ms); level {:+.1}..{:+.1} dB (±{}); pitch {:+.2} % (±{} %); holes {}; stray {}",
                s.name,
                s.hz,
                fmt_iv(&s.expected),
                "",
                fmt_iv(&s.found),
                "",
                s.edges_checked,
                s.worst_edge * 1000.0,
                t.edge.as_millis(),
                if s.level_db.0.is_finite() {
                    s.level_db.0
                } else {
                    0.0
                },
                if s.level_db.1.is_finite() {
                    s.level_db.1
                } else {
                    0.0
                },
                t.level_db,
                s.pitch_error * 100.0,
                t.pitch * 100.0,
                s.holes.len(),
                s.stray.len(),
            )?;
        }
        if self.stray.is_empty() {
            writeln!(f, "  silence elsewhere: yes")?;
        } else {
            writeln!(f, "  sound where nobody speaks: {}", fmt_iv(&self.stray))?;
        }
        if self.problems.is_empty() {
            write!(f, "  as expected")
        } else {
            writeln!(f, "  {} problems:", self.problems.len())?;
            for p in self.problems.iter().take(30) {
                writeln!(f, "  - {p}")?;
            }
            if self.problems.len() > 30 {
                writeln!(f, "  - … {} more", self.problems.len() - 30)?;
            }
            Ok(())
        }
    }
}
