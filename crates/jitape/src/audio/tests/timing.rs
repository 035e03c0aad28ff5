//! Where speech lands: clean streams, impaired networks, DTX and silence dropping, counter
//! wrap-around, other output rates, garbage input and the render length invariant.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::sim::*;
use crate::audio::{AudioSettings, Timeline, TrackId};
use crate::types::SampleRate;

const T: TrackId = TrackId(1);

fn timeline(rate: u32, base: Instant) -> Timeline {
    let cfg = AudioSettings {
        sample_rate: SampleRate::try_from(rate).expect("supported"),
        ..AudioSettings::default()
    };
    let mut tl = Timeline::new(cfg, base, 0).unwrap_or_else(|e| panic!("{e}"));
    tl.map_source(crate::types::Ssrc(1), T)
        .unwrap_or_else(|e| panic!("{e}"));
    tl
}

/// Checks that each tone's edges land within `tol` ms of schedule + `delay` ms.
fn check_edges(pcm: &[i16], rate: u32, tones: &[Tone], delay: u64, tol: u64) -> Vec<bool> {
    let freq = tones.first().map_or(1000.0, |t| t.freq);
    let present = presence(pcm, rate, freq, 2500.0);
    let found = runs(&present, 120);
    assert_eq!(found.len(), tones.len(), "tone runs {found:?}");
    for (run, tone) in found.iter().zip(tones) {
        let (from, to) = (tone.from.as_millis() as u64, tone.to.as_millis() as u64);
        assert_near("onset", run.0, from + delay, tol);
        assert_near("end", run.1, to + delay, tol);
    }
    present
}

/// Exact digital silence farther than `margin` ms from every tone.
fn check_silence(pcm: &[i16], rate: u32, tones: &[Tone], delay: u64, margin: u64) {
    let per_ms = (rate / 1000) as usize;
    for (i, &x) in pcm.iter().enumerate() {
        let t = (i / per_ms) as u64;
        let near = tones.iter().any(|tone| {
            let (from, to) = (
                tone.from.as_millis() as u64 + delay,
                tone.to.as_millis() as u64 + delay,
            );
            t + margin >= from && t < to + margin
        });
        assert!(
            near || x == 0,
            "sample {i} ({t} ms) is {x}, expected silence"
        );
    }
}

/// A 1 kHz tone of amplitude 8000 moves at most ~1050 per sample; a hard start or stop of
/// the spurt would jump by up to its amplitude.
fn assert_no_clicks(pcm: &[i16], max_step: i32) {
    for (i, w) in pcm.windows(2).enumerate() {
        let step = (i32::from(w[1]) - i32::from(w[0])).abs();
        assert!(step <= max_step, "click at sample {i}: step {step}");
    }
}

#[test]
fn clean_stream_lands_on_schedule_with_exact_silence_around() {
    let base = Instant::now();
    let tones = vec![tone(1000.0, 507, 1493), tone(1000.0, 2311, 3109)];
    let packets = Net::clean().apply(Sender::new(1, tones.clone(), ms(3400)).packets(base));
    let mut tl = timeline(48_000, base);
    let out = drive(&mut tl, &packets, base, ms(4000), ms(20));
    assert_eq!(out.mix.len(), 4 * 48_000);
    check_edges(&out.mix, 48_000, &tones, 5, 20);
    check_silence(&out.mix, 48_000, &tones, 5, 25);
    assert_no_clicks(&out.mix, 2000);
    let st = tl.stats().total;
    assert_eq!(
        (st.lost, st.late, st.duplicate, st.spurts, st.resyncs),
        (0, 0, 0, 2, 0)
    );
}

#[test]
fn impaired_network_keeps_onsets_and_conceals_losses() {
    let tones = vec![
        tone(1000.0, 300, 1800),
        tone(1000.0, 2600, 4100),
        tone(1000.0, 5013, 7000),
        tone(1000.0, 7600, 9000),
    ];
    for seed in 1..=3 {
        let base = Instant::now();
        let net = Net {
            delay: ms(5),
            jitter: ms(40),
            loss: 0.05,
            reorder: 0.02,
            duplicate: 0.03,
            seed,
        };
        let packets = net.apply(Sender::new(1, tones.clone(), ms(9300)).packets(base));
        let mut tl = timeline(48_000, base);
        let out = drive(&mut tl, &packets, base, ms(9500), ms(10));
        let present = presence(&out.mix, 48_000, 1000.0, 2500.0);
        for tone in &tones {
            let (from, to) = (
                tone.from.as_millis() as u64 + 5,
                tone.to.as_millis() as u64 + 5,
            );
            let onset = (from.saturating_sub(100) / 5..)
                .find(|&w| present.get(w as usize) == Some(&true))
                .map_or(u64::MAX, |w| w * 5);
            assert_near(&format!("seed {seed} onset"), onset, from, 20);
            let hole = longest_hole(&present, from + 20, to - 20);
            assert!(
                hole <= 120,
                "seed {seed}: {hole} ms without the tone inside [{from}, {to})"
            );
        }
        let st = tl.stats().total;
        assert!(st.duplicate > 0 && st.lost > 0, "{st:?}");
        assert!(
            st.concealed_fec > 0 && st.concealed_fec + st.concealed_plc >= st.lost,
            "{st:?}"
        );
        assert_eq!(st.resyncs, 0, "{st:?}");
    }
}

#[test]
fn pauses_never_shift_the_next_spurt() {
    // pauses of 0.5, 1, 2.5 and 5 s between 0.7 s spurts, with 0-20 ms jitter
    let tones = vec![
        tone(1000.0, 300, 1000),
        tone(1000.0, 1500, 2200),
        tone(1000.0, 3200, 3900),
        tone(1000.0, 6400, 7100),
        tone(1000.0, 12_100, 12_800),
    ];
    for gaps in [Gaps::BridgeDrops, Gaps::Dtx, Gaps::FrozenClock] {
        let base = Instant::now();
        let mut sender = Sender::new(1, tones.clone(), ms(13_000));
        sender.gaps = gaps;
        let net = Net {
            jitter: ms(20),
            seed: 11,
            ..Net::clean()
        };
        let packets = net.apply(sender.packets(base));
        let mut tl = timeline(48_000, base);
        let out = drive(&mut tl, &packets, base, ms(13_200), ms(20));
        check_edges(&out.mix, 48_000, &tones, 5, 20);
        assert_no_clicks(&out.mix, 2000);
        let st = tl.stats().total;
        assert_eq!(
            (st.spurts, st.resyncs, st.late),
            (5, 0, 0),
            "{gaps:?}: {st:?}"
        );
    }
}

#[test]
fn sequence_and_timestamp_wrap_around_are_seamless() {
    let base = Instant::now();
    let tones = vec![tone(1000.0, 200, 3000)];
    let mut sender = Sender::new(1, tones.clone(), ms(3000));
    sender.seq0 = 65_500;
    sender.ts0 = u32::MAX - 30 * FRAME as u32 + 1;
    sender.gaps = Gaps::SendSilence;
    let packets = Net {
        jitter: ms(10),
        ..Net::clean()
    }
    .apply(sender.packets(base));
    let mut tl = timeline(48_000, base);
    let out = drive(&mut tl, &packets, base, ms(3300), ms(20));
    let present = check_edges(&out.mix, 48_000, &tones, 5, 20);
    assert_eq!(longest_hole(&present, 230, 2980), 0);
    let st = tl.stats().total;
    assert_eq!(
        (st.lost, st.late, st.spurts, st.resyncs, st.concealed_plc),
        (0, 0, 1, 0, 0),
        "{st:?}"
    );
}

#[test]
fn lower_output_rates_keep_place_and_length() {
    for rate in [16_000, 24_000] {
        let base = Instant::now();
        let tones = vec![tone(1000.0, 400, 1400)];
        let packets = Net::clean().apply(Sender::new(1, tones.clone(), ms(1600)).packets(base));
        let mut tl = timeline(rate, base);
        let out = drive(&mut tl, &packets, base, ms(2000), ms(30));
        assert_eq!(out.mix.len(), 2 * rate as usize);
        check_edges(&out.mix, rate, &tones, 5, 20);
        check_silence(&out.mix, rate, &tones, 5, 25);
    }
}

#[test]
fn garbage_is_counted_and_never_panics() {
    let base = Instant::now();
    let tones = vec![tone(1000.0, 200, 2200)];
    let mut packets = Sender::new(1, tones, ms(2400)).packets(base);
    let mut rng = StdRng::seed_from_u64(5);
    let mut spoiled = 0;
    for (i, p) in packets.iter_mut().enumerate() {
        match i % 12 {
            3 => p.payload_type = 0,
            7 => p.payload.clear(),
            _ => continue,
        }
        spoiled += 1;
    }
    // random payloads, some with random headers too
    let extra: Vec<_> = (0..300)
        .map(|i| {
            let len = rng.random_range(1..400);
            let payload: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let (seq, ts) = if i % 2 == 0 {
                (1000 + i as u16 / 3, 123_456 + 960 * i / 3)
            } else {
                (rng.random(), rng.random())
            };
            packet(1, seq, ts, payload, base + ms(10 * i as u64))
        })
        .collect();
    packets.extend(extra);
    packets.sort_by_key(|p| p.arrival);
    let mut tl = timeline(48_000, base);
    let out = drive(&mut tl, &packets, base, ms(3000), ms(20));
    assert_eq!(out.mix.len(), 3 * 48_000);
    let st = tl.stats().total;
    assert!(st.decode_errors >= spoiled, "{st:?}");
    assert_eq!(st.received, packets.len() as u64);
}

#[test]
fn render_length_is_exactly_the_elapsed_wall_time() {
    let base = Instant::now();
    let packets = Net {
        jitter: ms(30),
        loss: 0.1,
        ..Net::clean()
    }
    .apply(Sender::new(1, vec![tone(600.0, 0, 5000)], ms(5000)).packets(base));
    let mut rng = StdRng::seed_from_u64(3);
    for (rate, origin_sample) in [(48_000u32, 0u64), (16_000, 7_777_777)] {
        let cfg = AudioSettings {
            sample_rate: SampleRate::try_from(rate).expect("supported"),
            ..AudioSettings::default()
        };
        let delay = cfg.late_window.get();
        let mut tl = Timeline::new(cfg, base, origin_sample).unwrap_or_else(|e| panic!("{e}"));
        tl.map_source(crate::types::Ssrc(1), T)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut now = base;
        let mut total = 0u64;
        let mut next = 0;
        for _ in 0..2000 {
            now += Duration::from_micros(rng.random_range(0..9_000));
            while let Some(p) = packets.get(next).filter(|p| p.arrival <= now) {
                tl.push(p);
                next += 1;
            }
            let r = tl.render(now);
            assert_eq!(r.start_sample, origin_sample + total);
            total += r.mix.len() as u64;
            let wall = now.saturating_duration_since(base + delay);
            let expected = (wall.as_nanos() * u128::from(rate) / 1_000_000_000) as u64;
            assert_eq!(total, expected);
            assert_eq!(tl.rendered_until(), origin_sample + expected);
        }
        // an instant from the past renders nothing and never goes back
        assert!(tl.render(base).mix.is_empty());
        assert_eq!(tl.rendered_until(), origin_sample + total);
        assert_eq!(tl.stats().rendered_samples, total);
    }
}

#[test]
fn skip_to_drops_buffered_audio_and_moves_on() {
    let base = Instant::now();
    let packets =
        Net::clean().apply(Sender::new(1, vec![tone(1000.0, 0, 2000)], ms(2000)).packets(base));
    let mut tl = timeline(48_000, base);
    let first = drive(&mut tl, &packets[..40], base, ms(600), ms(20));
    assert_eq!(first.mix.len(), 600 * 48);
    assert_eq!(tl.skip_to(48_000 * 10), 48_000 * 10 - 600 * 48);
    assert_eq!(tl.skip_to(5), 0);
    let later = tl.render(base + Duration::from_secs(11) + tl.config().late_window.get());
    assert_eq!((later.start_sample, later.mix.len()), (480_000, 48_000));
    assert!(later.mix.iter().all(|&x| x == 0));
}

#[test]
fn short_bursts_are_concealed_and_long_ones_become_silence() {
    let base = Instant::now();
    let tones = vec![tone(1000.0, 0, 3000)];
    let mut sender = Sender::new(1, tones, ms(3000));
    sender.gaps = Gaps::SendSilence;
    let all = Net::clean().apply(sender.packets(base));
    // lose frames 40-42 (800-860 ms: PLC, PLC, FEC) and 100-109 (2000-2200 ms: too long)
    let packets: Vec<_> = all
        .into_iter()
        .enumerate()
        .filter(|(k, _)| !(40..43).contains(k) && !(100..110).contains(k))
        .map(|(_, p)| p)
        .collect();
    let mut tl = timeline(48_000, base);
    let out = drive(&mut tl, &packets, base, ms(3200), ms(20));
    let st = tl.stats().total;
    assert_eq!(
        (st.lost, st.concealed_plc, st.concealed_fec, st.spurts),
        (3, 2, 1, 2),
        "{st:?}"
    );
    let present = presence(&out.mix, 48_000, 1000.0, 2500.0);
    assert!(
        longest_hole(&present, 100, 1900) <= 120,
        "the short burst is bridged"
    );
    // PLC continues the tone into the loss (silence would not)
    assert!(amplitude(&out.mix, 48_000, 1000.0, 805 * 48, 5 * 48) > 2000.0);
    // the long one: silent from the fade-out until the stream resumes
    let silent = &out.mix[(2000 + 15) * 48..(2200 - 5) * 48];
    assert!(silent.iter().all(|&x| x == 0));
    let found = runs(&present, 0);
    assert_near("resumes", found.last().map_or(0, |r| r.0), 2205, 20);
}

#[test]
fn a_sender_that_restarts_its_counters_is_heard_again_at_once() {
    // Within the lateness window the old stream is still buffered: the first packet that
    // reuses a number with another timestamp gives the sender a new source at once, and the
    // old one still plays out to its end.
    let base = Instant::now();
    let first = Sender::new(1, vec![tone(1000.0, 0, 2000)], ms(2000));
    let mut second = Sender::new(1, vec![tone(1000.0, 2500, 6000)], ms(6000));
    (second.seq0, second.ts0) = (7, 99);
    let mut packets = Net::clean().apply(first.packets(base));
    packets.extend(Net::clean().apply(second.packets(base)));
    let mut tl = timeline(48_000, base);
    let out = drive(&mut tl, &packets, base, ms(6200), ms(20));
    let st = tl.stats().total;
    assert_eq!((st.late, st.duplicate), (0, 0), "{st:?}");
    let found = runs(&presence(&out.mix, 48_000, 1000.0, 2500.0), 120);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_near("first ends", found[0].1, 2005, 20);
    assert_near("heard again", found[1].0, 2505, 20);
    assert_near("until the end", found[1].1, 6005, 20);
}

#[test]
fn a_sender_that_restarts_its_counters_after_a_long_silence_loses_a_few_packets() {
    // The old stream was played long ago: its numbers are only known as played, and a few
    // packets behind them in a row are needed to tell a restart from stray late ones.
    let base = Instant::now();
    let first = Sender::new(1, vec![tone(1000.0, 0, 2000)], ms(2000));
    let mut second = Sender::new(1, vec![tone(1000.0, 9000, 12000)], ms(12000));
    (second.seq0, second.ts0) = (7, 99);
    let mut packets = Net::clean().apply(first.packets(base));
    packets.extend(Net::clean().apply(second.packets(base)));
    let mut tl = timeline(48_000, base);
    let out = drive(&mut tl, &packets, base, ms(12200), ms(20));
    let st = tl.stats().total;
    assert_eq!(st.late, 4, "{st:?}");
    let found = runs(&presence(&out.mix, 48_000, 1000.0, 2500.0), 120);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_near("heard again", found[1].0, 9005 + 4 * 20, 20);
    assert_near("until the end", found[1].1, 12005, 20);
}

/// After a loss longer than `plc_max` the next spurt starts from a reset decoder: a decoder
/// left in concealment mutes the first 10-15 ms of the resumed speech (heard late), whatever
/// the length of the loss.
#[test]
fn speech_after_a_long_loss_resumes_on_time() {
    for (freq, lost) in [
        (1000.0, 10u64),
        (1000.0, 15),
        (440.0, 15),
        (440.0, 16),
        (440.0, 50),
    ] {
        let base = Instant::now();
        let mut sender = Sender::new(1, vec![tone(freq, 0, 5000)], ms(5000));
        sender.gaps = Gaps::SendSilence;
        let packets: Vec<_> = Net::clean()
            .apply(sender.packets(base))
            .into_iter()
            .enumerate()
            .filter(|(k, _)| !(100..100 + lost as usize).contains(k))
            .map(|(_, p)| p)
            .collect();
        let mut tl = timeline(48_000, base);
        let out = drive(&mut tl, &packets, base, ms(5200), ms(20));
        let found = runs(&presence(&out.mix, 48_000, freq, 2500.0), 0);
        assert_eq!(found.len(), 2, "{freq} Hz, {lost} lost: {found:?}");
        // 5 ms of network delay; frames 100.. are 2000 ms..
        assert_near("resumes", found[1].0, 2005 + lost * 20, 5);
    }
}

/// A loss too long to conceal fades out from a decoder primed with the sender's last packets
/// only: a second such loss in the same stream fades out exactly as it would with no first
/// one (the concealment decoder is kept between losses; what the first left in it must not
/// colour the second).
#[test]
fn a_second_long_loss_fades_out_as_if_it_were_the_first() {
    let base = Instant::now();
    let mut sender = Sender::new(1, vec![tone(440.0, 0, 5000)], ms(5000));
    sender.gaps = Gaps::SendSilence;
    let all = Net::clean().apply(sender.packets(base));
    let render = |keep: &dyn Fn(usize) -> bool| {
        let packets: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(k, _)| keep(*k))
            .map(|(_, p)| p.clone())
            .collect();
        let mut tl = timeline(48_000, base);
        drive(&mut tl, &packets, base, ms(5200), ms(20)).mix
    };
    // Frames 100-109 (2000-2200 ms) and 200-209 (4000-4200 ms) lost.
    let twice = render(&|k| !(100..110).contains(&k) && !(200..210).contains(&k));
    // Only the second loss, the stream starting just before it: the same last packets.
    let once = render(&|k| (194..200).contains(&k) || k >= 210);
    // The fade-out is the last 2.5 ms of sound before the second loss's silence (what
    // precedes it came from the main decoder, whose history differs).
    let window = (3950 * 48)..(4100 * 48);
    let (a, b) = (&twice[window.clone()], &once[window]);
    let end = a.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
    assert_eq!(end, b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1));
    let fade = end.saturating_sub(120);
    assert!(
        end > 0 && a[fade..end].iter().all(|&x| x != 0),
        "the fade-out is audible"
    );
    let differ = a[fade..]
        .iter()
        .zip(&b[fade..])
        .filter(|(x, y)| x != y)
        .count();
    assert_eq!(differ, 0, "{differ} samples differ in the second fade-out");
}

/// Short losses early in a talk spurt (the sender's encoder still settling) are concealed
/// without a hole: the main decoder runs through the concealment, as libopus means it. A
/// main decoder that skipped the lost frames (concealment on a side decoder) left holes of
/// 15-55 ms here, and clicked where concealment handed back to it.
#[test]
fn short_losses_early_in_a_spurt_leave_no_hole() {
    for lost in [[1, 4], [5, 6], [8, 9], [12, 13]] {
        let base = Instant::now();
        let sender = Sender::new(1, vec![tone(440.0, 0, 2000)], ms(2000));
        let packets: Vec<_> = Net::clean()
            .apply(sender.packets(base))
            .into_iter()
            .enumerate()
            .filter(|(k, _)| !lost.contains(k))
            .map(|(_, p)| p)
            .collect();
        let mut tl = timeline(48_000, base);
        let out = drive(&mut tl, &packets, base, ms(2200), ms(20));
        let present = presence(&out.mix, 48_000, 440.0, 2500.0);
        let hole = longest_hole(&present, 40, 1900);
        assert!(hole <= 5, "{lost:?} lost: a hole of {hole} ms");
    }
}

/// One sender's packets of `tones`, with every arrival in `[from, to)` held until `to` (a
/// stall, then a burst).
fn stalled(
    tones: &[Tone],
    base: Instant,
    from: Instant,
    to: Instant,
) -> Vec<crate::media::packet::RtpPacket> {
    let mut packets = Net::clean().apply(Sender::new(1, tones.to_vec(), ms(3400)).packets(base));
    for p in &mut packets {
        if p.arrival >= from && p.arrival < to {
            p.arrival = to;
        }
    }
    packets.sort_by_key(|p| p.arrival);
    packets
}

/// The bench's simulated bridge stalls for 110-150 ms now and then (while it sets up another
/// conference) and then sends what it held in a burst. The first packet of the burst comes
/// after an arrival gap longer than a spurt gap and far off the clock, so the clock gives it a
/// new epoch; the burst catches up and the new epoch's clock is the old one. The spurt must go
/// on: ending and restarting it cost 5-20 ms of audio at every such stall.
#[test]
fn a_sender_stalling_mid_spurt_keeps_the_spurt_whole() {
    let base = Instant::now();
    let tones = vec![tone(1000.0, 500, 3000)];
    for (stall_at, stall) in [(1500u64, 150u64), (1504, 130), (1504, 110), (1510, 125)] {
        let packets = stalled(
            &tones,
            base,
            base + ms(stall_at),
            base + ms(stall_at + stall),
        );
        let mut tl = timeline(48_000, base);
        let out = drive(&mut tl, &packets, base, ms(4000), ms(20));
        let present = check_edges(&out.mix, 48_000, &tones, 5, 20);
        let hole = longest_hole(&present, 525, 2985);
        let st = tl.stats().total;
        assert_eq!(
            hole, 0,
            "stall {stall} ms at {stall_at}: a hole of {hole} ms"
        );
        assert_eq!(
            st.spurts, 1,
            "stall {stall} ms at {stall_at}: the spurt was cut: {st:?}"
        );
        assert_eq!(st.resyncs, 0, "{st:?}");
    }
}

/// The same stall at a spurt's end: the spurt's last packets arrive together, 90-130 ms late,
/// and nothing follows them to bring the clock back. They stay where their timestamps put
/// them (a new epoch would have placed them by their late arrival: 90 ms of the spurt's end
/// moved into the silence after it).
#[test]
fn a_sender_stalling_at_a_spurts_end_moves_nothing() {
    let base = Instant::now();
    let tones = vec![tone(1000.0, 500, 1500), tone(1000.0, 2000, 3000)];
    for (stall_from, stall) in [(1450u64, 150u64), (1465, 130), (1470, 120)] {
        let packets = stalled(
            &tones,
            base,
            base + ms(stall_from),
            base + ms(stall_from + stall),
        );
        let mut tl = timeline(48_000, base);
        let out = drive(&mut tl, &packets, base, ms(4000), ms(20));
        check_edges(&out.mix, 48_000, &tones, 5, 8);
        let st = tl.stats().total;
        assert_eq!(st.spurts, 2, "stall {stall} ms from {stall_from}: {st:?}");
    }
}

/// A sender that falls further behind skips frames (RTP time passes, sequence numbers stay
/// contiguous): jitape conceals them like a loss, and the hole is the skipped frames and the
/// decoder's recovery after them (the analysis's `RECOVERY`), nothing more.
#[test]
fn a_sender_skipping_a_frame_after_a_stall_leaves_only_that_frame() {
    let base = Instant::now();
    let tones = vec![tone(1000.0, 500, 3000)];
    for (skip_at, skipped, stall) in [(1500u64, 1usize, 145u64), (1500, 2, 165), (600, 1, 145)] {
        let mut packets = Net::clean().apply(Sender::new(1, tones.clone(), ms(3400)).packets(base));
        // The sender stalls, skips `skipped` frames (RTP time passes, sequence numbers stay
        // contiguous) and sends the rest of what fell due in a burst.
        let i = packets
            .iter()
            .position(|p| p.arrival >= base + ms(skip_at))
            .unwrap_or_else(|| panic!("no packet at {skip_at}"));
        packets.drain(i..i + skipped);
        for p in &mut packets[i..] {
            p.sequence = p.sequence.wrapping_sub(skipped as u16);
        }
        let release = base + ms(skip_at - 20 + stall);
        for p in &mut packets {
            if p.arrival >= base + ms(skip_at - 20) && p.arrival < release {
                p.arrival = release;
            }
        }
        packets.sort_by_key(|p| p.arrival);
        let mut tl = timeline(48_000, base);
        let out = drive(&mut tl, &packets, base, ms(4000), ms(20));
        let present = presence(&out.mix, 48_000, 1000.0, 2500.0);
        let hole = longest_hole(&present, 525, 2985);
        assert!(
            hole <= 20 * skipped as u64 + 25,
            "skip {skipped} at {skip_at}: {hole} ms without the tone"
        );
    }
}
