//! Unit tests of `rtp`.

use super::*;
use rtc::shared::marshal::Unmarshal;

fn parse(raw: &[u8]) -> rtp::Packet {
    let mut buf = raw;
    rtp::Packet::unmarshal(&mut buf).expect("valid test packet")
}

/// 12-byte header with X set, then the extension block, then a 3-byte payload.
fn packet_with_ext(profile: [u8; 2], words: u8, ext: &[u8]) -> Vec<u8> {
    let mut raw = vec![0x90, 111, 0x00, 0x05, 0, 0, 0x03, 0xC0, 0, 0, 0x10, 0x01];
    raw.extend_from_slice(&profile);
    raw.extend_from_slice(&[0, words]);
    raw.extend_from_slice(ext);
    raw.extend_from_slice(&[0xf8, 0xff, 0xfe]);
    raw
}

#[test]
fn reads_the_level_from_the_one_byte_form() {
    // id 1, len 1 (L=0): V=1, level 42; padded to one word
    let p = parse(&packet_with_ext([0xBE, 0xDE], 1, &[0x10, 0x80 | 42, 0, 0]));
    assert_eq!(audio_level(&p.header, 1), Some((42, true)));
    assert_eq!(audio_level(&p.header, 2), None);
    let out = to_packet(&p, Some(1), Instant::now());
    assert_eq!(out.sequence, 5);
    assert_eq!(out.timestamp, 960);
    assert_eq!(out.ssrc, 0x1001);
    assert_eq!(out.payload, vec![0xf8, 0xff, 0xfe]);
    assert_eq!(out.audio_level, Some(42));
    assert_eq!(out.voice, Some(true));
}

#[test]
fn reads_the_level_from_the_two_byte_form() {
    // id 1, len 1, V=0, level 127; padded to one word
    let p = parse(&packet_with_ext([0x10, 0x00], 1, &[1, 1, 127, 0]));
    assert_eq!(audio_level(&p.header, 1), Some((127, false)));
    // an id only the two-byte form can carry
    let p = parse(&packet_with_ext([0x10, 0x00], 1, &[20, 1, 0x80 | 3, 0]));
    assert_eq!(audio_level(&p.header, 20), Some((3, true)));
}

#[test]
fn a_packet_without_the_extension_has_no_level() {
    let raw = [0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xf8];
    let p = parse(&raw);
    let out = to_packet(&p, Some(1), Instant::now());
    assert_eq!((out.audio_level, out.voice), (None, None));
    assert_eq!(out.payload_type, 111);
}

#[test]
fn an_empty_extension_payload_is_no_level() {
    let mut p = parse(&packet_with_ext([0xBE, 0xDE], 1, &[0x10, 0x80, 0, 0]));
    if let Some(e) = p.header.extensions.first_mut() {
        e.payload = bytes::Bytes::new();
    }
    assert_eq!(audio_level(&p.header, 1), None);
}

#[test]
fn gates_admit_the_current_ssrc_and_the_last_words_of_the_one_before() {
    let t0 = std::time::Instant::now();
    let ms = |n| t0 + std::time::Duration::from_millis(n);
    let g = SsrcGate::default();
    assert!(!g.admits(0, t0));
    g.set(Some(7), t0);
    assert!(g.admits(7, ms(10)));
    assert!(!g.admits(8, ms(10)));
    // Removed at 100 ms: what reached the machine before then is still its audio, read
    // however late; what came after is not.
    g.set(None, ms(100));
    assert!(g.admits(7, ms(99)));
    assert!(!g.admits(7, ms(100)));
    assert!(!g.admits(7, ms(150)));
    // The line carries another source from 200 ms on; the one before is still 7's.
    g.set(Some(9), ms(200));
    assert!(
        g.admits(9, ms(150)),
        "the current source passes whenever it arrived"
    );
    assert!(g.admits(7, ms(99)));
    assert!(!g.admits(8, ms(99)));
    // 9 leaves as well: now it is the one before.
    g.set(None, ms(300));
    assert!(g.admits(9, ms(299)));
    assert!(!g.admits(9, ms(300)));
}
