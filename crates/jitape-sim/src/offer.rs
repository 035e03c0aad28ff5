//! What the simulated focus adds to its offers beyond the defaults: the variants Jicofo (and
//! an older JVB) can put in a session-initiate or transport-replace (docs/protocol.md, "Offer
//! variants"; one fixture each in `crates/jitape/src/jingle/fixtures/jicofo/`).
//!
//! In: the `<jingle>` the focus built from the bridge's offer, the sources it signals and the
//! plan's [`OfferVariants`]. Out: the synthetic translation sources to signal with them
//! ([`synthetic_sources`]) and the decorated `<jingle>` ([`decorate`]). RED is not here: it is
//! part of the codec configuration the bridge offers and sends with
//! ([`super::bridge::Wire`]).

use minidom::Element;
use minidom::rxml::{Namespace, NcName};

use jitape::jingle::model::Source;
use jitape::jingle::ns;

/// Offer variants of the simulated Jicofo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferVariants {
    /// `jicofo.codec.audio.opus.red.enabled`: a receiver that advertises
    /// `http://jitsi.org/opus-red` is offered RED (pt 112, before Opus, with the nameless
    /// fmtp parameter) and the speakers send RED repeating this many frames.
    pub red_distance: Option<u8>,
    /// Live translation into these languages: one synthetic source `<source name>.<lang>` per
    /// speaker and language, owned by the speaker, no msid; the bridge never forwards them.
    pub translations: Vec<String>,
    /// The other optional parts: tcc and mid header extensions, transport-cc feedback, a TCP
    /// and an ssltcp candidate, `startmuted`, `traceparent`, elements and attributes of no
    /// known namespace.
    pub extras: bool,
}

/// The synthetic translation sources of `sources` (the bridge's own left out), with SSRCs
/// drawn from `next_ssrc`.
pub fn synthetic_sources(
    sources: &[Source],
    v: &OfferVariants,
    mut next_ssrc: impl FnMut() -> u32,
) -> Vec<Source> {
    let mut out = Vec::new();
    for s in sources.iter().filter(|s| !s.is_bridge()) {
        let Some(name) = &s.name else { continue };
        for lang in &v.translations {
            out.push(Source {
                ssrc: jitape::types::Ssrc(next_ssrc()),
                name: Some(format!("{name}.{lang}")),
                owner: s.owner.clone(),
                msid: None,
            });
        }
    }
    out
}

/// Adds the [`OfferVariants::extras`] to an offer built by `jingle::session_initiate` or
/// `jingle::transport_replace`.
pub fn decorate(mut jingle: Element, v: &OfferVariants) -> Element {
    if !v.extras {
        return jingle;
    }
    set(&mut jingle, "x-future-attribute", "1");
    if let Some(content) = jingle.get_child_mut("content", ns::JINGLE) {
        set(content, "x-future-attribute", "1");
        if let Some(d) = content.get_child_mut("description", ns::RTP) {
            decorate_description(d);
        }
        if let Some(t) = content.get_child_mut("transport", ns::ICE_UDP) {
            decorate_transport(t);
        }
    }
    jingle.append_child(
        Element::builder("startmuted", "http://jitsi.org/jitmeet/start-muted")
            .attr(name("audio"), "false")
            .attr(name("video"), "true")
            .build(),
    );
    jingle.append_child(
        Element::builder("traceparent", "jitsi:opentelemetry")
            .attr(name("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736")
            .attr(name("parent_id"), "00f067aa0ba902b7")
            .attr(name("trace_flags"), "01")
            .build(),
    );
    jingle.append_child(
        Element::builder("future-thing", "urn:example:not-yet-invented")
            .attr(name("mode"), "x")
            .append(Element::bare("child", "urn:example:not-yet-invented"))
            .build(),
    );
    jingle
}

/// tcc feedback on every payload type; the mid and tcc header extensions after the others
/// (Jicofo's order); an unknown child.
fn decorate_description(d: &mut Element) {
    for pt in d.children_mut().filter(|c| c.is("payload-type", ns::RTP)) {
        pt.append_child(
            Element::builder("rtcp-fb", "urn:xmpp:jingle:apps:rtp:rtcp-fb:0")
                .attr(name("type"), "transport-cc")
                .build(),
        );
    }
    for (id, uri) in [
        ("10", "urn:ietf:params:rtp-hdrext:sdes:mid"),
        (
            "5",
            "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        ),
    ] {
        d.append_child(
            Element::builder("rtp-hdrext", ns::RTP_HDREXT)
                .attr(name("id"), id)
                .attr(name("uri"), uri)
                .build(),
        );
    }
    d.append_child(Element::bare(
        "future-codec-hint",
        "urn:example:not-yet-invented",
    ));
}

/// A legacy JVB's ICE/TCP candidates (`tcp`, and `ssltcp` as it advertised SSL ones) next to
/// the UDP ones, on a port nothing listens on.
fn decorate_transport(t: &mut Element) {
    for (foundation, protocol, port) in [("90", "tcp", "4443"), ("91", "ssltcp", "443")] {
        t.append_child(
            Element::builder("candidate", ns::ICE_UDP)
                .attr(name("component"), "1")
                .attr(name("foundation"), foundation)
                .attr(name("generation"), "0")
                .attr(name("id"), format!("tcp{foundation}"))
                .attr(name("network"), "0")
                .attr(name("priority"), "1518280447")
                .attr(name("protocol"), protocol)
                .attr(name("type"), "host")
                .attr(name("ip"), "127.0.0.1")
                .attr(name("port"), port)
                .attr(name("tcptype"), "passive")
                .build(),
        );
    }
}

fn name(n: &'static str) -> NcName {
    NcName::try_from(n).unwrap_or_else(|_| unreachable!("literal attribute name"))
}

fn set(el: &mut Element, attr: &'static str, value: &str) {
    el.set_attr(Namespace::NONE, name(attr), value);
}

#[cfg(test)]
mod tests;
