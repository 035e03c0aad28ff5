//! The receive path's pure parts: which SSRCs may pass, RFC 6464 audio levels, and turning
//! the stack's decrypted RTP into [`RtpPacket`]s, with the counters the session exposes.
//!
//! In: `rtc::rtp::Packet` (already SRTP-decrypted and parsed by the stack, which handles the
//! one-byte and two-byte extension forms) plus its arrival instant. Out: [`RtpPacket`] or a
//! counted reason for dropping it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::rtp;

use super::packet::RtpPacket;

/// RFC 8285 one-byte header extension profile.
const PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// RFC 8285 two-byte header extension profile (`0x100` + 4-bit appbits).
const PROFILE_TWO_BYTE_MASK: u16 = 0xFFF0;
const PROFILE_TWO_BYTE: u16 = 0x1000;

/// The SSRC one m-line currently admits, shared lock-free between the session (writer) and
/// that m-line's reader task.
#[derive(Debug, Default)]
pub(crate) struct SsrcGate(AtomicU64);

const OPEN: u64 = 1 << 32;

impl SsrcGate {
    /// Admit exactly `ssrc` (or nothing).
    pub(crate) fn set(&self, ssrc: Option<u32>) {
        self.0
            .store(ssrc.map_or(0, |s| OPEN | u64::from(s)), Ordering::Release);
    }

    /// Whether a packet with this SSRC belongs to the source this m-line carries now.
    pub(crate) fn admits(&self, ssrc: u32) -> bool {
        self.0.load(Ordering::Acquire) == OPEN | u64::from(ssrc)
    }
}

/// The RFC 6464 level (-dBov, 0..=127) and voice-activity flag, if the packet carries the
/// extension with this id in either RFC 8285 form.
pub(crate) fn audio_level(header: &rtp::Header, id: u8) -> Option<(u8, bool)> {
    if !header.extension {
        return None;
    }
    let profile = header.extension_profile;
    if profile != PROFILE_ONE_BYTE && profile & PROFILE_TWO_BYTE_MASK != PROFILE_TWO_BYTE {
        return None;
    }
    let ext = header.extensions.iter().find(|e| e.id == id)?;
    let byte = *ext.payload.first()?;
    Some((byte & 0x7f, byte & 0x80 != 0))
}

/// Converts a received packet. `arrival` is stamped by the caller as early as it can.
pub(crate) fn to_packet(p: &rtp::Packet, level_id: Option<u8>, arrival: Instant) -> RtpPacket {
    let level = level_id.and_then(|id| audio_level(&p.header, id));
    RtpPacket {
        ssrc: p.header.ssrc,
        sequence: p.header.sequence_number,
        timestamp: p.header.timestamp,
        payload_type: p.header.payload_type,
        marker: p.header.marker,
        audio_level: level.map(|(l, _)| l),
        voice: level.map(|(_, v)| v),
        payload: p.payload.to_vec(),
        arrival,
    }
}

/// Live counters of one media session, shared with its reader tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped_full: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) renegotiations: AtomicU64,
}

/// A snapshot of a media session's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaCounters {
    /// RTP packets the stack handed us.
    pub received: u64,
    /// Packets delivered on the events channel.
    pub delivered: u64,
    /// Packets dropped because the events channel was full (the consumer is too slow).
    pub dropped_full: u64,
    /// Packets for an SSRC that is not (or no longer) a signalled source.
    pub filtered: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Local renegotiations performed after the first negotiation.
    pub renegotiations: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> MediaCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MediaCounters {
            received: get(&self.received),
            delivered: get(&self.delivered),
            dropped_full: get(&self.dropped_full),
            filtered: get(&self.filtered),
            bytes: get(&self.bytes),
            renegotiations: get(&self.renegotiations),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
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
    fn gates_admit_only_the_current_ssrc() {
        let g = SsrcGate::default();
        assert!(!g.admits(0));
        g.set(Some(7));
        assert!(g.admits(7));
        assert!(!g.admits(8));
        g.set(None);
        assert!(!g.admits(7));
    }
}
