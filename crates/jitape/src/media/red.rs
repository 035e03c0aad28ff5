//! RFC 2198 redundant audio ("RED", `red/48000/2` in Jitsi's offers): the payload format both
//! ways, pure.
//!
//! In: a RED packet's payload (parse, [`unpack`]) or blocks (build, for the simulated bridge).
//! Out: the primary block and the redundant blocks (each an earlier packet's payload with its
//! timestamp offset), or a [`RedError`] — never a panic, whatever the bytes.
//!
//! The payload starts with one 4-byte header per redundant block (`F=1 | PT:7 |
//! timestamp offset:14 | length:10`), then a 1-byte header for the primary (`F=0 | PT:7`),
//! then the blocks' data in the same order (oldest first), the primary's last. RFC 2198 gives
//! a redundant block a timestamp but no sequence number; like the bridge (JVB's
//! `RedPacketParser`, see docs/protocol.md) [`unpack`] takes the blocks to be the packets
//! directly before the primary: the last block is `seq − 1`, the one before `seq − 2`.

use super::packet::RtpPacket;

/// Most redundant blocks one packet may carry (browsers send 1–2, JVB at most 2).
pub const MAX_BLOCKS: usize = 8;

/// Largest timestamp offset and block length the headers can carry.
pub const MAX_OFFSET: u32 = (1 << 14) - 1;
pub const MAX_LENGTH: usize = (1 << 10) - 1;

/// A RED payload that cannot be read (malformed input: the sender's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedError {
    #[error("empty RED payload")]
    Empty,
    #[error("RED block headers run past the payload")]
    TruncatedHeaders,
    #[error("RED blocks run past the payload")]
    TruncatedBlocks,
    #[error("more than {MAX_BLOCKS} redundant blocks")]
    TooManyBlocks,
}

/// One redundant block: an earlier packet's payload, `ts_offset` RTP ticks before the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedBlock<'a> {
    pub pt: u8,
    pub ts_offset: u32,
    pub data: &'a [u8],
}

/// A parsed RED payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedPayload<'a> {
    /// Oldest first, as on the wire.
    pub redundant: Vec<RedBlock<'a>>,
    pub primary_pt: u8,
    pub primary: &'a [u8],
}

/// Parses a RED payload.
pub fn parse(payload: &[u8]) -> Result<RedPayload<'_>, RedError> {
    let mut headers = Vec::new();
    let mut at = 0;
    let primary_pt = loop {
        let first = *payload.get(at).ok_or(if at == 0 {
            RedError::Empty
        } else {
            RedError::TruncatedHeaders
        })?;
        let pt = first & 0x7f;
        if first & 0x80 == 0 {
            at += 1;
            break pt;
        }
        if headers.len() == MAX_BLOCKS {
            return Err(RedError::TooManyBlocks);
        }
        let h = payload
            .get(at + 1..at + 4)
            .ok_or(RedError::TruncatedHeaders)?;
        let ts_offset = (u32::from(h[0]) << 6) | u32::from(h[1] >> 2);
        let len = (usize::from(h[1] & 0x03) << 8) | usize::from(h[2]);
        headers.push((pt, ts_offset, len));
        at += 4;
    };
    let mut redundant = Vec::with_capacity(headers.len());
    for (pt, ts_offset, len) in headers {
        let data = payload.get(at..at + len).ok_or(RedError::TruncatedBlocks)?;
        redundant.push(RedBlock {
            pt,
            ts_offset,
            data,
        });
        at += len;
    }
    Ok(RedPayload {
        redundant,
        primary_pt,
        primary: payload.get(at..).unwrap_or_default(),
    })
}

/// Builds a RED payload (the simulated bridge's sender). Blocks that do not fit the headers'
/// fields (offset over 14 bits, data over 10 bits) are left out, as a sender must.
pub fn build(redundant: &[RedBlock<'_>], primary_pt: u8, primary: &[u8]) -> Vec<u8> {
    let fits = |b: &&RedBlock<'_>| b.ts_offset <= MAX_OFFSET && b.data.len() <= MAX_LENGTH;
    let blocks: Vec<&RedBlock<'_>> = redundant.iter().filter(fits).take(MAX_BLOCKS).collect();
    let size = blocks.iter().map(|b| 4 + b.data.len()).sum::<usize>() + 1 + primary.len();
    let mut out = Vec::with_capacity(size);
    for b in &blocks {
        let len = b.data.len();
        out.push(0x80 | (b.pt & 0x7f));
        out.push((b.ts_offset >> 6) as u8);
        out.push((((b.ts_offset & 0x3f) << 2) as u8) | ((len >> 8) as u8 & 0x03));
        out.push((len & 0xff) as u8);
    }
    out.push(primary_pt & 0x7f);
    for b in &blocks {
        out.extend_from_slice(b.data);
    }
    out.extend_from_slice(primary);
    out
}

/// What a RED packet carries, as the plain packets it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The primary block as the packet itself (same sequence number, timestamp, marker and
    /// level; the primary's payload type).
    pub primary: RtpPacket,
    /// The redundant blocks of payload type `keep_pt` as the earlier packets they repeat,
    /// newest first (`seq − 1`, `seq − 2`, …), each `ts_offset` before the primary, without
    /// marker or level. Empty blocks and blocks with offset 0 are left out.
    pub redundant: Vec<RtpPacket>,
}

/// Splits a RED packet into its primary and the redundant blocks of payload type `keep_pt`.
pub fn unpack(pkt: &RtpPacket, keep_pt: u8) -> Result<Unpacked, RedError> {
    let red = parse(&pkt.payload)?;
    let n = red.redundant.len();
    let mut redundant = Vec::new();
    for (i, b) in red.redundant.iter().enumerate().rev() {
        if b.pt != keep_pt || b.data.is_empty() || b.ts_offset == 0 {
            continue;
        }
        let back = u16::try_from(n - i).unwrap_or(u16::MAX);
        redundant.push(RtpPacket {
            ssrc: pkt.ssrc,
            sequence: pkt.sequence.wrapping_sub(back),
            timestamp: pkt.timestamp.wrapping_sub(b.ts_offset),
            payload_type: b.pt,
            marker: false,
            audio_level: None,
            voice: None,
            payload: b.data.to_vec(),
            arrival: pkt.arrival,
        });
    }
    let primary = RtpPacket {
        payload_type: red.primary_pt,
        payload: red.primary.to_vec(),
        ..pkt.clone()
    };
    Ok(Unpacked { primary, redundant })
}

#[cfg(test)]
mod tests {
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
            ssrc: 7,
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
}
