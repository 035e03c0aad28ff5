//! The receive path's pure parts: which SSRCs may pass, RFC 6464 audio levels, and turning
//! the stack's decrypted RTP into [`RtpPacket`]s, with the counters the session exposes.
//!
//! In: `rtc::rtp::Packet` (already SRTP-decrypted and parsed by the stack, which handles the
//! one-byte and two-byte extension forms) plus its arrival instant. Out: [`RtpPacket`] or a
//! counted reason for dropping it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::rtp;

use super::packet::RtpPacket;

/// RFC 8285 one-byte header extension profile.
const PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// RFC 8285 two-byte header extension profile (`0x100` + 4-bit appbits).
const PROFILE_TWO_BYTE_MASK: u16 = 0xFFF0;
const PROFILE_TWO_BYTE: u16 = 0x1000;

/// The SSRC one m-line carries, shared between the session (writer) and that m-line's
/// reader task: lock-free for the source it carries now; the one it carried before is kept
/// with the moment it stopped.
#[derive(Debug, Default)]
pub(crate) struct SsrcGate {
    current: AtomicU64,
    /// The SSRC before the last change and when the change was taken in: its packets that
    /// reached the machine before then are still its audio. Its socket is read in rounds and
    /// a busy jitape reads later still, so a leaver's last packets are often read after the
    /// source-remove (the timeline cuts at the same moment, `Timeline::unmap_source`).
    before: Mutex<Option<(u32, Instant)>>,
}

const OPEN: u64 = 1 << 32;

impl SsrcGate {
    /// Carry exactly `ssrc` (or nothing) from `at` on.
    pub(crate) fn set(&self, ssrc: Option<u32>, at: Instant) {
        let new = ssrc.map_or(0, |s| OPEN | u64::from(s));
        let old = self.current.swap(new, Ordering::AcqRel);
        if old != new && old & OPEN != 0 {
            *self.before.lock().unwrap_or_else(|p| p.into_inner()) = Some((old as u32, at));
        }
    }

    /// Whether a packet with this SSRC that reached the machine at `arrival` belongs to the
    /// source this m-line carried then.
    pub(crate) fn admits(&self, ssrc: u32, arrival: Instant) -> bool {
        if self.current.load(Ordering::Acquire) == OPEN | u64::from(ssrc) {
            return true;
        }
        let before = self.before.lock().unwrap_or_else(|p| p.into_inner());
        matches!(*before, Some((s, until)) if s == ssrc && arrival < until)
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
        ssrc: crate::types::Ssrc(p.header.ssrc),
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
    pub(crate) unstamped: AtomicU64,
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
    /// Packets whose kernel receive time was missing or no longer in the arrival book:
    /// stamped when jitape read them, so jitape's own delay can move where they land.
    pub unstamped: u64,
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
            unstamped: get(&self.unstamped),
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
mod tests;
