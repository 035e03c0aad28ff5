//! The simulated MUC service (XEP-0045 as Prosody's `mod_muc` behaves for what Jitsi uses):
//! one [`MucService`] per MUC domain, holding its rooms.
//!
//! Pure core: stanzas (already addressed to this MUC domain, `to`/`from` normalised by the
//! router) go in, the stanzas the service emits come out in a `Vec`. No sockets, no clock.
//! Randomness (room salts, message ids) comes from a seed given at construction.
//!
//! Behaviour follows Prosody 0.12's `plugins/muc/mod_muc.lua` and `muc.lib.lua` with the
//! Jitsi configuration (`muc_room_locking = false`, `muc_room_default_public_jids = true`,
//! history length 0, non-persistent rooms): see `muc_room.rs` (presences),
//! `muc_relay.rs` (per-stanza dispatch, IQ/message relay) and `muc_admin.rs` (kick, ban,
//! destroy) for the rules. Simplifications: one session per occupant (a second full JID of
//! the same bare JID asking for a taken nick gets `conflict`), no nick changes, no
//! passwords, no members-only rooms, no invites, configuration forms accepted and ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minidom::Element;
use sha1::{Digest, Sha1};

use crate::router::xml::{
    Addr, ErrorSpec, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, error_reply, iq_payload, iq_result,
    stanza_type, with_attr, with_child,
};

mod admin;
mod relay;
mod room;
#[cfg(test)]
mod tests;

use room::Room;

/// An occupant's role (XEP-0045 §5.1), ordered by privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Visitor => "visitor",
            Role::Participant => "participant",
            Role::Moderator => "moderator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "none" => Some(Role::None),
            "visitor" => Some(Role::Visitor),
            "participant" => Some(Role::Participant),
            "moderator" => Some(Role::Moderator),
            _ => None,
        }
    }
}

/// A user's affiliation with a room (XEP-0045 §5.2), ordered by rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Admin => "admin",
            Affiliation::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Affiliation> {
        match s {
            "outcast" => Some(Affiliation::Outcast),
            "none" => Some(Affiliation::None),
            "member" => Some(Affiliation::Member),
            "admin" => Some(Affiliation::Admin),
            "owner" => Some(Affiliation::Owner),
            _ => None,
        }
    }
}

/// One occupant as seen by test assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantSnapshot {
    pub nick: String,
    /// `room@muc/nick`.
    pub occupant_jid: String,
    /// The occupant's real full JID (normalised).
    pub real_jid: String,
    pub role: Role,
    pub affiliation: Affiliation,
}

/// One live room as seen by test assertions; occupants in join order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSnapshot {
    /// The normalised room JID, `room@muc`.
    pub jid: String,
    pub occupants: Vec<OccupantSnapshot>,
}

impl RoomSnapshot {
    pub fn occupant(&self, nick: &str) -> Option<&OccupantSnapshot> {
        self.occupants.iter().find(|o| o.nick == nick)
    }
}

/// Deterministic pseudo-random bytes for salts and ids, derived from a seed.
pub(crate) struct IdGen {
    seed: u64,
    counter: u64,
}

impl IdGen {
    pub(crate) fn new(seed: u64) -> IdGen {
        IdGen { seed, counter: 0 }
    }

    pub(crate) fn next_bytes(&mut self) -> [u8; 20] {
        self.counter = self.counter.wrapping_add(1);
        let mut hasher = Sha1::new();
        hasher.update(self.seed.to_be_bytes());
        hasher.update(self.counter.to_be_bytes());
        hasher.finalize().into()
    }

    /// A short opaque id (16 hex digits).
    pub(crate) fn next_id(&mut self) -> String {
        let bytes = self.next_bytes();
        bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    fn next_seed(&mut self) -> u64 {
        let bytes = self.next_bytes();
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&bytes[..8]);
        u64::from_be_bytes(seed)
    }
}

/// One MUC domain and its live rooms.
pub(crate) struct MucService {
    domain: String,
    /// Room node (nodeprep'd) → room.
    rooms: BTreeMap<String, Room>,
    /// Bare JIDs that are owners of every room (Prosody `admins` with
    /// `component_admins_as_room_owners`, on by default).
    admins: Arc<BTreeSet<String>>,
    ids: IdGen,
}

impl MucService {
    pub(crate) fn new(domain: &str, admins: &[String], seed: u64) -> MucService {
        let admins = admins
            .iter()
            .filter_map(|a| Addr::parse(a).map(|a| a.bare()))
            .collect();
        MucService {
            domain: domain.to_owned(),
            rooms: BTreeMap::new(),
            admins: Arc::new(admins),
            ids: IdGen::new(seed),
        }
    }

    /// Handles one stanza whose `to` is on this MUC domain. `to` and `from` must already be
    /// normalised JIDs (the router does it); anything else is answered or dropped.
    pub(crate) fn handle(&mut self, stanza: Element, out: &mut Vec<Element>) {
        let (Some(to), Some(from)) = (
            stanza.attr("to").and_then(Addr::parse),
            stanza.attr("from").map(str::to_owned),
        ) else {
            tracing::debug!("sim muc: stanza without usable to/from dropped");
            return;
        };
        let Some(node) = to.node.clone() else {
            self.handle_host(&stanza, out);
            return;
        };
        match self.rooms.get_mut(&node) {
            Some(room) => room.handle(stanza, &from, to.resource.as_deref(), out),
            None => self.handle_missing_room(stanza, &from, &to, out),
        }
        if self.rooms.get(&node).is_some_and(Room::is_empty) {
            tracing::debug!(room = %node, "sim muc: room empty, destroyed");
            self.rooms.remove(&node);
        }
    }

    /// Every occupant whose real JID is on `domain` leaves every room, as Prosody's MUC
    /// ends up doing when the bounce of the next stanza routed to a vanished component comes
    /// back (`remote-server-timeout`, a kickable error: status 333).
    pub(crate) fn remove_occupants_on_domain(&mut self, domain: &str, out: &mut Vec<Element>) {
        for room in self.rooms.values_mut() {
            room.remove_for_disconnect(domain, out);
        }
        self.rooms.retain(|_, room| !room.is_empty());
    }

    /// Live rooms, ordered by room JID.
    pub(crate) fn snapshot(&self) -> Vec<RoomSnapshot> {
        self.rooms.values().map(Room::snapshot).collect()
    }

    /// A stanza for a room that does not exist: only an available presence carrying the MUC
    /// `<x/>` to `room@muc/nick` creates it (`mod_muc.lua`); anything else that is not an
    /// error gets `item-not-found` from the MUC domain.
    fn handle_missing_room(
        &mut self,
        stanza: Element,
        from: &str,
        to: &Addr,
        out: &mut Vec<Element>,
    ) {
        let creates = stanza.name() == "presence"
            && stanza_type(&stanza).is_none()
            && stanza.has_child("x", NS_MUC);
        match (&to.node, &to.resource) {
            (Some(node), Some(nick)) if creates => {
                let room_jid = to.bare();
                tracing::debug!(room = %room_jid, "sim muc: room created");
                let mut room = Room::new(room_jid, self.admins.clone(), self.ids.next_seed());
                room.create_with_first_presence(&stanza, from, nick, out);
                self.rooms.insert(node.clone(), room);
            }
            _ => {
                if stanza_type(&stanza) != Some("error") {
                    let spec = ErrorSpec::new("cancel", "item-not-found").by(&self.domain);
                    out.extend(error_reply(&stanza, spec));
                }
            }
        }
    }

    /// Stanzas to the MUC domain itself: disco#info (identity `conference/text`), empty
    /// disco#items (rooms are hidden by default), `service-unavailable` otherwise.
    fn handle_host(&self, stanza: &Element, out: &mut Vec<Element>) {
        let kind = stanza_type(stanza);
        let payload = iq_payload(stanza);
        if stanza.name() == "iq" && kind == Some("get") {
            let plain_disco = payload.filter(|q| q.is("query", NS_DISCO_INFO));
            if plain_disco.is_some_and(|q| q.attr("node").is_none_or(str::is_empty)) {
                out.push(with_child(iq_result(stanza), host_disco_info()));
                return;
            }
            if payload.is_some_and(|q| q.is("query", NS_DISCO_ITEMS)) {
                out.push(with_child(
                    iq_result(stanza),
                    Element::bare("query", NS_DISCO_ITEMS),
                ));
                return;
            }
        }
        if crate::router::xml::may_bounce(stanza) {
            out.extend(error_reply(
                stanza,
                ErrorSpec::new("cancel", "service-unavailable"),
            ));
        }
    }
}

/// The MUC domain's disco#info: `mod_muc.lua` adds identity `conference/text` named
/// "Prosody Chatrooms" and the MUC feature; `mod_disco` adds its own two features.
fn host_disco_info() -> Element {
    let identity = Element::bare("identity", NS_DISCO_INFO);
    let identity = with_attr(identity, "category", "conference");
    let identity = with_attr(identity, "type", "text");
    let identity = with_attr(identity, "name", "Prosody Chatrooms");
    let mut query = with_child(Element::bare("query", NS_DISCO_INFO), identity);
    for var in [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC] {
        query = with_child(
            query,
            with_attr(Element::bare("feature", NS_DISCO_INFO), "var", var),
        );
    }
    query
}
