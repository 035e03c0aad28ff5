//! The `timeline` target: arbitrary RTP packets (SSRC, sequence, timestamp, payload type —
//! Opus, RED of Opus or anything —, payload, arrival offset), source mapping changes,
//! renders at advancing instants and jumps, through [`Timeline`].
//!
//! In: fuzz bytes ([`run`]) or [`Op`]s ([`encode`], for seeds). Out: nothing; asserts that
//! every `render(now)` returns exactly the samples the wall clock says — from where the last
//! render (or skip) stopped, up to `origin_sample + (now − late_window − origin) × rate` —
//! with stems as long as the mix, and that the statistics count what was rendered.

use std::time::{Duration, Instant};

use jitape::audio::{AudioSettings, Timeline, TrackId};
use jitape::media::packet::RtpPacket;
use jitape::types::SampleRate;

use super::bytes::{Reader, Writer};

/// One timeline operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Map {
        ssrc: u8,
        track: u8,
    },
    Unmap {
        ssrc: u8,
    },
    /// A packet arriving `arrival_ms` after (negative: before) the current instant.
    Push {
        ssrc: u8,
        seq: u16,
        ts: u32,
        pt: u8,
        marker: bool,
        arrival_ms: i16,
        payload: Vec<u8>,
    },
    /// Advance the clock by `ms` and render.
    Render {
        ms: u16,
    },
    /// Jump ahead by `samples`.
    Skip {
        samples: u32,
    },
    FinishSpeech,
}

/// SSRCs the ops pick from (index = the op's `ssrc` byte modulo the length).
const SSRCS: [u32; 5] = [1, 2, 3, 0, u32::MAX];

impl Op {
    pub fn decode(r: &mut Reader) -> Op {
        match r.u8() % 6 {
            0 => Op::Map {
                ssrc: r.u8(),
                track: r.u8(),
            },
            1 => Op::Unmap { ssrc: r.u8() },
            2 => Op::Push {
                ssrc: r.u8(),
                seq: r.u16(),
                ts: r.u32(),
                pt: r.u8(),
                marker: r.bool(),
                arrival_ms: r.u16() as i16,
                payload: r.bytes().to_vec(),
            },
            3 => Op::Render { ms: r.u16() },
            4 => Op::Skip { samples: r.u32() },
            _ => Op::FinishSpeech,
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Op::Map { ssrc, track } => w.u8(0).u8(*ssrc).u8(*track),
            Op::Unmap { ssrc } => w.u8(1).u8(*ssrc),
            Op::Push {
                ssrc,
                seq,
                ts,
                pt,
                marker,
                arrival_ms,
                payload,
            } => w
                .u8(2)
                .u8(*ssrc)
                .u16(*seq)
                .u32(*ts)
                .u8(*pt)
                .bool(*marker)
                .u16(*arrival_ms as u16)
                .bytes(payload),
            Op::Render { ms } => w.u8(3).u16(*ms),
            Op::Skip { samples } => w.u8(4).u32(*samples),
            Op::FinishSpeech => w.u8(5),
        };
    }
}

/// Encodes a scenario: the configuration bytes, then the ops.
pub fn encode(rate_index: u8, stems: bool, origin_sample: u32, ops: &[Op]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(rate_index).bool(stems).u32(origin_sample);
    for op in ops {
        op.encode(&mut w);
    }
    w.0
}

/// The `timeline` target.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let cfg = AudioSettings {
        sample_rate: SampleRate::ALL[usize::from(r.u8()) % SampleRate::ALL.len()],
        stems: r.bool(),
        ..AudioSettings::default()
    };
    let origin_sample = u64::from(r.u32());
    let origin = Instant::now();
    let mut now = origin;
    let Ok(mut t) = Timeline::new(cfg.clone(), origin, origin_sample) else {
        panic!("default audio configuration refused");
    };
    // RED (RFC 2198) of Opus is negotiated too: its payloads go through the RED parser.
    t.set_payload_types(111, Some(112));
    let mut until = origin_sample;
    for _ in 0..256 {
        if r.is_empty() {
            break;
        }
        match Op::decode(&mut r) {
            Op::Map { ssrc, track } => {
                let ssrc = SSRCS[usize::from(ssrc) % SSRCS.len()];
                let _ = t.map_source(jitape::types::Ssrc(ssrc), TrackId(u32::from(track % 8)));
            }
            Op::Unmap { ssrc } => t.unmap_source(
                jitape::types::Ssrc(SSRCS[usize::from(ssrc) % SSRCS.len()]),
                now,
            ),
            Op::Push {
                ssrc,
                seq,
                ts,
                pt,
                marker,
                arrival_ms,
                payload,
            } => t.push(&packet(
                ssrc,
                seq,
                ts,
                pt,
                marker,
                arrival(now, arrival_ms),
                payload,
            )),
            Op::Render { ms } => {
                // At most 250 ms per render keeps an input cheap; `Skip` covers long jumps.
                now += Duration::from_millis(u64::from(ms % 250));
                let expected_end = wall_clock_end(&cfg, origin, origin_sample, now).max(until);
                let out = t.render(now);
                assert_eq!(out.start_sample, until, "render does not continue");
                assert_eq!(out.mix.len() as u64, expected_end - until, "render length");
                for (track, stem) in &out.stems {
                    assert_eq!(stem.len(), out.mix.len(), "stem {track} length");
                }
                until = expected_end;
            }
            Op::Skip { samples } => {
                let n = t.skip_to(until + u64::from(samples));
                assert_eq!(n, u64::from(samples), "skip length");
                until += n;
            }
            Op::FinishSpeech => {
                let _ = t.finish_speech();
            }
        }
        assert_eq!(t.rendered_until(), until);
        assert_eq!(t.stats().rendered_samples, until - origin_sample);
    }
}

/// The sample the wall clock says `render(now)` reaches, computed from the configuration.
fn wall_clock_end(cfg: &AudioSettings, origin: Instant, origin_sample: u64, now: Instant) -> u64 {
    let Some(played) = now.checked_sub(cfg.late_window.get()) else {
        return origin_sample;
    };
    let elapsed = played.saturating_duration_since(origin);
    let samples = elapsed.as_nanos() * u128::from(cfg.sample_rate.hz()) / 1_000_000_000;
    origin_sample + u64::try_from(samples).unwrap_or(u64::MAX)
}

fn arrival(now: Instant, ms: i16) -> Instant {
    let d = Duration::from_millis(u64::from(ms.unsigned_abs()));
    if ms >= 0 {
        now + d
    } else {
        now.checked_sub(d).unwrap_or(now)
    }
}

fn packet(
    ssrc: u8,
    seq: u16,
    ts: u32,
    pt: u8,
    marker: bool,
    arrival: Instant,
    payload: Vec<u8>,
) -> RtpPacket {
    RtpPacket {
        ssrc: jitape::types::Ssrc(SSRCS[usize::from(ssrc) % SSRCS.len()]),
        sequence: seq,
        timestamp: ts,
        // Mostly Opus (111) or RED (112), sometimes anything.
        payload_type: match (pt & 0x80, pt & 0x10) {
            (0, 0) => 111,
            (0, _) => 112,
            _ => pt & 0x7f,
        },
        marker,
        audio_level: (pt & 0x40 != 0).then_some(pt & 0x3f),
        voice: (pt & 0x20 != 0).then_some(pt & 1 == 1),
        payload,
        arrival,
    }
}
