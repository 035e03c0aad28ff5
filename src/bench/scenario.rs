//! What the benchmark plays: seeded, realistic conference plans for the simulated Jitsi side.
//!
//! In: the shape (speakers, duration, or the large audio-only case) and a seed. Out:
//! [`ConferencePlan`]s. Pure: the same seed gives the same plans, so two commits are
//! measured on the same conversations.
//!
//! The talk model follows the classic on/off speech model: each speaker alternates talk
//! spurts (exponential, mean 1.5 s, 0.4–6 s) and pauses (exponential plus 0.4 s), with a
//! per-speaker talk ratio drawn in 30–40 %; nothing is sent in a pause (DTX, or JVB dropping
//! silence). People join at staggered times, some late, some leave early, some reload the
//! page (leave and rejoin under a new endpoint id). A speaker starts talking only
//! [`TALK_AFTER_JOIN`] after joining (a new source must be renegotiated before its first
//! packet, as with Jicofo) and stops [`QUIET_BEFORE_LEAVE`] before leaving or the end.
//!
//! The large case: `participants` join evenly over `join_over`, every one with an audio
//! source; at any time `unmuted` of them send audio continuously (open microphones, the
//! worst case for the forwarding load), the unmuted set rotating every [`SHIFT`]. Speaker `i`
//! has tone `i mod T` (`T` = `unmuted`, at most [`LARGE_TONES`]) and each shift takes one
//! speaker of every tone, so no two people talking at once share a tone and the recording can
//! be checked tone by tone.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

use jitape_sim::bridge::TalkWindow;
use jitape_sim::loopback::MUC_DOMAIN;
use jitape_sim::plan::{ConferencePlan, SpeakerPlan, Stint, VoiceSpec};
use jitape_sim::voice::default_tone_hz;

/// Speakers talk only this long after joining (the source-add must be applied first).
pub const TALK_AFTER_JOIN: f64 = 3.0;
/// ... and stop this long before they leave or the room ends.
pub const QUIET_BEFORE_LEAVE: f64 = 2.0;
/// The shortest pause.
const MIN_PAUSE: f64 = 0.4;
const MIN_SPURT: f64 = 0.4;
const MAX_SPURT: f64 = 6.0;
const MEAN_SPURT: f64 = 1.5;
/// Talk ratio per speaker, drawn uniformly in this range.
pub const DUTY: (f64, f64) = (0.30, 0.40);
/// How long one unmuted set lasts in the large case.
pub const SHIFT: f64 = 15.0;
/// The most distinct tones, hence unmuted speakers at a time, in the large case: 220 Hz apart
/// from 440 Hz, all below 8 kHz (inside the band Opus keeps at 32 kbps).
pub const LARGE_TONES: usize = 34;

/// The room JID of benchmark conference `index`.
pub fn room_jid(index: usize) -> String {
    format!("bench{index:03}@{MUC_DOMAIN}")
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn window(a: f64, b: f64) -> TalkWindow {
    TalkWindow {
        start: secs(a),
        end: secs(b),
    }
}

/// An exponential draw with `mean`.
fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    let u: f64 = rng.random();
    -mean * (1.0 - u).ln()
}

/// Alternating pauses and talk spurts in `[from, to)` with talk ratio about `duty`.
pub fn talk_windows(rng: &mut StdRng, from: f64, to: f64, duty: f64) -> Vec<TalkWindow> {
    let mean_pause = (MEAN_SPURT * (1.0 - duty) / duty - MIN_PAUSE).max(0.1);
    let mut out = Vec::new();
    // Start at a random phase: some people start with a pause, some talking.
    let mut t = from + rng.random_range(0.0..MEAN_SPURT);
    while t < to {
        let spurt = exponential(rng, MEAN_SPURT).clamp(MIN_SPURT, MAX_SPURT);
        let end = (t + spurt).min(to);
        if end - t >= MIN_SPURT {
            out.push(window(t, end));
        }
        t = end + MIN_PAUSE + exponential(rng, mean_pause);
    }
    out
}

/// Total talk time of `windows`, in seconds.
pub fn talk_seconds(windows: &[TalkWindow]) -> f64 {
    windows
        .iter()
        .map(|w| (w.end.saturating_sub(w.start)).as_secs_f64())
        .sum()
}

fn endpoint(conference: usize, speaker: usize, stint: usize) -> String {
    let v = 0x1000_0000u32
        .wrapping_add((conference as u32) << 12)
        .wrapping_add((speaker as u32) << 4)
        .wrapping_add(stint as u32);
    format!("{v:08x}")
}

/// One ordinary conference: `speakers` people over `duration`, seeded by `(seed, index)`.
pub fn conference(index: usize, speakers: usize, duration: Duration, seed: u64) -> ConferencePlan {
    let mut rng = StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let end = duration.as_secs_f64();
    let mut plan = ConferencePlan::empty(&room_jid(index), end);
    plan.bridge.seed = seed.wrapping_add(index as u64);
    for k in 0..speakers {
        // Stints as (join, leave): the host is there throughout, others come and go.
        let mut spans: Vec<(f64, Option<f64>)> = Vec::new();
        let join = if k == 0 {
            0.0
        } else if end >= 60.0 && rng.random_bool(0.25) {
            rng.random_range(0.1 * end..0.4 * end)
        } else {
            rng.random_range(0.0..2.0)
        };
        let leave = (k > 0 && end >= 60.0 && rng.random_bool(0.25))
            .then(|| rng.random_range(0.6 * end..0.9 * end));
        // A page reload: out for a few seconds, back under a new endpoint id.
        let reload = (k > 0 && end >= 60.0 && rng.random_bool(0.2)).then(|| {
            let at = rng.random_range(join + 10.0..join + 10.0 + 0.3 * end);
            (at, at + rng.random_range(2.0..8.0))
        });
        match reload {
            Some((out, back)) if back < leave.unwrap_or(end) - 10.0 => {
                spans.push((join, Some(out)));
                spans.push((back, leave));
            }
            _ => spans.push((join, leave)),
        }
        let duty = rng.random_range(DUTY.0..DUTY.1);
        let mut stints = Vec::new();
        let mut talk = Vec::new();
        for (n, (a, b)) in spans.iter().enumerate() {
            stints.push(Stint {
                endpoint: endpoint(index, k, n),
                join_at: secs(*a),
                leave_at: b.map(secs),
                knock: false,
            });
            let from = (a + TALK_AFTER_JOIN).max(TALK_AFTER_JOIN);
            let to = b.unwrap_or(end).min(end) - QUIET_BEFORE_LEAVE;
            if to > from {
                talk.extend(talk_windows(&mut rng, from, to, duty));
            }
        }
        plan.speakers.push(SpeakerPlan {
            display_name: format!("Speaker {}", k + 1),
            voice: VoiceSpec::Tone(default_tone_hz(k)),
            stats_id: format!("stats-{index}-{k}"),
            stints,
            talk,
            identity: None,
            hidden_from_recorder: false,
        });
    }
    plan
}

/// The large audio-only conference.
#[derive(Debug, Clone, PartialEq)]
pub struct LargeShape {
    pub participants: usize,
    /// How many send audio at any time.
    pub unmuted: usize,
    /// Everyone has joined after this long (evenly spread).
    pub join_over: Duration,
    pub duration: Duration,
}

impl Default for LargeShape {
    fn default() -> Self {
        LargeShape {
            participants: 500,
            unmuted: 20,
            join_over: Duration::from_secs(60),
            duration: Duration::from_secs(180),
        }
    }
}

/// The large conference's plan (room `index`).
pub fn large_conference(index: usize, shape: &LargeShape, seed: u64) -> ConferencePlan {
    let end = shape.duration.as_secs_f64();
    let n = shape.participants.max(1);
    let join_at = |i: usize| shape.join_over.as_secs_f64() * i as f64 / n as f64;
    let tones = shape.unmuted.clamp(1, LARGE_TONES);
    let mut talk: Vec<Vec<TalkWindow>> = vec![Vec::new(); n];
    let mut shift = 0usize;
    loop {
        let start = TALK_AFTER_JOIN + shift as f64 * SHIFT;
        let stop = (start + SHIFT - 1.0).min(end - QUIET_BEFORE_LEAVE);
        if stop - start < 1.0 {
            break;
        }
        // Who can talk in this shift: joined long enough before it starts.
        let eligible = (0..n)
            .take_while(|&i| join_at(i) + TALK_AFTER_JOIN <= start)
            .count();
        // One speaker of each tone `r`, taking turns among those with that tone.
        for r in 0..shape.unmuted.min(tones).min(eligible) {
            let with_tone = (eligible - 1 - r) / tones + 1;
            let who = r + tones * (shift % with_tone);
            talk[who].push(window(start, stop));
        }
        shift += 1;
    }
    let mut plan = ConferencePlan::empty(&room_jid(index), end);
    plan.bridge.seed = seed;
    plan.speakers = talk
        .into_iter()
        .enumerate()
        .map(|(i, windows)| SpeakerPlan {
            display_name: format!("Listener {}", i + 1),
            voice: VoiceSpec::Tone(default_tone_hz(i % tones)),
            stats_id: format!("stats-large-{i}"),
            stints: vec![Stint {
                endpoint: endpoint(index, i, 0),
                join_at: secs(join_at(i)),
                leave_at: None,
                knock: false,
            }],
            talk: windows,
            identity: None,
            hidden_from_recorder: false,
        })
        .collect();
    plan
}

#[cfg(test)]
mod tests;
