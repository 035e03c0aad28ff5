//! Checking a recording against what the simulation sent: decode the FLAC with an
//! independent decoder (claxon), find each speaker's tone over time (Goertzel on short
//! Hann-windowed blocks), and compare with the scheduled talk windows placed on the file's
//! timeline through the sidecar's start time.
//!
//! In: a FLAC path, its sidecar, the conference outcome. Out: a [`Report`] with, per
//! speaker, the expected and found intervals and the worst edge error; `ok` when every edge
//! is within the tolerance and there is no sound outside the windows.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::plan::VoiceSpec;
use super::world::ConferenceOutcome;
use crate::sink::Sidecar;

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

/// Analysis block hop and window.
const HOP: Duration = Duration::from_millis(10);
const WINDOW: Duration = Duration::from_millis(20);
/// Gaps shorter than this inside a tone are merged (concealment dips).
const MERGE_GAP: f64 = 0.12;
/// A tone counts as present above this amplitude (fraction of full scale).
const TONE_THRESHOLD: f64 = 0.08;
/// Anything above this RMS (fraction of full scale) is sound, not silence.
const SILENCE_RMS: f64 = 0.003;

fn blocks(d: &Decoded) -> (usize, usize, usize) {
    let rate = d.rate as usize;
    let hop = rate * HOP.as_millis() as usize / 1000;
    let win = rate * WINDOW.as_millis() as usize / 1000;
    let n = if d.samples.len() >= win {
        (d.samples.len() - win) / hop + 1
    } else {
        0
    };
    (hop, win, n)
}

/// Amplitude (fraction of full scale) of `hz` in `x`, Hann-windowed Goertzel.
fn tone_amplitude(x: &[i16], rate: u32, hz: f64) -> f64 {
    let n = x.len();
    if n == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut wsum = 0.0;
    for (i, v) in x.iter().enumerate() {
        let hann =
            0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1).max(1) as f64).cos();
        wsum += hann;
        let s0 = f64::from(*v) / 32768.0 * hann + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / wsum
}

fn merge(present: impl Iterator<Item = (f64, bool)>) -> Vec<(f64, f64)> {
    let half = HOP.as_secs_f64() / 2.0;
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (t, on) in present {
        if !on {
            continue;
        }
        match out.last_mut() {
            Some(last) if t - half - last.1 <= MERGE_GAP => last.1 = t + half,
            _ => out.push((t - half, t + half)),
        }
    }
    out
}

/// Intervals (seconds from the file start) where a tone of `hz` is present.
pub fn tone_intervals(d: &Decoded, hz: f32) -> Vec<(f64, f64)> {
    let (hop, win, n) = blocks(d);
    let centre = win as f64 / 2.0 / f64::from(d.rate);
    merge((0..n).map(|k| {
        let x = &d.samples[k * hop..k * hop + win];
        let t = (k * hop) as f64 / f64::from(d.rate) + centre;
        (t, tone_amplitude(x, d.rate, f64::from(hz)) > TONE_THRESHOLD)
    }))
}

/// Intervals with sound at a time `allowed(t)` says is not expected.
pub fn stray_sound(d: &Decoded, allowed: impl Fn(f64) -> bool) -> Vec<(f64, f64)> {
    let (hop, win, n) = blocks(d);
    let centre = win as f64 / 2.0 / f64::from(d.rate);
    merge((0..n).map(|k| {
        let x = &d.samples[k * hop..k * hop + win];
        let energy: f64 = x.iter().map(|v| (f64::from(*v) / 32768.0).powi(2)).sum();
        let t = (k * hop) as f64 / f64::from(d.rate) + centre;
        let sound = (energy / x.len() as f64).sqrt() > SILENCE_RMS;
        (t, sound && !allowed(t))
    }))
}

/// One speaker's verdict.
#[derive(Debug, Clone)]
pub struct SpeakerCheck {
    pub name: String,
    pub hz: f32,
    pub expected: Vec<(f64, f64)>,
    pub found: Vec<(f64, f64)>,
    /// Largest |found edge − expected edge| over all windows (seconds); infinite if a window
    /// has no matching interval or there are extra intervals.
    pub worst_edge: f64,
}

/// The whole verdict.
#[derive(Debug, Clone)]
pub struct Report {
    pub file_duration: f64,
    /// Wall duration from the sidecar's start to the room's end.
    pub wall_duration: f64,
    pub speakers: Vec<SpeakerCheck>,
    /// Sound found outside every expected window (± tolerance).
    pub stray: Vec<(f64, f64)>,
    pub tolerance: f64,
}

impl Report {
    pub fn ok(&self, duration_tolerance: Duration) -> bool {
        (self.file_duration - self.wall_duration).abs() <= duration_tolerance.as_secs_f64()
            && self.stray.is_empty()
            && self.speakers.iter().all(|s| s.worst_edge <= self.tolerance)
    }
}

fn seconds_between(start: DateTime<Utc>, t: SystemTime) -> f64 {
    let t: DateTime<Utc> = t.into();
    (t - start).num_microseconds().unwrap_or(0) as f64 / 1e6
}

/// The stretches (seconds after the epoch) during which a bridge session was sending to
/// jitape: from the first to the last frame any speaker sent in it. Outside them jitape
/// had no session (it was not in the room, or not invited yet) and nothing was there to be
/// heard. `None` when nothing was sent at all (then every talk window counts).
fn session_spans(outcome: &ConferenceOutcome) -> Option<Vec<(f64, f64)>> {
    const TICK: f64 = 0.020;
    let spans: Vec<(f64, f64)> = outcome
        .sent
        .iter()
        .filter_map(|log| {
            let windows = log.speakers.iter().flat_map(|s| &s.windows);
            let first = windows.clone().map(|w| w.first_tick).min()?;
            let last = windows.map(|w| w.last_tick).max()?;
            Some((first as f64 * TICK, (last + 1) as f64 * TICK))
        })
        .collect();
    (!spans.is_empty()).then_some(spans)
}

/// The parts of `[a, b)` inside the spans.
fn clip(a: f64, b: f64, spans: &Option<Vec<(f64, f64)>>) -> Vec<(f64, f64)> {
    let Some(spans) = spans else {
        return vec![(a, b)];
    };
    let mut out: Vec<(f64, f64)> = spans
        .iter()
        .map(|(s, e)| (a.max(*s), b.min(*e)))
        .filter(|(x, y)| x < y)
        .collect();
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Back-to-back sessions (a re-invite) leave the tone continuous.
    out.dedup_by(|next, prev| {
        if next.0 - prev.1 < 0.001 {
            prev.1 = prev.1.max(next.1);
            true
        } else {
            false
        }
    });
    out
}

/// Compare a recording with the outcome of the simulated conference it recorded. Only
/// tone voices can be checked; WAV speakers are reported with no expectation.
pub fn check_recording(
    flac: &Path,
    sidecar: &Sidecar,
    outcome: &ConferenceOutcome,
    tolerance: Duration,
) -> Result<Report, String> {
    let d = decode_flac(flac)?;
    let start = sidecar.start.utc;
    let epoch = seconds_between(start, outcome.wall_epoch);
    let end = epoch + outcome.plan.end_at.as_secs_f64();
    let tol = tolerance.as_secs_f64();
    let mut speakers = Vec::new();
    let mut all_expected: Vec<(f64, f64)> = Vec::new();
    let sessions = session_spans(outcome);
    for (sp, windows) in outcome.plan.audible() {
        let VoiceSpec::Tone(hz) = sp.voice else {
            continue;
        };
        let expected: Vec<(f64, f64)> = windows
            .iter()
            .flat_map(|w| clip(w.start.as_secs_f64(), w.end.as_secs_f64(), &sessions))
            .map(|(a, b)| (epoch + a, epoch + b))
            .filter(|(a, _)| *a < end)
            .collect();
        all_expected.extend(&expected);
        let found = tone_intervals(&d, hz);
        let worst_edge = if found.len() == expected.len() {
            expected
                .iter()
                .zip(&found)
                .map(|(e, f)| (e.0 - f.0).abs().max((e.1 - f.1).abs()))
                .fold(0.0, f64::max)
        } else {
            f64::INFINITY
        };
        speakers.push(SpeakerCheck {
            name: sp.display_name.clone(),
            hz,
            expected,
            found,
            worst_edge,
        });
    }
    // A block half-covered by a window edge counts as inside it.
    let slack = tol + WINDOW.as_secs_f64() / 2.0;
    let stray = stray_sound(&d, |t| {
        all_expected
            .iter()
            .any(|(a, b)| t >= a - slack && t <= b + slack)
    });
    Ok(Report {
        file_duration: d.duration().as_secs_f64(),
        wall_duration: end,
        speakers,
        stray,
        tolerance: tol,
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "duration {:.3} s (wall {:.3} s, difference {:+.0} ms)",
            self.file_duration,
            self.wall_duration,
            (self.file_duration - self.wall_duration) * 1000.0
        )?;
        for s in &self.speakers {
            let fmt_iv = |v: &[(f64, f64)]| {
                v.iter()
                    .map(|(a, b)| format!("{a:.2}-{b:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            writeln!(
                f,
                "  {:<8} {:>6.0} Hz  scheduled [{}]  heard [{}]  worst edge {}",
                s.name,
                s.hz,
                fmt_iv(&s.expected),
                fmt_iv(&s.found),
                if s.worst_edge.is_finite() {
                    format!("{:.1} ms", s.worst_edge * 1000.0)
                } else {
                    "MISMATCH".into()
                }
            )?;
        }
        if self.stray.is_empty() {
            write!(f, "  silence elsewhere: yes")
        } else {
            write!(f, "  sound outside the scheduled windows: {:?}", self.stray)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, secs: f64, amp: f64) -> Vec<i16> {
        (0..(secs * f64::from(rate)) as usize)
            .map(|i| {
                (amp * 32767.0
                    * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn tones_are_found_where_they_are_and_not_elsewhere() {
        let rate = 48_000;
        let mut s = vec![0i16; rate as usize]; // 1 s silence
        s.extend(tone(rate, 440.0, 0.5, 0.3));
        s.extend(vec![0i16; rate as usize / 2]);
        s.extend(tone(rate, 660.0, 0.25, 0.3));
        let d = Decoded { samples: s, rate };
        let a = tone_intervals(&d, 440.0);
        assert_eq!(a.len(), 1);
        assert!(
            (a[0].0 - 1.0).abs() < 0.015 && (a[0].1 - 1.5).abs() < 0.015,
            "{a:?}"
        );
        let b = tone_intervals(&d, 660.0);
        assert_eq!(b.len(), 1);
        assert!(
            (b[0].0 - 2.0).abs() < 0.015 && (b[0].1 - 2.25).abs() < 0.015,
            "{b:?}"
        );
        assert!(tone_intervals(&d, 880.0).is_empty());
        assert_eq!(stray_sound(&d, |_| false).len(), 2);
        assert!(stray_sound(&d, |t| (0.99..=2.26).contains(&t)).is_empty());
        let late = stray_sound(&d, |t| t < 1.6);
        assert_eq!(late.len(), 1);
        assert!(
            (late[0].0 - 2.0).abs() < 0.015 && (late[0].1 - 2.25).abs() < 0.015,
            "{late:?}"
        );
    }

    #[test]
    fn short_dips_are_merged_long_gaps_are_not() {
        let rate = 16_000;
        let mut s = tone(rate, 440.0, 0.5, 0.3);
        s.extend(vec![0i16; rate as usize / 20]); // 50 ms dip
        s.extend(tone(rate, 440.0, 0.5, 0.3));
        s.extend(vec![0i16; rate as usize / 2]); // 500 ms gap
        s.extend(tone(rate, 440.0, 0.5, 0.3));
        let d = Decoded { samples: s, rate };
        assert_eq!(tone_intervals(&d, 440.0).len(), 2);
    }
}
