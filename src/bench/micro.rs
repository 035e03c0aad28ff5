//! Micro-benchmarks of the hot stages, each measured against the real time its work
//! represents: Opus decode per 20 ms packet, the timeline's mixing (sum, voice activity,
//! limiter), FLAC encoding per second of audio, the receive path per packet (SRTP decrypt
//! with webrtc-rs's SRTP context, RTP parse, conversion to jitape's packet), and the whole
//! per-conference pipeline (jitter buffer + decode + timeline + mix + FLAC) against its
//! lower bound, decoding the same packets and nothing else.
//!
//! In: nothing (the inputs are synthesised: speech-like voices encoded like the simulated
//! bridge's, a 4-speaker conversation from [`super::scenario`]). Out: workloads with a
//! `step` that does one unit of work, used by `benches/stages.rs` (criterion) and by
//! `jitape bench --micro` ([`run_all`]), which prints multiples of real time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::{SeedableRng, rngs::StdRng};
use rtc::shared::marshal::{Marshal, Unmarshal};
use serde::Serialize;

use super::scenario::{DUTY, talk_windows};
use jitape::audio::{AudioSettings, Timeline, TrackId};
use jitape::media::RtpPacket;
use jitape::sink::FlacWriter;
use jitape_sim::voice::{FRAME_SAMPLES, SAMPLE_RATE, Voice};

/// A speech-like signal: a voiced source (harmonics of a gliding pitch) shaped by a
/// syllabic envelope, with a little noise; `pitch` in Hz.
pub fn speech_like(seconds: f64, pitch: f64) -> Vec<f32> {
    let n = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let mut noise = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            let f0 = pitch * (1.0 + 0.08 * (2.0 * std::f64::consts::PI * 0.7 * t).sin());
            let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.5 * t).sin().abs();
            let voiced: f64 = (1..16)
                .map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64)
                .sum();
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let hiss = (f64::from(noise) / f64::from(u32::MAX) - 0.5) * 0.05;
            (0.25 * env * voiced + hiss) as f32
        })
        .collect()
}

/// `seconds` of speech at `pitch` as Opus packets, encoded like the simulated bridge's voices.
pub fn opus_packets(seconds: f64, pitch: f64) -> Vec<Vec<u8>> {
    let voice = Voice::from_pcm(&speech_like(seconds, pitch)).unwrap_or_else(|e| {
        panic!("encoding a synthetic voice failed: {e}");
    });
    (0..voice.len())
        .map(|i| voice.frame(i).opus.to_vec())
        .collect()
}

/// Opus decode of one 20 ms packet (48 kHz mono, as the audio stage does).
pub struct DecodeBench {
    decoder: opus::Decoder,
    packets: Vec<Vec<u8>>,
    next: usize,
    out: Vec<i16>,
}

impl DecodeBench {
    pub const UNIT: Duration = Duration::from_millis(20);

    pub fn new() -> Self {
        DecodeBench {
            decoder: opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)
                .unwrap_or_else(|e| panic!("opus decoder: {e}")),
            packets: opus_packets(5.0, 140.0),
            next: 0,
            out: vec![0; 5760],
        }
    }

    pub fn step(&mut self) -> usize {
        let p = &self.packets[self.next % self.packets.len()];
        self.next += 1;
        self.decoder.decode(p, &mut self.out, false).unwrap_or(0)
    }
}

impl Default for DecodeBench {
    fn default() -> Self {
        Self::new()
    }
}

/// The timeline's per-render work without decoding: four mapped, silent tracks summed,
/// voice-activity checked and limited, 100 ms at a time.
pub struct MixBench {
    timeline: Timeline,
    now: Instant,
}

impl MixBench {
    pub const UNIT: Duration = Duration::from_millis(100);

    pub fn new() -> Self {
        let origin = Instant::now();
        let mut timeline = Timeline::new(AudioSettings::default(), origin, 0)
            .unwrap_or_else(|e| panic!("timeline: {e}"));
        for k in 0..4 {
            let _ = timeline.map_source(jitape::types::Ssrc(1000 + k), TrackId(k));
        }
        MixBench {
            timeline,
            now: origin + AudioSettings::default().late_window.get(),
        }
    }

    pub fn step(&mut self) -> usize {
        self.now += Self::UNIT;
        self.timeline.render(self.now).mix.len()
    }
}

impl Default for MixBench {
    fn default() -> Self {
        Self::new()
    }
}

/// A FLAC writer in a private temporary directory, replaced every ten minutes of audio so a
/// long benchmark does not fill the disk.
pub struct FlacSink {
    dir: PathBuf,
    writer: Option<FlacWriter>,
    files: u32,
}

const ROTATE_SAMPLES: u64 = 600 * SAMPLE_RATE as u64;

impl FlacSink {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "jitape-micro-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        FlacSink {
            dir,
            writer: None,
            files: 0,
        }
    }

    pub fn write(&mut self, samples: &[i16]) {
        if self
            .writer
            .as_ref()
            .is_none_or(|w| w.samples_written() > ROTATE_SAMPLES)
        {
            if let Some(w) = self.writer.take() {
                let path = w.path().to_path_buf();
                drop(w);
                let _ = std::fs::remove_file(path);
            }
            self.files += 1;
            let path = self.dir.join(format!("{}.flac", self.files));
            self.writer = Some(
                FlacWriter::create(&path, SAMPLE_RATE).unwrap_or_else(|e| panic!("flac: {e}")),
            );
        }
        if let Some(w) = &mut self.writer {
            let _ = w.write(samples);
            let _ = w.flush();
        }
    }
}

impl Default for FlacSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlacSink {
    fn drop(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// FLAC encoding (and writing to the page cache) of 100 ms of audio.
pub struct FlacBench {
    sink: FlacSink,
    audio: Vec<i16>,
    next: usize,
}

impl FlacBench {
    pub const UNIT: Duration = Duration::from_millis(100);
    const CHUNK: usize = SAMPLE_RATE as usize / 10;

    /// `speech`: a decoded speech-like voice; otherwise digital silence (most of a
    /// conference's timeline).
    pub fn new(speech: bool) -> Self {
        let audio = if speech {
            speech_like(10.0, 140.0)
                .iter()
                .map(|s| (s * 32767.0) as i16)
                .collect()
        } else {
            vec![0; Self::CHUNK]
        };
        FlacBench {
            sink: FlacSink::new(),
            audio,
            next: 0,
        }
    }

    pub fn step(&mut self) -> usize {
        let chunks = self.audio.len() / Self::CHUNK;
        let at = (self.next % chunks.max(1)) * Self::CHUNK;
        self.next += 1;
        self.sink
            .write(&self.audio[at..(at + Self::CHUNK).min(self.audio.len())]);
        Self::CHUNK
    }
}

/// The receive path of one packet: SRTP decrypt (webrtc-rs's context), RTP parse, and the
/// conversion into jitape's [`RtpPacket`] (payload copied, audio level read).
pub struct SrtpBench {
    ctx: rtc::srtp::context::Context,
    encrypted: Vec<u8>,
}

const MASTER_KEY: [u8; 16] = [
    96, 180, 31, 4, 119, 137, 128, 252, 75, 194, 252, 44, 63, 56, 61, 55,
];
const MASTER_SALT: [u8; 14] = [247, 26, 49, 94, 99, 29, 79, 94, 5, 111, 252, 216, 62, 195];

impl SrtpBench {
    pub const UNIT: Duration = Duration::from_millis(20);

    /// `gcm`: AEAD AES-128-GCM (what browsers and JVB prefer); otherwise
    /// AES-128-CM-HMAC-SHA1-80 (the profile every WebRTC stack has).
    pub fn new(gcm: bool) -> Self {
        use rtc::srtp::protection_profile::ProtectionProfile;
        let provider = rtc::crypto::default_provider()
            .unwrap_or_else(|e| panic!("webrtc-rs has no crypto provider: {e}"));
        let (profile, salt) = if gcm {
            (ProtectionProfile::AeadAes128Gcm, &MASTER_SALT[..12])
        } else {
            (ProtectionProfile::Aes128CmHmacSha1_80, &MASTER_SALT[..])
        };
        let ctx = |_: ()| {
            rtc::srtp::context::Context::new(
                &MASTER_KEY,
                salt,
                profile,
                None,
                None,
                provider.crypto(),
            )
            .unwrap_or_else(|e| panic!("srtp context: {e}"))
        };
        let payload = opus_packets(0.1, 140.0).swap_remove(2);
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                extension: true,
                extension_profile: 0xBEDE,
                extensions: vec![rtc::rtp::header::Extension {
                    id: 1,
                    payload: bytes::Bytes::from_static(&[0x80 | 30]),
                }],
                payload_type: 111,
                sequence_number: 4711,
                timestamp: 960_000,
                ssrc: 0x1234_5678,
                ..Default::default()
            },
            payload: bytes::Bytes::from(payload),
        };
        let plain = packet
            .marshal()
            .unwrap_or_else(|e| panic!("rtp marshal: {e}"));
        let encrypted = ctx(())
            .encrypt_rtp(&plain)
            .unwrap_or_else(|e| panic!("srtp encrypt: {e}"))
            .to_vec();
        SrtpBench {
            ctx: ctx(()),
            encrypted,
        }
    }

    pub fn step(&mut self) -> usize {
        let Ok(plain) = self.ctx.decrypt_rtp(&self.encrypted) else {
            return 0;
        };
        let mut buf = &plain[..];
        let Ok(p) = rtc::rtp::Packet::unmarshal(&mut buf) else {
            return 0;
        };
        let level = p
            .header
            .extensions
            .iter()
            .find(|e| e.id == 1)
            .and_then(|e| e.payload.first().copied());
        let out = RtpPacket {
            ssrc: jitape::types::Ssrc(p.header.ssrc),
            sequence: p.header.sequence_number,
            timestamp: p.header.timestamp,
            payload_type: p.header.payload_type,
            marker: p.header.marker,
            audio_level: level.map(|b| b & 0x7f),
            voice: level.map(|b| b & 0x80 != 0),
            payload: p.payload.to_vec(),
            arrival: Instant::now(),
        };
        std::hint::black_box(&out);
        out.payload.len()
    }
}

/// A whole 4-speaker conference of [`PipelineBench::SECONDS`], as RTP packets with their
/// (synthetic) arrival offsets.
pub struct Conversation {
    /// (arrival offset, ssrc index, packet), in arrival order.
    pub packets: Vec<(Duration, usize, Vec<u8>, u16, u32)>,
    pub speakers: usize,
}

impl Conversation {
    pub fn new(speakers: usize, seconds: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut packets = Vec::new();
        for k in 0..speakers {
            let voice = opus_packets(4.0, 110.0 + 30.0 * k as f64);
            let duty = (DUTY.0 + DUTY.1) / 2.0;
            let mut seq: u16 = 1000;
            for w in talk_windows(&mut rng, 0.5, seconds - 0.5, duty) {
                let (a, b) = (w.start.as_millis() / 20, w.end.as_millis() / 20);
                for (i, tick) in (a..b).enumerate() {
                    let ts = (tick as u32).wrapping_mul(FRAME_SAMPLES as u32);
                    let arrival = Duration::from_millis(tick as u64 * 20 + 20);
                    let payload = voice[i % voice.len()].clone();
                    packets.push((arrival, k, payload, seq, ts));
                    seq = seq.wrapping_add(1);
                }
            }
        }
        packets.sort_by_key(|p| p.0);
        Conversation { packets, speakers }
    }
}

/// The per-conference pipeline: packets pushed into a fresh [`Timeline`] in arrival order,
/// rendered every 100 ms (as the conference task does), the mix written to FLAC.
pub struct PipelineBench {
    conversation: Conversation,
    sink: FlacSink,
}

impl PipelineBench {
    pub const SECONDS: f64 = 60.0;

    pub fn unit() -> Duration {
        Duration::from_secs_f64(Self::SECONDS)
    }

    pub fn new() -> Self {
        PipelineBench {
            conversation: Conversation::new(4, Self::SECONDS, 11),
            sink: FlacSink::new(),
        }
    }

    /// One whole conference; returns the samples written.
    pub fn step(&mut self) -> usize {
        let origin = Instant::now();
        let cfg = AudioSettings::default();
        let Ok(mut timeline) = Timeline::new(cfg.clone(), origin, 0) else {
            return 0;
        };
        for k in 0..self.conversation.speakers {
            let _ = timeline.map_source(jitape::types::Ssrc(1000 + k as u32), TrackId(k as u32));
        }
        let mut written = 0;
        let mut next = 0;
        let render_every = Duration::from_millis(100);
        let mut t = render_every;
        while t.as_secs_f64() <= Self::SECONDS + cfg.late_window.get().as_secs_f64() {
            while let Some((at, k, payload, seq, ts)) = self.conversation.packets.get(next) {
                if *at > t {
                    break;
                }
                timeline.push(&RtpPacket {
                    ssrc: jitape::types::Ssrc(1000 + *k as u32),
                    sequence: *seq,
                    timestamp: *ts,
                    payload_type: 111,
                    marker: false,
                    audio_level: None,
                    voice: None,
                    payload: payload.clone(),
                    arrival: origin + *at,
                });
                next += 1;
            }
            let r = timeline.render(origin + t);
            written += r.mix.len();
            self.sink.write(&r.mix);
            t += render_every;
        }
        written
    }
}

impl Default for PipelineBench {
    fn default() -> Self {
        Self::new()
    }
}

/// The lower bound of [`PipelineBench`]: decoding the same packets and, with `encode`,
/// FLAC-encoding the conference's length of their sum (what no recorder can avoid); nothing
/// else (no jitter buffer, no timeline, no voice activity).
pub struct LowerBoundBench {
    conversation: Conversation,
    out: Vec<i16>,
    sink: Option<FlacSink>,
    mix: Vec<i32>,
}

impl LowerBoundBench {
    pub fn new(encode: bool) -> Self {
        LowerBoundBench {
            conversation: Conversation::new(4, PipelineBench::SECONDS, 11),
            out: vec![0; 5760],
            sink: encode.then(FlacSink::new),
            mix: Vec::new(),
        }
    }

    pub fn step(&mut self) -> usize {
        let mut decoders: Vec<opus::Decoder> = (0..self.conversation.speakers)
            .filter_map(|_| opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).ok())
            .collect();
        let total = (PipelineBench::SECONDS * f64::from(SAMPLE_RATE)) as usize;
        if self.sink.is_some() {
            self.mix.clear();
            self.mix.resize(total, 0);
        }
        let mut n = 0;
        for (_, k, payload, _, ts) in &self.conversation.packets {
            let Some(d) = decoders.get_mut(*k) else {
                continue;
            };
            let got = d.decode(payload, &mut self.out, false).unwrap_or(0);
            n += got;
            if self.sink.is_some() {
                let at = *ts as usize;
                for (m, &x) in self.mix.iter_mut().skip(at).zip(&self.out[..got]) {
                    *m += i32::from(x);
                }
            }
        }
        if let Some(sink) = &mut self.sink {
            let pcm: Vec<i16> = self
                .mix
                .iter()
                .map(|&x| x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
                .collect();
            for chunk in pcm.chunks(SAMPLE_RATE as usize / 10) {
                sink.write(chunk);
            }
        }
        n
    }
}

/// One stage's result in `jitape bench --micro`.
#[derive(Debug, Clone, Serialize)]
pub struct StageResult {
    pub stage: String,
    /// Real time one unit of work represents.
    pub unit_ms: f64,
    /// Median time per unit.
    pub time_us: f64,
    /// Real time ÷ CPU time, on one core.
    pub realtime_multiple: f64,
}

/// This thread's CPU time (`/proc/thread-self/schedstat`, nanoseconds): on a shared machine
/// it excludes the time other processes had the CPU.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Times `step` in batches for about `budget`; the median batch gives the time per unit
/// (this thread's CPU time where the kernel tells it, else wall time).
fn measure(
    name: &str,
    unit: Duration,
    budget: Duration,
    mut step: impl FnMut() -> usize,
) -> StageResult {
    // Warm up, and size batches to ~50 ms.
    let t = Instant::now();
    let mut warm = 0u64;
    while t.elapsed() < Duration::from_millis(200) {
        std::hint::black_box(step());
        warm += 1;
    }
    let per = t.elapsed().as_secs_f64() / warm.max(1) as f64;
    let batch = ((0.05 / per.max(1e-9)) as u64).max(1);
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || times.len() < 5 {
        let (t, cpu) = (Instant::now(), thread_cpu());
        for _ in 0..batch {
            std::hint::black_box(step());
        }
        let spent = match (cpu, thread_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => t.elapsed(),
        };
        times.push(spent.as_secs_f64() / batch as f64);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    StageResult {
        stage: name.to_string(),
        unit_ms: unit.as_secs_f64() * 1000.0,
        time_us: median * 1e6,
        realtime_multiple: unit.as_secs_f64() / median,
    }
}

/// Every micro-benchmark, about `budget` each.
pub fn run_all(budget: Duration) -> Vec<StageResult> {
    let mut out = Vec::new();
    let mut d = DecodeBench::new();
    out.push(measure(
        "opus decode (20 ms packet)",
        DecodeBench::UNIT,
        budget,
        || d.step(),
    ));
    let mut m = MixBench::new();
    out.push(measure(
        "timeline mix, 4 tracks (100 ms)",
        MixBench::UNIT,
        budget,
        || m.step(),
    ));
    let mut f = FlacBench::new(true);
    out.push(measure(
        "flac encode, speech (100 ms)",
        FlacBench::UNIT,
        budget,
        || f.step(),
    ));
    let mut f = FlacBench::new(false);
    out.push(measure(
        "flac encode, silence (100 ms)",
        FlacBench::UNIT,
        budget,
        || f.step(),
    ));
    let mut s = SrtpBench::new(true);
    out.push(measure(
        "srtp aes-gcm + rtp parse (packet)",
        SrtpBench::UNIT,
        budget,
        || s.step(),
    ));
    let mut s = SrtpBench::new(false);
    out.push(measure(
        "srtp aes-cm-sha1 + rtp parse (packet)",
        SrtpBench::UNIT,
        budget,
        || s.step(),
    ));
    let mut p = PipelineBench::new();
    out.push(measure(
        "pipeline, 4-speaker conference (60 s)",
        PipelineBench::unit(),
        budget,
        || p.step(),
    ));
    let mut o = LowerBoundBench::new(false);
    out.push(measure(
        "decode only, same packets (60 s)",
        PipelineBench::unit(),
        budget,
        || o.step(),
    ));
    let mut o = LowerBoundBench::new(true);
    out.push(measure(
        "decode + encode, same packets (60 s)",
        PipelineBench::unit(),
        budget,
        || o.step(),
    ));
    out
}

#[cfg(test)]
mod tests;
