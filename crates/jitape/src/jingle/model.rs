//! The session model: what a Jingle session says, independent of XML and of SDP.
//!
//! `jingle::parse` turns Jicofo's stanzas into these types, `jingle::build` turns our
//! answers back into XML, and `media` turns them into SDP for webrtc-rs. Nothing here does
//! I/O; every type is plain data that tests can build by hand.

use std::net::IpAddr;

pub use crate::types::Ssrc;

/// The endpoint id that owns a source. It equals the owner's MUC nick and its JVB endpoint id.
/// The bridge's own feedback sources are owned by [`BRIDGE_OWNER`].
pub type EndpointId = String;

/// Owner id Jicofo uses for the bridge's own (feedback/RTCP) sources: never media.
pub const BRIDGE_OWNER: &str = "jvb";

/// Transport protocol of an ICE candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

/// ICE candidate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateType {
    Host,
    Srflx,
    Prflx,
    Relay,
}

/// One ICE candidate as carried in `<candidate/>` (XEP-0176). Hostname candidates are not
/// representable: JVB ignores them and so do we (the parser rejects them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub component: u8,
    pub foundation: String,
    pub generation: u32,
    pub id: Option<String>,
    pub ip: IpAddr,
    pub port: u16,
    pub priority: u32,
    pub protocol: Protocol,
    pub kind: CandidateType,
    pub rel_addr: Option<IpAddr>,
    pub rel_port: Option<u16>,
    pub network: Option<u32>,
}

/// DTLS role attribute of a fingerprint (RFC 4145 `a=setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Actpass,
    Active,
    Passive,
    Holdconn,
}

/// A DTLS certificate fingerprint, e.g. hash `sha-256`, value `38:E0:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: String,
    pub setup: Setup,
    pub value: String,
}

/// An ICE-UDP transport (`urn:xmpp:jingle:transports:ice-udp:1`): the bridge's in an offer,
/// ours in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceTransport {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprints: Vec<Fingerprint>,
    pub candidates: Vec<Candidate>,
    pub rtcp_mux: bool,
    /// Colibri websocket URL JVB offers for its bridge channel (unused by jitape).
    pub web_socket: Option<String>,
    /// In-place ICE restart round (`ice-generation` attribute), when present.
    pub ice_generation: Option<u32>,
}

/// One payload type of an RTP description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    pub id: u8,
    pub name: String,
    pub clockrate: u32,
    pub channels: u8,
    /// `<parameter name value/>` pairs in document order (e.g. `useinbandfec=1`). A parameter
    /// without a name has `""` here: Jicofo writes RED's RFC 2198 fmtp (`111/111`) that way.
    pub parameters: Vec<(String, String)>,
}

/// One RTP header extension mapping (`<rtp-hdrext id uri/>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderExtension {
    pub id: u8,
    pub uri: String,
}

/// URI of the RFC 6464 client-to-mixer audio level extension, the only audio extension JVB
/// forwards.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// An audio `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpDescription {
    pub payload_types: Vec<PayloadType>,
    pub header_extensions: Vec<HeaderExtension>,
    pub extmap_allow_mixed: bool,
    pub rtcp_mux: bool,
    pub maxptime: Option<u32>,
}

impl RtpDescription {
    /// The Opus payload type, if offered.
    pub fn opus(&self) -> Option<&PayloadType> {
        self.payload_types
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case("opus") && p.clockrate == 48_000)
    }

    /// The RFC 2198 redundancy payload type (`red/48000`) whose blocks are the offered Opus,
    /// if both are offered. Its fmtp (Jicofo: one nameless parameter `111/111`) lists the
    /// payload types of the blocks; if it is absent the blocks are checked packet by packet.
    pub fn red(&self) -> Option<&PayloadType> {
        let opus = self.opus()?.id;
        self.payload_types.iter().find(|p| {
            p.name.eq_ignore_ascii_case("red")
                && p.clockrate == 48_000
                && p.parameters
                    .iter()
                    .filter(|(name, _)| name.is_empty())
                    .all(|(_, fmtp)| fmtp.split('/').all(|pt| pt.trim() == opus.to_string()))
        })
    }

    /// The id negotiated for the audio-level header extension, if offered.
    pub fn audio_level_id(&self) -> Option<u8> {
        self.header_extensions
            .iter()
            .find(|e| e.uri == AUDIO_LEVEL_URI)
            .map(|e| e.id)
    }
}

/// One remote media source: an SSRC and the endpoint that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub ssrc: Ssrc,
    /// Source name, e.g. `a1b2c3d4-a0`.
    pub name: Option<String>,
    /// Owning endpoint id (the resource part if the stanza carried a full occupant JID).
    pub owner: EndpointId,
    /// `msid` value ("stream-id track-id"), if signalled.
    pub msid: Option<String>,
}

impl Source {
    /// Whether this is the bridge's own feedback source rather than a participant's media.
    pub fn is_bridge(&self) -> bool {
        self.owner == BRIDGE_OWNER
    }

    /// Whether this is a synthetic (live translation) source: Jicofo names it
    /// `<sender's source name>.<language>` and the bridge forwards it only to endpoints that
    /// subscribed to it over the bridge channel, which jitape has not. lib-jitsi-meet tells them
    /// apart by the `.` in the name (regular names never have one); see docs/protocol.md.
    pub fn is_synthetic(&self) -> bool {
        self.name.as_deref().is_some_and(|n| n.contains('.'))
    }
}

/// Why a signalled audio source gets no m-line and no track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// The bridge's own feedback source (owner `jvb`): never media.
    Bridge,
    /// A synthetic translation source ([`Source::is_synthetic`]): never forwarded to jitape.
    Synthetic,
    /// The second SSRC of an `FID` group (RFC 4588 retransmissions): no packets of its own
    /// unless RTX was negotiated, which it never is for audio.
    Repair,
}

/// The `<bridge-session xmlns='http://jitsi.org/protocol/focus'/>` element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BridgeSession {
    pub id: String,
    pub region: Option<String>,
    pub restart: bool,
    pub ice_restart: bool,
}

/// A Jingle `<reason/>`: its condition element name (e.g. `expired`, `success`) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub condition: String,
    pub text: Option<String>,
}

/// The audio part of an offer (session-initiate or transport-replace): everything needed to
/// bring up the media session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioOffer {
    /// Name of the audio content (`audio` from Jicofo; `0`/`1` from a browser's P2P offer).
    pub content_name: String,
    pub description: RtpDescription,
    pub transport: IceTransport,
}

/// The endpoint id in an owner value: a bare id (`a1b2c3d4`, `jvb`) or the resource of a full
/// occupant JID (`room@muc/a1b2c3d4`).
pub fn owner_id(owner: &str) -> &str {
    owner.rsplit_once('/').map_or(owner, |(_, id)| id)
}
