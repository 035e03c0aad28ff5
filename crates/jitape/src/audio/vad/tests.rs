//! Unit tests of `vad`.

use super::*;

fn run(signal: &[i32], chunk: usize) -> Vec<SpeechEvent> {
    let mut vad = VoiceActivity::new(TrackId(1), 1000, -40.0, 300, 0);
    let mut events = Vec::new();
    for (i, c) in signal.chunks(chunk).enumerate() {
        vad.process((i * chunk) as u64, c, &mut events);
    }
    vad.finish(&mut events);
    events
}

#[test]
fn pauses_shorter_than_the_hangover_do_not_split_a_segment() {
    // 1 kHz rate: 10-sample blocks. Voice 100..400 and 550..700, a click at 1100.
    let mut s = vec![0i32; 1300];
    for (i, x) in s.iter_mut().enumerate() {
        if (100..400).contains(&i) || (550..700).contains(&i) || (1100..1103).contains(&i) {
            *x = if i % 2 == 0 { 3000 } else { -3000 };
        }
    }
    for chunk in [7, 10, 64, 1300] {
        let ev = run(&s, chunk);
        let track = TrackId(1);
        assert_eq!(
            ev,
            vec![
                SpeechEvent::Start { track, sample: 100 },
                SpeechEvent::End { track, sample: 700 }
            ],
            "chunk {chunk}"
        );
    }
}

#[test]
fn a_long_pause_splits_and_a_skip_ends_a_segment() {
    let mut s = vec![0i32; 1000];
    for (i, x) in s.iter_mut().enumerate() {
        if (0..100).contains(&i) || (500..600).contains(&i) {
            *x = 5000;
        }
    }
    let ev = run(&s, 100);
    assert_eq!(ev.len(), 4);
    assert_eq!(
        ev[1],
        SpeechEvent::End {
            track: TrackId(1),
            sample: 100
        }
    );
    assert_eq!(
        ev[2],
        SpeechEvent::Start {
            track: TrackId(1),
            sample: 500
        }
    );

    let mut vad = VoiceActivity::new(TrackId(2), 1000, -40.0, 300, 0);
    let mut events = Vec::new();
    vad.process(0, &s[..200], &mut events);
    vad.skip(200, 5000, &mut events);
    assert_eq!(
        events.last(),
        Some(&SpeechEvent::End {
            track: TrackId(2),
            sample: 100
        })
    );
}

/// The default hangover against pauses of talk as the tests script them, at every
/// position of the 10 ms block grid (a recording starts wherever it starts): a half-second
/// pause always splits, a fifth of a second never does. (With a hangover equal to a
/// scripted pause the decision depended on the grid — on one machine it split, on another
/// not.)
#[test]
fn the_default_hangover_decides_the_same_wherever_the_block_grid_falls() {
    let cfg = crate::audio::AudioSettings::default();
    let rate = 48_000u32;
    let hangover = cfg.samples(cfg.vad_hangover);
    let ms = |m: usize| m * rate as usize / 1000;
    for pause_ms in [200usize, 500] {
        for shift in (0..ms(10)).step_by(37) {
            let mut s = vec![0i32; ms(2000) + shift];
            let tone = |s: &mut [i32], from: usize, to: usize| {
                for (i, x) in s.iter_mut().enumerate().take(to).skip(from) {
                    let t = i as f64 / f64::from(rate);
                    *x = (9000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i32;
                }
            };
            tone(&mut s, shift + ms(200), shift + ms(800));
            tone(&mut s, shift + ms(800 + pause_ms), shift + ms(1500));
            let mut vad = VoiceActivity::new(TrackId(1), rate, cfg.vad_threshold_dbfs, hangover, 0);
            let mut events = Vec::new();
            vad.process(0, &s, &mut events);
            vad.finish(&mut events);
            let segments = events.len() / 2;
            let expected = if pause_ms >= 500 { 2 } else { 1 };
            assert_eq!(
                segments, expected,
                "pause {pause_ms} ms, grid shift {shift}: {events:?}"
            );
        }
    }
}

#[test]
fn silence_taken_unseen_decides_as_zeros_do() {
    // 1 kHz rate: 10-sample blocks. Voice that ends and starts inside blocks, so a silent
    // chunk completes a block whose first samples were loud (and the reverse).
    let mut s = vec![0i32; 2000];
    for (i, x) in s.iter_mut().enumerate() {
        if (103..397).contains(&i) || (805..811).contains(&i) || (1215..1600).contains(&i) {
            *x = if i % 2 == 0 { 900 } else { -900 };
        }
    }
    for chunk in [3, 7, 10, 64] {
        let reference = run(&s, chunk);
        assert!(reference.len() >= 4, "the signal must speak: {reference:?}");
        let mut vad = VoiceActivity::new(TrackId(1), 1000, -40.0, 300, 0);
        let mut events = Vec::new();
        let mut silent_chunks = 0;
        for (i, c) in s.chunks(chunk).enumerate() {
            let start = (i * chunk) as u64;
            if c.iter().all(|&x| x == 0) {
                silent_chunks += 1;
                vad.process_silence(start, c.len(), &mut events);
            } else {
                vad.process(start, c, &mut events);
            }
        }
        vad.finish(&mut events);
        assert!(silent_chunks > 10);
        assert_eq!(events, reference, "chunk {chunk}");
    }
}
