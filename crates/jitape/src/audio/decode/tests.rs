//! Unit tests of `decode`.

use super::*;

fn tone_packets(n: usize) -> Vec<Vec<u8>> {
    let Ok(mut enc) = opus::Encoder::new(48_000, Channels::Mono, opus::Application::Voip) else {
        panic!("encoder")
    };
    (0..n)
        .map(|k| {
            let pcm: Vec<i16> = (0..960)
                .map(|i| {
                    let t = (k * 960 + i) as f64 / 48_000.0;
                    (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                })
                .collect();
            enc.encode_vec(&pcm, 1500).unwrap_or_default()
        })
        .collect()
}

#[test]
fn decodes_at_each_output_rate_with_the_right_length() {
    let packets = tone_packets(3);
    for (rate, len) in [(48_000, 960), (24_000, 480), (16_000, 320)] {
        let mut d = OpusDecoder::new(rate).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        let dur = d
            .decode(&packets[0], &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((dur, out.len()), (960, len));
        d.plc(960, &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.len(), len);
        d.fec(&packets[2], 960, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.len(), len);
        d.plc(OpusDecoder::quantum(), &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.len(), len / 8);
    }
    assert_eq!(packet_duration_48k(&packets[0]), Some(960));
    assert_eq!(packet_duration_48k(&[]), None);
}

#[test]
fn fec_uses_the_redundancy_of_the_next_packet() {
    // a speech-like signal (harmonics of 140 Hz, syllabic envelope) makes SILK code LBRR
    let sig = |n: usize| {
        let t = n as f64 / 48_000.0;
        let env = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
        let x: f64 = (1..12)
            .map(|h| (2.0 * std::f64::consts::PI * 140.0 * h as f64 * t).sin() / h as f64)
            .sum();
        (5000.0 * env * x) as i16
    };
    let Ok(mut enc) = opus::Encoder::new(48_000, Channels::Mono, opus::Application::Voip) else {
        panic!("encoder")
    };
    assert!(enc.set_inband_fec(true).is_ok() && enc.set_packet_loss_perc(10).is_ok());
    let packets: Vec<Vec<u8>> = (0..42)
        .map(|k| {
            let pcm: Vec<i16> = (0..960).map(|i| sig(k * 960 + i)).collect();
            enc.encode_vec(&pcm, 1500).unwrap_or_default()
        })
        .collect();
    let conceal = |fec: bool| {
        let mut d = OpusDecoder::new(48_000).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        for p in &packets[..40] {
            d.decode(p, &mut out).unwrap_or_else(|e| panic!("{e}"));
        }
        let r = if fec {
            d.fec(&packets[41], 960, &mut out)
        } else {
            d.plc(960, &mut out)
        };
        r.unwrap_or_else(|e| panic!("{e}"));
        out
    };
    let (fec, plc) = (conceal(true), conceal(false));
    assert_eq!(fec.len(), 960);
    assert_ne!(fec, plc, "FEC data was decoded, not just PLC");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut d = OpusDecoder::new(48_000).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    // TOC code 3 (arbitrary frame count) with a frame count byte of 0 is invalid
    assert!(d.decode(&[0x03, 0x00], &mut out).is_err());
    assert!(d.plc(7, &mut out).is_err());
}
