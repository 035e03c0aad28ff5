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
//! JID in the internal form ([`normalize_inbound`], [`to_internal`]), and a room JID's
//! [`RoomName`] (tenant and room as in the URL). Pure; no tenant is ever configured.

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

/// A room as users name it: the tenant (the URL's first path segment, as the deployment
/// spelled it in the MUC domain) and the room (the last segment, percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName {
    pub tenant: Option<String>,
    pub room: String,
}

impl RoomName {
    /// The names of a room JID in the internal form (`[tenant]room@muc` or `room@muc`).
    /// Jitsi's web client lowercases and percent-encodes room names, so a node is decoded;
    /// bytes that are not UTF-8 after decoding leave the node as it is.
    pub fn of(room_jid: &str) -> RoomName {
        let bare = room_jid.split('/').next().unwrap_or(room_jid);
        let node = bare.rsplit_once('@').map_or(bare, |(n, _)| n);
        let tenant_room = node
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .filter(|(t, r)| !t.is_empty() && !r.is_empty());
        match tenant_room {
            Some((tenant, room)) => RoomName {
                tenant: Some(tenant.to_string()),
                room: percent_decode(room),
            },
            None => RoomName {
                tenant: None,
                room: percent_decode(node),
            },
        }
    }
}

impl std::fmt::Display for RoomName {
    /// `tenant/room` (upstream's own spelling), or `room`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tenant {
            Some(t) => write!(f, "{t}/{}", self.room),
            None => f.write_str(&self.room),
        }
    }
}

/// Decode `%XX` escapes; a `%` not followed by two hex digits stays as it is, and a result
/// that is not UTF-8 gives back the input.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
#[path = "tenant_tests.rs"]
mod tests;
