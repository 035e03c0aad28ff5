//! Inbound Jingle: `<jingle xmlns='urn:xmpp:jingle:1'>` → [`Jingle`].
//!
//! In: the `<jingle>` element (any outer stanza namespace) and optional [`Limits`]. Out: the
//! action, sid, initiator/responder and the payload the action carries — the audio content
//! (description + ICE transport) of offers and answers, the transport of a transport-info, the
//! audio sources of offers and source-add/remove (XML `<source>` and the JSON form, merged and
//! deduplicated by SSRC), `bridge-session`, `reason`, `ice-state` and the BUNDLE group.
//!
//! Unknown elements and attributes are ignored; everything the model needs is validated and
//! every failure is a precise [`JingleError`]. Work is bounded by [`Limits`].

use std::collections::HashSet;

use minidom::Element;

use super::error::JingleError;
use super::json_sources::parse_json_sources;
use super::model::{
    AudioOffer, BridgeSession, HeaderExtension, PayloadType, Reason, RtpDescription, Source, Ssrc,
    owner_id,
};
use super::transport::parse_transport;
use super::xml::{self, children_named};
use super::{Action, Jingle, ns};

/// Default bound on the sources of one stanza (XML and JSON together).
pub const MAX_SOURCES: usize = 2_000;
/// Default bound on a `json-message` body, in bytes.
pub const MAX_JSON_BYTES: usize = 1 << 20;
/// Default bound on the candidates of one transport.
pub const MAX_CANDIDATES: usize = 64;

/// Bounds that keep parsing one stanza cheap whatever it contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_sources: usize,
    pub max_json_bytes: usize,
    pub max_candidates: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sources: MAX_SOURCES,
            max_json_bytes: MAX_JSON_BYTES,
            max_candidates: MAX_CANDIDATES,
        }
    }
}

/// The envelope of a `<jingle>` element, readable even when its payload is not (e.g. to decline
/// a browser's P2P offer whose contents we never parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub action: Action,
    pub sid: String,
    pub initiator: Option<String>,
    pub responder: Option<String>,
}

/// Parses the action, sid, initiator and responder only.
pub fn parse_header(jingle: &Element) -> Result<Header, JingleError> {
    if !jingle.is("jingle", ns::JINGLE) {
        return Err(JingleError::NotJingle {
            name: super::error::quote(jingle.name()),
            ns: super::error::quote(&jingle.ns()),
        });
    }
    let action = match xml::optional(jingle, "action") {
        None => return Err(JingleError::MissingAction),
        Some(a) => Action::from_attr(a)
            .ok_or_else(|| JingleError::UnknownAction(super::error::quote(a)))?,
    };
    let sid = xml::optional(jingle, "sid").ok_or(JingleError::MissingSid)?;
    Ok(Header {
        action,
        sid: sid.to_owned(),
        initiator: xml::optional(jingle, "initiator").map(str::to_owned),
        responder: xml::optional(jingle, "responder").map(str::to_owned),
    })
}

/// Parses a `<jingle>` element with the default [`Limits`].
pub fn parse(jingle: &Element) -> Result<Jingle, JingleError> {
    parse_with_limits(jingle, &Limits::default())
}

/// Parses a `<jingle>` element.
pub fn parse_with_limits(jingle: &Element, limits: &Limits) -> Result<Jingle, JingleError> {
    let h = parse_header(jingle)?;
    let mut j = Jingle::new(h.action, h.sid);
    j.initiator = h.initiator;
    j.responder = h.responder;
    parse_session_children(jingle, &mut j)?;
    match j.action {
        Action::SessionInitiate | Action::TransportReplace => parse_offer(jingle, limits, &mut j)?,
        Action::SessionAccept | Action::TransportAccept => parse_answer(jingle, limits, &mut j)?,
        Action::TransportInfo => {
            let transport = contents(jingle)
                .find_map(|c| c.get_child("transport", ns::ICE_UDP))
                .ok_or(JingleError::MissingTransport)?;
            j.transport = Some(parse_transport(transport, limits.max_candidates)?);
        }
        Action::SourceAdd | Action::SourceRemove => {
            let mut descriptions = Vec::new();
            for content in contents(jingle) {
                let name = xml::required(content, "content", "name")?;
                match audio_description(content, name) {
                    Some(d) => descriptions.push(d),
                    None => j.other_contents.push(name.to_owned()),
                }
            }
            (j.sources, j.repair_ssrcs) = collect_sources(jingle, &descriptions, limits)?;
        }
        _ => {}
    }
    tracing::trace!(action = %j.action, sources = j.sources.len(), "parsed jingle");
    Ok(j)
}

fn contents(jingle: &Element) -> impl Iterator<Item = &Element> {
    children_named(jingle, "content", ns::JINGLE)
}

/// The content's RTP description if it is audio (`media='audio'`, or no `media` on a content
/// named `audio`).
fn audio_description<'a>(content: &'a Element, name: &str) -> Option<&'a Element> {
    content
        .get_child("description", ns::RTP)
        .filter(|d| match d.attr("media") {
            Some(m) => m == "audio",
            None => name == "audio",
        })
}

/// session-initiate / transport-replace: the first audio content, which must carry an ICE-UDP
/// transport and offer Opus.
fn parse_offer(jingle: &Element, limits: &Limits, j: &mut Jingle) -> Result<(), JingleError> {
    let mut audio = None;
    for content in contents(jingle) {
        let name = xml::required(content, "content", "name")?;
        match audio_description(content, name) {
            Some(d) if audio.is_none() => audio = Some((name, content, d)),
            _ => j.other_contents.push(name.to_owned()),
        }
    }
    let (name, content, desc_el) = audio.ok_or(JingleError::MissingTransport)?;
    let transport_el = content
        .get_child("transport", ns::ICE_UDP)
        .ok_or(JingleError::MissingTransport)?;
    let description = parse_description(desc_el)?;
    if description.opus().is_none() {
        return Err(JingleError::Unsupported(
            "audio description offers no opus/48000".to_owned(),
        ));
    }
    let transport = parse_transport(transport_el, limits.max_candidates)?;
    (j.sources, j.repair_ssrcs) = collect_sources(jingle, &[desc_el], limits)?;
    j.audio = Some(AudioOffer {
        content_name: name.to_owned(),
        description,
        transport,
    });
    Ok(())
}

/// session-accept / transport-accept: the audio content with a transport, else (like Jicofo,
/// which reads the first transport) the first content with a transport. The description is
/// optional here and not checked for Opus.
fn parse_answer(jingle: &Element, limits: &Limits, j: &mut Jingle) -> Result<(), JingleError> {
    let mut named = Vec::new();
    for content in contents(jingle) {
        named.push((xml::required(content, "content", "name")?, content));
    }
    let has_transport = |c: &Element| c.get_child("transport", ns::ICE_UDP).is_some();
    let chosen = named
        .iter()
        .position(|(n, c)| has_transport(c) && audio_description(c, n).is_some())
        .or_else(|| named.iter().position(|(_, c)| has_transport(c)))
        .ok_or(JingleError::MissingTransport)?;
    let mut audio = None;
    for (i, (name, content)) in named.into_iter().enumerate() {
        if i != chosen {
            j.other_contents.push(name.to_owned());
            continue;
        }
        let description = match audio_description(content, name) {
            Some(d) => parse_description(d)?,
            None => RtpDescription::default(),
        };
        let transport = content
            .get_child("transport", ns::ICE_UDP)
            .ok_or(JingleError::MissingTransport)?;
        audio = Some(AudioOffer {
            content_name: name.to_owned(),
            description,
            transport: parse_transport(transport, limits.max_candidates)?,
        });
    }
    j.audio = audio;
    Ok(())
}

/// Session-level children: `bridge-session`, `reason`, `ice-state`, the BUNDLE `group`.
fn parse_session_children(jingle: &Element, j: &mut Jingle) -> Result<(), JingleError> {
    if let Some(b) = jingle.get_child("bridge-session", ns::FOCUS) {
        j.bridge_session = Some(BridgeSession {
            id: xml::required(b, "bridge-session", "id")?.to_owned(),
            region: xml::optional(b, "region").map(str::to_owned),
            restart: xml::boolean(b, "restart"),
            ice_restart: xml::boolean(b, "ice-restart"),
        });
    }
    if let Some(r) = jingle.get_child("reason", ns::JINGLE) {
        j.reason = Some(parse_reason(r)?);
    }
    if let Some(s) = jingle.get_child("ice-state", ns::FOCUS) {
        j.ice_state = Some(s.text().trim().to_owned());
    }
    if let Some(g) = children_named(jingle, "group", ns::GROUPING)
        .find(|g| g.attr("semantics") == Some("BUNDLE"))
    {
        j.group = children_named(g, "content", ns::GROUPING)
            .filter_map(|c| xml::optional(c, "name"))
            .map(str::to_owned)
            .collect();
    }
    Ok(())
}

/// `<reason>`: the first child other than `<text>` (in the Jingle namespace if there is one
/// there, e.g. not an application-specific condition) names the condition.
fn parse_reason(r: &Element) -> Result<Reason, JingleError> {
    let is_condition = |c: &&Element| !c.is("text", ns::JINGLE);
    let condition = r
        .children()
        .filter(is_condition)
        .find(|c| c.has_ns(ns::JINGLE))
        .or_else(|| r.children().find(is_condition))
        .ok_or(JingleError::MissingElement {
            parent: "reason",
            element: "condition",
        })?;
    Ok(Reason {
        condition: condition.name().to_owned(),
        text: r.get_child("text", ns::JINGLE).map(Element::text),
    })
}

/// `<description xmlns='urn:xmpp:jingle:apps:rtp:1'>` → [`RtpDescription`].
pub fn parse_description(el: &Element) -> Result<RtpDescription, JingleError> {
    let mut d = RtpDescription {
        maxptime: xml::number(el, "description", "maxptime")?,
        ..RtpDescription::default()
    };
    for child in el.children() {
        if child.is("payload-type", ns::RTP) {
            d.payload_types.push(parse_payload_type(child)?);
        } else if child.is("rtp-hdrext", ns::RTP_HDREXT) {
            let id: u8 = xml::required_number(child, "rtp-hdrext", "id")?;
            if id == 0 {
                return Err(JingleError::invalid("rtp-hdrext", "id", "0"));
            }
            let uri = xml::required(child, "rtp-hdrext", "uri")?.to_owned();
            d.header_extensions.push(HeaderExtension { id, uri });
        } else if child.name() == "extmap-allow-mixed" {
            d.extmap_allow_mixed = true;
        } else if child.is("rtcp-mux", ns::RTP) {
            d.rtcp_mux = true;
        }
    }
    Ok(d)
}

fn parse_payload_type(el: &Element) -> Result<PayloadType, JingleError> {
    const E: &str = "payload-type";
    let id: u8 = xml::required_number(el, E, "id")?;
    if id > 127 {
        return Err(JingleError::invalid(E, "id", &id.to_string()));
    }
    // A parameter without a name is kept with the name "": Jicofo writes RED's fmtp
    // (`111/111`) so (docs/protocol.md), and a parameter is never worth refusing a session.
    let parameters = children_named(el, "parameter", ns::RTP)
        .map(|p| {
            (
                p.attr("name").unwrap_or("").to_owned(),
                p.attr("value").unwrap_or("").to_owned(),
            )
        })
        .collect();
    Ok(PayloadType {
        id,
        name: el.attr("name").unwrap_or("").to_owned(),
        clockrate: xml::number(el, E, "clockrate")?.unwrap_or(0),
        channels: xml::number(el, E, "channels")?.unwrap_or(1),
        parameters,
    })
}

/// Sources from the given audio descriptions, then from every `json-message`, deduplicated by
/// SSRC (first occurrence wins) and bounded by `limits`; and the repair (second `FID`) SSRCs of
/// their groups.
fn collect_sources(
    jingle: &Element,
    descriptions: &[&Element],
    limits: &Limits,
) -> Result<(Vec<Source>, Vec<Ssrc>), JingleError> {
    let mut all = Vec::new();
    let mut repair = Vec::new();
    for d in descriptions {
        for s in children_named(d, "source", ns::SSMA) {
            if all.len() >= limits.max_sources {
                return Err(JingleError::TooManySources {
                    limit: limits.max_sources,
                });
            }
            all.push(parse_source(s)?);
        }
        repair.extend(children_named(d, "ssrc-group", ns::SSMA).filter_map(fid_repair_ssrc));
    }
    for m in children_named(jingle, "json-message", ns::JITMEET) {
        let json = parse_json_sources(&m.text(), limits.max_json_bytes, limits.max_sources)?;
        if all.len() + json.sources.len() > limits.max_sources {
            return Err(JingleError::TooManySources {
                limit: limits.max_sources,
            });
        }
        all.extend(json.sources);
        repair.extend(json.repair_ssrcs);
    }
    repair.truncate(limits.max_sources);
    let mut seen = HashSet::with_capacity(all.len());
    all.retain(|s| {
        let new = seen.insert(s.ssrc);
        if !new {
            tracing::debug!(ssrc = %s.ssrc, "duplicate source in one stanza ignored");
        }
        new
    });
    Ok((all, repair))
}

/// The repair SSRC of an `<ssrc-group semantics='FID'>`: its second `<source ssrc>`. Groups
/// are optional information: one that is not a well-formed FID pair is ignored.
fn fid_repair_ssrc(group: &Element) -> Option<Ssrc> {
    if group.attr("semantics") != Some("FID") {
        return None;
    }
    let mut ssrcs = children_named(group, "source", ns::SSMA)
        .filter_map(|s| s.attr("ssrc"))
        .map(parse_ssrc);
    match (ssrcs.next(), ssrcs.next()) {
        (Some(Ok(_)), Some(Ok(repair))) => Some(repair),
        _ => None,
    }
}

/// `<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc name>` with its `ssrc-info owner` and
/// `msid` parameter (in the RTP or the SSMA namespace).
pub fn parse_source(el: &Element) -> Result<Source, JingleError> {
    let ssrc = parse_ssrc(xml::required(el, "source", "ssrc")?)?;
    let owner = el
        .get_child("ssrc-info", ns::JITMEET)
        .and_then(|i| xml::optional(i, "owner"))
        .map(owner_id)
        .filter(|o| !o.is_empty())
        .ok_or(JingleError::MissingOwner { ssrc })?;
    let msid = el
        .children()
        .filter(|p| p.is("parameter", ns::RTP) || p.is("parameter", ns::SSMA))
        .find(|p| p.attr("name") == Some("msid"))
        .and_then(|p| xml::optional(p, "value"))
        .map(str::to_owned);
    Ok(Source {
        ssrc,
        name: xml::optional(el, "name").map(str::to_owned),
        owner: owner.to_owned(),
        msid,
    })
}

/// An SSRC: decimal, fits in u32, not 0.
pub fn parse_ssrc(value: &str) -> Result<Ssrc, JingleError> {
    xml::decimal::<u32>(value)
        .filter(|s| *s != 0)
        .map(Ssrc)
        .ok_or_else(|| JingleError::invalid_ssrc(value))
}
