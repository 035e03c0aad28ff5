//! Several tracks: the limiter, stems, SSRC changes, unmapping, unknown SSRCs and speaking
//! segments; plus the cost measurement.

use std::time::Instant;

use super::sim::*;
use crate::audio::{AudioSettings, SpeechEvent, Timeline, TrackId};
use crate::media::packet::RtpPacket;

fn timeline(cfg: AudioSettings, base: Instant, map: &[(u32, u32)]) -> Timeline {
    let mut tl = Timeline::new(cfg, base, 0).unwrap_or_else(|e| panic!("{e}"));
    for &(ssrc, track) in map {
        tl.map_source(crate::types::Ssrc(ssrc), TrackId(track))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    tl
}

fn merged(streams: Vec<Vec<RtpPacket>>) -> Vec<RtpPacket> {
    let mut all: Vec<RtpPacket> = streams.into_iter().flatten().collect();
    all.sort_by_key(|p| p.arrival);
    all
}

fn stems_cfg() -> AudioSettings {
    AudioSettings {
        stems: true,
        ..AudioSettings::default()
    }
}

#[test]
fn three_full_scale_tracks_are_limited_without_wrapping() {
    let base = Instant::now();
    let freqs = [400.0, 1000.0, 1600.0];
    let streams = freqs
        .iter()
        .enumerate()
        .map(|(i, &f)| {
            let t = Tone {
                amp: 30_000.0,
                ..tone(f, 300 + 100 * i as u64, 2500)
            };
            Net::clean().apply(Sender::new(i as u32 + 1, vec![t], ms(2600)).packets(base))
        })
        .collect();
    let mut tl = timeline(stems_cfg(), base, &[(1, 1), (2, 2), (3, 3)]);
    let out = drive(&mut tl, &merged(streams), base, ms(3000), ms(20));
    assert!(tl.stats().limited_samples > 0);
    let stems: Vec<&Vec<i16>> = out.stems.values().collect();
    assert_eq!(stems.len(), 3);
    let mut overloaded = 0;
    for (i, &m) in out.mix.iter().enumerate() {
        let sum: i32 = stems.iter().map(|s| i32::from(s[i])).sum();
        if sum.abs() > 33_000 {
            overloaded += 1;
        }
        if sum.abs() > 2000 {
            assert_eq!(
                i32::from(m).signum(),
                sum.signum(),
                "sample {i}: sum {sum}, mix {m}"
            );
        }
    }
    assert!(
        overloaded > 10_000,
        "the test must overload the sum ({overloaded})"
    );
    // every tone is still there, and each stem holds its own tone only
    let (from, len) = (700 * 48, 1700 * 48);
    for (k, &f) in freqs.iter().enumerate() {
        assert!(
            amplitude(&out.mix, 48_000, f, from, len) > 5000.0,
            "{f} Hz in the mix"
        );
        for (j, stem) in stems.iter().enumerate() {
            let a = amplitude(stem, 48_000, f, from, len);
            assert!(
                if j == k { a > 25_000.0 } else { a < 300.0 },
                "stem {j} at {f} Hz: {a}"
            );
        }
    }
}

#[test]
fn a_new_ssrc_continues_its_track_in_place() {
    let base = Instant::now();
    let old = Sender::new(1, vec![tone(1000.0, 300, 2000)], ms(2000));
    let mut new = Sender::new(2, vec![tone(1000.0, 2600, 4000)], ms(4000));
    (new.seq0, new.ts0) = (40_000, 3_000_000_000);
    let other = Sender::new(3, vec![tone(400.0, 1000, 3500)], ms(3500));
    let packets = merged(vec![
        Net::clean().apply(old.packets(base)),
        Net::clean().apply(new.packets(base)),
        Net::clean().apply(other.packets(base)),
    ]);
    let mut tl = timeline(stems_cfg(), base, &[(1, 1), (3, 2)]);
    let (before, after): (Vec<_>, Vec<_>) = packets
        .into_iter()
        .partition(|p| p.arrival < base + ms(2300));
    let mut out = drive(&mut tl, &before, base, ms(2100), ms(20));
    // the participant's source changes: old unmapped, new mapped to the same track
    tl.unmap_source(crate::types::Ssrc(1), base + ms(2300));
    tl.map_source(crate::types::Ssrc(2), TrackId(1))
        .unwrap_or_else(|e| panic!("{e}"));
    let rest = drive(&mut tl, &after, base + ms(2300), ms(2000), ms(20));
    out.mix.extend_from_slice(&rest.mix);
    for (t, s) in rest.stems {
        out.stems.entry(t).or_default().extend_from_slice(&s);
    }
    let stem = &out.stems[&TrackId(1)];
    assert_eq!(stem.len(), out.mix.len());
    let found = runs(&presence(stem, 48_000, 1000.0, 2500.0), 120);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_near("old ssrc onset", found[0].0, 305, 20);
    assert_near("old ssrc end", found[0].1, 2005, 20);
    assert_near("new ssrc onset", found[1].0, 2605, 20);
    assert_near("new ssrc end", found[1].1, 4005, 20);
    let other = runs(
        &presence(&out.stems[&TrackId(2)], 48_000, 400.0, 2500.0),
        120,
    );
    assert_eq!(other.len(), 1, "{other:?}");
}

#[test]
fn unmapped_and_unknown_sources_are_not_mixed() {
    let base = Instant::now();
    let a = Sender::new(1, vec![tone(1000.0, 0, 3000)], ms(3000));
    let b = Sender::new(9, vec![tone(400.0, 0, 3000)], ms(3000));
    let packets = merged(vec![
        Net::clean().apply(a.packets(base)),
        Net::clean().apply(b.packets(base)),
    ]);
    let mut tl = timeline(AudioSettings::default(), base, &[(1, 1)]);
    let (before, after): (Vec<_>, Vec<_>) = packets
        .into_iter()
        .partition(|p| p.arrival < base + ms(1500));
    let unknown = before
        .iter()
        .chain(&after)
        .filter(|p| p.ssrc == 9 || p.arrival >= base + ms(1500))
        .count();
    let mut out = drive(&mut tl, &before, base, ms(1300), ms(20));
    tl.unmap_source(crate::types::Ssrc(1), base + ms(1500));
    let rest = drive(&mut tl, &after, base + ms(1500), ms(1500), ms(20));
    out.mix.extend_from_slice(&rest.mix);
    let present = presence(&out.mix, 48_000, 1000.0, 2500.0);
    let found = runs(&present, 120);
    assert_eq!(found.len(), 1);
    // what was buffered at the unmap (up to the last arrival before 1.5 s) still plays
    // (the last one pushed was sent at 1480 ms and holds 1460..1480 ms)
    assert_near("end after unmap", found[0].1, 1485, 20);
    assert!(amplitude(&out.mix, 48_000, 400.0, 0, out.mix.len()) < 5.0);
    let st = tl.stats();
    assert_eq!(st.unknown_ssrc, unknown as u64);
}

/// A leaver's last packets are on the media path, which is slower than the signalling one:
/// jitape can learn of the leave (source-remove, unavailable presence) before it has read
/// them. What reached the machine before it learned is kept, to the sample; what arrives
/// after is not (a stale bridge forwarding a leaver).
#[test]
fn a_leavers_packets_read_after_the_leave_are_kept_if_they_arrived_before_it() {
    let base = Instant::now();
    let leaver = Sender::new(1, vec![tone(1000.0, 500, 3000)], ms(3000));
    let packets = Net::clean().apply(leaver.packets(base));
    let leave = base + ms(2000);
    for read_lag in [0, 20, 60, 150] {
        let mut tl = timeline(AudioSettings::default(), base, &[(1, 1)]);
        // The last packet that reached the machine before the leave was sent at 1980 ms and
        // holds 1960..1980 ms (presence windows are 5 ms).
        // Everything up to 1.9 s was read in time; then jitape learns of the leave and only
        // afterwards reads the packets that reached the machine in the last `read_lag` ms
        // before it (and those the stale bridge still sends).
        let lagged = leave - ms(read_lag);
        let (before, after): (Vec<_>, Vec<_>) =
            packets.iter().cloned().partition(|p| p.arrival < lagged);
        let mut out = drive(&mut tl, &before, base, ms(1900), ms(20));
        tl.unmap_source(crate::types::Ssrc(1), leave);
        let rest = drive(&mut tl, &after, base + ms(2000), ms(1000), ms(20));
        out.mix.extend_from_slice(&rest.mix);
        let found = runs(&presence(&out.mix, 48_000, 1000.0, 2500.0), 120);
        assert_eq!(found.len(), 1, "read lag {read_lag} ms: {found:?}");
        assert_near(
            &format!("end with a read lag of {read_lag} ms"),
            found[0].1,
            1985,
            8,
        );
        let arrived_after = packets.iter().filter(|p| p.arrival >= leave).count();
        assert_eq!(
            tl.stats().unknown_ssrc,
            arrived_after as u64,
            "read lag {read_lag} ms: only packets that arrived after the leave are refused"
        );
    }
}

#[test]
fn speaking_segments_match_the_speech_windows() {
    let base = Instant::now();
    // speaker 1: two windows (the second with a 200 ms pause inside), speaker 2: one window
    let s1 = Sender::new(
        1,
        vec![
            tone(1000.0, 400, 1600),
            tone(1000.0, 3000, 3900),
            tone(1000.0, 4100, 5000),
        ],
        ms(5200),
    );
    let s2 = Sender::new(2, vec![tone(600.0, 1200, 2900)], ms(3000));
    let net = Net {
        jitter: ms(30),
        loss: 0.03,
        seed: 4,
        ..Net::clean()
    };
    let packets = merged(vec![
        net.apply(s1.packets(base)),
        Net { seed: 5, ..net }.apply(s2.packets(base)),
    ]);
    let mut tl = timeline(AudioSettings::default(), base, &[(1, 1), (2, 2)]);
    let mut out = drive(&mut tl, &packets, base, ms(6000), ms(20));
    out.speech.extend(tl.finish_speech());
    let segments = |track: u32| -> Vec<(u64, u64)> {
        let mut segs = Vec::new();
        let mut open = None;
        for e in out.speech.iter().filter(|e| e.track() == TrackId(track)) {
            match *e {
                SpeechEvent::Start { sample, .. } => open = Some(sample / 48),
                SpeechEvent::End { sample, .. } => {
                    segs.extend(open.take().map(|s| (s, sample / 48)))
                }
            }
        }
        segs
    };
    let want1 = [(405, 1605), (3005, 5005)];
    let got1 = segments(1);
    assert_eq!(got1.len(), 2, "{got1:?}");
    for (g, w) in got1.iter().zip(want1) {
        assert_near("segment start", g.0, w.0, 100);
        assert_near("segment end", g.1, w.1, 100);
    }
    let got2 = segments(2);
    assert_eq!(got2.len(), 1, "{got2:?}");
    assert_near("segment start", got2[0].0, 1205, 100);
    assert_near("segment end", got2[0].1, 2905, 100);
}

#[test]
fn measure_pipeline_cost() {
    // Prints the cost of decode + timeline + mix per second of audio per track (run it in
    // release for the number that matters); asserts only that the work was done.
    let base = Instant::now();
    let seconds = 20;
    let tracks = 4u32;
    let streams = (1..=tracks)
        .map(|i| {
            let mut s = Sender::new(
                i,
                vec![tone(200.0 * f64::from(i + 1), 0, seconds * 1000)],
                ms(seconds * 1000),
            );
            s.gaps = Gaps::SendSilence;
            Net {
                jitter: ms(20),
                loss: 0.02,
                seed: u64::from(i),
                ..Net::clean()
            }
            .apply(s.packets(base))
        })
        .collect();
    let packets = merged(streams);
    let map: Vec<(u32, u32)> = (1..=tracks).map(|i| (i, i)).collect();
    let mut tl = timeline(stems_cfg(), base, &map);
    let started = Instant::now();
    let out = drive(&mut tl, &packets, base, ms(seconds * 1000), ms(20));
    let spent = started.elapsed().as_secs_f64();
    assert_eq!(out.mix.len(), seconds as usize * 48_000);
    let audio = (seconds * u64::from(tracks)) as f64;
    println!(
        "audio pipeline: {audio} s of track audio in {spent:.3} s: {:.0}x real time per track ({} packets)",
        audio / spent,
        packets.len()
    );
}
