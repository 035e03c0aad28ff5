//! Builders of hostile stanzas for the malformed-input table: oversized, deeply nested, wrong
//! namespaces, bad SSRCs and candidates, odd presences and IQs.
//!
//! In: the names of the shared harness (`room`: the room, jitape's JID and nick, the focus).
//! Out: `minidom::Element`s as the link would deliver them (component namespace). Values
//! minidom's own parser refuses (an attribute over 8 KiB) are set through the builder.

use jitape::jingle::model::{BridgeSession, Source};
use jitape::xml::BuilderExt;
use minidom::Element;
use minidom::rxml::{Namespace, NcName};

use crate::room::{FOCUS, FOCUS_REAL, HUMANS, NICK, NS, ROOM, US, el, offer, source};

pub const SID: &str = "sid1";

/// An IQ set from occupant `nick` carrying `payload` (XML text).
pub fn iq(nick: &str, id: &str, payload: &str) -> Element {
    el(&format!(
        r#"<iq xmlns="{NS}" type="set" id="{id}" from="{ROOM}/{nick}" to="{US}">{payload}</iq>"#
    ))
}

/// An IQ set from the focus with a built `<jingle>`.
pub fn from_focus(id: &str, jingle: Element) -> Element {
    crate::room::iq_from(FOCUS, id, jingle)
}

fn xml(e: &Element) -> String {
    String::from_utf8(crate::room::xml_bytes(e)).unwrap_or_default()
}

/// A source-add for `sid` with one XML source whose `ssrc` attribute is `ssrc`.
pub fn source_add_ssrc(sid: &str, ssrc: &str) -> Element {
    iq(
        FOCUS,
        "add",
        &format!(
            r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{sid}"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="{ssrc}"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="{}"/></source></description></content></jingle>"#,
            HUMANS[0]
        ),
    )
}

/// A source-add for `sid` in Jicofo's JSON form with `body` as the `json-message` text.
pub fn source_add_json(sid: &str, body: &str) -> Element {
    let j = Element::builder("jingle", jitape::jingle::ns::JINGLE)
        .set("action", "source-add")
        .set("sid", sid)
        .append(
            Element::builder("json-message", jitape::jingle::ns::JITMEET)
                .append(body)
                .build(),
        )
        .build();
    from_focus("json", j)
}

/// `n` distinct sources of the first human.
pub fn many_sources(n: u32) -> Vec<Source> {
    (1..=n).map(|i| source(100_000 + i, HUMANS[0])).collect()
}

/// A transport-replace (same sid) or session-initiate (new sid) whose candidate has
/// `from` replaced by `to` in its serialised attributes (e.g. `port='10000'` → `port='-1'`).
pub fn offer_with_candidate(action: &str, sid: &str, from: &str, to: &str) -> Element {
    let bs = BridgeSession {
        id: "bs2".into(),
        ..BridgeSession::default()
    };
    let sources = [source(7, HUMANS[0])];
    let j = match action {
        "transport-replace" => {
            jitape::jingle::transport_replace(sid, FOCUS_REAL, &offer(), &sources, &bs, false)
        }
        _ => jitape::jingle::session_initiate(sid, FOCUS_REAL, &offer(), &sources, &bs, false),
    };
    let text = xml(&j);
    assert!(text.contains(from), "{from} not in the offer: {text}");
    from_focus("offer", el(&text.replacen(from, to, 1)))
}

/// A transport-replace for `sid` whose transport has `n` candidates.
pub fn offer_with_candidates(sid: &str, n: u16) -> Element {
    let mut o = offer();
    let c = o.transport.candidates[0].clone();
    o.transport.candidates = (0..n)
        .map(|i| jitape::jingle::model::Candidate {
            port: 1000 + i,
            ..c.clone()
        })
        .collect();
    let bs = BridgeSession {
        id: "bs2".into(),
        ..BridgeSession::default()
    };
    from_focus(
        "cands",
        jitape::jingle::transport_replace(sid, FOCUS_REAL, &o, &[], &bs, false),
    )
}

/// A valid Jingle `action` for `sid` that jitape never expects from the focus.
pub fn unexpected(action: &str, sid: &str) -> Element {
    let t = crate::room::local_transport();
    let j = match action {
        "session-accept" => {
            jitape::jingle::session_accept(sid, FOCUS_REAL, US, &offer().description, &t)
        }
        "transport-accept" => jitape::jingle::transport_accept(sid, FOCUS_REAL, &t),
        other => el(&format!(
            r#"<jingle xmlns="urn:xmpp:jingle:1" action="{other}" sid="{sid}"/>"#
        )),
    };
    from_focus(&format!("unexpected-{action}"), j)
}

/// A transport-info for `sid` with a candidate mutated as in [`offer_with_candidate`].
pub fn transport_info_with(sid: &str, from: &str, to: &str) -> Element {
    let j = jitape::jingle::transport_info(sid, None, &offer().transport);
    let text = xml(&j);
    assert!(text.contains(from), "{from} not in the transport: {text}");
    from_focus("tinfo", el(&text.replacen(from, to, 1)))
}

/// A bare `<jingle action sid/>` from `nick`.
pub fn bare_jingle(nick: &str, action: &str, sid: &str) -> Element {
    iq(
        nick,
        &format!("{action}-{sid}"),
        &format!(r#"<jingle xmlns="urn:xmpp:jingle:1" action="{action}" sid="{sid}"/>"#),
    )
}

/// An available presence of `nick` with extra children (XML text).
pub fn presence(nick: &str, children: &str) -> Element {
    crate::room::presence(nick, None, children, "")
}

/// A presence of about `bytes` bytes: a `<features>` list of long feature URIs.
pub fn huge_presence(nick: &str, bytes: usize) -> Element {
    let var = format!("urn:example:feature:{}", "x".repeat(80));
    let mut features = Element::builder("features", NS);
    for i in 0..bytes / (var.len() + 30) {
        features = features.append(
            Element::builder("feature", NS)
                .set("var", format!("{var}{i}"))
                .build(),
        );
    }
    let mut p = presence(nick, "");
    p.append_child(features.build());
    p
}

/// A presence whose `<stats-id>` holds `depth` nested elements.
pub fn nested_presence(nick: &str, depth: usize) -> Element {
    let mut inner = Element::builder("a", NS).append("core").build();
    for _ in 1..depth {
        inner = Element::builder("a", NS).append(inner).build();
    }
    let mut p = presence(nick, "");
    p.append_child(Element::builder("stats-id", NS).append(inner).build());
    p
}

/// A presence with an attribute value of `len` bytes (over rxml's 8 KiB token limit, which
/// is why it is built, not parsed).
pub fn long_attribute_presence(nick: &str, len: usize) -> Element {
    let mut p = presence(nick, "");
    if let Ok(name) = NcName::try_from("data") {
        p.set_attr(Namespace::NONE, name, "v".repeat(len));
    }
    p
}

/// A presence with `n` `<feature>` children and an identity whose fields are `len` long.
pub fn odd_features_presence(nick: &str, n: usize, len: usize) -> Element {
    let long = "é".repeat(len);
    let short: String = long.chars().take(1_000).collect();
    let features: String = (0..n)
        .map(|i| format!(r#"<feature var="urn:x:{i}:{short}"/>"#))
        .collect();
    presence(
        nick,
        &format!(
            "<features>{features}</features><identity><user><id>{long}</id><name>{long}</name><email>{long}</email></user><group>{long}</group></identity><nick xmlns=\"http://jabber.org/protocol/nick\">{long}</nick>"
        ),
    )
}

/// A stanza from the room to jitape of `kind` and `type_` with `children`.
pub fn from_room(kind: &str, from: &str, type_: &str, children: &str) -> Element {
    let t = if type_.is_empty() {
        String::new()
    } else {
        format!(r#" type="{type_}""#)
    };
    el(&format!(
        r#"<{kind} xmlns="{NS}"{t} id="r1" from="{from}" to="{US}">{children}</{kind}>"#
    ))
}

/// jitape's own occupant JID.
pub fn our_occupant() -> String {
    format!("{ROOM}/{NICK}")
}
