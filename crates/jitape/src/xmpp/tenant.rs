//! Tenant rooms (Jitsi's `https://host/<tenant>/<room>`): the two spellings of one room and
//! the names users see.
//!
//! Prosody's MUC holds a tenant room as `[tenant]room@<p>.<base>` (the *internal* form);
//! clients and `mod_muc_domain_mapper` use `room@<p>.<tenant>.<base>` (the *virtual* form).
//! The mapper rewrites the `from` of every stanza delivered to a local host, components
//! included, to the virtual form, but never rewrites what a component sends: a component must
//! address the internal form (docs/protocol.md, "Tenant rooms").
//!
//! In: the configured MUC domains and inbound stanzas or JIDs. Out: the same with every room
//! JID in the internal form ([`normalize_inbound`], [`to_internal`]); the names users see are
//! `crate::room::RoomName`. Pure; no tenant is ever configured.

use minidom::Element;
use minidom::rxml::{Namespace, NcName};

use super::stanza::{Jid, NS_CONFERENCE};

/// The internal form of `jid` when it is a room (or occupant) JID in the virtual form of one
/// of `muc_domains`; `None` when it is not (already internal, not a room, another domain).
///
/// For a configured `<p>.<base>`, a JID with a node on `<p>.<label>.<base>`, where `<label>`
/// is one non-empty DNS label without brackets, becomes `[label]node@<p>.<base>` (resource
/// kept). A domain that is itself configured is never rewritten.
pub fn to_internal(muc_domains: &[String], jid: &Jid) -> Option<Jid> {
    let node = jid.node().filter(|n| !n.is_empty())?;
    let domain = jid.domain();
    if muc_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        return None;
    }
    muc_domains.iter().find_map(|d| {
        let d = d.to_ascii_lowercase();
        let (prefix, base) = d.split_once('.')?;
        let label = domain
            .strip_prefix(prefix)?
            .strip_prefix('.')?
            .strip_suffix(base)?
            .strip_suffix('.')?;
        let plain = !label.is_empty() && !label.contains(['.', '[', ']']);
        plain.then(|| Jid {
            bare: format!("[{label}]{node}@{d}"),
            resource: jid.resource.clone(),
        })
    })
}

/// [`to_internal`] for a JID string: the rewritten string, or `None` to keep it.
pub fn to_internal_str(muc_domains: &[String], jid: &str) -> Option<String> {
    to_internal(muc_domains, &Jid::parse(jid)?).map(|j| j.full())
}

/// Rewrite an inbound stanza so that every room JID jitape acts on is in the internal form:
/// `from` (occupants, room messages, IQs relayed from occupants, mediated invitations) and
/// the room of a direct invitation (XEP-0249). Everything else is left as it arrived.
pub fn normalize_inbound(muc_domains: &[String], mut el: Element) -> Element {
    if let Some(from) = el
        .attr("from")
        .and_then(|f| to_internal_str(muc_domains, f))
    {
        set_attr(&mut el, "from", from);
    }
    if el.name() == "message"
        && let Some(x) = el.get_child_mut("x", NS_CONFERENCE)
        && let Some(room) = x.attr("jid").and_then(|j| to_internal_str(muc_domains, j))
    {
        set_attr(x, "jid", room);
    }
    el
}

fn set_attr(el: &mut Element, name: &str, value: String) {
    if let Ok(name) = NcName::try_from(name) {
        el.attrs_mut().insert(Namespace::NONE, name, value);
    }
}

#[cfg(test)]
mod tests;
