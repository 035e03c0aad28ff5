//! Unit tests of `red`.

use std::time::Instant;

use super::*;

fn block(pt: u8, ts_offset: u32, data: &[u8]) -> RedBlock<'_> {
    RedBlock {
        pt,
        ts_offset,
        data,
    }
}

fn packet(payload: Vec<u8>) -> RtpPacket {
    RtpPacket {
        ssrc: crate::types::Ssrc(7),
        sequence: 1,
        timestamp: 1000,
        payload_type: 112,
        marker: true,
        audio_level: Some(30),
        voice: Some(true),
        payload,
        arrival: Instant::now(),
    }
}

#[test]
fn the_rfc_2198_example_layout_is_read() {
    // RFC 2198 §3 example shape: one redundant block (pt 0x05, offset 0x1fc, 3 bytes),
    // primary pt 0x00.
    let bytes = [0x85, 0x07, 0xf0, 0x03, 0x00, 1, 2, 3, 9, 9];
    let red = parse(&bytes).expect("valid");
    assert_eq!(red.redundant, [block(5, 0x1fc, &[1, 2, 3])]);
    assert_eq!((red.primary_pt, red.primary), (0, &[9u8, 9][..]));
    let red = parse(&[0x85, 0xff, 0xfc, 0x03, 0x00, 1, 2, 3]).expect("valid");
    assert_eq!(red.redundant[0].ts_offset, MAX_OFFSET);
}

#[test]
fn build_and_parse_are_inverse() {
    let (a, b, p) = (vec![1u8; 80], vec![2u8; 1023], vec![3u8; 70]);
    let blocks = [block(111, 1920, &a), block(111, 960, &b)];
    let bytes = build(&blocks, 111, &p);
    let red = parse(&bytes).expect("valid");
    assert_eq!(red.redundant, blocks);
    assert_eq!((red.primary_pt, red.primary), (111, &p[..]));
    // A primary-only packet is one header byte.
    assert_eq!(build(&[], 111, &p)[0], 111);
    // What the headers cannot carry is left out.
    let too_long = vec![0u8; 1024];
    let bytes = build(
        &[block(111, 20_000, &a), block(111, 960, &too_long)],
        111,
        &p,
    );
    assert_eq!(parse(&bytes).expect("valid").redundant, []);
}

#[test]
fn broken_payloads_are_errors_never_panics() {
    assert_eq!(parse(&[]), Err(RedError::Empty));
    assert_eq!(parse(&[0x80 | 111, 0]), Err(RedError::TruncatedHeaders));
    assert_eq!(
        parse(&[0x80 | 111, 0, 4, 1]),
        Err(RedError::TruncatedHeaders)
    );
    assert_eq!(
        parse(&[0x80 | 111, 0, 4, 5, 111, 1, 2]),
        Err(RedError::TruncatedBlocks)
    );
    let many: Vec<u8> = [0x80 | 111, 0, 4, 0]
        .repeat(9)
        .into_iter()
        .chain([111])
        .collect();
    assert_eq!(parse(&many), Err(RedError::TooManyBlocks));
    // Every prefix of a valid payload, and every byte value at every position.
    let valid = build(&[block(111, 960, &[1, 2, 3])], 111, &[4, 5]);
    for n in 0..valid.len() {
        let _ = parse(&valid[..n]);
        for v in 0..=255u8 {
            let mut m = valid.clone();
            m[n] = v;
            let _ = parse(&m);
        }
    }
}

#[test]
fn unpack_gives_the_packets_the_blocks_repeat() {
    let (a, b, p) = ([1u8; 5], [2u8; 6], [3u8; 7]);
    let bytes = build(&[block(111, 1920, &a), block(111, 960, &b)], 111, &p);
    let mut pkt = packet(bytes);
    pkt.sequence = 1;
    pkt.timestamp = 500;
    let u = unpack(&pkt, 111).expect("valid");
    assert_eq!(u.primary.payload, p);
    assert_eq!(
        (
            u.primary.sequence,
            u.primary.timestamp,
            u.primary.payload_type
        ),
        (1, 500, 111)
    );
    assert_eq!((u.primary.marker, u.primary.audio_level), (true, Some(30)));
    let r: Vec<(u16, u32, Vec<u8>)> = u
        .redundant
        .iter()
        .map(|r| (r.sequence, r.timestamp, r.payload.clone()))
        .collect();
    // Sequence numbers and timestamps wrap.
    assert_eq!(
        r,
        [
            (0, u32::MAX - 459, b.to_vec()),
            (u16::MAX, u32::MAX - 1419, a.to_vec())
        ]
    );
    assert!(
        u.redundant
            .iter()
            .all(|r| !r.marker && r.audio_level.is_none())
    );
}

#[test]
fn unpack_keeps_only_usable_blocks_of_the_wanted_type() {
    let bytes = build(
        &[
            block(126, 1920, &[1]),
            block(111, 0, &[2]),
            block(111, 960, &[]),
        ],
        111,
        &[3],
    );
    let u = unpack(&packet(bytes), 111).expect("valid");
    assert!(u.redundant.is_empty());
    assert_eq!(u.primary.payload, [3]);
    assert_eq!(unpack(&packet(vec![]), 111), Err(RedError::Empty));
}
