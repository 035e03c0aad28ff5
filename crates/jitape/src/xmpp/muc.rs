//! MUC presence in and out, and what jitape says about itself (disco#info, caps).
//!
//! In: presence elements from a room. Out: [`OccupantPresence`] (what a roster needs), the
//! join/leave presences jitape sends, and the disco#info answer Jicofo asks for. Pure.

use base64::Engine;
use minidom::Element;

use crate::xml::BuilderExt;
use sha1::{Digest, Sha1};

use super::stanza::{
    Jid, NS_CAPS, NS_COMPONENT, NS_DISCO_INFO, NS_MUC, NS_MUC_USER, NS_NICK, error_condition,
};

/// The caps node jitape advertises (XEP-0115).
pub const CAPS_NODE: &str = "https://github.com/jitape/jitape";

/// Jitsi role markers in presence `<features>`.
pub const FEATURE_JIGASI: &str = "http://jitsi.org/protocol/jigasi";
pub const FEATURE_TRANSCRIBER: &str = "http://jitsi.org/protocol/transcriber";
pub const FEATURE_JIBRI: &str = "http://jitsi.org/protocol/jibri";

/// Asks Jicofo for Opus RED (RFC 2198) when its `codec.audio.opus.red.enabled` is on
/// (docs/protocol.md, "Opus RED"); advertised unless `media.opus_red = false`.
pub const FEATURE_OPUS_RED: &str = "http://jitsi.org/opus-red";

/// The disco#info features of a receive-only, audio-only Jingle participant. No video, no
/// SCTP, no `ssrc-rewriting-1` (see docs/protocol.md). [`FEATURE_OPUS_RED`] comes on top.
pub const DISCO_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/disco#info",
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    "urn:ietf:rfc:5888",
    "urn:ietf:rfc:5761",
    "http://jitsi.org/json-encoded-sources",
    "urn:xmpp:ping",
];

const IDENTITY: (&str, &str, &str) = ("client", "bot", "jitape");

/// Every disco#info feature we advertise.
pub fn disco_features(opus_red: bool) -> Vec<&'static str> {
    let mut features = DISCO_FEATURES.to_vec();
    if opus_red {
        features.push(FEATURE_OPUS_RED);
    }
    features
}

/// XEP-0115 verification string over our identity and features (SHA-1, base64).
pub fn caps_ver(opus_red: bool) -> String {
    let mut features = disco_features(opus_red);
    features.sort_unstable();
    let mut s = format!("{}/{}//{}<", IDENTITY.0, IDENTITY.1, IDENTITY.2);
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

/// The `<query/>` answering a disco#info request (echoing its `node`, if any).
pub fn disco_info(node: Option<&str>, opus_red: bool) -> Element {
    let mut q = Element::builder("query", NS_DISCO_INFO).append(
        Element::builder("identity", NS_DISCO_INFO)
            .set("category", IDENTITY.0)
            .set("type", IDENTITY.1)
            .set("name", IDENTITY.2)
            .build(),
    );
    if let Some(n) = node {
        q = q.set("node", n);
    }
    for f in disco_features(opus_red) {
        q = q.append(
            Element::builder("feature", NS_DISCO_INFO)
                .set("var", f)
                .build(),
        );
    }
    q.build()
}

/// Children of a presence that Jitsi puts in the client namespace; on a component stream
/// they arrive in `jabber:component:accept` (or with no namespace at all).
fn client_child<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children().find(|c| {
        c.name() == name && matches!(c.ns().as_str(), NS_COMPONENT | "jabber:client" | "")
    })
}

/// What jitape puts in its join presence.
pub struct JoinSpec<'a> {
    pub from: &'a str,
    pub room: &'a str,
    pub nick: &'a str,
    pub display_name: &'a str,
    pub features: &'a [String],
    pub password: Option<&'a str>,
    /// Whether the caps (and so our disco#info) include [`FEATURE_OPUS_RED`].
    pub opus_red: bool,
}

/// The MUC join presence (also used to re-assert presence after a reconnect).
pub fn join_presence(spec: &JoinSpec<'_>) -> Element {
    let mut x = Element::builder("x", NS_MUC).append(
        Element::builder("history", NS_MUC)
            .set("maxstanzas", "0")
            .build(),
    );
    if let Some(p) = spec.password {
        x = x.append(
            Element::builder("password", NS_MUC)
                .append(p.to_string())
                .build(),
        );
    }
    let mut features = Element::builder("features", NS_COMPONENT);
    for f in spec.features {
        features = features.append(
            Element::builder("feature", NS_COMPONENT)
                .set("var", f.as_str())
                .build(),
        );
    }
    Element::builder("presence", NS_COMPONENT)
        .set("from", spec.from)
        .set("to", format!("{}/{}", spec.room, spec.nick))
        .append(x.build())
        .append(
            Element::builder("c", NS_CAPS)
                .set("hash", "sha-1")
                .set("node", CAPS_NODE)
                .set("ver", caps_ver(spec.opus_red))
                .build(),
        )
        .append(
            Element::builder("nick", NS_NICK)
                .append(spec.display_name.to_string())
                .build(),
        )
        .append(features.build())
        .append(
            Element::builder("SourceInfo", NS_COMPONENT)
                .append("{}".to_string())
                .build(),
        )
        .append(
            Element::builder("stats-id", NS_COMPONENT)
                .append("jitape".to_string())
                .build(),
        )
        .build()
}

/// The presence that leaves a room.
pub fn leave_presence(from: &str, room: &str, nick: &str) -> Element {
    Element::builder("presence", NS_COMPONENT)
        .set("from", from)
        .set("to", format!("{room}/{nick}"))
        .set("type", "unavailable")
        .build()
}

/// Identity fields a Jitsi presence may carry (from a JWT's context.user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub hidden_from_recorder: bool,
}

/// The `<item/>` of a muc#user presence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub affiliation: Option<String>,
    pub role: Option<String>,
    pub jid: Option<Jid>,
    /// New nick, in a 303 nick-change presence.
    pub nick: Option<String>,
}

/// One presence from a room occupant, reduced to what jitape uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OccupantPresence {
    pub nick: String,
    pub unavailable: bool,
    /// `type='error'` presence (e.g. our join refused): the condition.
    pub error: Option<String>,
    pub statuses: Vec<u16>,
    pub item: Item,
    /// The room is being destroyed (`<destroy/>` in muc#user).
    pub destroyed: bool,
    pub display_name: Option<String>,
    pub identity: Identity,
    pub features: Vec<String>,
    /// `<stats-id>`: lib-jitsi-meet keeps it in the browser's local storage, so it survives a
    /// page refresh (a guest's nick does not).
    pub stats_id: Option<String>,
}

/// Bounds on what we keep from a presence (hostile input).
const MAX_TEXT: usize = 512;
const MAX_FEATURES: usize = 64;

fn bounded_text(el: &Element) -> Option<String> {
    let t = el.text();
    let t = t.trim();
    if t.is_empty() {
        return None;
    }
    Some(t.chars().take(MAX_TEXT).collect())
}

impl OccupantPresence {
    /// Has status code `code`.
    pub fn status(&self, code: u16) -> bool {
        self.statuses.contains(&code)
    }
}

/// Parse a presence from `from` (an occupant JID with a nick). `None` if it is not from an
/// occupant (no resource).
pub fn parse_presence(el: &Element, from: &Jid) -> Option<OccupantPresence> {
    let nick = from.resource.clone()?;
    let mut p = OccupantPresence {
        nick,
        unavailable: el.attr("type") == Some("unavailable"),
        ..Default::default()
    };
    if el.attr("type") == Some("error") {
        p.error = Some(error_condition(el).unwrap_or_else(|| "undefined-condition".into()));
    }
    if let Some(x) = el.get_child("x", NS_MUC_USER) {
        for c in x.children() {
            match c.name() {
                "status" => {
                    if let Some(code) = c.attr("code").and_then(|s| s.parse().ok()) {
                        p.statuses.push(code);
                    }
                }
                "item" => {
                    p.item = Item {
                        affiliation: c.attr("affiliation").map(str::to_string),
                        role: c.attr("role").map(str::to_string),
                        jid: c.attr("jid").and_then(Jid::parse),
                        nick: c.attr("nick").map(str::to_string),
                    }
                }
                "destroy" => p.destroyed = true,
                _ => {}
            }
        }
    }
    p.display_name = el.get_child("nick", NS_NICK).and_then(bounded_text);
    p.stats_id = client_child(el, "stats-id").and_then(bounded_text);
    if let Some(features) = client_child(el, "features") {
        p.features = features
            .children()
            .filter(|f| f.name() == "feature")
            .filter_map(|f| f.attr("var"))
            .take(MAX_FEATURES)
            .map(|s| s.chars().take(MAX_TEXT).collect())
            .collect();
    }
    if let Some(user) = client_child(el, "identity").and_then(|i| client_child(i, "user")) {
        let field = |name: &str| client_child(user, name).and_then(bounded_text);
        p.identity = Identity {
            id: field("id"),
            name: field("name"),
            email: field("email"),
            hidden_from_recorder: field("hidden-from-recorder").as_deref() == Some("true"),
        };
    }
    Some(p)
}

#[cfg(test)]
mod tests;
