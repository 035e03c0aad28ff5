//! The simulated server's routing table and stanza router (pure: no sockets, no clock).
//!
//! In: component attach/detach and stanzas read from an authenticated component (its
//! `from` already checked against the component's domain). Out: `(connection, stanza)`
//! deliveries. Rules from Prosody 0.12 `core/stanza_router.lua` and `mod_component.lua`:
//! - a stanza without `to` gets `bad-request` "Components MUST specify a 'to' address on
//!   stanzas"; an unparsable `to`/`from` gets `jid-malformed`; both are normalised
//!   (nodeprep: `ConfA@muc` → `confa@muc`);
//! - `to` a connected component domain → delivered as is; a configured component that is not
//!   connected bounces `wait`/`remote-server-timeout` "Component unavailable" with
//!   `<not-connected xmlns='xmpp:prosody.im/protocol/component'/>`;
//! - `to` a MUC domain → that MUC service; `to` a server domain (VirtualHost-like) → ping and
//!   disco#info answered there;
//! - anything else → `service-unavailable` (Prosody without s2s says `not-allowed`, with s2s
//!   `remote-server-not-found` after a DNS failure; the brief asked for this one);
//! - errors are never answered with errors, nor IQ results.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use minidom::Element;

use crate::muc::{IdGen, MucService, RoomSnapshot};
use crate::router::xml::{
    Addr, ErrorSpec, NS_DISCO_INFO, NS_PING, NS_PROSODY_COMPONENT, domain_of, error_reply,
    iq_payload, iq_result, may_bounce, set_attr, stanza_type, with_attr, with_child,
};

/// Identifies one accepted TCP connection for the life of the server.
pub(crate) type ConnId = u64;

/// Upper bound of stanzas routed for one input (a guard against a routing loop bug).
const MAX_HOPS: usize = 100_000;

/// Why a component may not attach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AttachError {
    /// Prosody `component_conflict_resolve = "kick_new"` (its default).
    #[error("component {0} already connected")]
    Conflict(String),
    #[error("component {0} is not configured")]
    Unknown(String),
}

pub(crate) struct Routes {
    known: BTreeSet<String>,
    connected: HashMap<String, ConnId>,
    mucs: BTreeMap<String, MucService>,
    hosts: BTreeSet<String>,
    admins: Vec<String>,
    seeds: IdGen,
}

impl Routes {
    pub(crate) fn new(
        components: impl IntoIterator<Item = String>,
        muc_domains: &[String],
        server_domains: &[String],
        admins: &[String],
        seed: u64,
    ) -> Routes {
        let mut routes = Routes {
            known: components.into_iter().collect(),
            connected: HashMap::new(),
            mucs: BTreeMap::new(),
            hosts: server_domains.iter().cloned().collect(),
            admins: admins.to_vec(),
            seeds: IdGen::new(seed),
        };
        for domain in muc_domains {
            routes.add_muc(domain);
        }
        routes
    }

    fn add_muc(&mut self, domain: &str) {
        let seed = u64::from_be_bytes(head8(&self.seeds.next_bytes()));
        let service = MucService::new(domain, &self.admins, seed);
        self.mucs.insert(domain.to_owned(), service);
    }

    /// Drops every connection and every room (a server restart).
    pub(crate) fn reset(&mut self) {
        self.connected.clear();
        let domains: Vec<String> = self.mucs.keys().cloned().collect();
        for domain in domains {
            self.add_muc(&domain);
        }
    }

    pub(crate) fn attach(&mut self, domain: &str, conn: ConnId) -> Result<(), AttachError> {
        if !self.known.contains(domain) {
            return Err(AttachError::Unknown(domain.to_owned()));
        }
        if self.connected.contains_key(domain) {
            return Err(AttachError::Conflict(domain.to_owned()));
        }
        self.connected.insert(domain.to_owned(), conn);
        Ok(())
    }

    /// Forgets `conn` (if it was attached) and makes its domain's occupants leave every room.
    /// Returns the domain it served.
    pub(crate) fn detach(
        &mut self,
        conn: ConnId,
        out: &mut Vec<(ConnId, Element)>,
    ) -> Option<String> {
        let domain = self.domain_of(conn)?;
        self.connected.remove(&domain);
        let mut produced = Vec::new();
        for muc in self.mucs.values_mut() {
            muc.remove_occupants_on_domain(&domain, &mut produced);
        }
        self.route_all(produced, out);
        Some(domain)
    }

    pub(crate) fn conn_of(&self, domain: &str) -> Option<ConnId> {
        self.connected.get(domain).copied()
    }

    pub(crate) fn domain_of(&self, conn: ConnId) -> Option<String> {
        self.connected
            .iter()
            .find(|(_, c)| **c == conn)
            .map(|(d, _)| d.clone())
    }

    pub(crate) fn connected_components(&self) -> Vec<String> {
        let mut domains: Vec<String> = self.connected.keys().cloned().collect();
        domains.sort();
        domains
    }

    pub(crate) fn rooms(&self) -> Vec<RoomSnapshot> {
        self.mucs.values().flat_map(MucService::snapshot).collect()
    }

    /// One stanza from the component serving `origin`.
    pub(crate) fn handle_component_stanza(
        &mut self,
        origin: &str,
        stanza: Element,
        out: &mut Vec<(ConnId, Element)>,
    ) {
        let mut replies = Vec::new();
        if let Some(stanza) = normalise(stanza, &mut replies) {
            replies.push(stanza);
        }
        tracing::trace!(component = %origin, "sim router: stanza in");
        self.route_all(replies, out);
    }

    fn route_all(&mut self, first: Vec<Element>, out: &mut Vec<(ConnId, Element)>) {
        let mut queue: VecDeque<Element> = first.into();
        let mut hops = 0;
        while let Some(stanza) = queue.pop_front() {
            hops += 1;
            if hops > MAX_HOPS {
                tracing::error!("sim router: routing loop suspected, stanzas dropped");
                return;
            }
            let mut produced = Vec::new();
            self.route_one(stanza, &mut produced, out);
            queue.extend(produced);
        }
    }

    fn route_one(
        &mut self,
        stanza: Element,
        produced: &mut Vec<Element>,
        out: &mut Vec<(ConnId, Element)>,
    ) {
        let Some(to) = stanza.attr("to") else {
            tracing::debug!("sim router: internal stanza without 'to' dropped");
            return;
        };
        let domain = domain_of(to).to_owned();
        if let Some(conn) = self.connected.get(&domain) {
            out.push((*conn, stanza));
        } else if self.known.contains(&domain) {
            produced.extend(bounce_not_connected(&stanza, &domain));
        } else if let Some(muc) = self.mucs.get_mut(&domain) {
            muc.handle(stanza, produced);
        } else if self.hosts.contains(&domain) {
            produced.extend(host_reply(&stanza));
        } else if may_bounce(&stanza) {
            produced.extend(error_reply(
                &stanza,
                ErrorSpec::new("cancel", "service-unavailable"),
            ));
        }
    }
}

fn head8(bytes: &[u8; 20]) -> [u8; 8] {
    let mut head = [0u8; 8];
    head.copy_from_slice(&bytes[..8]);
    head
}

/// Checks and normalises `to`/`from` like `core_process_stanza`; on failure pushes the
/// error reply (if one is due) and returns `None`.
fn normalise(mut stanza: Element, replies: &mut Vec<Element>) -> Option<Element> {
    let kind = stanza_type(&stanza);
    let answerable = kind != Some("error") && kind != Some("result");
    let Some(raw_to) = stanza.attr("to").map(str::to_owned) else {
        if answerable {
            let spec = ErrorSpec::new("modify", "bad-request")
                .text("Components MUST specify a 'to' address on stanzas");
            replies.extend(error_reply(&stanza, spec));
        }
        return None;
    };
    let Some(to) = Addr::parse(&raw_to) else {
        if answerable {
            let text = format!("The destination address is invalid: {raw_to}");
            let spec = ErrorSpec::new("modify", "jid-malformed").text(&text);
            replies.extend(error_reply(&stanza, spec));
        }
        return None;
    };
    let raw_from = stanza.attr("from").unwrap_or("").to_owned();
    let Some(from) = Addr::parse(&raw_from) else {
        if answerable {
            let text = format!("The source address is invalid: {raw_from}");
            let spec = ErrorSpec::new("modify", "jid-malformed").text(&text);
            replies.extend(error_reply(&stanza, spec));
        }
        return None;
    };
    set_attr(&mut stanza, "to", to.full());
    set_attr(&mut stanza, "from", from.full());
    Some(stanza)
}

/// `mod_component.lua` `handle_stanza` when the component is not connected.
fn bounce_not_connected(stanza: &Element, domain: &str) -> Option<Element> {
    let kind = stanza_type(stanza);
    if kind == Some("error") || kind == Some("result") {
        return None;
    }
    let spec = ErrorSpec::new("wait", "remote-server-timeout")
        .text("Component unavailable")
        .by(domain);
    let mut reply = error_reply(stanza, spec)?;
    if let Some(error) = reply.children_mut().find(|c| c.name() == "error") {
        error.append_child(Element::bare("not-connected", NS_PROSODY_COMPONENT));
    }
    Some(reply)
}

/// A VirtualHost-like server domain: XEP-0199 ping (`mod_ping`) and a minimal disco#info
/// (`mod_disco`) to the domain itself; everything else is unhandled.
fn host_reply(stanza: &Element) -> Option<Element> {
    let to_host = stanza
        .attr("to")
        .and_then(Addr::parse)
        .is_some_and(|a| a.node.is_none() && a.resource.is_none());
    if stanza.name() == "iq" && stanza_type(stanza) == Some("get") && to_host {
        match iq_payload(stanza) {
            Some(p) if p.is("ping", NS_PING) => return Some(iq_result(stanza)),
            Some(p) if p.is("query", NS_DISCO_INFO) => {
                let identity = with_attr(
                    Element::bare("identity", NS_DISCO_INFO),
                    "category",
                    "server",
                );
                let identity = with_attr(identity, "type", "im");
                let mut query = with_child(Element::bare("query", NS_DISCO_INFO), identity);
                for var in [NS_DISCO_INFO, NS_PING] {
                    let feature = with_attr(Element::bare("feature", NS_DISCO_INFO), "var", var);
                    query = with_child(query, feature);
                }
                return Some(with_child(iq_result(stanza), query));
            }
            _ => {}
        }
    }
    if !may_bounce(stanza) {
        return None;
    }
    error_reply(stanza, ErrorSpec::new("cancel", "service-unavailable"))
}
