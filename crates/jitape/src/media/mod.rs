//! The media stage: one receive-only audio session on webrtc-rs per Jingle session.
//!
//! In: the bridge's offer as a session model ([`AudioOffer`](crate::jingle::model::AudioOffer))
//! and the remote [`Source`](crate::jingle::model::Source)s. Out: our transport for
//! session-accept ([`IceTransport`](crate::jingle::model::IceTransport)) and, on a bounded
//! channel, one [`MediaEvent::Rtp`] per received packet of a signalled source plus
//! [`MediaEvent::State`] changes.
//!
//! How it maps onto webrtc-rs: Jicofo never sees SDP. [`MediaSession`] synthesises a remote
//! SDP offer from the model (`sdp`), one `m=audio` per remote source (`slots`, recycled on
//! churn), applies it, creates and applies the local answer, and reads our ICE/DTLS
//! parameters back out of it. Every source change repeats that locally. jitape is the
//! answerer, which makes it ICE-controlled (JVB controls) and DTLS client (`setup:active`).
//! The stack answers consent checks by itself; the RTCP receiver-report interceptor is
//! registered so the bridge gets RRs. Packets are read per m-line by small tasks (`session`),
//! stamped with the time the kernel received them (`stamp`: the stack reads the kernel's receive
//! timestamp but does not pass it on), converted (`rtp`) and handed over with `try_send`,
//! never blocking the stack. RED (RFC 2198)
//! packets are handed over as they are; `red` splits them (the audio stage does).

pub mod packet;
pub mod red;

mod error;
mod rtp;
mod sdp;
mod session;
mod slots;
mod stamp;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub use error::MediaError;
pub use packet::RtpPacket;
pub use rtp::MediaCounters;
pub use session::MediaSession;

/// How media sessions bind and time out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSettings {
    /// The local IP for ICE host candidates (a fresh ephemeral UDP port per session).
    /// `0.0.0.0` binds every non-loopback interface.
    pub bind: IpAddr,
    /// Extra public addresses (NAT 1:1) to advertise as host candidates on the same port.
    pub advertise: Vec<IpAddr>,
    /// No traffic from the bridge for this long: [`MediaState::Disconnected`].
    pub ice_disconnected_timeout: Duration,
    /// No traffic for this long (counted from the same moment): [`MediaState::Failed`].
    pub ice_failed_timeout: Duration,
    /// Our STUN keepalive interval on the selected pair.
    pub ice_keepalive_interval: Duration,
    /// How long local candidate gathering may take before `start` gives up.
    pub gather_timeout: Duration,
    /// No RTP nor RTCP from the bridge for this long on a connected session that has
    /// sources: the session is broken (the conference asks for a new one). Senders that are
    /// muted still send RTCP sender reports, which the bridge forwards.
    pub silence_timeout: Duration,
    /// Kernel receive buffer to ask for on each session's socket (bytes): while jitape is
    /// stalled, packets wait there (at about 1 KiB of kernel memory each), so it should
    /// hold the lateness window of every speaker. Above `net.core.rmem_max` the kernel
    /// grants it only to a process with CAP_NET_ADMIN.
    pub recv_buffer: usize,
}

impl MediaSettings {
    /// The media settings from `[media]`, binding `bind` (the configured address, or the
    /// one towards Prosody when the configuration says `auto`).
    pub fn new(media: &crate::config::MediaConfig, bind: IpAddr) -> Self {
        MediaSettings {
            bind,
            advertise: media.advertise.clone(),
            ice_disconnected_timeout: Duration::from_secs(5),
            ice_failed_timeout: Duration::from_secs(10),
            silence_timeout: media.silence_timeout,
            ..MediaSettings::default()
        }
    }
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            advertise: Vec::new(),
            ice_disconnected_timeout: Duration::from_secs(5),
            ice_failed_timeout: Duration::from_secs(25),
            ice_keepalive_interval: Duration::from_secs(2),
            gather_timeout: Duration::from_secs(5),
            recv_buffer: 4 << 20,
            silence_timeout: Duration::from_secs(60),
        }
    }
}

/// What a media session reports to its conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// One received RTP packet of a signalled source.
    Rtp(RtpPacket),
    /// The connection state changed.
    State(MediaState),
}

/// The connection state of a media session (ICE and DTLS together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaState {
    Connecting,
    Connected,
    /// No traffic from the bridge for a while; may recover.
    Disconnected,
    /// ICE or DTLS failed for good: ask Jicofo for a new session.
    Failed,
    Closed,
}
