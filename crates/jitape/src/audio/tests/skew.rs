//! Sender clock skew over long continuous speech (no pause to re-anchor on).
//!
//! To keep an hour affordable the sender's audio is a tone with a whole number of periods per
//! 20 ms frame, so one steady-state packet stands for every frame; a different tone marks the
//! last seconds, and where that marker lands tells the drift.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::sim::*;
use crate::audio::{AudioSettings, Timeline, TrackId};
use crate::types::SampleRate;

/// Steady packets of 500 Hz, then `marker` packets of 1000 Hz as the encoder produced them.
fn payloads(marker: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut enc = encoder();
    let frame = |f: f64| -> Vec<i16> {
        (0..FRAME)
            .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * f * i as f64 / 48_000.0).sin()) as i16)
            .collect()
    };
    let mut encode = |pcm: &[i16]| enc.encode_vec(pcm, 1500).unwrap_or_else(|e| panic!("{e}"));
    let steady_pcm = frame(500.0);
    let mut steady = Vec::new();
    for _ in 0..50 {
        steady = encode(&steady_pcm);
    }
    let marker_pcm = frame(1000.0);
    let marks = (0..marker).map(|_| encode(&marker_pcm)).collect();
    (steady, marks)
}

/// Streams `frames` frames from a sender whose clock is off by `ppm`; returns the drift of the
/// marker onset in ms (output position minus true position) and the timeline's stats.
fn run(frames: u64, ppm: f64, rate: u32) -> (f64, crate::audio::AudioStats) {
    let marker = 250u64;
    let (steady, marks) = payloads(marker as usize);
    let base = Instant::now();
    let cfg = AudioSettings {
        sample_rate: SampleRate::try_from(rate).expect("supported"),
        ..AudioSettings::default()
    };
    let mut tl = Timeline::new(cfg, base, 0).unwrap_or_else(|e| panic!("{e}"));
    tl.map_source(crate::types::Ssrc(7), TrackId(1))
        .unwrap_or_else(|e| panic!("{e}"));
    let frame_wall = 0.02 / (1.0 + ppm * 1e-6);
    let mut rng = StdRng::seed_from_u64(9);
    let mut tail = Vec::new();
    let mut tail_start = None;
    let tail_from = ((frames - marker) as f64 * frame_wall) as u64 - 2;
    let mut k = 0u64;
    let mut second = 0u64;
    loop {
        second += 1;
        let now = base + Duration::from_secs(second);
        while k < frames {
            let jitter = Duration::from_micros(rng.random_range(0..10_000));
            let arrival =
                base + Duration::from_secs_f64((k + 1) as f64 * frame_wall) + ms(5) + jitter;
            if arrival > now {
                break;
            }
            let payload = match k.checked_sub(frames - marker) {
                Some(i) => marks[i as usize].clone(),
                None => steady.clone(),
            };
            let ts = 1_000u32.wrapping_add((k as u32).wrapping_mul(FRAME as u32));
            tl.push(&packet(7, (k % 65_536) as u16, ts, payload, arrival));
            k += 1;
        }
        let r = tl.render(now);
        if r.start_sample >= tail_from * u64::from(rate) {
            tail_start.get_or_insert(r.start_sample);
            tail.extend_from_slice(&r.mix);
        } else {
            // the steady tone is there all along
            let a = amplitude(&r.mix, rate, 500.0, r.mix.len() / 2, (rate / 100) as usize);
            assert!(
                r.mix.is_empty() || a > 4000.0,
                "tone missing at {} s: {a}",
                second
            );
        }
        if k >= frames && now > base + Duration::from_secs_f64(frames as f64 * frame_wall + 1.0) {
            break;
        }
    }
    let present = presence(&tail, rate, 1000.0, 2500.0);
    let onset_ms = present
        .iter()
        .position(|&p| p)
        .map_or(f64::MAX, |w| w as f64 * 5.0);
    let tail_start = tail_start.unwrap_or_default() as f64 * 1000.0 / f64::from(rate);
    let measured = tail_start + onset_ms;
    let truth = (frames - marker) as f64 * frame_wall * 1000.0 + 5.0;
    (measured - truth, tl.stats())
}

#[test]
fn a_sender_300_ppm_fast_drifts_at_most_20_ms_over_an_hour() {
    let (drift, st) = run(180_000, 300.0, 48_000);
    println!("fast sender: drift {drift:.1} ms, {:?}", st.total);
    assert!(drift.abs() <= 20.0, "drift {drift} ms");
    // about 1.08 s had to be dropped (the sender produced that much more audio)
    let dropped = -st.total.slewed_samples as f64 / 48.0;
    assert!((dropped - 1079.7).abs() < 25.0, "dropped {dropped} ms");
    assert_eq!(
        (st.total.spurts, st.total.resyncs, st.total.late),
        (1, 0, 0)
    );
}

#[test]
fn a_sender_300_ppm_slow_drifts_at_most_20_ms() {
    let (drift, st) = run(30_000, -300.0, 16_000);
    assert!(drift.abs() <= 20.0, "drift {drift} ms");
    let inserted = st.total.slewed_samples as f64 / 16.0;
    assert!((inserted - 180.0).abs() < 10.0, "inserted {inserted} ms");
    assert_eq!((st.total.spurts, st.total.resyncs), (1, 0));
}
