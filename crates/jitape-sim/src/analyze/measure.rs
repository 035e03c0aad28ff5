//! Measuring one tone in decoded PCM: its envelope and phase every millisecond, and the
//! checks of one [`ToneExpect`] against them (edges, holes, level, pitch, stray tone).
//!
//! In: the decoded samples, the tone's expectation, the limiter gain per millisecond and the
//! tolerances. Out: a [`SpeakerCheck`].
//!
//! The envelope is a quadrature demodulation at the tone's frequency, summed over two
//! cascaded 10 ms boxcars: a triangular window spanning 20 ms, centred on each millisecond.
//! Its response is 0.5 at a step (so a crossing of half the level is the edge itself, to
//! well under a millisecond), about −42 dB for a tone 220 Hz away (the default tones' spacing)
//! and −55 dB for its own image at twice the frequency. The phase of the same sum turns at
//! the frequency error: its slope over a stretch of tone measures the pitch to a small
//! fraction of a percent.

use std::f64::consts::TAU;

use super::expect::ToneExpect;
use super::{Decoded, SpeakerCheck, Tolerances};

/// Half the envelope window, in milliseconds: an envelope point sees ±this.
pub(super) const HALF_WINDOW_MS: usize = 10;
/// Fade a recorder may put at a spurt's end (2.5 ms) rounded up.
const FADE_MS: f64 = 3.0;
/// How far an edge is looked for.
const EDGE_SEARCH: f64 = 0.040;
/// Level blocks: the level is averaged over this many milliseconds of steady tone.
const LEVEL_BLOCK_MS: usize = 100;

/// A tone's envelope (fraction of full scale) and phase per millisecond of the file (NaN
/// where the window does not fit).
pub(super) struct Envelope {
    pub amp: Vec<f64>,
    pub phase: Vec<f64>,
}

/// Samples per millisecond (every supported rate is a multiple of 1000).
pub(super) fn per_ms(rate: u32) -> usize {
    (rate / 1000).max(1) as usize
}

/// Milliseconds of the file.
pub(super) fn file_ms(d: &Decoded) -> usize {
    d.samples.len() / per_ms(d.rate)
}

pub(super) fn envelope(d: &Decoded, hz: f64) -> Envelope {
    let h = per_ms(d.rate);
    let nb = file_ms(d);
    let w = TAU * hz / f64::from(d.rate.max(1));
    let table: Vec<(f64, f64)> = (0..h)
        .map(|m| ((w * m as f64).cos(), -(w * m as f64).sin()))
        .collect();
    // Prefix sums of the per-millisecond demodulated blocks.
    let mut p1 = Vec::with_capacity(nb + 1);
    p1.push((0.0, 0.0));
    for b in 0..nb {
        let (mut re, mut im) = (0.0, 0.0);
        for (m, (c, s)) in table.iter().enumerate() {
            let x = f64::from(d.samples[b * h + m]) / 32768.0;
            re += x * c;
            im += x * s;
        }
        let base = (w * (b * h) as f64).rem_euclid(TAU);
        let (c, s) = (base.cos(), -base.sin());
        let last = p1[b];
        p1.push((last.0 + re * c - im * s, last.1 + re * s + im * c));
    }
    let k = HALF_WINDOW_MS;
    // First boxcar: 10 ms starting at each millisecond.
    let c1: Vec<(f64, f64)> = (0..(nb + 1).saturating_sub(k))
        .map(|i| (p1[i + k].0 - p1[i].0, p1[i + k].1 - p1[i].1))
        .collect();
    let mut p2 = Vec::with_capacity(c1.len() + 1);
    p2.push((0.0, 0.0));
    for (i, v) in c1.iter().enumerate() {
        p2.push((p2[i].0 + v.0, p2[i].1 + v.1));
    }
    let norm = 2.0 / (k * k * h) as f64;
    let mut amp = vec![f64::NAN; nb];
    let mut phase = vec![f64::NAN; nb];
    // The sum over c1[i..i+10] spans milliseconds i..i+20, centred on i+10.
    for i in 0..(p2.len()).saturating_sub(k) {
        let z = (p2[i + k].0 - p2[i].0, p2[i + k].1 - p2[i].1);
        if let Some(a) = amp.get_mut(i + k) {
            *a = norm * (z.0 * z.0 + z.1 * z.1).sqrt();
            phase[i + k] = z.1.atan2(z.0);
        }
    }
    Envelope { amp, phase }
}

/// Zone of each millisecond for one tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Zone {
    Off,
    Free,
    On,
}

pub(super) fn zones(t: &ToneExpect, n: usize) -> Vec<Zone> {
    let mut z = vec![Zone::Off; n];
    let mut paint = |v: &[(f64, f64)], zone: Zone| {
        for &(a, b) in v {
            let (from, to) = ((a * 1000.0).ceil().max(0.0), (b * 1000.0).ceil().max(0.0));
            for item in z.iter_mut().take(to as usize).skip(from as usize) {
                *item = zone;
            }
        }
    };
    paint(&t.free, Zone::Free);
    paint(&t.on, Zone::On);
    z
}

/// Distance in ms from each point to the nearest point where `pred` fails (capped).
pub(super) fn distance_outside(z: &[Zone], pred: impl Fn(Zone) -> bool) -> Vec<usize> {
    let cap = usize::MAX / 4;
    let mut d = vec![cap; z.len()];
    let mut last = None;
    for i in 0..z.len() {
        if !pred(z[i]) {
            last = Some(i);
        }
        d[i] = last.map_or(cap, |l| i - l);
    }
    let mut next = None;
    for i in (0..z.len()).rev() {
        if !pred(z[i]) {
            next = Some(i);
        }
        d[i] = d[i].min(next.map_or(cap, |n| n - i));
    }
    d
}

/// Checks one tone. `gains[1][i]` is the limiter's gain at millisecond `i` (NaN: unknown),
/// `gains[0]` the same with unknown values held from the last known one (for edges).
/// `others` are the other tones' edges in seconds: the envelope window sees an abrupt edge of
/// a tone at another frequency as a short burst at this one (two voices starting together
/// reach a tenth of a tone's level for a few milliseconds), so silence is not judged there.
pub(super) fn check_tone(
    t: &ToneExpect,
    env: &Envelope,
    gains: &[Vec<f64>; 2],
    tol: &Tolerances,
    duration: f64,
    others: &[f64],
) -> SpeakerCheck {
    let n = env.amp.len();
    let z = zones(t, n);
    // The envelope as a fraction of the tone's level, the limiter's gain removed.
    let relative =
        |gain: &[f64]| -> Vec<f64> { (0..n).map(|i| env.amp[i] / gain[i] / t.amplitude).collect() };
    let (held, rel) = (relative(&gains[0]), relative(&gains[1]));
    let mut c = SpeakerCheck {
        name: t.names.join("+"),
        hz: t.hz,
        expected: t.on.clone(),
        found: found(&rel),
        level_db: (f64::INFINITY, f64::NEG_INFINITY),
        ..SpeakerCheck::default()
    };
    edges(t, &held, tol, duration, &mut c);
    holes(&z, &rel, tol, &mut c);
    level_and_pitch(t, &z, &rel, &env.phase, tol, &mut c);
    stray_tone(&z, &rel, tol, others, &mut c);
    c
}

/// Stretches where the tone is at half its level or more (shorter breaks than `MIN_GAP`
/// closed), for the report.
fn found(rel: &[f64]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (i, r) in rel.iter().enumerate() {
        if *r >= 0.5 {
            let t = i as f64 / 1000.0;
            match out.last_mut() {
                Some(last) if t - last.1 < super::expect::MIN_GAP => last.1 = t + 0.001,
                _ => out.push((t, t + 0.001)),
            }
        }
    }
    out.retain(|(a, b)| b - a >= 0.01);
    out
}

/// Whether `x` is where a `free` zone of `t` starts (`starts`) or ends.
fn touches_free(t: &ToneExpect, x: f64, starts: bool) -> bool {
    t.free
        .iter()
        .any(|f| ((if starts { f.0 } else { f.1 }) - x).abs() < 1e-6)
}

/// Every edge between `on` and silence: found where the envelope crosses half the level,
/// within the tolerance.
fn edges(t: &ToneExpect, rel: &[f64], tol: &Tolerances, duration: f64, c: &mut SpeakerCheck) {
    let tol_s = tol.edge.as_secs_f64();
    let limit = rel.len() as f64 / 1000.0;
    let margin = 0.001 * (HALF_WINDOW_MS + 1) as f64;
    for (k, &(a, b)) in t.on.iter().enumerate() {
        let prev_end = k.checked_sub(1).map_or(f64::NEG_INFINITY, |p| t.on[p].1);
        let next_start = t.on.get(k + 1).map_or(f64::INFINITY, |x| x.0);
        if a > margin && !touches_free(t, a, false) {
            let lo = (a - EDGE_SEARCH).max(prev_end + margin);
            let hi = (a + EDGE_SEARCH).min(b);
            let at = crossing(rel, lo, hi, a, true);
            record_edge(c, "onset", a, at, lo, tol_s);
        }
        if b < duration.min(limit) - margin && !touches_free(t, b, true) {
            let lo = (b - EDGE_SEARCH).max(a);
            let hi = (b + EDGE_SEARCH).min(next_start - margin);
            let at = crossing(rel, lo, hi, b, false);
            record_edge(c, "end", b, at, hi, tol_s);
        }
    }
}

fn record_edge(c: &mut SpeakerCheck, what: &str, want: f64, at: Option<f64>, bound: f64, tol: f64) {
    c.edges_checked += 1;
    let (err, heard) = match at {
        Some(x) => (
            (x - want).abs(),
            format!("heard at {x:.4} s ({:+.1} ms)", (x - want) * 1000.0),
        ),
        None => (
            (bound - want).abs().max(EDGE_SEARCH),
            "not heard within ±40 ms".to_string(),
        ),
    };
    c.worst_edge = c.worst_edge.max(err);
    if err > tol {
        c.problems
            .push(format!("{what} expected at {want:.4} s, {heard}"));
    }
}

/// The crossing of half the level (rising or falling) in `[lo, hi]` nearest `want`. If the
/// envelope is already past it at the search's start (rising: at `lo`; falling: at `hi`),
/// that bound.
fn crossing(rel: &[f64], lo: f64, hi: f64, want: f64, rising: bool) -> Option<f64> {
    let (i0, i1) = (
        ((lo * 1000.0).ceil().max(1.0)) as usize,
        ((hi * 1000.0).floor() as usize).min(rel.len().saturating_sub(1)),
    );
    if i0 > i1 {
        return None;
    }
    let mut best: Option<f64> = None;
    for i in i0..=i1 {
        let (p, q) = (rel[i - 1], rel[i]);
        if p.is_nan() || q.is_nan() {
            continue;
        }
        let crossed = if rising {
            p < 0.5 && q >= 0.5
        } else {
            p >= 0.5 && q < 0.5
        };
        if crossed {
            let x = (i as f64 - 1.0 + (0.5 - p) / (q - p)) / 1000.0;
            if best.is_none_or(|b| (x - want).abs() < (b - want).abs()) {
                best = Some(x);
            }
        }
    }
    best.or_else(|| {
        let (edge, at) = if rising { (rel[i0], lo) } else { (rel[i1], hi) };
        (edge >= 0.5).then_some(at)
    })
}

/// Stretches inside `on` where the tone is below half its level.
fn holes(z: &[Zone], rel: &[f64], tol: &Tolerances, c: &mut SpeakerCheck) {
    let min = tol.hole.as_secs_f64() * 1000.0;
    let mut i = 0;
    while i < rel.len() {
        // NaN (the gain unknown) is no hole.
        if rel[i].is_nan() || rel[i] >= 0.5 {
            i += 1;
            continue;
        }
        let start = i;
        let mut inside = 0usize;
        while i < rel.len() && rel[i] < 0.5 {
            inside += usize::from(z[i] == Zone::On);
            i += 1;
        }
        if inside as f64 >= min {
            let (a, b) = (start as f64 / 1000.0, i as f64 / 1000.0);
            c.holes.push((a, b));
            c.problems.push(format!(
                "hole {a:.3}-{b:.3} s: the tone is below half its level for {inside} ms of expected speech"
            ));
        }
    }
}

/// Level and pitch per block of about 100 ms of steady tone (points whose whole window lies
/// in `on`, at half the level or more).
fn level_and_pitch(
    t: &ToneExpect,
    z: &[Zone],
    rel: &[f64],
    phase: &[f64],
    tol: &Tolerances,
    c: &mut SpeakerCheck,
) {
    let inner = distance_outside(z, |x| x == Zone::On);
    let steady = |i: usize| inner[i] > HALF_WINDOW_MS && rel[i].is_finite() && rel[i] >= 0.5;
    let hz = f64::from(t.hz);
    // Flagged stretches (consecutive blocks joined): (start, end, worst value).
    let mut loud: Vec<(f64, f64, f64)> = Vec::new();
    let mut sharp: Vec<(f64, f64, f64)> = Vec::new();
    let flag = |v: &mut Vec<(f64, f64, f64)>, a: f64, b: f64, x: f64| match v.last_mut() {
        Some(last) if (last.1 - a).abs() < 1e-9 => {
            last.1 = b;
            if x.abs() > last.2.abs() {
                last.2 = x;
            }
        }
        _ => v.push((a, b, x)),
    };
    let mut i = 0;
    while i < rel.len() {
        if !steady(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < rel.len() && steady(i) {
            i += 1;
        }
        for block in blocks(start..i) {
            let (a, b) = (block.start as f64 / 1000.0, block.end as f64 / 1000.0);
            let mean = rel[block.clone()].iter().sum::<f64>() / block.len() as f64;
            let db = 20.0 * mean.log10();
            c.level_db = (c.level_db.0.min(db), c.level_db.1.max(db));
            if db.abs() > tol.level_db {
                flag(&mut loud, a, b, db);
            }
            if block.len() < 2 * HALF_WINDOW_MS {
                continue;
            }
            let err = pitch_error(&phase[block.clone()], hz);
            if err.abs() > c.pitch_error.abs() {
                c.pitch_error = err;
            }
            if err.abs() > tol.pitch {
                flag(&mut sharp, a, b, err);
            }
        }
    }
    for (a, b, db) in loud {
        c.problems
            .push(format!("level {db:+.1} dB at {a:.3}-{b:.3} s"));
    }
    for (a, b, err) in sharp {
        c.problems.push(format!(
            "pitch {:+.2} % ({:.1} Hz) at {a:.3}-{b:.3} s",
            err * 100.0,
            hz * (1.0 + err)
        ));
    }
}

/// `run` in blocks of about [`LEVEL_BLOCK_MS`] (a short tail joins the block before).
fn blocks(run: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    let mut a = run.start;
    while a < run.end {
        let b = (a + LEVEL_BLOCK_MS).min(run.end);
        match out.last_mut() {
            Some(last) if b - a < LEVEL_BLOCK_MS / 2 => last.end = b,
            _ => out.push(a..b),
        }
        a = b;
    }
    out
}

/// Relative frequency error from the phase's slope (least squares over the unwrapped phase,
/// one value per millisecond).
fn pitch_error(phase: &[f64], hz: f64) -> f64 {
    let mut unwrapped = Vec::with_capacity(phase.len());
    let mut acc = 0.0;
    for (i, p) in phase.iter().enumerate() {
        if i > 0 {
            let d = (p - phase[i - 1] + TAU / 2.0).rem_euclid(TAU) - TAU / 2.0;
            acc += d;
        }
        unwrapped.push(acc);
    }
    let n = unwrapped.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = unwrapped.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in unwrapped.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    let radians_per_ms = sxy / sxx.max(f64::MIN_POSITIVE);
    radians_per_ms * 1000.0 / TAU / hz
}

/// The tone where it must not be: in silence (beyond the edge tolerance, fades and the
/// window), or louder than itself where concealment is allowed.
fn stray_tone(z: &[Zone], rel: &[f64], tol: &Tolerances, others: &[f64], c: &mut SpeakerCheck) {
    let outside = distance_outside(z, |x| x == Zone::Off);
    let clear = tol.edge.as_secs_f64() * 1000.0 + FADE_MS + HALF_WINDOW_MS as f64;
    let mut near_other = vec![false; z.len()];
    for &edge in others {
        let (a, b) = (edge * 1000.0 - clear, edge * 1000.0 + clear);
        let (a, b) = (
            a.max(0.0).floor() as usize,
            (b.max(0.0).ceil() as usize).min(z.len()),
        );
        for x in near_other.iter_mut().take(b).skip(a) {
            *x = true;
        }
    }
    let loud = 10f64.powf(tol.level_db / 20.0);
    let mut spans: Vec<(usize, usize, bool)> = Vec::new();
    for i in 0..rel.len() {
        let stray = match z[i] {
            Zone::Off => outside[i] as f64 >= clear && !near_other[i] && rel[i] > tol.stray_tone,
            Zone::Free => rel[i] > loud,
            Zone::On => false,
        };
        if !stray {
            continue;
        }
        let free = z[i] == Zone::Free;
        match spans.last_mut() {
            Some(s) if s.1 == i && s.2 == free => s.1 = i + 1,
            _ => spans.push((i, i + 1, free)),
        }
    }
    for (a, b, free) in spans {
        let (a, b) = (a as f64 / 1000.0, b as f64 / 1000.0);
        if free && b - a < 0.005 {
            continue;
        }
        c.stray.push((a, b));
        c.problems.push(if free {
            format!("concealment louder than the voice at {a:.3}-{b:.3} s")
        } else {
            format!("tone heard where it must be silent at {a:.3}-{b:.3} s")
        });
    }
}
