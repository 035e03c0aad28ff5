//! Pure SDP translation for the media session: the session model in, SDP text out, and our
//! local answer back into the model.
//!
//! Jicofo never sees SDP: the remote "offer" here is synthesised locally from the Jingle
//! session model only to configure webrtc-rs, and our answer is reduced to the transport that
//! goes into session-accept. So the offer is deliberately minimal (a few lines per m-line),
//! because its size is what renegotiation costs grow with:
//!
//! - one `m=audio` per [`Slot`](super::slots::SlotTable) (BUNDLEd, mid = slot index); an
//!   occupied slot is `a=sendonly` with exactly one `a=ssrc:<ssrc> msid:jitape s<slot>` (the
//!   stack keeps only the last `a=ssrc` of an m-line, and a stable msid track id per slot keeps
//!   one remote track per m-line across recycling); a free slot is `a=inactive`;
//! - ICE credentials and the fingerprint at session level, `a=setup`, `a=rtcp-mux`, the
//!   audio-level extmap and the bridge's candidates on the first m-line only (webrtc-rs reads
//!   `a=setup` and candidates from media sections only);
//! - a session with no source yet still needs one m-line to carry the transport: slot 0 is
//!   then `a=sendonly` without `a=ssrc` (the stack's single-m-line case).
//!
//! Every string from the offer that ends up in SDP is validated first ([`OfferTemplate::new`]),
//! so nothing from the network can inject lines.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::jingle::model::{
    AudioOffer, Candidate, CandidateType, Fingerprint, IceTransport, Protocol, Setup,
};

use super::error::MediaError;

/// The msid stream id of every remote track; the track id is `s<slot>`.
const MSID_STREAM: &str = "jitape";

/// The validated, invariant parts of a remote offer, built once per session.
#[derive(Debug, Clone)]
pub(crate) struct OfferTemplate {
    /// Session-level lines after the BUNDLE group (ICE credentials, fingerprint, ...).
    session_tail: String,
    /// Lines only the first m-line carries (setup, rtcp-mux, extmap, candidates).
    first_section: String,
    /// The Opus payload type of the offer.
    pub(crate) opus_pt: u8,
    /// The offer's RED (RFC 2198) of Opus, if any: listed on every m-line so the stack knows
    /// the payload type (the audio stage unpacks it).
    pub(crate) red_pt: Option<u8>,
    /// The negotiated RFC 6464 audio-level extension id, if offered.
    pub(crate) audio_level_id: Option<u8>,
    /// How many of the offer's candidates were usable (UDP, component 1).
    pub(crate) usable_candidates: usize,
}

impl OfferTemplate {
    /// Validates the offer and precomputes what every rendering shares.
    pub(crate) fn new(offer: &AudioOffer) -> Result<Self, MediaError> {
        let transport = &offer.transport;
        let opus = offer
            .description
            .opus()
            .ok_or_else(|| MediaError::Unsupported("the offer has no opus/48000".into()))?;
        if opus.id > 127 {
            return Err(MediaError::InvalidOffer(format!(
                "payload type {} out of range",
                opus.id
            )));
        }
        check_ice_chars("ufrag", &transport.ufrag)?;
        check_ice_chars("pwd", &transport.pwd)?;
        let fingerprint = pick_fingerprint(&transport.fingerprints)?;
        let setup = match fingerprint.setup {
            Setup::Actpass => "actpass",
            Setup::Passive => "passive",
            Setup::Active => "active",
            Setup::Holdconn => {
                return Err(MediaError::Unsupported("DTLS setup 'holdconn'".into()));
            }
        };

        let mut session_tail = String::new();
        if offer.description.extmap_allow_mixed {
            session_tail.push_str("a=extmap-allow-mixed\r\n");
        }
        // Infallible: writing into a String.
        let _ = write!(
            session_tail,
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:{} {}\r\n",
            transport.ufrag,
            transport.pwd,
            fingerprint.hash.to_ascii_lowercase(),
            fingerprint.value
        );

        // Ids 15-255 need RFC 8285's two-byte form, which the stack reads as well.
        let audio_level_id = offer.description.audio_level_id();
        let mut first_section = format!("a=setup:{setup}\r\na=rtcp-mux\r\n");
        if let Some(id) = audio_level_id {
            let _ = write!(
                first_section,
                "a=extmap:{id} {}\r\n",
                crate::jingle::model::AUDIO_LEVEL_URI
            );
        }
        let mut usable_candidates = 0;
        for candidate in &transport.candidates {
            if let Some(line) = candidate_line(candidate)? {
                let _ = write!(first_section, "a=candidate:{line}\r\n");
                usable_candidates += 1;
            }
        }
        first_section.push_str("a=end-of-candidates\r\n");

        let red_pt = offer
            .description
            .red()
            .map(|r| r.id)
            .filter(|pt| *pt <= 127 && *pt != opus.id);
        Ok(Self {
            session_tail,
            first_section,
            opus_pt: opus.id,
            red_pt,
            audio_level_id,
            usable_candidates,
        })
    }

    /// Renders the remote offer for the given m-line assignment (`None` = free slot).
    /// `version` must grow with every rendering of one session (SDP `o=` version).
    pub(crate) fn render(&self, slots: &[Option<u32>], version: u64) -> String {
        let count = slots.len().max(1);
        let mut sdp = String::with_capacity(256 + self.first_section.len() + count * 110);
        let _ = write!(
            sdp,
            "v=0\r\no=- 1 {version} IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=group:BUNDLE"
        );
        for mid in 0..count {
            let _ = write!(sdp, " {mid}");
        }
        sdp.push_str("\r\n");
        sdp.push_str(&self.session_tail);
        let pts = match self.red_pt {
            Some(red) => format!("{} {red}", self.opus_pt),
            None => self.opus_pt.to_string(),
        };
        for mid in 0..count {
            let pt = self.opus_pt;
            let _ = write!(sdp, "m=audio 9 UDP/TLS/RTP/SAVPF {pts}\r\na=mid:{mid}\r\n");
            if mid == 0 {
                sdp.push_str(&self.first_section);
            }
            let ssrc = slots.get(mid).copied().flatten();
            let direction = match (ssrc, slots.len()) {
                (Some(_), _) | (None, 0) => "sendonly",
                (None, _) => "inactive",
            };
            let _ = write!(sdp, "a={direction}\r\na=rtpmap:{pt} opus/48000/2\r\n");
            if let Some(red) = self.red_pt {
                let _ = write!(
                    sdp,
                    "a=rtpmap:{red} red/48000/2\r\na=fmtp:{red} {pt}/{pt}\r\n"
                );
            }
            if let Some(ssrc) = ssrc {
                let _ = write!(sdp, "a=ssrc:{ssrc} msid:{MSID_STREAM} s{mid}\r\n");
            }
        }
        sdp
    }
}

/// The slot a remote track belongs to, from the track id the offer gave it (`s<slot>`).
pub(crate) fn slot_of_track(track_id: &str) -> Option<usize> {
    track_id.strip_prefix('s')?.parse().ok()
}

/// Our transport as read from the local answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalTransport {
    pub(crate) ufrag: String,
    pub(crate) pwd: String,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) candidates: Vec<Candidate>,
}

impl LocalTransport {
    /// Reads ufrag, pwd, fingerprint, setup and the UDP component-1 host candidates from
    /// an SDP answer produced by the stack.
    pub(crate) fn from_answer(sdp: &str) -> Result<Self, MediaError> {
        let mut ufrag = None;
        let mut pwd = None;
        let mut fingerprint = None;
        let mut setup = None;
        let mut candidates = Vec::new();
        for line in sdp.lines() {
            let Some(attr) = line.trim_end().strip_prefix("a=") else {
                continue;
            };
            let (key, value) = attr.split_once(':').unwrap_or((attr, ""));
            match key {
                "ice-ufrag" if ufrag.is_none() => ufrag = Some(value.to_owned()),
                "ice-pwd" if pwd.is_none() => pwd = Some(value.to_owned()),
                "fingerprint" if fingerprint.is_none() => fingerprint = value.split_once(' '),
                "setup" if setup.is_none() => setup = Some(value),
                "candidate" => candidates.extend(parse_candidate(value)),
                _ => {}
            }
        }
        let missing = |what: &str| MediaError::Internal(format!("our answer has no {what}"));
        let (hash, value) = fingerprint.ok_or_else(|| missing("fingerprint"))?;
        let setup = match setup.ok_or_else(|| missing("a=setup"))? {
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            other => {
                return Err(MediaError::Internal(format!(
                    "our answer says setup {other}"
                )));
            }
        };
        candidates.dedup_by(|a, b| a.ip == b.ip && a.port == b.port);
        Ok(Self {
            ufrag: ufrag.ok_or_else(|| missing("ice-ufrag"))?,
            pwd: pwd.ok_or_else(|| missing("ice-pwd"))?,
            fingerprint: Fingerprint {
                hash: hash.to_owned(),
                setup,
                value: value.to_owned(),
            },
            candidates,
        })
    }

    /// The transport for session-accept: our candidates plus one host candidate per
    /// advertised (NAT 1:1) address on the port of the first gathered candidate.
    pub(crate) fn into_ice_transport(self, advertise: &[IpAddr]) -> IceTransport {
        let mut candidates = self.candidates;
        if let Some(base) = candidates.first().cloned() {
            for (i, ip) in advertise.iter().enumerate() {
                if candidates
                    .iter()
                    .any(|c| c.ip == *ip && c.port == base.port)
                {
                    continue;
                }
                // Lower local preference than the gathered address, same type preference.
                let step = u32::try_from(i + 1).unwrap_or(u32::MAX).saturating_mul(256);
                candidates.push(Candidate {
                    foundation: format!("{}a{i}", base.foundation),
                    priority: base.priority.saturating_sub(step),
                    ip: *ip,
                    id: None,
                    ..base.clone()
                });
            }
        }
        IceTransport {
            ufrag: self.ufrag,
            pwd: self.pwd,
            fingerprints: vec![self.fingerprint],
            candidates,
            rtcp_mux: true,
            web_socket: None,
            ice_generation: None,
        }
    }
}

/// Parses one `a=candidate:` value as the stack writes it; keeps UDP component-1 candidates
/// with a literal IP.
fn parse_candidate(value: &str) -> Option<Candidate> {
    let mut it = value.split_whitespace();
    let foundation = it.next()?.to_owned();
    let component: u8 = it.next()?.parse().ok()?;
    let protocol = it.next()?;
    let priority: u32 = it.next()?.parse().ok()?;
    let ip: IpAddr = it.next()?.parse().ok()?;
    let port: u16 = it.next()?.parse().ok()?;
    if component != 1 || !protocol.eq_ignore_ascii_case("udp") || it.next()? != "typ" {
        return None;
    }
    let kind = match it.next()? {
        "host" => CandidateType::Host,
        "srflx" => CandidateType::Srflx,
        "prflx" => CandidateType::Prflx,
        "relay" => CandidateType::Relay,
        _ => return None,
    };
    Some(Candidate {
        component,
        foundation,
        generation: 0,
        id: None,
        ip,
        port,
        priority,
        protocol: Protocol::Udp,
        kind,
        rel_addr: None,
        rel_port: None,
        network: None,
    })
}

/// The SDP `a=candidate` value for a remote candidate, or `None` when the stack cannot use
/// it (TCP, RTCP component, unknown type). Errors on values that could corrupt the SDP.
fn candidate_line(c: &Candidate) -> Result<Option<String>, MediaError> {
    if c.protocol != Protocol::Udp || c.component != 1 || c.port == 0 {
        return Ok(None);
    }
    let kind = match c.kind {
        CandidateType::Host => "host",
        CandidateType::Srflx => "srflx",
        CandidateType::Relay => "relay",
        CandidateType::Prflx => return Ok(None),
    };
    if c.foundation.is_empty() || c.foundation.len() > 32 || !c.foundation.bytes().all(is_ice_char)
    {
        return Err(MediaError::InvalidOffer(format!(
            "candidate foundation {:?}",
            c.foundation
        )));
    }
    let mut line = format!(
        "{} 1 udp {} {} {} typ {kind}",
        c.foundation, c.priority, c.ip, c.port
    );
    if let (Some(addr), Some(port)) = (c.rel_addr, c.rel_port) {
        let _ = write!(line, " raddr {addr} rport {port}");
    }
    let _ = write!(line, " generation {}", c.generation);
    Ok(Some(line))
}

/// Picks the fingerprint the stack should verify: sha-256 first, then the other supported
/// hashes. The value must be colon-separated hex.
fn pick_fingerprint(fingerprints: &[Fingerprint]) -> Result<&Fingerprint, MediaError> {
    const PREFERENCE: [&str; 4] = ["sha-256", "sha-384", "sha-512", "sha-1"];
    let chosen = PREFERENCE
        .iter()
        .find_map(|hash| {
            fingerprints
                .iter()
                .find(|f| f.hash.eq_ignore_ascii_case(hash))
        })
        .ok_or_else(|| {
            if fingerprints.is_empty() {
                MediaError::InvalidOffer("the transport has no DTLS fingerprint".into())
            } else {
                MediaError::Unsupported("no sha-256/384/512/sha-1 fingerprint".into())
            }
        })?;
    let hex_ok = !chosen.value.is_empty()
        && chosen
            .value
            .split(':')
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
    if !hex_ok {
        return Err(MediaError::InvalidOffer(format!(
            "fingerprint value {:?}",
            chosen.value
        )));
    }
    Ok(chosen)
}

/// RFC 8445 ice-char: ALPHA / DIGIT / "+" / "/".
fn is_ice_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

fn check_ice_chars(what: &str, value: &str) -> Result<(), MediaError> {
    if value.is_empty() || value.len() > 256 || !value.bytes().all(is_ice_char) {
        return Err(MediaError::InvalidOffer(format!("ICE {what} {value:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
