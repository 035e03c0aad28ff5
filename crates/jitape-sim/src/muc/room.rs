//! One simulated MUC room: its occupants, affiliations and the presences it broadcasts.
//!
//! In: presences already dispatched by `muc_relay.rs` (join, update, leave, kickable error)
//! and admin/owner actions (role, affiliation, destroy). Out: the presences and messages the
//! room sends, pushed onto the caller's `Vec`.
//!
//! Shapes follow Prosody 0.12 `muc.lib.lua` (`publicise_occupant_status`,
//! `send_occupant_list`, `handle_first_presence`, `handle_normal_presence`,
//! `handle_kickable`, `set_role`, `set_affiliation`, `destroy`) with `whois = anyone`:
//! - a joiner gets the existing occupants' presences, then its own presence with status 110
//!   (plus 201 and 100 when it created the room, 100 otherwise), then the empty subject;
//! - everybody else gets the joiner's stored presence (its payload minus the MUC `<x/>`s)
//!   with `<x muc#user><item affiliation role jid/></x>` appended;
//! - status codes shared by everyone come before `<item/>`, status 110 after it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use minidom::Element;

use super::{Affiliation, IdGen, OccupantSnapshot, Role, RoomSnapshot};
use crate::router::xml::{
    ErrorSpec, NS_COMPONENT, NS_MUC_USER, bare_of, domain_of, error_condition, error_reply,
    set_attr, stanza, stanza_type, status_code, with_attr, with_child, with_text, without_muc_x,
};

pub(super) struct Occupant {
    pub(super) nick: String,
    /// Normalised full real JID (the only session).
    pub(super) real: String,
    pub(super) bare: String,
    pub(super) role: Role,
    /// The last presence, MUC `<x/>` filtered, `from` = occupant JID, `to` = real JID.
    pub(super) presence: Element,
}

pub(super) struct Room {
    pub(super) jid: String,
    /// Join order.
    pub(super) occupants: Vec<Occupant>,
    affiliations: HashMap<String, Affiliation>,
    admins: Arc<BTreeSet<String>>,
    /// Secret mixed into IQ id tokens.
    pub(super) salt: [u8; 20],
    pub(super) ids: IdGen,
    /// `(from, text)` of the current subject.
    pub(super) subject: Option<(String, String)>,
}

/// What a presence broadcast adds to `<x xmlns='muc#user'>`.
#[derive(Default)]
pub(super) struct Publicity<'a> {
    /// Children before `<item/>` for everybody (status codes, `<destroy/>`).
    pub(super) base: Vec<Element>,
    /// Replaces `base` for the occupant itself, when set.
    pub(super) self_only: Option<Vec<Element>>,
    /// Real JID of the moderator/owner who caused the change.
    pub(super) actor: Option<&'a str>,
    pub(super) reason: Option<&'a str>,
    /// The role before the change (`Role::None` if it had none).
    pub(super) prev_role: Option<Role>,
}

impl Room {
    pub(super) fn new(jid: String, admins: Arc<BTreeSet<String>>, seed: u64) -> Room {
        let mut ids = IdGen::new(seed);
        let salt = ids.next_bytes();
        Room {
            jid,
            occupants: Vec::new(),
            affiliations: HashMap::new(),
            admins,
            salt,
            ids,
            subject: None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }

    pub(super) fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{nick}", self.jid)
    }

    pub(super) fn by_real(&self, real: &str) -> Option<usize> {
        self.occupants.iter().position(|o| o.real == real)
    }

    pub(super) fn by_nick(&self, nick: &str) -> Option<usize> {
        self.occupants.iter().position(|o| o.nick == nick)
    }

    /// Prosody `get_affiliation` (+ the admins-are-owners patch of `mod_muc.lua`): by bare
    /// JID; a banned domain bans every JID on it.
    pub(super) fn affiliation(&self, jid: &str) -> Affiliation {
        let bare = bare_of(jid);
        if self.admins.contains(bare) {
            return Affiliation::Owner;
        }
        if let Some(a) = self.affiliations.get(bare) {
            return *a;
        }
        match self.affiliations.get(domain_of(jid)) {
            Some(Affiliation::Outcast) => Affiliation::Outcast,
            _ => Affiliation::None,
        }
    }

    pub(super) fn raw_affiliation(&self, bare: &str) -> Affiliation {
        self.affiliations
            .get(bare)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// Whether an owner other than `bare` is on record (`each_affiliation("owner")`).
    pub(super) fn has_other_owner(&self, bare: &str) -> bool {
        self.affiliations
            .iter()
            .any(|(jid, a)| jid != bare && *a == Affiliation::Owner)
    }

    pub(super) fn is_admin(&self, bare: &str) -> bool {
        self.admins.contains(bare)
    }

    pub(super) fn set_raw_affiliation(&mut self, bare: &str, affiliation: Affiliation) {
        if affiliation == Affiliation::None {
            self.affiliations.remove(bare);
        } else {
            self.affiliations.insert(bare.to_owned(), affiliation);
        }
    }

    /// `muc-get-default-role`: admins and owners moderate, members and unaffiliated users
    /// participate, outcasts get nothing.
    pub(super) fn default_role(affiliation: Affiliation) -> Role {
        match affiliation {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            Affiliation::Member | Affiliation::None => Role::Participant,
            Affiliation::Outcast => Role::None,
        }
    }

    /// `handle_first_presence`: the creator becomes owner (`muc-room-pre-create`), gets
    /// status 201 and 100 and 110, then the subject.
    pub(super) fn create_with_first_presence(
        &mut self,
        presence: &Element,
        from: &str,
        nick: &str,
        out: &mut Vec<Element>,
    ) {
        self.set_raw_affiliation(bare_of(from), Affiliation::Owner);
        self.join(presence, from, nick, true, out);
    }

    /// A presence from `from` (not an occupant yet) to `room/nick`.
    pub(super) fn join(
        &mut self,
        presence: &Element,
        from: &str,
        nick: &str,
        created: bool,
        out: &mut Vec<Element>,
    ) {
        let by = self.jid.clone();
        let refuse = |spec: ErrorSpec<'_>, out: &mut Vec<Element>| {
            out.extend(error_reply(presence, spec.by(&by)));
        };
        if nick.trim().is_empty() {
            let spec = ErrorSpec::new("modify", "not-allowed");
            return refuse(spec.text("Invisible Nicknames are forbidden"), out);
        }
        let affiliation = self.affiliation(from);
        if affiliation == Affiliation::Outcast {
            return refuse(ErrorSpec::new("auth", "forbidden"), out);
        }
        if self.by_nick(nick).is_some() {
            return refuse(ErrorSpec::new("cancel", "conflict"), out);
        }
        let occupant = Occupant {
            nick: nick.to_owned(),
            real: from.to_owned(),
            bare: bare_of(from).to_owned(),
            role: Room::default_role(affiliation),
            presence: self.stored_presence(presence, nick, from),
        };
        self.send_occupant_list(from, None, out);
        self.occupants.push(occupant);
        let publicity = if created {
            Publicity {
                base: vec![status_code("201"), status_code("100")],
                ..Publicity::default()
            }
        } else {
            Publicity {
                self_only: Some(vec![status_code("100")]),
                ..Publicity::default()
            }
        };
        if let Some(joined) = self.occupants.last() {
            self.publicise(joined, publicity, out);
        }
        self.send_subject(from, out);
    }

    /// An available presence from an occupant to its own nick: a presence update. When it
    /// carries the MUC `<x/>` again (a client that thinks it is joining), Prosody also resends
    /// the occupant list and the subject.
    pub(super) fn update(&mut self, idx: usize, presence: &Element, out: &mut Vec<Element>) {
        let rejoin = presence.has_child("x", crate::router::xml::NS_MUC);
        let Some(occupant) = self.occupants.get(idx) else {
            return;
        };
        let (nick, real, role) = (occupant.nick.clone(), occupant.real.clone(), occupant.role);
        let stored = self.stored_presence(presence, &nick, &real);
        if rejoin {
            self.send_occupant_list(&real, Some(&nick), out);
        }
        if let Some(occupant) = self.occupants.get_mut(idx) {
            occupant.presence = stored;
        }
        if let Some(occupant) = self.occupants.get(idx) {
            let publicity = Publicity {
                prev_role: Some(role),
                ..Publicity::default()
            };
            self.publicise(occupant, publicity, out);
        }
        if rejoin {
            self.send_subject(&real, out);
        }
    }

    /// An `unavailable` presence from an occupant: it leaves; everybody (itself included,
    /// with 110) gets its unavailable presence.
    pub(super) fn leave(&mut self, idx: usize, presence: &Element, out: &mut Vec<Element>) {
        if idx >= self.occupants.len() {
            return;
        }
        let mut occupant = self.occupants.remove(idx);
        occupant.presence = self.stored_presence(presence, &occupant.nick, &occupant.real);
        let prev_role = occupant.role;
        occupant.role = Role::None;
        let publicity = Publicity {
            prev_role: Some(prev_role),
            ..Publicity::default()
        };
        self.publicise(&occupant, publicity, out);
    }

    /// `handle_kickable`: the occupant that sent the error is removed with an unavailable
    /// presence carrying `<status>Kicked: …</status>` and status code 333.
    pub(super) fn kick_for_error(&mut self, from: &str, error: &Element, out: &mut Vec<Element>) {
        let Some(idx) = self.by_real(from) else {
            return;
        };
        let message = match error_condition(error) {
            Some((condition, text)) => {
                let mut m = format!("Kicked: {}", condition.replace('-', " "));
                if let Some(text) = text {
                    m = format!("{m}: {text}");
                }
                m
            }
            None => "Kicked: presence error".to_owned(),
        };
        self.remove_with_status(idx, &message, out);
    }

    /// Every occupant on `domain` is removed as if its component had bounced
    /// `remote-server-timeout` "Component unavailable" (Prosody `mod_component.lua`).
    pub(super) fn remove_for_disconnect(&mut self, domain: &str, out: &mut Vec<Element>) {
        while let Some(idx) = self
            .occupants
            .iter()
            .position(|o| domain_of(&o.real) == domain)
        {
            self.remove_with_status(
                idx,
                "Kicked: remote server timeout: Component unavailable",
                out,
            );
        }
    }

    fn remove_with_status(&mut self, idx: usize, status: &str, out: &mut Vec<Element>) {
        if idx >= self.occupants.len() {
            return;
        }
        let mut occupant = self.occupants.remove(idx);
        let unavailable = with_attr(
            stanza(
                "presence",
                &self.occupant_jid(&occupant.nick),
                &occupant.real,
            ),
            "type",
            "unavailable",
        );
        occupant.presence = with_child(
            unavailable,
            with_text(Element::bare("status", NS_COMPONENT), status),
        );
        let prev_role = occupant.role;
        occupant.role = Role::None;
        let publicity = Publicity {
            base: vec![status_code("333")],
            prev_role: Some(prev_role),
            ..Publicity::default()
        };
        self.publicise(&occupant, publicity, out);
    }

    /// `destroy`: everybody leaves at once, so each occupant only gets its own unavailable
    /// presence, carrying `<destroy jid?><reason/></destroy>` and status 110.
    pub(super) fn destroy(
        &mut self,
        new_jid: Option<&str>,
        reason: Option<&str>,
        out: &mut Vec<Element>,
    ) {
        let mut destroy = Element::bare("destroy", NS_MUC_USER);
        if let Some(jid) = new_jid {
            destroy = with_attr(destroy, "jid", jid);
        }
        if let Some(reason) = reason {
            destroy = with_child(
                destroy,
                with_text(Element::bare("reason", NS_MUC_USER), reason),
            );
        }
        let leaving = std::mem::take(&mut self.occupants);
        for mut occupant in leaving {
            let prev_role = occupant.role;
            occupant.role = Role::None;
            let publicity = Publicity {
                base: vec![destroy.clone()],
                prev_role: Some(prev_role),
                ..Publicity::default()
            };
            self.publicise(&occupant, publicity, out);
        }
    }

    /// The presence a room keeps for an occupant (`occupant:set_session`).
    fn stored_presence(&self, presence: &Element, nick: &str, real: &str) -> Element {
        let mut stored = without_muc_x(presence);
        set_attr(&mut stored, "from", self.occupant_jid(nick));
        set_attr(&mut stored, "to", real);
        stored
    }

    /// `<item affiliation role jid><actor nick jid/><reason/></item>`.
    fn item(
        &self,
        occupant: &Occupant,
        actor: Option<(&str, Option<&str>)>,
        reason: Option<&str>,
    ) -> Element {
        let mut item = Element::bare("item", NS_MUC_USER);
        item = with_attr(
            item,
            "affiliation",
            self.affiliation(&occupant.bare).as_str(),
        );
        item = with_attr(item, "role", occupant.role.as_str());
        item = with_attr(item, "jid", occupant.real.as_str());
        if let Some((nick, jid)) = actor {
            let mut actor = with_attr(Element::bare("actor", NS_MUC_USER), "nick", nick);
            if let Some(jid) = jid {
                actor = with_attr(actor, "jid", jid);
            }
            item = with_child(item, actor);
        }
        if let Some(reason) = reason {
            item = with_child(
                item,
                with_text(Element::bare("reason", NS_MUC_USER), reason),
            );
        }
        item
    }

    /// `publicise_occupant_status`: the occupant's presence to everybody else (if its role,
    /// or its previous role, is broadcast), then to itself with status 110.
    pub(super) fn publicise(&self, occupant: &Occupant, p: Publicity<'_>, out: &mut Vec<Element>) {
        let leaving = occupant.role == Role::None;
        let template = if !leaving || stanza_type(&occupant.presence) == Some("unavailable") {
            occupant.presence.clone()
        } else {
            let jid = self.occupant_jid(&occupant.nick);
            with_attr(
                stanza("presence", &jid, &occupant.real),
                "type",
                "unavailable",
            )
        };
        let actor_nick = p
            .actor
            .and_then(|a| self.by_real(a))
            .and_then(|i| self.occupants.get(i))
            .map(|o| o.nick.clone());
        let full_actor = actor_nick.as_deref().map(|n| (n, p.actor));
        let mut others_x = Element::bare("x", NS_MUC_USER);
        for child in &p.base {
            others_x.append_child(child.clone());
        }
        others_x.append_child(self.item(occupant, full_actor, p.reason));
        let prev_broadcast = p.prev_role.is_some_and(|r| r != Role::None);
        if !leaving || prev_broadcast {
            for other in self.occupants.iter().filter(|o| o.nick != occupant.nick) {
                let mut presence = with_child(template.clone(), others_x.clone());
                set_attr(&mut presence, "to", other.real.as_str());
                if leaving {
                    set_attr(&mut presence, "type", "unavailable");
                }
                out.push(presence);
            }
        }
        let mut self_x = Element::bare("x", NS_MUC_USER);
        for child in p.self_only.as_ref().unwrap_or(&p.base) {
            self_x.append_child(child.clone());
        }
        let self_actor = actor_nick.as_deref().map(|n| (n, None));
        self_x.append_child(self.item(occupant, self_actor, p.reason));
        self_x.append_child(status_code("110"));
        let mut own = with_child(template, self_x);
        set_attr(&mut own, "to", occupant.real.as_str());
        out.push(own);
    }

    /// An occupant's current presence with its `<item/>`, addressed to `to` (the shape of
    /// the occupant list and of a probe answer).
    pub(super) fn presence_for(&self, occupant: &Occupant, to: &str) -> Element {
        let x = with_child(
            Element::bare("x", NS_MUC_USER),
            self.item(occupant, None, None),
        );
        let mut presence = with_child(occupant.presence.clone(), x);
        set_attr(&mut presence, "to", to);
        presence
    }

    /// `send_occupant_list`: every current occupant's presence (except `skip`) to `to`.
    fn send_occupant_list(&self, to: &str, skip: Option<&str>, out: &mut Vec<Element>) {
        for occupant in self
            .occupants
            .iter()
            .filter(|o| Some(o.nick.as_str()) != skip)
        {
            out.push(self.presence_for(occupant, to));
        }
    }

    /// `send_subject` (`subject.lib.lua`): a groupchat message with the current (possibly
    /// empty) `<subject/>`, from the room or from whoever set it.
    pub(super) fn send_subject(&self, to: &str, out: &mut Vec<Element>) {
        let (from, text) = match &self.subject {
            Some((from, text)) => (from.as_str(), text.as_str()),
            None => (self.jid.as_str(), ""),
        };
        let message = with_attr(stanza("message", from, to), "type", "groupchat");
        let mut subject = Element::bare("subject", NS_COMPONENT);
        if !text.is_empty() {
            subject = with_text(subject, text);
        }
        out.push(with_child(message, subject));
    }

    pub(super) fn snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            jid: self.jid.clone(),
            occupants: self
                .occupants
                .iter()
                .map(|o| OccupantSnapshot {
                    nick: o.nick.clone(),
                    occupant_jid: self.occupant_jid(&o.nick),
                    real_jid: o.real.clone(),
                    role: o.role,
                    affiliation: self.affiliation(&o.bare),
                })
                .collect(),
        }
    }
}
