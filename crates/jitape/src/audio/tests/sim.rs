//! Test senders, network impairments, the driver loop and tone detection for the audio tests.
//!
//! A sender captures 20 ms frames of its own clock (optionally skewed), encodes them with
//! libopus (48 kHz mono, VOIP, in-band FEC on) and sends each frame when it is complete; the
//! network adds delay, jitter, loss, reordering and duplicates; the driver pushes packets at
//! their arrival and renders at a steady pace, all in synthetic time.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::audio::{Rendered, SpeechEvent, Timeline, TrackId};
use crate::media::packet::RtpPacket;

pub const PT: u8 = 111;
pub const FRAME: usize = 960;

/// A tone in the sender's capture time (relative to the test's base instant).
#[derive(Debug, Clone, Copy)]
pub struct Tone {
    pub freq: f64,
    pub from: Duration,
    pub to: Duration,
    pub amp: f64,
}

pub fn tone(freq: f64, from_ms: u64, to_ms: u64) -> Tone {
    Tone {
        freq,
        from: ms(from_ms),
        to: ms(to_ms),
        amp: 8000.0,
    }
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// How a sender behaves between its tones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gaps {
    /// Every frame is sent, silence too.
    SendSilence,
    /// Silent frames are dropped by the bridge: sequence numbers and timestamps jump.
    BridgeDrops,
    /// Opus DTX: sequence numbers stay contiguous, timestamps jump.
    Dtx,
    /// The sender neither sends nor advances its RTP clock while silent.
    FrozenClock,
}

#[derive(Debug, Clone)]
pub struct Sender {
    pub ssrc: u32,
    pub seq0: u16,
    pub ts0: u32,
    pub tones: Vec<Tone>,
    /// Capture of the first frame starts here (relative to base).
    pub start: Duration,
    pub end: Duration,
    pub gaps: Gaps,
    /// Sender clock error in parts per million (positive: its RTP clock runs fast).
    pub skew_ppm: f64,
}

impl Sender {
    pub fn new(ssrc: u32, tones: Vec<Tone>, end: Duration) -> Self {
        Sender {
            ssrc,
            seq0: 1000,
            ts0: 123_456,
            tones,
            start: Duration::ZERO,
            end,
            gaps: Gaps::BridgeDrops,
            skew_ppm: 0.0,
        }
    }

    fn wall(&self, sender_samples: u64) -> f64 {
        self.start.as_secs_f64() + sender_samples as f64 / 48_000.0 / (1.0 + self.skew_ppm * 1e-6)
    }

    fn pcm(&self, k: u64) -> (Vec<i16>, bool) {
        let mut any = false;
        let pcm = (0..FRAME as u64)
            .map(|i| {
                let t = self.wall(k * FRAME as u64 + i);
                let mut x = 0.0;
                for tone in &self.tones {
                    if t >= tone.from.as_secs_f64() && t < tone.to.as_secs_f64() {
                        x += tone.amp * (2.0 * PI * tone.freq * t).sin();
                        any = true;
                    }
                }
                x.clamp(-32767.0, 32767.0) as i16
            })
            .collect();
        (pcm, any)
    }

    /// Every packet the sender emits, with `arrival` = the instant it was sent.
    pub fn packets(&self, base: Instant) -> Vec<RtpPacket> {
        let mut enc = encoder();
        let mut out = Vec::new();
        let (mut seq, mut ts) = (self.seq0, self.ts0);
        // Like a browser after silence (DTX), the first packet of a talk spurt is marked.
        let mut sending = false;
        for k in 0.. {
            let sent = self.wall((k + 1) * FRAME as u64);
            if sent > self.end.as_secs_f64() {
                break;
            }
            let (pcm, voiced) = self.pcm(k);
            let payload = enc
                .encode_vec(&pcm, 1500)
                .unwrap_or_else(|e| panic!("encode: {e}"));
            let send = voiced || self.gaps == Gaps::SendSilence;
            if send {
                let mut p = packet(
                    self.ssrc,
                    seq,
                    ts,
                    payload,
                    base + Duration::from_secs_f64(sent),
                );
                p.marker = !sending;
                out.push(p);
            }
            sending = send;
            if send || matches!(self.gaps, Gaps::BridgeDrops) {
                seq = seq.wrapping_add(1);
            }
            if send || !matches!(self.gaps, Gaps::FrozenClock) {
                ts = ts.wrapping_add(FRAME as u32);
            }
        }
        out
    }
}

pub fn encoder() -> opus::Encoder {
    let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
        .unwrap_or_else(|e| panic!("encoder: {e}"));
    enc.set_inband_fec(true).unwrap_or_else(|e| panic!("{e}"));
    enc.set_packet_loss_perc(10)
        .unwrap_or_else(|e| panic!("{e}"));
    enc.set_bitrate(opus::Bitrate::Bits(32_000))
        .unwrap_or_else(|e| panic!("{e}"));
    enc.set_signal(opus::Signal::Voice)
        .unwrap_or_else(|e| panic!("{e}"));
    enc
}

pub fn packet(
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    payload: Vec<u8>,
    arrival: Instant,
) -> RtpPacket {
    RtpPacket {
        ssrc: crate::types::Ssrc(ssrc),
        sequence,
        timestamp,
        payload_type: PT,
        marker: false,
        audio_level: None,
        voice: None,
        payload,
        arrival,
    }
}

/// Network conditions between sender and recorder.
#[derive(Debug, Clone, Copy)]
pub struct Net {
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: f64,
    pub reorder: f64,
    pub duplicate: f64,
    pub seed: u64,
}

impl Net {
    pub fn clean() -> Self {
        Net {
            delay: ms(5),
            jitter: Duration::ZERO,
            loss: 0.0,
            reorder: 0.0,
            duplicate: 0.0,
            seed: 1,
        }
    }

    /// Applies the conditions; the result is sorted by arrival.
    pub fn apply(&self, packets: Vec<RtpPacket>) -> Vec<RtpPacket> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut out = Vec::with_capacity(packets.len() * 11 / 10);
        for mut p in packets {
            if rng.random_bool(self.loss) {
                continue;
            }
            let mut delay = self.delay + self.jitter.mul_f64(rng.random::<f64>());
            if rng.random_bool(self.reorder) {
                delay += ms(rng.random_range(25..70));
            }
            p.arrival += delay;
            if rng.random_bool(self.duplicate) {
                let mut copy = p.clone();
                copy.arrival += ms(rng.random_range(1..60));
                out.push(copy);
            }
            out.push(p);
        }
        out.sort_by_key(|p| p.arrival);
        out
    }
}

/// Everything the timeline produced, concatenated.
#[derive(Debug, Default)]
pub struct Output {
    pub start_sample: u64,
    pub mix: Vec<i16>,
    pub stems: BTreeMap<TrackId, Vec<i16>>,
    pub speech: Vec<SpeechEvent>,
}

impl Output {
    pub fn append(&mut self, r: Rendered) {
        assert_eq!(
            r.start_sample,
            self.start_sample + self.mix.len() as u64,
            "chunks are contiguous"
        );
        for (track, stem) in r.stems {
            assert_eq!(stem.len(), r.mix.len(), "stem as long as the mix");
            let s = self.stems.entry(track).or_default();
            s.resize(self.mix.len(), 0);
            s.extend_from_slice(&stem);
        }
        self.mix.extend_from_slice(&r.mix);
        self.speech.extend(r.speech);
    }
}

/// Pushes each packet at its arrival and renders every `step` until `base + until`
/// (+ the playout delay, so the whole `until` is rendered).
pub fn drive(
    tl: &mut Timeline,
    packets: &[RtpPacket],
    base: Instant,
    until: Duration,
    step: Duration,
) -> Output {
    let read: Vec<Instant> = packets.iter().map(|p| p.arrival).collect();
    drive_read(tl, packets, &read, base, until, step)
}

/// As [`drive`], but each packet is pushed when jitape reads it (`read`, non-decreasing, one
/// per packet), which may be later than its arrival.
pub fn drive_read(
    tl: &mut Timeline,
    packets: &[RtpPacket],
    read: &[Instant],
    base: Instant,
    until: Duration,
    step: Duration,
) -> Output {
    let mut out = Output {
        start_sample: tl.rendered_until(),
        ..Output::default()
    };
    let last = base + until + tl.config().late_window.get();
    let mut next = 0;
    let mut now = base;
    loop {
        while let Some(p) = packets.get(next).filter(|_| read[next] <= now) {
            tl.push(p);
            next += 1;
        }
        out.append(tl.render(now));
        if now >= last {
            break;
        }
        now = (now + step).min(last);
    }
    out
}

/// Amplitude of `freq` in `pcm[from .. from + len]` (Goertzel).
pub fn amplitude(pcm: &[i16], rate: u32, freq: f64, from: usize, len: usize) -> f64 {
    let w = 2.0 * PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm.iter().skip(from).take(len) {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / len.max(1) as f64
}

/// Per 5 ms window: is `freq` present above `threshold` amplitude?
pub fn presence(pcm: &[i16], rate: u32, freq: f64, threshold: f64) -> Vec<bool> {
    let win = (rate / 200) as usize;
    (0..pcm.len() / win)
        .map(|i| amplitude(pcm, rate, freq, i * win, win) > threshold)
        .collect()
}

/// The runs of presence as (start, end) in ms, merging holes up to `merge_ms`.
pub fn runs(present: &[bool], merge_ms: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (i, &p) in present.iter().enumerate() {
        if !p {
            continue;
        }
        let t = i as u64 * 5;
        match runs.last_mut() {
            Some(last) if t <= last.1 + merge_ms => last.1 = t + 5,
            _ => runs.push((t, t + 5)),
        }
    }
    runs
}

/// The longest stretch without `freq` inside `[from_ms, to_ms)`, in ms.
pub fn longest_hole(present: &[bool], from_ms: u64, to_ms: u64) -> u64 {
    let (mut longest, mut cur) = (0, 0);
    for p in present
        .iter()
        .take((to_ms / 5) as usize)
        .skip((from_ms / 5) as usize)
    {
        cur = if *p { 0 } else { cur + 5 };
        longest = longest.max(cur);
    }
    longest
}

pub fn assert_near(what: &str, got_ms: u64, want_ms: u64, tolerance_ms: u64) {
    let diff = got_ms.abs_diff(want_ms);
    assert!(
        diff <= tolerance_ms,
        "{what}: at {got_ms} ms, expected {want_ms} ms ± {tolerance_ms}"
    );
}
