//! The unit that crosses from the media session to the audio pipeline: one received RTP
//! packet (already SRTP-decrypted) with the instant it arrived.

use std::time::Instant;

use crate::types::Ssrc;

/// One received audio RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub ssrc: Ssrc,
    pub sequence: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    /// RFC 6464 audio level: the level in -dBov (0 loudest, 127 digital silence), if the
    /// packet carried the negotiated extension.
    pub audio_level: Option<u8>,
    /// RFC 6464 voice activity flag (the V bit), if the extension was present.
    pub voice: Option<bool>,
    /// The Opus payload.
    pub payload: Vec<u8>,
    /// When the packet arrived at jitape (stamped as early as the media stack allows).
    pub arrival: Instant,
}
