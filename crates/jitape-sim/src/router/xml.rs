//! Stanza helpers shared by the simulated router and its MUC service: attribute access on
//! `minidom::Element` stanzas, builders in the component namespace, Prosody-shaped error
//! replies (`util/stanza.lua` `error_reply`) and JID normalisation.
//!
//! In: elements read from a component stream. Out: new or rewritten elements. Nothing here
//! panics on network input: a missing or odd attribute is `None`, never an `unwrap`.

use minidom::Element;
use minidom::rxml::{Namespace, NcName};

pub(crate) const NS_COMPONENT: &str = "jabber:component:accept";
pub(crate) const NS_STREAM: &str = "http://etherx.jabber.org/streams";
pub(crate) const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub(crate) const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub(crate) const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub(crate) const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub(crate) const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub(crate) const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub(crate) const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub(crate) const NS_PING: &str = "urn:xmpp:ping";
pub(crate) const NS_DATA: &str = "jabber:x:data";
pub(crate) const NS_DELAY: &str = "urn:xmpp:delay";
/// Prosody's marker inside the error it bounces for a configured but absent component.
pub(crate) const NS_PROSODY_COMPONENT: &str = "xmpp:prosody.im/protocol/component";

/// The `type` attribute of a stanza (`None` when absent, i.e. available presence / normal
/// message).
pub(crate) fn stanza_type(el: &Element) -> Option<&str> {
    el.attr("type")
}

/// Sets (or replaces) an unqualified attribute. Names are compile-time constants of this
/// module family; an invalid name is ignored rather than panicking.
pub(crate) fn set_attr(el: &mut Element, name: &str, value: impl Into<String>) {
    if let Ok(name) = NcName::try_from(name) {
        el.attrs_mut().insert(Namespace::NONE, name, value.into());
    }
}

/// Builder-style `set_attr`.
pub(crate) fn with_attr(mut el: Element, name: &str, value: impl Into<String>) -> Element {
    set_attr(&mut el, name, value);
    el
}

/// Builder-style optional attribute.
pub(crate) fn with_opt_attr(el: Element, name: &str, value: Option<&str>) -> Element {
    match value {
        Some(v) => with_attr(el, name, v),
        None => el,
    }
}

/// Builder-style child append.
pub(crate) fn with_child(mut el: Element, child: Element) -> Element {
    el.append_child(child);
    el
}

/// Builder-style text append.
pub(crate) fn with_text(mut el: Element, text: &str) -> Element {
    el.append_text(text);
    el
}

/// A new stanza (`iq`, `message`, `presence`) in the component namespace.
pub(crate) fn stanza(name: &str, from: &str, to: &str) -> Element {
    let el = Element::bare(name, NS_COMPONENT);
    with_attr(with_attr(el, "from", from), "to", to)
}

/// `<status code='NNN'/>` inside muc#user.
pub(crate) fn status_code(code: &str) -> Element {
    with_attr(Element::bare("status", NS_MUC_USER), "code", code)
}

/// Whether Prosody would send an error in reply to this stanza at all: never to an error,
/// never to an IQ result.
pub(crate) fn may_bounce(el: &Element) -> bool {
    match stanza_type(el) {
        Some("error") => false,
        Some("result") => el.name() != "iq",
        _ => true,
    }
}

/// A stanza error to send back, shaped like Prosody's `st.error_reply`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorSpec<'a> {
    pub kind: &'a str,
    pub condition: &'a str,
    pub text: Option<&'a str>,
    pub by: Option<&'a str>,
}

impl<'a> ErrorSpec<'a> {
    pub(crate) fn new(kind: &'a str, condition: &'a str) -> Self {
        Self {
            kind,
            condition,
            text: None,
            by: None,
        }
    }

    pub(crate) fn text(mut self, text: &'a str) -> Self {
        self.text = Some(text);
        self
    }

    pub(crate) fn by(mut self, by: &'a str) -> Self {
        self.by = Some(by);
        self
    }
}

/// Prosody's `st.reply` + `error_reply`: same element name and id, `from`/`to` swapped, type
/// `error`, `<error type by><condition/><text/></error>`; `by` is left out when it equals the
/// reply's `from`. Returns `None` for an error stanza (errors are never answered).
pub(crate) fn error_reply(orig: &Element, spec: ErrorSpec<'_>) -> Option<Element> {
    if stanza_type(orig) == Some("error") {
        return None;
    }
    let from = orig.attr("to");
    let mut reply = Element::bare(orig.name(), NS_COMPONENT);
    reply = with_opt_attr(reply, "from", from);
    reply = with_opt_attr(reply, "to", orig.attr("from"));
    reply = with_opt_attr(reply, "id", orig.attr("id"));
    reply = with_attr(reply, "type", "error");
    let mut error = with_attr(Element::bare("error", NS_COMPONENT), "type", spec.kind);
    if let Some(by) = spec.by.filter(|by| Some(*by) != from) {
        error = with_attr(error, "by", by);
    }
    error = with_child(error, Element::bare(spec.condition, NS_STANZAS));
    if let Some(text) = spec.text {
        error = with_child(error, with_text(Element::bare("text", NS_STANZAS), text));
    }
    Some(with_child(reply, error))
}

/// The `(condition, text)` of an error stanza, like Prosody's `stanza:get_error()`: `None`
/// when there is no `<error>` child at all, condition `undefined-condition` when the
/// `<error>` carries no condition element.
pub(crate) fn error_condition(el: &Element) -> Option<(String, Option<String>)> {
    let error = el.children().find(|c| c.name() == "error")?;
    let mut condition = None;
    let mut text = None;
    for child in error.children().filter(|c| c.ns() == NS_STANZAS) {
        if child.name() == "text" {
            if text.is_none() {
                text = Some(child.text());
            }
        } else if condition.is_none() {
            condition = Some(child.name().to_owned());
        }
    }
    Some((
        condition.unwrap_or_else(|| "undefined-condition".to_owned()),
        text,
    ))
}

/// An empty IQ result answering `orig` (`st.reply` for an IQ).
pub(crate) fn iq_result(orig: &Element) -> Element {
    let mut reply = Element::bare("iq", NS_COMPONENT);
    reply = with_opt_attr(reply, "from", orig.attr("to"));
    reply = with_opt_attr(reply, "to", orig.attr("from"));
    reply = with_opt_attr(reply, "id", orig.attr("id"));
    with_attr(reply, "type", "result")
}

/// A data form `<field var type?><value/></field>` (XEP-0004).
pub(crate) fn data_field(var: &str, kind: Option<&str>, value: &str) -> Element {
    let mut field = with_attr(Element::bare("field", NS_DATA), "var", var);
    if let Some(kind) = kind {
        field = with_attr(field, "type", kind);
    }
    with_child(field, with_text(Element::bare("value", NS_DATA), value))
}

/// The first child element of an IQ (its payload), if any.
pub(crate) fn iq_payload(el: &Element) -> Option<&Element> {
    el.children().next()
}

/// Copies `el` without its children in the MUC namespaces, like Prosody's
/// `muc_util.filter_muc_x` (strips `muc` and `muc#user`, keeps every other payload).
pub(crate) fn without_muc_x(el: &Element) -> Element {
    let mut copy = Element::bare(el.name(), el.ns());
    for ((ns, name), value) in el.attrs().iter() {
        copy.attrs_mut()
            .insert(ns.clone(), name.clone(), value.clone());
    }
    for node in el.nodes() {
        match node {
            minidom::Node::Element(child) if child.ns() == NS_MUC || child.ns() == NS_MUC_USER => {}
            other => copy.append_node(other.clone()),
        }
    }
    copy
}

/// A normalised JID (nodeprep/nameprep/resourceprep, so `ConfA@MUC` → `confa@muc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addr {
    pub node: Option<String>,
    pub domain: String,
    pub resource: Option<String>,
}

impl Addr {
    /// Parses and normalises; `None` if the string is not a valid JID.
    pub(crate) fn parse(s: &str) -> Option<Addr> {
        let jid = jid::Jid::new(s).ok()?;
        Some(Addr {
            node: jid.node().map(|n| n.as_str().to_owned()),
            domain: jid.domain().as_str().to_owned(),
            resource: jid.resource().map(|r| r.as_str().to_owned()),
        })
    }

    /// `node@domain` or `domain`.
    pub(crate) fn bare(&self) -> String {
        match &self.node {
            Some(node) => format!("{node}@{}", self.domain),
            None => self.domain.clone(),
        }
    }

    /// The full normalised string form.
    pub(crate) fn full(&self) -> String {
        match &self.resource {
            Some(resource) => format!("{}/{resource}", self.bare()),
            None => self.bare(),
        }
    }
}

/// The bare form of a JID string (text before the first `/`), for JIDs already normalised.
pub(crate) fn bare_of(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(bare, _)| bare)
}

/// The domain of a normalised JID string.
pub(crate) fn domain_of(jid: &str) -> &str {
    let bare = bare_of(jid);
    bare.split_once('@').map_or(bare, |(_, domain)| domain)
}

#[cfg(test)]
mod tests;
