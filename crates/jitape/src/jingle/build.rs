//! Outbound Jingle: session model → `<jingle xmlns='urn:xmpp:jingle:1'>` elements.
//!
//! In: sids, JIDs and model values. Out: the `<jingle>` element only (the caller wraps it in an
//! IQ). Two families, both shaped like the reference stanzas in `fixtures/`:
//! * what jitape sends: [`session_accept`] / [`transport_accept`] (audio only, one transport,
//!   DTLS `setup='active'`, no sources), [`transport_info`], [`session_info_ice_restart`],
//!   [`session_info_ice_failed`], [`session_terminate`] (optionally asking for a restart) and
//!   [`decline`] for a browser's P2P offer;
//! * what the simulated focus sends, mirroring Jicofo: [`session_initiate`],
//!   [`transport_replace`], [`source_add`], [`source_remove`] (XML or JSON sources).
//!
//! For every builder with a parse counterpart, `parse(build(x))` gives `x` back.

use minidom::{Element, ElementBuilder};

use super::json_sources::to_json;
use super::model::{
    AUDIO_LEVEL_URI, AudioOffer, BridgeSession, IceTransport, PayloadType, Reason, RtpDescription,
    Setup, Source,
};
use super::transport::build_transport;
use super::xml::BuilderExt;
use super::{Action, ns};

/// Reason text lib-jitsi-meet uses when it refuses P2P; we use it too.
pub const P2P_DECLINE_TEXT: &str = "P2P disabled";

fn jingle(action: Action, sid: &str, initiator: Option<&str>) -> ElementBuilder {
    Element::builder("jingle", ns::JINGLE)
        .set("action", action.as_str())
        .set_opt("initiator", initiator)
        .set("sid", sid)
}

/// What jitape answers an offer's description with: the offered RED of Opus (RFC 2198) if
/// any, then the offered Opus payload type (each with its parameters), and the audio-level
/// extension if offered, with `rtcp-mux`. `None` if the offer has no Opus.
pub fn answer_description(offer: &RtpDescription) -> Option<RtpDescription> {
    let opus = offer.opus()?.clone();
    let payload_types = offer.red().cloned().into_iter().chain([opus]).collect();
    Some(RtpDescription {
        payload_types,
        header_extensions: offer
            .header_extensions
            .iter()
            .filter(|e| e.uri == AUDIO_LEVEL_URI)
            .cloned()
            .collect(),
        extmap_allow_mixed: false,
        rtcp_mux: true,
        maxptime: None,
    })
}

/// session-accept for Jicofo's offer (example 03): one content `audio` (`creator='initiator'`,
/// `senders='initiator'`: receive only), `desc` without sources, our transport with every
/// fingerprint forced to `setup='active'`, and a BUNDLE group with `audio`.
pub fn session_accept(
    sid: &str,
    initiator: &str,
    responder: &str,
    desc: &RtpDescription,
    transport: &IceTransport,
) -> Element {
    jingle(Action::SessionAccept, sid, Some(initiator))
        .set("responder", responder)
        .append(
            Element::builder("content", ns::JINGLE)
                .set("creator", "initiator")
                .set("name", "audio")
                .set("senders", "initiator")
                .append(build_description(desc, &[]))
                .append(build_transport(&active(transport)))
                .build(),
        )
        .append(bundle_group(&["audio"]))
        .build()
}

/// transport-accept answering a transport-replace (example 06d): content `audio` with only our
/// transport (`setup='active'`); Jicofo handles it exactly like a session-accept.
pub fn transport_accept(sid: &str, initiator: &str, transport: &IceTransport) -> Element {
    jingle(Action::TransportAccept, sid, Some(initiator))
        .append(
            Element::builder("content", ns::JINGLE)
                .set("creator", "initiator")
                .set("name", "audio")
                .set("senders", "initiator")
                .append(build_transport(&active(transport)))
                .build(),
        )
        .build()
}

/// A copy of `t` with every fingerprint's DTLS role `active` (jitape is the DTLS client).
fn active(t: &IceTransport) -> IceTransport {
    let mut t = t.clone();
    for f in &mut t.fingerprints {
        f.setup = Setup::Active;
    }
    t
}

/// transport-info with one content `audio` (examples 05c/d/e): Jicofo's rotated bridge
/// transport (no initiator) or our answer to it / a late candidate (initiator set). The
/// transport's `ice-generation` is written when present.
pub fn transport_info(sid: &str, initiator: Option<&str>, transport: &IceTransport) -> Element {
    jingle(Action::TransportInfo, sid, initiator)
        .append(
            Element::builder("content", ns::JINGLE)
                .set("creator", "initiator")
                .set("name", "audio")
                .append(build_transport(transport))
                .build(),
        )
        .build()
}

/// session-terminate with `reason` (06a/b from Jicofo; 06c from us). With a `bridge_session`
/// whose `restart` is set, it asks Jicofo for a brand-new session.
pub fn session_terminate(
    sid: &str,
    initiator: Option<&str>,
    reason: &Reason,
    bridge_session: Option<&BridgeSession>,
) -> Element {
    let mut b = jingle(Action::SessionTerminate, sid, initiator).append(build_reason(reason));
    if let Some(bs) = bridge_session {
        b = b.append(build_bridge_session(bs));
    }
    b.build()
}

/// Declines a browser's P2P session-initiate (06e): session-terminate with `<decline/>` and
/// the text lib-jitsi-meet uses.
pub fn decline(sid: &str, initiator: Option<&str>) -> Element {
    let reason = Reason {
        condition: "decline".to_owned(),
        text: Some(P2P_DECLINE_TEXT.to_owned()),
    };
    session_terminate(sid, initiator, &reason, None)
}

/// Legacy ICE-failure report (06c'): session-info with `<ice-state>failed</ice-state>` and the
/// current bridge-session id; Jicofo re-invites.
pub fn session_info_ice_failed(sid: &str, initiator: &str, bridge_session_id: &str) -> Element {
    jingle(Action::SessionInfo, sid, Some(initiator))
        .append(
            Element::builder("ice-state", ns::FOCUS)
                .append("failed")
                .build(),
        )
        .append(
            Element::builder("bridge-session", ns::FOCUS)
                .set("id", bridge_session_id)
                .build(),
        )
        .build()
}

/// In-place ICE restart request (05a): session-info with
/// `<bridge-session id ice-restart='true'/>`.
pub fn session_info_ice_restart(sid: &str, initiator: &str, bridge_session_id: &str) -> Element {
    let bs = BridgeSession {
        id: bridge_session_id.to_owned(),
        region: None,
        restart: false,
        ice_restart: true,
    };
    jingle(Action::SessionInfo, sid, Some(initiator))
        .append(build_bridge_session(&bs))
        .build()
}

/// Jicofo's session-initiate (example 02): one audio content (`senders='both'`) with the
/// description (sources inside it unless `json_sources`) and the bridge's transport, the BUNDLE
/// group, the bridge-session and, if `json_sources`, the `json-message` with the sources.
pub fn session_initiate(
    sid: &str,
    initiator: &str,
    offer: &AudioOffer,
    sources: &[Source],
    bridge_session: &BridgeSession,
    json_sources: bool,
) -> Element {
    offer_element(
        Action::SessionInitiate,
        sid,
        initiator,
        offer,
        sources,
        bridge_session,
        json_sources,
    )
}

/// Jicofo's transport-replace (06d): the same body as [`session_initiate`].
pub fn transport_replace(
    sid: &str,
    initiator: &str,
    offer: &AudioOffer,
    sources: &[Source],
    bridge_session: &BridgeSession,
    json_sources: bool,
) -> Element {
    offer_element(
        Action::TransportReplace,
        sid,
        initiator,
        offer,
        sources,
        bridge_session,
        json_sources,
    )
}

fn offer_element(
    action: Action,
    sid: &str,
    initiator: &str,
    offer: &AudioOffer,
    sources: &[Source],
    bridge_session: &BridgeSession,
    json_sources: bool,
) -> Element {
    let in_description = if json_sources { &[][..] } else { sources };
    let mut b = jingle(action, sid, Some(initiator))
        .append(
            Element::builder("content", ns::JINGLE)
                .set("creator", "initiator")
                .set("name", offer.content_name.as_str())
                .set("senders", "both")
                .append(build_description(&offer.description, in_description))
                .append(build_transport(&offer.transport))
                .build(),
        )
        .append(bundle_group(&[offer.content_name.as_str()]))
        .append(build_bridge_session(bridge_session));
    if json_sources {
        b = b.append(json_message(sources));
    }
    b.build()
}

/// Jicofo's source-add (04a/b): no initiator; content `audio` with the sources, or only a
/// `json-message`.
pub fn source_add(sid: &str, sources: &[Source], json_sources: bool) -> Element {
    source_element(Action::SourceAdd, sid, sources, json_sources)
}

/// Jicofo's source-remove (04c), same shapes as [`source_add`].
pub fn source_remove(sid: &str, sources: &[Source], json_sources: bool) -> Element {
    source_element(Action::SourceRemove, sid, sources, json_sources)
}

fn source_element(action: Action, sid: &str, sources: &[Source], json_sources: bool) -> Element {
    let b = jingle(action, sid, None);
    if json_sources {
        return b.append(json_message(sources)).build();
    }
    b.append(
        Element::builder("content", ns::JINGLE)
            .set("name", "audio")
            .append(build_description(&RtpDescription::default(), sources))
            .build(),
    )
    .build()
}

fn json_message(sources: &[Source]) -> Element {
    Element::builder("json-message", ns::JITMEET)
        .append(to_json(sources))
        .build()
}

/// `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>` in Jicofo's child order:
/// payload types, header extensions, `extmap-allow-mixed`, `rtcp-mux`, sources.
pub fn build_description(d: &RtpDescription, sources: &[Source]) -> Element {
    let mut b = Element::builder("description", ns::RTP)
        .set("media", "audio")
        .set_opt("maxptime", d.maxptime.map(|m| m.to_string()))
        .append_all(d.payload_types.iter().map(build_payload_type));
    for e in &d.header_extensions {
        b = b.append(
            Element::builder("rtp-hdrext", ns::RTP_HDREXT)
                .set("id", e.id.to_string())
                .set("uri", e.uri.as_str())
                .build(),
        );
    }
    if d.extmap_allow_mixed {
        b = b.append(Element::bare("extmap-allow-mixed", ns::RTP_HDREXT));
    }
    if d.rtcp_mux {
        b = b.append(Element::bare("rtcp-mux", ns::RTP));
    }
    b.append_all(sources.iter().map(build_source)).build()
}

fn build_payload_type(p: &PayloadType) -> Element {
    let mut b = Element::builder("payload-type", ns::RTP)
        .set("id", p.id.to_string())
        .set("name", p.name.as_str());
    if p.clockrate != 0 {
        b = b.set("clockrate", p.clockrate.to_string());
    }
    if p.channels != 1 {
        b = b.set("channels", p.channels.to_string());
    }
    for (name, value) in &p.parameters {
        // A nameless parameter (RED's fmtp) is written without `name`, as Jicofo does.
        b = b.append(
            Element::builder("parameter", ns::RTP)
                .set_opt("name", (!name.is_empty()).then_some(name.as_str()))
                .set("value", value.as_str())
                .build(),
        );
    }
    b.build()
}

/// `<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc name>` with `ssrc-info owner` and the
/// `msid` parameter, as Jicofo writes them.
pub fn build_source(s: &Source) -> Element {
    let mut b = Element::builder("source", ns::SSMA)
        .set("ssrc", s.ssrc.to_string())
        .set_opt("name", s.name.as_deref())
        .append(
            Element::builder("ssrc-info", ns::JITMEET)
                .set("owner", s.owner.as_str())
                .build(),
        );
    if let Some(msid) = &s.msid {
        b = b.append(
            Element::builder("parameter", ns::RTP)
                .set("name", "msid")
                .set("value", msid.as_str())
                .build(),
        );
    }
    b.build()
}

fn bundle_group(names: &[&str]) -> Element {
    Element::builder("group", ns::GROUPING)
        .set("semantics", "BUNDLE")
        .append_all(names.iter().map(|n| {
            Element::builder("content", ns::GROUPING)
                .set("name", *n)
                .build()
        }))
        .build()
}

fn build_bridge_session(bs: &BridgeSession) -> Element {
    Element::builder("bridge-session", ns::FOCUS)
        .set("id", bs.id.as_str())
        .set_opt("region", bs.region.as_deref())
        .set_opt("restart", bs.restart.then_some("true"))
        .set_opt("ice-restart", bs.ice_restart.then_some("true"))
        .build()
}

fn build_reason(r: &Reason) -> Element {
    let mut b = Element::builder("reason", ns::JINGLE)
        .append(Element::bare(r.condition.as_str(), ns::JINGLE));
    if let Some(text) = &r.text {
        b = b.append(
            Element::builder("text", ns::JINGLE)
                .append(text.as_str())
                .build(),
        );
    }
    b.build()
}
