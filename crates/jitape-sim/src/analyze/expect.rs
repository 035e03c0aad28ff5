//! What a correct recording of a played conference holds, frame by frame, on the file's
//! timeline: for every tone, where it must sound at its level (`on`), where anything from
//! concealment to silence is right (`free`), and silence everywhere else.
//!
//! In: the conference outcome (the plan, and per bridge session which frames reached the wire
//! and which the network emulator dropped) and the sidecar's start time. Out: an [`Expected`].
//!
//! The model, from the sender's side only (never from jitape's behaviour):
//! - frame `k` holds what was spoken in `[k, k + 1) × 20 ms` after the epoch; decoded, its
//!   audio lags by the encoder's look-ahead `L` (6.5 ms), which a recorder removes, so a
//!   delivered frame sounds at `[k × 20 ms − L, (k + 1) × 20 ms − L)`; the first frame of a
//!   talk spurt (RTP marker, the voice's onset frame) starts with `L` of encoder pre-roll, so
//!   its tone starts at `k × 20 ms`;
//! - only what a speaker says inside their audible windows (in the room, not hidden) counts;
//! - frames the emulated network dropped may be concealed (FEC/PLC) for up to [`PLC_MAX`]
//!   after the last delivered audio, or be silence; after that they are silence; the decoder
//!   recovers on the first delivered frame after a loss (see [`RECOVERY`]);
//! - two speakers of the same tone at once cannot be told apart (their sum depends on phase):
//!   that stretch is `free`; so is any silence shorter than [`MIN_GAP`] between sounds.
//!
//! File time `t` is plan time `t − (epoch − start)`: both are wall clocks of this machine
//! (the simulation reads `SystemTime` next to its `Instant` epoch; jitape reads `Utc::now()`
//! next to the `Instant` of its sample 0), so they relate to microseconds, except that the
//! sidecar keeps the start truncated to the millisecond: the real sample 0 lies in
//! `[start, start + 1 ms)`, and the model takes its middle (±0.5 ms).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::bridge::SentSpeaker;
use crate::plan::{TONE_AMPLITUDE, VoiceSpec};
use crate::voice;
use crate::world::ConferenceOutcome;
use jitape::sink::Sidecar;

/// One RTP packet: 20 ms.
pub const TICK: Duration = Duration::from_millis(20);
/// The longest loss a recorder conceals (jitape's `plc_max` default, 100 ms); longer losses
/// are silence after it.
pub const PLC_MAX: f64 = 0.100;
/// After a loss, libopus needs the next frame to recover: decoding the simulation's tone with
/// one to five frames lost (FEC for the last, PLC before it, as a recorder should), the tone
/// stays below half its level for up to 24 ms after the lost ones; and for up to 65 ms when
/// the loss falls in the first half second of a talk spurt, while the voice's encoder still
/// settles (`recovery_fits_opus` in the tests measures it). A decoder started afresh after
/// a longer loss needs nothing (its onset is within 4 ms).
pub const RECOVERY: f64 = 0.025;
pub const EARLY_RECOVERY: f64 = 0.080;
/// How many frames into a talk spurt a loss counts as early.
pub const EARLY_FRAMES: u64 = 25;
/// Silences shorter than this between sounds are not checked (a 20 ms analysis window
/// cannot see them; a new session's onset frame leaves one of `L` after the old session's
/// last frame).
pub const MIN_GAP: f64 = 0.020;

/// One voice frequency and where it must be heard (seconds on the file's timeline).
#[derive(Debug, Clone, PartialEq)]
pub struct ToneExpect {
    /// The speakers with this tone.
    pub names: Vec<String>,
    pub hz: f32,
    /// The tone's amplitude (fraction of full scale).
    pub amplitude: f64,
    /// Where the tone sounds at its amplitude.
    pub on: Vec<(f64, f64)>,
    /// Where concealment or silence are both right.
    pub free: Vec<(f64, f64)>,
}

/// A whole recording's expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub tones: Vec<ToneExpect>,
    /// Sound that is not a tone (WAV voices) may be here.
    pub other: Vec<(f64, f64)>,
    /// The file's expected duration (the wall time from its start to the room's end).
    pub duration: f64,
    /// The longest duration that is still right: the room ended somewhere between the
    /// simulation sending its destruction and the server confirming it (equal to
    /// `duration` when that is not known).
    pub latest_duration: f64,
}

/// What one speaker's frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Delivered { onset: bool },
    Lost,
}

impl Expected {
    /// The expectation for a recording of `outcome` whose sidecar is `sidecar`.
    pub fn from_outcome(
        outcome: &ConferenceOutcome,
        sidecar: &Sidecar,
    ) -> Result<Expected, String> {
        let lookahead = voice::lookahead()
            .map_err(|e| format!("voice look-ahead: {e}"))?
            .as_secs_f64();
        let offset = file_offset(outcome, sidecar);
        // The room ends when the simulation destroyed it (on a busy machine a little after
        // the plan said): the recorder can only end the file after that.
        let end = outcome.ended.unwrap_or(outcome.plan.end_at);
        let duration = offset + end.as_secs_f64();
        let latest_duration = outcome
            .end_confirmed
            .map_or(duration, |c| (offset + c.as_secs_f64()).max(duration));
        let frames = frames_per_speaker(outcome);
        let mut tones: Vec<ToneExpect> = Vec::new();
        let mut other = Vec::new();
        for (i, sp) in outcome.plan.speakers.iter().enumerate() {
            let (on, free) = zones(frames.get(&i), lookahead);
            let shift = |v: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
                v.into_iter()
                    .map(|(a, b)| (a + offset, (b + offset).min(duration)))
                    .filter(|(a, b)| a < b)
                    .collect()
            };
            let (on, free) = (shift(on), shift(free));
            let VoiceSpec::Tone(hz) = sp.voice else {
                other.extend(on.into_iter().chain(free));
                continue;
            };
            let one = ToneExpect {
                names: vec![sp.display_name.clone()],
                hz,
                amplitude: f64::from(TONE_AMPLITUDE),
                on,
                free,
            };
            match tones.iter_mut().find(|t| t.hz == hz) {
                Some(t) => t.merge(one),
                None => tones.push(one),
            }
        }
        for t in &mut tones {
            t.settle();
        }
        other = union(other);
        Ok(Expected {
            tones,
            other,
            duration,
            latest_duration,
        })
    }

    /// Only the tone of speaker `name` (every other tone must then be absent): what that
    /// speaker's stem holds.
    pub fn only(mut self, name: &str) -> Expected {
        for t in &mut self.tones {
            if !t.names.iter().any(|n| n == name) {
                t.on.clear();
                t.free.clear();
            }
        }
        self.other.clear();
        self
    }

    /// Nothing is expected inside `spans` (seconds of the file): stretches the recorder could
    /// not record and lists as such (a `jitape-restart` gap: what a killed process held in
    /// memory died with it). Whoever calls this bounds those stretches separately.
    pub fn without(mut self, spans: &[(f64, f64)]) -> Expected {
        let spans = union(spans.to_vec());
        for t in &mut self.tones {
            t.on = subtract(&t.on, &spans);
            t.free = subtract(&t.free, &spans);
        }
        self.other = subtract(&self.other, &spans);
        self
    }

    /// Nothing is expected after `end` seconds of the file (a recording cut short there).
    pub fn until(mut self, end: f64) -> Expected {
        let cut = |v: &mut Vec<(f64, f64)>| {
            v.retain(|(a, _)| *a < end);
            for iv in v.iter_mut() {
                iv.1 = iv.1.min(end);
            }
        };
        for t in &mut self.tones {
            cut(&mut t.on);
            cut(&mut t.free);
        }
        cut(&mut self.other);
        self.duration = self.duration.min(end);
        self.latest_duration = self.latest_duration.min(end);
        self
    }
}

impl ToneExpect {
    /// Adds another speaker of the same tone: where both sound, nothing can be checked.
    pub(super) fn merge(&mut self, other: ToneExpect) {
        let both = intersect(&self.on, &other.on);
        self.names.extend(other.names);
        self.on = subtract(&union([self.on.clone(), other.on].concat()), &both);
        self.free = union([self.free.clone(), other.free, both].concat());
    }

    /// `free` never overlaps `on`, and short silences between sounds become `free`.
    pub(super) fn settle(&mut self) {
        self.on = union(std::mem::take(&mut self.on));
        let mut free = subtract(&union(std::mem::take(&mut self.free)), &self.on);
        let mut all = union([self.on.clone(), free.clone()].concat());
        all.sort_by(|x, y| x.0.total_cmp(&y.0));
        for pair in all.windows(2) {
            let gap = (pair[0].1, pair[1].0);
            if gap.1 > gap.0 && gap.1 - gap.0 < MIN_GAP {
                free.push(gap);
            }
        }
        self.free = union(free);
    }
}

/// The talk windows the simulation started late ([`sent_late`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SentLate {
    /// How many windows.
    pub windows: usize,
    /// Their spans in the file (seconds), overlapping ones joined.
    pub spans: Vec<(f64, f64)>,
}

/// Where the simulation itself fell behind its schedule: every talk window whose first packet
/// the sender handed to its stack more than `min_late` after that frame's scheduled moment,
/// as a span of the file (seconds) from the window's scheduled start to its scheduled end plus
/// that lateness, widened by `pad` on both sides.
///
/// The plan cannot say where such a window belongs in a correct recording: a receiver places
/// a spurt that starts after a pause where its first packet arrived, unless the packets before
/// the pause came equally late (then where it was spoken; jitape's `audio/clock.rs`). A
/// benchmark that overloads the machine makes the simulation late too, and without this its
/// lateness reads as the recorder's. What the sender's own stack adds before the kernel is not
/// seen here: the spans are the lateness known for certain, not all of it.
pub fn sent_late(
    outcome: &ConferenceOutcome,
    sidecar: &Sidecar,
    min_late: Duration,
    pad: f64,
) -> SentLate {
    let offset = file_offset(outcome, sidecar);
    let mut spans = Vec::new();
    for log in &outcome.sent {
        let Some(epoch) = log.epoch else { continue };
        for w in log.speakers.iter().flat_map(|sp| &sp.windows) {
            let Some(late) = w.lateness(epoch).filter(|late| *late > min_late) else {
                continue;
            };
            let (a, b) = (w.window.start.as_secs_f64(), w.window.end.as_secs_f64());
            spans.push((
                (offset + a - pad).max(0.0),
                offset + b + late.as_secs_f64() + pad,
            ));
        }
    }
    SentLate {
        windows: spans.len(),
        spans: union(spans),
    }
}

/// Where the conference's epoch lies in the file (seconds), for the expectation and for
/// [`sent_late`] alike.
fn file_offset(outcome: &ConferenceOutcome, sidecar: &Sidecar) -> f64 {
    seconds_between(sidecar.start.utc, outcome.wall_epoch) - 0.0005
}

fn seconds_between(start: DateTime<Utc>, t: SystemTime) -> f64 {
    let t: DateTime<Utc> = t.into();
    (t - start).num_microseconds().unwrap_or(0) as f64 / 1e6
}

/// Per speaker (index in the plan), the fate of every frame inside their audible windows.
fn frames_per_speaker(outcome: &ConferenceOutcome) -> BTreeMap<usize, BTreeMap<u64, Frame>> {
    let audible = outcome.plan.audible();
    let speaker_of = |endpoint: &str| {
        outcome
            .plan
            .speakers
            .iter()
            .position(|sp| sp.stints.iter().any(|st| st.endpoint == endpoint))
    };
    let mut out: BTreeMap<usize, BTreeMap<u64, Frame>> = BTreeMap::new();
    let nothing_sent = outcome.sent.iter().flat_map(|log| &log.speakers).all(|s| {
        s.windows.is_empty()
            && s.wire
                .as_ref()
                .is_none_or(|w| w.delivered.is_empty() && w.lost.is_empty())
    });
    if nothing_sent {
        // No bridge session ever sent (jitape never took one): every talk window counts.
        for (i, (_, windows)) in audible.iter().enumerate() {
            let frames = out.entry(i).or_default();
            for w in windows {
                let first = ticks_from(w.start);
                for k in first..ticks_from(w.end) {
                    frames.insert(k, Frame::Delivered { onset: k == first });
                }
            }
        }
        return out;
    }
    for sent in outcome.sent.iter().flat_map(|log| &log.speakers) {
        let Some(i) = speaker_of(&sent.endpoint) else {
            continue;
        };
        let windows = &audible[i].1;
        let heard = |k: u64| {
            let t = TICK.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX));
            windows.iter().any(|w| w.start <= t && t < w.end)
        };
        let frames = out.entry(i).or_default();
        for (k, frame) in sent_frames(sent) {
            if !heard(k) {
                continue;
            }
            let slot = frames.entry(k).or_insert(frame);
            if let (Frame::Lost, Frame::Delivered { .. }) = (*slot, frame) {
                *slot = frame;
            }
        }
    }
    out
}

/// The first tick at or after `t`.
fn ticks_from(t: Duration) -> u64 {
    let tick = TICK.as_nanos();
    u64::try_from(t.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX)
}

/// Every frame one session's speaker put on the wire or lost there. Without a wire log each
/// window's frames from its first tick count as delivered, except those the sender logged as
/// skipped (an external bridge logs none).
///
/// A frame inside a talk window that is neither on the wire nor lost there is one the sender
/// skipped (it fell behind after a stall: `MAX_BURST` in the simulated bridge's sender). Its
/// RTP time passes with no packet, the sequence numbers stay contiguous, and a receiver
/// conceals it like a lost one (jitape's `Source::conceal`), so it counts as lost.
fn sent_frames(sent: &SentSpeaker) -> Vec<(u64, Frame)> {
    let mut out = Vec::new();
    match &sent.wire {
        Some(wire) => {
            let mut seen = BTreeSet::new();
            for &(a, b) in &wire.delivered {
                for k in a..=b {
                    let onset = wire.onsets.binary_search(&k).is_ok();
                    out.push((k, Frame::Delivered { onset }));
                    seen.insert(k);
                }
            }
            for &(a, b) in &wire.lost {
                out.extend((a..=b).map(|k| (k, Frame::Lost)));
                seen.extend(a..=b);
            }
            for w in &sent.windows {
                let skipped = (w.first_tick..=w.last_tick).filter(|k| !seen.contains(k));
                out.extend(skipped.map(|k| (k, Frame::Lost)));
            }
        }
        None => {
            let skipped = |k: u64| sent.skipped.iter().any(|&(a, b)| a <= k && k <= b);
            for w in &sent.windows {
                for k in w.first_tick..=w.last_tick.max(w.first_tick) {
                    let frame = if skipped(k) {
                        Frame::Lost
                    } else {
                        Frame::Delivered {
                            onset: k == w.first_tick,
                        }
                    };
                    out.push((k, frame));
                }
            }
        }
    }
    out
}

/// Intervals in seconds.
type Spans = Vec<(f64, f64)>;

/// One speaker's `(on, free)` zones in plan seconds.
fn zones(frames: Option<&BTreeMap<u64, Frame>>, lookahead: f64) -> (Spans, Spans) {
    let (mut on, mut free, mut recovering) = (Vec::new(), Vec::new(), Vec::new());
    let Some(frames) = frames else {
        return (on, free);
    };
    let ticks: Vec<(u64, Frame)> = frames.iter().map(|(k, f)| (*k, *f)).collect();
    // Each run of consecutive frames is one talk spurt as the sender sent it.
    for spurt in ticks.chunk_by(|a, b| a.0 + 1 == b.0) {
        spurt_zones(spurt, lookahead, &mut on, &mut free, &mut recovering);
    }
    let recovering = union(recovering);
    let on = subtract(&union(on), &recovering);
    free.extend(recovering);
    (on, union(free))
}

/// The zones of one talk spurt (consecutive frames, the first the sender's onset).
fn spurt_zones(
    spurt: &[(u64, Frame)],
    lookahead: f64,
    on: &mut Vec<(f64, f64)>,
    free: &mut Vec<(f64, f64)>,
    recovering: &mut Vec<(f64, f64)>,
) {
    let tick = TICK.as_secs_f64();
    let first = spurt.first().map_or(0, |f| f.0);
    // End of the audio of the last delivered frame, and where the current loss began.
    let mut last_sound: Option<f64> = None;
    let mut lost_since: Option<u64> = None;
    for (i, &(k, frame)) in spurt.iter().enumerate() {
        let start = k as f64 * tick - lookahead;
        let end = start + tick;
        match frame {
            Frame::Delivered { onset } => {
                let sound = if onset && k == first {
                    start + lookahead
                } else {
                    start
                };
                if let Some(p) = lost_since.take() {
                    let concealed = last_sound.is_some() && (k - p) as f64 * tick <= PLC_MAX;
                    let allowance = if k - first < EARLY_FRAMES {
                        EARLY_RECOVERY
                    } else if concealed {
                        RECOVERY
                    } else {
                        0.0
                    };
                    recovering.push((sound, sound + allowance));
                }
                on.push((sound, end));
                last_sound = Some(end);
            }
            Frame::Lost => {
                lost_since.get_or_insert(k);
                match last_sound {
                    // Concealment for up to PLC_MAX after the last delivered audio.
                    Some(s) => free.push((start, end.min(s + PLC_MAX).max(start))),
                    // A loss at a spurt's start: only the frame right before a delivered one
                    // can be recovered (FEC); the rest is silence.
                    None => {
                        if matches!(spurt.get(i + 1), Some((_, Frame::Delivered { .. }))) {
                            free.push((start, end));
                        }
                    }
                }
            }
        }
    }
}

/// Sorted, merged intervals (touching ones joined).
pub(super) fn union(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    v.retain(|(a, b)| b > a);
    v.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 + 1e-9 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The parts of sorted `a` that overlap sorted `b`.
pub(super) fn intersect(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let (s, e) = (x.0.max(y.0), x.1.min(y.1));
            if s < e {
                out.push((s, e));
            }
        }
    }
    union(out)
}

/// The parts of sorted `a` outside sorted `b`.
pub(super) fn subtract(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for &(mut s, e) in a {
        for y in b {
            if y.1 <= s || y.0 >= e {
                continue;
            }
            if y.0 > s {
                out.push((s, y.0));
            }
            s = s.max(y.1);
        }
        if s < e {
            out.push((s, e));
        }
    }
    out
}
