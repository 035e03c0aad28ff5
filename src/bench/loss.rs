//! What a recording loses under packet loss with Opus in-band FEC (Jitsi's default) and with
//! Opus RED (RFC 2198) at redundancy distance 1 and 2 (what browsers send when Jicofo enables
//! RED), measured through jitape's own audio timeline: `jitape bench --loss`.
//!
//! In: a [`Scheme`] and a [`Loss`] pattern. Out: a [`LossResult`]: packets lost on the wire,
//! frames the timeline recovered from RED, concealed with FEC or PLC, how far the recording is
//! from the same stream received without loss (SNR, and the share of 20 ms blocks that are
//! badly off), and the payload bit rate. Pure and deterministic: a speech-like voice is
//! encoded like a browser's (32 kbps VOIP, FEC only without RED), packets arrive on a 20 ms
//! clock with a constant delay, and the sim's network emulator ([`Netem`]) decides their
//! fate: random loss, or bursts of 100 % loss (its blackout) for a given length.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::micro::speech_like;
use jitape::audio::{AudioSettings, Timeline, TrackId};
use jitape::media::RtpPacket;
use jitape::media::red::{self, RedBlock};
use jitape::types::Ssrc;
use jitape_sim::netem::{Fate, Netem, NetemConfig};
use jitape_sim::voice::Voice;

const OPUS_PT: u8 = 111;
const RED_PT: u8 = 112;
const SSRC: Ssrc = Ssrc(0x5eed);
const TICK: Duration = Duration::from_millis(20);
/// The network's one-way delay (constant: only loss is measured).
const DELAY: Duration = Duration::from_millis(30);
/// Loss starts after this long (the first spurt is anchored on clean packets).
const CLEAN_START: usize = 50;
/// A 20 ms block whose error is within this of its energy counts as intact.
const BAD_BLOCK_SNR_DB: f64 = 10.0;

/// How the sender protects its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scheme {
    /// Plain Opus without FEC: what a receiver gets where Jicofo enables RED (no
    /// `useinbandfec` in any offer) but the receiver did not ask for RED (the bridge strips it).
    Plain,
    /// Plain Opus with in-band FEC (`useinbandfec=1`, Jicofo's default offer).
    InbandFec,
    /// RED repeating this many previous frames, Opus without FEC (Jicofo drops
    /// `useinbandfec` when RED is enabled).
    Red(u8),
}

/// A loss pattern.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Loss {
    /// Each packet lost with this probability.
    Random(f64),
    /// Every `every_ms`, all packets lost for `len_ms`.
    Burst { len_ms: u64, every_ms: u64 },
}

/// What one scheme kept under one loss pattern.
#[derive(Debug, Clone, Serialize)]
pub struct LossResult {
    pub scheme: Scheme,
    pub loss: Loss,
    /// Packets lost on the wire, % of those sent.
    pub wire_lost_pct: f64,
    /// Lost packets recovered from RED before their playout, % of those sent.
    pub red_pct: f64,
    /// Frames concealed with in-band FEC / with PLC, % of packets sent (FEC falls back to PLC
    /// inside libopus when the next packet carries no FEC data).
    pub fec_pct: f64,
    pub plc_pct: f64,
    /// Lost frames left silent (the gap was longer than `plc_max`), % of packets sent.
    pub silent_pct: f64,
    /// Recording vs the same stream without loss.
    pub snr_db: f64,
    /// 20 ms blocks more than 10 dB off the lossless recording, %.
    pub bad_blocks_pct: f64,
    /// RTP payload bit rate, kbit/s.
    pub kbps: f64,
}

/// The cases `jitape bench --loss` runs.
pub fn cases() -> Vec<Loss> {
    vec![
        Loss::Random(0.05),
        Loss::Random(0.20),
        Loss::Burst {
            len_ms: 60,
            every_ms: 1000,
        },
        Loss::Burst {
            len_ms: 100,
            every_ms: 1000,
        },
        Loss::Burst {
            len_ms: 300,
            every_ms: 2000,
        },
    ]
}

/// The schemes compared.
pub const SCHEMES: [Scheme; 4] = [
    Scheme::Plain,
    Scheme::InbandFec,
    Scheme::Red(1),
    Scheme::Red(2),
];

/// Every scheme under every case, `seconds` of speech each.
pub fn run_all(seconds: f64, seed: u64) -> Vec<LossResult> {
    let pcm = speech_like(seconds, 140.0);
    let mut out = Vec::new();
    for scheme in SCHEMES {
        let stream = Stream::new(&pcm, scheme);
        let reference = stream.record(&mut |_| false);
        for loss in cases() {
            out.push(stream.measure(&reference, loss, seed));
        }
    }
    out
}

/// One sender's packets.
struct Stream {
    scheme: Scheme,
    packets: Vec<RtpPacket>,
}

impl Stream {
    fn new(pcm: &[f32], scheme: Scheme) -> Stream {
        let voice = Voice::encode(pcm, scheme == Scheme::InbandFec)
            .unwrap_or_else(|e| panic!("encoding the test voice failed: {e}"));
        let origin = Instant::now();
        let mut packets = Vec::with_capacity(voice.len());
        for k in 0..voice.len() {
            let ts = (k as u32).wrapping_mul(960);
            let opus = &voice.frame(k).opus;
            let (payload_type, payload) = match scheme {
                Scheme::Plain | Scheme::InbandFec => (OPUS_PT, opus.to_vec()),
                Scheme::Red(distance) => {
                    let first = k.saturating_sub(usize::from(distance));
                    let blocks: Vec<RedBlock<'_>> = (first..k)
                        .map(|j| RedBlock {
                            pt: OPUS_PT,
                            ts_offset: ((k - j) * 960) as u32,
                            data: &voice.frame(j).opus,
                        })
                        .collect();
                    (RED_PT, red::build(&blocks, OPUS_PT, opus))
                }
            };
            packets.push(RtpPacket {
                ssrc: SSRC,
                sequence: (1000 + k) as u16,
                timestamp: ts,
                payload_type,
                marker: k == 0,
                audio_level: None,
                voice: None,
                payload,
                arrival: origin + DELAY + TICK * (k as u32 + 1),
            });
        }
        Stream { scheme, packets }
    }

    /// The mix the timeline renders when `lost(k)` packets never arrive, and its counters.
    fn record(&self, lost: &mut dyn FnMut(usize) -> bool) -> (Vec<i16>, jitape::audio::TrackStats) {
        let origin = self
            .packets
            .first()
            .map_or_else(Instant::now, |p| p.arrival - DELAY - TICK);
        let mut tl = Timeline::new(AudioSettings::default(), origin, 0)
            .unwrap_or_else(|e| panic!("timeline: {e}"));
        tl.set_payload_types(OPUS_PT, Some(RED_PT));
        let _ = tl.map_source(SSRC, TrackId(0));
        let mut mix = Vec::new();
        for (k, p) in self.packets.iter().enumerate() {
            if !lost(k) {
                tl.push(p);
            }
            mix.extend(tl.render(p.arrival).mix);
        }
        let end = self.packets.last().map_or(origin, |p| p.arrival) + Duration::from_secs(1);
        mix.extend(tl.render(end).mix);
        let stats = tl
            .stats()
            .tracks
            .get(&TrackId(0))
            .copied()
            .unwrap_or_default();
        (mix, stats)
    }

    fn measure(
        &self,
        reference: &(Vec<i16>, jitape::audio::TrackStats),
        loss: Loss,
        seed: u64,
    ) -> LossResult {
        let normal = NetemConfig {
            loss: match loss {
                Loss::Random(p) => p,
                Loss::Burst { .. } => 0.0,
            },
            seed,
            ..NetemConfig::default()
        };
        let mut netem = Netem::new(normal.clone());
        let mut blackout = Netem::new(normal.blackout());
        let mut dropped = 0usize;
        let mut lost = |k: usize| {
            if k < CLEAN_START {
                return false;
            }
            let t = (k - CLEAN_START) as u64 * 20;
            let in_burst =
                matches!(loss, Loss::Burst { len_ms, every_ms } if t % every_ms < len_ms);
            let fate = if in_burst {
                blackout.decide()
            } else {
                netem.decide()
            };
            let drop = fate == Fate::Drop;
            dropped += usize::from(drop);
            drop
        };
        let (mix, st) = self.record(&mut lost);
        let sent = self.packets.len() as f64;
        let pct = |n: u64| 100.0 * n as f64 / sent;
        let bytes: usize = self.packets.iter().map(|p| p.payload.len()).sum();
        let (snr_db, bad_blocks_pct) = compare(&reference.0, &mix);
        let wire_lost_pct = 100.0 * dropped as f64 / sent;
        let (red_pct, fec_pct, plc_pct) = (
            pct(st.recovered_red),
            pct(st.concealed_fec),
            pct(st.concealed_plc),
        );
        LossResult {
            scheme: self.scheme,
            loss,
            wire_lost_pct,
            red_pct,
            fec_pct,
            plc_pct,
            silent_pct: (wire_lost_pct - red_pct - fec_pct - plc_pct).max(0.0),
            snr_db,
            bad_blocks_pct,
            kbps: bytes as f64 * 8.0 / (sent * 0.020) / 1000.0,
        }
    }
}

/// SNR of `out` against `reference` (dB), and the share of 20 ms blocks more than
/// [`BAD_BLOCK_SNR_DB`] off (%).
fn compare(reference: &[i16], out: &[i16]) -> (f64, f64) {
    let n = reference.len().min(out.len());
    let energy = |r: &[i16], o: &[i16]| {
        r.iter().zip(o).fold((0.0, 0.0), |(s, e), (a, b)| {
            let (a, b) = (f64::from(*a), f64::from(*b));
            (s + a * a, e + (a - b) * (a - b))
        })
    };
    let (signal, error) = energy(&reference[..n], &out[..n]);
    let snr = 10.0 * (signal / error.max(1e-9)).log10();
    let (mut blocks, mut bad) = (0usize, 0usize);
    for (r, o) in reference[..n].chunks(960).zip(out[..n].chunks(960)) {
        let (s, e) = energy(r, o);
        if s < 1e3 * r.len() as f64 {
            continue;
        }
        blocks += 1;
        bad += usize::from(10.0 * (s / e.max(1e-9)).log10() < BAD_BLOCK_SNR_DB);
    }
    (snr.min(99.0), 100.0 * bad as f64 / blocks.max(1) as f64)
}

/// The table `jitape bench --loss` prints.
pub fn table(results: &[LossResult]) -> String {
    let mut out = format!(
        "{:<18} {:<16} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>9} {:>7}\n",
        "loss",
        "scheme",
        "lost %",
        "RED %",
        "FEC %",
        "PLC %",
        "silent %",
        "SNR dB",
        "bad 20ms",
        "kbit/s"
    );
    for r in results {
        let loss = match r.loss {
            Loss::Random(p) => format!("random {:.0} %", p * 100.0),
            Loss::Burst { len_ms, every_ms } => format!("{len_ms} ms every {every_ms}"),
        };
        let scheme = match r.scheme {
            Scheme::Plain => "opus".to_owned(),
            Scheme::InbandFec => "opus + FEC".to_owned(),
            Scheme::Red(d) => format!("RED distance {d}"),
        };
        out.push_str(&format!(
            "{loss:<18} {scheme:<16} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>8.1} {:>7.1} {:>8.1}% {:>7.1}\n",
            r.wire_lost_pct,
            r.red_pct,
            r.fec_pct,
            r.plc_pct,
            r.silent_pct,
            r.snr_db,
            r.bad_blocks_pct,
            r.kbps
        ));
    }
    out
}

#[cfg(test)]
mod tests;
