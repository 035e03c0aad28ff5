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
mod tests;
