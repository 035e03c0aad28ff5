//! Pure helpers for stanzas as `minidom::Element`s on a component stream: reading the
//! addressing of an inbound stanza and building the replies jitape sends.
//!
//! In: elements as the link delivers them (namespace `jabber:component:accept`). Out:
//! elements in the same namespace, ready for the link's writer. No I/O.

use minidom::Element;

use crate::xml::BuilderExt;

/// Default namespace of an XEP-0114 component stream.
pub const NS_COMPONENT: &str = "jabber:component:accept";
/// Namespaces of stanza-level errors and XMPP ping.
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_CONFERENCE: &str = "jabber:x:conference";
pub const NS_CAPS: &str = "http://jabber.org/protocol/caps";
pub const NS_NICK: &str = "http://jabber.org/protocol/nick";

/// The three stanza kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Iq,
    Message,
    Presence,
}

/// A JID split into its bare part (lowercased node@domain, as Prosody normalises room JIDs)
/// and its resource (kept as sent).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jid {
    pub bare: String,
    pub resource: Option<String>,
}

/// Longest JID we accept (RFC 7622 allows 3 x 1023 octets plus separators).
const MAX_JID_LEN: usize = 3071 + 2;

impl Jid {
    /// Parse a JID string leniently but safely: no empty parts, no whitespace or control
    /// characters, bounded length. Returns `None` for anything else.
    pub fn parse(s: &str) -> Option<Jid> {
        if s.is_empty() || s.len() > MAX_JID_LEN {
            return None;
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return None;
        }
        let (bare, resource) = match s.split_once('/') {
            Some((b, r)) if !r.is_empty() => (b, Some(r.to_string())),
            Some(_) => return None,
            None => (s, None),
        };
        let domain = bare
            .rsplit_once('@')
            .map_or(bare, |(node, d)| if node.is_empty() { "" } else { d });
        if domain.is_empty() || bare.matches('@').count() > 1 {
            return None;
        }
        Some(Jid {
            bare: bare.to_lowercase(),
            resource,
        })
    }

    /// The domain part of the bare JID.
    pub fn domain(&self) -> &str {
        self.bare
            .rsplit_once('@')
            .map_or(self.bare.as_str(), |(_, d)| d)
    }

    /// The node (localpart), if any.
    pub fn node(&self) -> Option<&str> {
        self.bare.rsplit_once('@').map(|(n, _)| n)
    }

    /// The full JID as a string.
    pub fn full(&self) -> String {
        match &self.resource {
            Some(r) => format!("{}/{}", self.bare, r),
            None => self.bare.clone(),
        }
    }
}

impl std::fmt::Display for Jid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full())
    }
}

/// The addressing of an inbound stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub from: Option<Jid>,
    pub to: Option<Jid>,
    pub id: Option<String>,
    /// The `type` attribute (`get`, `set`, `result`, `error`, `unavailable`, `groupchat`…).
    pub type_: Option<String>,
}

impl Header {
    /// Read the header of a stanza; `None` if the element is not a stanza.
    pub fn of(el: &Element) -> Option<Header> {
        let kind = match el.name() {
            "iq" => Kind::Iq,
            "message" => Kind::Message,
            "presence" => Kind::Presence,
            _ => return None,
        };
        Some(Header {
            kind,
            from: el.attr("from").and_then(Jid::parse),
            to: el.attr("to").and_then(Jid::parse),
            id: el.attr("id").map(str::to_string),
            type_: el.attr("type").map(str::to_string),
        })
    }

    pub fn is_type(&self, t: &str) -> bool {
        self.type_.as_deref() == Some(t)
    }

    /// An IQ request (get or set) that must be answered.
    pub fn is_iq_request(&self) -> bool {
        self.kind == Kind::Iq && (self.is_type("get") || self.is_type("set"))
    }
}

/// The first child element of a stanza (the IQ payload).
pub fn payload(el: &Element) -> Option<&Element> {
    el.children().next()
}

/// Build an IQ result for `request`: to its `from`, from its `to`, same `id`.
pub fn iq_result(request: &Element, payload: Option<Element>) -> Element {
    let mut b = Element::builder("iq", NS_COMPONENT)
        .set("type", "result")
        .set("id", request.attr("id").unwrap_or_default());
    if let Some(from) = request.attr("to") {
        b = b.set("from", from);
    }
    if let Some(to) = request.attr("from") {
        b = b.set("to", to);
    }
    if let Some(p) = payload {
        b = b.append(p);
    }
    b.build()
}

/// The `type` attribute of a stanza error for a given condition (RFC 6120 §8.3.3).
fn error_type(condition: &str) -> &'static str {
    match condition {
        "bad-request" | "jid-malformed" | "not-acceptable" | "policy-violation"
        | "unexpected-request" => "modify",
        "conflict"
        | "feature-not-implemented"
        | "item-not-found"
        | "not-allowed"
        | "service-unavailable" => "cancel",
        "forbidden" | "not-authorized" | "registration-required" => "auth",
        "resource-constraint" | "internal-server-error" | "remote-server-timeout" => "wait",
        _ => "cancel",
    }
}

/// Build an IQ error reply to `request` with a defined condition and optional text.
pub fn iq_error(request: &Element, condition: &str, text: Option<&str>) -> Element {
    let mut error = Element::builder("error", NS_COMPONENT)
        .set("type", error_type(condition))
        .append(Element::builder(condition, NS_STANZAS).build());
    if let Some(t) = text {
        error = error.append(
            Element::builder("text", NS_STANZAS)
                .append(t.to_string())
                .build(),
        );
    }
    let mut b = Element::builder("iq", NS_COMPONENT)
        .set("type", "error")
        .set("id", request.attr("id").unwrap_or_default());
    if let Some(from) = request.attr("to") {
        b = b.set("from", from);
    }
    if let Some(to) = request.attr("from") {
        b = b.set("to", to);
    }
    b.append(error.build()).build()
}

/// Build an IQ request of `type_` (get/set).
pub fn iq(type_: &str, from: &str, to: &str, id: &str, payload: Element) -> Element {
    Element::builder("iq", NS_COMPONENT)
        .set("type", type_)
        .set("from", from)
        .set("to", to)
        .set("id", id)
        .append(payload)
        .build()
}

/// The defined condition of an error stanza (`<error><conflict/></error>` → `conflict`).
pub fn error_condition(el: &Element) -> Option<String> {
    let error = el.children().find(|c| c.name() == "error")?;
    error
        .children()
        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        .map(|c| c.name().to_string())
}

#[cfg(test)]
mod tests;
