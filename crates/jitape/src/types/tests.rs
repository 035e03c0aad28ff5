//! Unit tests of `types`.

use std::time::Duration;

use super::*;

#[test]
fn only_the_rates_opus_decodes_to_are_sample_rates() {
    for hz in [48_000, 24_000, 16_000, 12_000, 8_000] {
        assert_eq!(SampleRate::try_from(hz).map(SampleRate::hz), Ok(hz));
    }
    for hz in [0, 44_100, 32_000, 96_000, 47_999] {
        assert_eq!(SampleRate::try_from(hz), Err(ValueError::SampleRate(hz)));
    }
    assert_eq!(SampleRate::OPUS.samples_in(Duration::from_millis(20)), 960);
    assert_eq!(
        SampleRate::ALL[4].samples_in(Duration::from_micros(1_999)),
        15
    );
}

#[test]
fn a_sample_rate_is_checked_when_read_from_json_too() {
    let r: SampleRate = serde_json::from_str("16000").expect("valid");
    assert_eq!(r.hz(), 16_000);
    assert_eq!(serde_json::to_string(&r).expect("serializes"), "16000");
    assert!(serde_json::from_str::<SampleRate>("44100").is_err());
}

#[test]
fn the_late_window_is_between_20_ms_and_10_s() {
    for ok in [20, 5_000, 10_000] {
        let d = Duration::from_millis(ok);
        assert_eq!(LateWindow::try_from(d).map(LateWindow::get), Ok(d));
    }
    for bad in [0, 19, 10_001] {
        let d = Duration::from_millis(bad);
        assert_eq!(LateWindow::try_from(d), Err(ValueError::LateWindow(d)));
    }
}

#[test]
fn an_ssrc_shows_as_its_number() {
    assert_eq!(Ssrc::from(3_735_928_559).to_string(), "3735928559");
    assert_eq!(serde_json::to_string(&Ssrc(7)).expect("serializes"), "7");
}
