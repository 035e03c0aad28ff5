//! Unit tests of `voice`.

use super::*;

#[test]
fn a_tone_decodes_back_to_its_frequency() {
    let v = Voice::tone(660.0, 0.3).expect("tone");
    assert_eq!(v.len(), 50);
    let frames: Vec<&[u8]> = (0..25).map(|i| v.frame(i).opus.as_ref()).collect();
    let pcm = decode(&frames);
    let candidates: Vec<f32> = (0..6).map(default_tone_hz).collect();
    assert_eq!(dominant(&pcm[4800..], &candidates), 660.0);
    // 0.3 of full scale is about -10 dBov
    assert!(
        (9..=12).contains(&v.frame(3).level),
        "level {}",
        v.frame(3).level
    );
    // ~32 kbps: 80 bytes per 20 ms, give or take the encoder's choices
    assert!(v.frame(10).opus.len() < 200);
}

/// RMS of `pcm[a..b]`.
fn rms(pcm: &[f32], a: usize, b: usize) -> f32 {
    let x = &pcm[a..b];
    (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
}

#[test]
fn a_tone_starts_after_the_lookahead_and_loops_without_a_seam() {
    let v = Voice::tone(440.0, 0.3).expect("tone");
    assert_ne!(
        v.frame(0),
        v.frame(50),
        "the onset is not the loop's first frame"
    );
    assert_eq!(v.frame(51), v.frame(101));
    let look = lookahead().expect("lookahead");
    assert_eq!(look, std::time::Duration::from_micros(6_500));
    let frames: Vec<&[u8]> = (0..130).map(|i| v.frame(i).opus.as_ref()).collect();
    let pcm = decode(&frames);
    // The encoder's pre-roll first, then the tone (0.3 of full scale: RMS 0.21).
    assert!(rms(&pcm, 0, 240) < 0.03, "{}", rms(&pcm, 0, 240));
    // Every 5 ms from just after the pre-roll on, across the wraps at 1 s and 2 s (a
    // fresh encoder there would leave 6.5 ms of silence).
    for a in (360..pcm.len() - 240).step_by(240) {
        let r = rms(&pcm, a, a + 240);
        assert!(r > 0.17 && r < 0.25, "RMS {r} at sample {a}");
    }
}

#[test]
fn silence_has_level_127_and_loops() {
    let v = Voice::from_pcm(&[0.0; 1000]).expect("pcm");
    assert_eq!(v.len(), 2);
    assert_eq!(v.frame(0).level, 127);
    assert_eq!(v.frame(5), v.frame(3), "the second pass repeats");
}

#[test]
fn a_wav_at_another_rate_and_stereo_becomes_48k_mono() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("voice.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("create");
    for n in 0..16_000 {
        let s =
            (0.4 * (std::f32::consts::TAU * 880.0 * n as f32 / 16_000.0).sin() * 32767.0) as i16;
        w.write_sample(s).expect("write");
        w.write_sample(s).expect("write");
    }
    w.finalize().expect("finalize");
    let v = Voice::from_wav(&path).expect("wav voice");
    assert_eq!(v.len(), 50, "one second at 48 kHz");
    let frames: Vec<&[u8]> = (0..20).map(|i| v.frame(i).opus.as_ref()).collect();
    let pcm = decode(&frames);
    assert_eq!(
        dominant(&pcm[4800..], &[440.0, 660.0, 880.0, 1100.0]),
        880.0
    );
}

#[test]
fn bad_inputs_are_errors() {
    assert!(Voice::tone(0.0, 0.5).is_err());
    assert!(Voice::tone(440.0, 2.0).is_err());
    assert!(Voice::from_pcm(&[]).is_err());
    assert!(Voice::from_wav(Path::new("/nonexistent.wav")).is_err());
}
