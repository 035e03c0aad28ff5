//! The simulated bridge's signalling: what it tells Jicofo (the session-initiate's audio
//! description and transport, read from its own SDP offer) and the SDP answer it builds from
//! jitape's transport (what Jicofo forwards from session-accept). Payload types and the
//! audio-level id are Jicofo's configuration ([`Wire`]); the answer decides what the bridge's
//! stack sends with.

use std::fmt::Write as _;

use jitape::jingle::model::{
    AUDIO_LEVEL_URI, Candidate, CandidateType, Fingerprint, HeaderExtension, IceTransport,
    PayloadType, Protocol, RtpDescription, Setup,
};

use super::{BridgeError, OPUS_FMTP, Wire};

/// The audio description Jicofo sends (`CodecUtil.kt`, docs/protocol.md): RED first if it
/// offers RED (then without `useinbandfec`), Opus, telephone-event; audio level.
pub fn jicofo_description(wire: &Wire) -> RtpDescription {
    let opus = wire.opus_pt;
    let mut opus_parameters = vec![("minptime".into(), "10".into())];
    if wire.red.is_none() {
        opus_parameters.push(("useinbandfec".into(), "1".into()));
    }
    let mut payload_types: Vec<PayloadType> = wire
        .red
        .iter()
        .map(|red| PayloadType {
            id: red.pt,
            name: "red".into(),
            clockrate: 48_000,
            channels: 2,
            parameters: vec![(String::new(), format!("{opus}/{opus}"))],
        })
        .collect();
    payload_types.push(PayloadType {
        id: opus,
        name: "opus".into(),
        clockrate: 48_000,
        channels: 2,
        parameters: opus_parameters,
    });
    payload_types.push(PayloadType {
        id: 126,
        name: "telephone-event".into(),
        clockrate: 8_000,
        channels: 1,
        parameters: vec![],
    });
    RtpDescription {
        payload_types,
        header_extensions: vec![HeaderExtension {
            id: wire.audio_level_id,
            uri: AUDIO_LEVEL_URI.into(),
        }],
        extmap_allow_mixed: true,
        rtcp_mux: true,
        maxptime: Some(60),
    }
}

/// The bridge's ICE transport (as JVB would describe it) and its mids, from its own offer.
pub(super) fn transport_from_offer(sdp: &str) -> Result<(IceTransport, Vec<String>), BridgeError> {
    let mut t = IceTransport {
        rtcp_mux: true,
        ..Default::default()
    };
    let mut mids = Vec::new();
    let bad = |what: &str| BridgeError::InvalidAnswer(format!("own offer lacks {what}"));
    for line in sdp.lines() {
        let Some((key, value)) = line.strip_prefix("a=").and_then(|a| a.split_once(':')) else {
            continue;
        };
        match key {
            "ice-ufrag" if t.ufrag.is_empty() => t.ufrag = value.into(),
            "ice-pwd" if t.pwd.is_empty() => t.pwd = value.into(),
            "mid" => mids.push(value.to_owned()),
            "fingerprint" if t.fingerprints.is_empty() => {
                let (hash, v) = value.split_once(' ').ok_or_else(|| bad("fingerprint"))?;
                t.fingerprints.push(Fingerprint {
                    hash: hash.into(),
                    setup: Setup::Actpass,
                    value: v.into(),
                });
            }
            "candidate" => t.candidates.extend(parse_host_candidate(value)),
            _ => {}
        }
    }
    if t.ufrag.is_empty() || t.pwd.is_empty() || t.fingerprints.is_empty() || mids.is_empty() {
        return Err(bad("ICE/DTLS parameters"));
    }
    Ok((t, mids))
}

fn parse_host_candidate(value: &str) -> Option<Candidate> {
    let f: Vec<&str> = value.split_whitespace().collect();
    match f.as_slice() {
        [
            foundation,
            "1",
            proto,
            priority,
            ip,
            port,
            "typ",
            "host",
            ..,
        ] if proto.eq_ignore_ascii_case("udp") => Some(Candidate {
            component: 1,
            foundation: (*foundation).into(),
            generation: 0,
            id: None,
            ip: ip.parse().ok()?,
            port: port.parse().ok()?,
            priority: priority.parse().ok()?,
            protocol: Protocol::Udp,
            kind: CandidateType::Host,
            rel_addr: None,
            rel_port: None,
            network: Some(0),
        }),
        _ => None,
    }
}

/// The SDP answer the bridge applies, built from jitape's transport and the bridge's mids,
/// with the payload types and audio-level id of `wire` (what Jicofo offered).
pub(super) fn answer_sdp(
    answer: &IceTransport,
    mids: &[String],
    wire: &Wire,
) -> Result<String, BridgeError> {
    let fp = answer
        .fingerprints
        .first()
        .ok_or_else(|| BridgeError::InvalidAnswer("no fingerprint".into()))?;
    let setup = match fp.setup {
        Setup::Active => "active",
        Setup::Passive => "passive",
        Setup::Actpass | Setup::Holdconn => {
            return Err(BridgeError::InvalidAnswer(
                "setup must be active or passive".into(),
            ));
        }
    };
    let clean = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !clean(&answer.ufrag) || !clean(&answer.pwd) || !clean(&fp.hash) || !clean(&fp.value) {
        return Err(BridgeError::InvalidAnswer("ICE/DTLS values".into()));
    }
    let mut sdp = format!(
        "v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
         a=group:BUNDLE {}\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:{} {}\r\n",
        mids.join(" "),
        answer.ufrag,
        answer.pwd,
        fp.hash,
        fp.value
    );
    let (opus, level) = (wire.opus_pt, wire.audio_level_id);
    let pts = match &wire.red {
        Some(red) => format!("{opus} {}", red.pt),
        None => opus.to_string(),
    };
    for (i, mid) in mids.iter().enumerate() {
        let _ = write!(
            sdp,
            "m=audio 9 UDP/TLS/RTP/SAVPF {pts}\r\na=mid:{mid}\r\na=setup:{setup}\r\n\
             a=rtcp-mux\r\na=recvonly\r\na=rtpmap:{opus} opus/48000/2\r\n\
             a=fmtp:{opus} {OPUS_FMTP}\r\na=extmap:{level} {AUDIO_LEVEL_URI}\r\n"
        );
        if let Some(red) = &wire.red {
            let _ = write!(
                sdp,
                "a=rtpmap:{0} red/48000/2\r\na=fmtp:{0} {opus}/{opus}\r\n",
                red.pt
            );
        }
        if i == 0 {
            for c in answer
                .candidates
                .iter()
                .filter(|c| c.protocol == Protocol::Udp)
            {
                let _ = write!(
                    sdp,
                    "a=candidate:{} 1 udp {} {} {} typ host\r\n",
                    c.foundation
                        .replace(|ch: char| !ch.is_ascii_alphanumeric(), ""),
                    c.priority,
                    c.ip,
                    c.port
                );
            }
            sdp.push_str("a=end-of-candidates\r\n");
        }
    }
    Ok(sdp)
}

#[cfg(test)]
mod tests;
