//! Owner and moderator actions on a simulated room: `muc#admin` (kick, role and
//! affiliation changes, ban) and `muc#owner` (configuration form, destroy).
//!
//! In: the `<iq type='set'|'get'>` addressed to the room, with the actor's real JID. Out:
//! the presences/messages the change causes, then the IQ result or error. Rules from
//! Prosody 0.12 `muc.lib.lua` (`handle_admin_query_set_command`, `may_set_role`,
//! `set_role`, `set_affiliation`, `handle_owner_query_*`): a kick is status 307, a ban 301
//! (321 for another affiliation loss), only owners configure or destroy, the actor's nick
//! (and, for the others, its JID) appears in `<actor/>`.

use minidom::Element;

use super::room::{Publicity, Room};
use super::{Affiliation, Role};
use crate::router::xml::{
    Addr, ErrorSpec, NS_DATA, NS_MUC_ADMIN, NS_MUC_OWNER, NS_MUC_USER, bare_of, data_field,
    domain_of, error_reply, iq_payload, iq_result, stanza, status_code, with_attr, with_child,
    with_text,
};

type RoleResult = Result<(), (&'static str, &'static str)>;

impl Room {
    /// `handle_admin_query_set_command`: kick/role change by nick, affiliation by JID.
    pub(super) fn admin_set(&mut self, iq: &Element, from: &str, out: &mut Vec<Element>) {
        let Some(item) = iq_payload(iq).and_then(|q| q.children().next()) else {
            return out.extend(error_reply(iq, ErrorSpec::new("cancel", "bad-request")));
        };
        let mut jid = None;
        if let Some(raw) = item.attr("jid") {
            match Addr::parse(raw) {
                None => {
                    return out.extend(error_reply(iq, ErrorSpec::new("modify", "jid-malformed")));
                }
                Some(a) if a.resource.is_some() => {
                    let spec = ErrorSpec::new("modify", "jid-malformed");
                    return out.extend(error_reply(
                        iq,
                        spec.text("Bare JID expected, got full JID"),
                    ));
                }
                Some(a) => jid = Some(a.bare()),
            }
        }
        let mut nick = item.attr("nick").map(str::to_owned);
        let (role, affiliation) = (item.attr("role"), item.attr("affiliation"));
        if jid.is_none() {
            if let Some(n) = &nick {
                jid = self
                    .by_nick(n)
                    .and_then(|i| self.occupants.get(i))
                    .map(|o| o.bare.clone());
            }
        } else if role.is_some() && nick.is_none() {
            let by_jid = jid.as_deref().and_then(|j| self.by_real(j));
            nick = by_jid
                .and_then(|i| self.occupants.get(i))
                .map(|o| o.nick.clone());
        }
        let reason = item.get_child("reason", NS_MUC_ADMIN).map(|r| r.text());
        let mut changes = Vec::new();
        let result = match (affiliation, role, jid, nick) {
            (Some(a), None, Some(jid), _) => {
                self.set_affiliation(from, &jid, a, reason.as_deref(), &mut changes)
            }
            (None, Some(r), _, Some(nick)) => {
                self.set_role(from, &nick, r, reason.as_deref(), &mut changes)
            }
            _ => Err(("cancel", "bad-request")),
        };
        out.extend(changes);
        match result {
            Ok(()) => out.push(iq_result(iq)),
            Err((kind, condition)) => out.extend(error_reply(iq, ErrorSpec::new(kind, condition))),
        }
    }

    /// `set_role` with `may_set_role`'s permission rules.
    fn set_role(
        &mut self,
        actor: &str,
        nick: &str,
        role: &str,
        reason: Option<&str>,
        out: &mut Vec<Element>,
    ) -> RoleResult {
        let idx = self.by_nick(nick).ok_or(("modify", "item-not-found"))?;
        let role = Role::parse(role).ok_or(("modify", "not-acceptable"))?;
        let (bare, current) = match self.occupants.get(idx) {
            Some(o) => (o.bare.clone(), o.role),
            None => return Err(("modify", "item-not-found")),
        };
        let actor_affiliation = self.affiliation(actor);
        if actor_affiliation < self.affiliation(&bare) {
            return Err(("cancel", "not-allowed"));
        }
        let privileged = matches!(actor_affiliation, Affiliation::Owner | Affiliation::Admin);
        if (current == Role::Moderator || role == Role::Moderator) && !privileged {
            return Err(("cancel", "not-allowed"));
        }
        let actor_role = self
            .by_real(actor)
            .and_then(|i| self.occupants.get(i))
            .map(|o| o.role);
        if actor_role != Some(Role::Moderator) {
            return Err(("cancel", "not-allowed"));
        }
        self.apply_role(idx, role, actor, reason, out);
        Ok(())
    }

    /// `set_affiliation` with its permission rules (owners may do anything but remove the
    /// last owner; admins may only manage members and below; admins configured on the
    /// server stay owners).
    fn set_affiliation(
        &mut self,
        actor: &str,
        jid: &str,
        affiliation: &str,
        reason: Option<&str>,
        out: &mut Vec<Element>,
    ) -> RoleResult {
        let affiliation = Affiliation::parse(affiliation).ok_or(("modify", "not-acceptable"))?;
        if affiliation != Affiliation::Owner && self.is_admin(jid) {
            return Err(("modify", "not-acceptable"));
        }
        let target = self.raw_affiliation(jid);
        match self.affiliation(actor) {
            Affiliation::Owner => {
                if bare_of(actor) == jid && target > affiliation && !self.has_other_owner(jid) {
                    return Err(("cancel", "conflict"));
                }
            }
            Affiliation::Admin
                if affiliation < Affiliation::Admin && target < Affiliation::Admin => {}
            _ => return Err(("cancel", "not-allowed")),
        }
        self.apply_affiliation(jid, affiliation, actor, reason, out);
        Ok(())
    }

    pub(super) fn owner_get(&self, iq: &Element, from: &str, out: &mut Vec<Element>) {
        if self.affiliation(from) != Affiliation::Owner {
            let spec = ErrorSpec::new("auth", "forbidden").text("Only owners can configure rooms");
            return out.extend(error_reply(iq, spec));
        }
        let form_type = data_field(
            "FORM_TYPE",
            Some("hidden"),
            "http://jabber.org/protocol/muc#roomconfig",
        );
        let form = with_child(
            with_attr(Element::bare("x", NS_DATA), "type", "form"),
            form_type,
        );
        out.push(with_child(
            iq_result(iq),
            with_child(Element::bare("query", NS_MUC_OWNER), form),
        ));
    }

    /// `handle_owner_query_set_to_room`: `<destroy/>` destroys, a data form is accepted (and
    /// ignored here), anything else is `service-unavailable`.
    pub(super) fn owner_set(&mut self, iq: &Element, from: &str, out: &mut Vec<Element>) {
        if self.affiliation(from) != Affiliation::Owner {
            let spec = ErrorSpec::new("auth", "forbidden").text("Only owners can configure rooms");
            return out.extend(error_reply(iq, spec));
        }
        match iq_payload(iq).and_then(|q| q.children().next()) {
            None => out.extend(error_reply(iq, ErrorSpec::new("modify", "bad-request"))),
            Some(destroy) if destroy.name() == "destroy" => {
                let reason = destroy
                    .children()
                    .find(|c| c.name() == "reason")
                    .map(|r| r.text());
                let new_jid = destroy.attr("jid").map(str::to_owned);
                tracing::debug!(room = %self.jid, "sim muc: room destroyed by its owner");
                self.destroy(new_jid.as_deref(), reason.as_deref(), out);
                out.push(iq_result(iq));
            }
            Some(form) if form.is("x", NS_DATA) => out.push(iq_result(iq)),
            Some(_) => out.extend(error_reply(
                iq,
                ErrorSpec::new("cancel", "service-unavailable"),
            )),
        }
    }

    /// `set_role` after the permission check: kick (role none, status 307) or role change.
    pub(super) fn apply_role(
        &mut self,
        idx: usize,
        role: Role,
        actor: &str,
        reason: Option<&str>,
        out: &mut Vec<Element>,
    ) {
        let Some(occupant) = self.occupants.get_mut(idx) else {
            return;
        };
        let prev_role = occupant.role;
        occupant.role = role;
        let mut publicity = Publicity {
            actor: Some(actor),
            reason,
            prev_role: Some(prev_role),
            ..Publicity::default()
        };
        if role == Role::None {
            publicity.base = vec![status_code("307")];
            let occupant = self.occupants.remove(idx);
            self.publicise(&occupant, publicity, out);
        } else if let Some(occupant) = self.occupants.get(idx) {
            self.publicise(occupant, publicity, out);
        }
    }

    /// `set_affiliation` after the permission check: stores it, adjusts the roles of that
    /// JID's occupants (an outcast is removed with status 301, another removal with 321) or,
    /// if none is in the room, announces the change by message.
    pub(super) fn apply_affiliation(
        &mut self,
        jid: &str,
        affiliation: Affiliation,
        actor: &str,
        reason: Option<&str>,
        out: &mut Vec<Element>,
    ) {
        let previous = self.raw_affiliation(jid);
        let is_downgrade = previous > affiliation;
        let is_host = !jid.contains('@');
        self.set_raw_affiliation(jid, affiliation);
        let role = Room::default_role(affiliation);
        let mut base = Vec::new();
        if role == Role::None {
            let code = if affiliation == Affiliation::Outcast {
                "301"
            } else {
                "321"
            };
            base.push(status_code(code));
        }
        let affected: Vec<String> = self
            .occupants
            .iter()
            .filter(|o| {
                o.bare == jid
                    || (is_host && affiliation == Affiliation::Outcast && domain_of(&o.real) == jid)
            })
            .map(|o| o.nick.clone())
            .collect();
        if affected.is_empty() {
            self.announce_affiliation(jid, affiliation, base, reason, out);
            return;
        }
        for nick in affected {
            let Some(idx) = self.by_nick(&nick) else {
                continue;
            };
            let prev_role = self.occupants.get(idx).map_or(Role::None, |o| o.role);
            let changes = prev_role != role && (is_downgrade || prev_role < role);
            let publicity = Publicity {
                base: base.clone(),
                actor: Some(actor),
                reason,
                prev_role: Some(prev_role),
                ..Publicity::default()
            };
            if changes && role == Role::None {
                let mut occupant = self.occupants.remove(idx);
                occupant.role = Role::None;
                self.publicise(&occupant, publicity, out);
            } else {
                if let Some(o) = self.occupants.get_mut(idx).filter(|_| changes) {
                    o.role = role;
                }
                if let Some(occupant) = self.occupants.get(idx) {
                    self.publicise(occupant, publicity, out);
                }
            }
        }
    }

    /// XEP-0045 example 195 as Prosody sends it: a message from the room with the new item.
    fn announce_affiliation(
        &self,
        jid: &str,
        affiliation: Affiliation,
        base: Vec<Element>,
        reason: Option<&str>,
        out: &mut Vec<Element>,
    ) {
        let mut x = Element::bare("x", NS_MUC_USER);
        for child in base {
            x.append_child(child);
        }
        let mut item = with_attr(
            Element::bare("item", NS_MUC_USER),
            "affiliation",
            affiliation.as_str(),
        );
        item = with_attr(item, "jid", jid);
        if let Some(reason) = reason {
            item = with_child(
                item,
                with_text(Element::bare("reason", NS_MUC_USER), reason),
            );
        }
        x.append_child(item);
        for occupant in &self.occupants {
            out.push(with_child(
                stanza("message", &self.jid, &occupant.real),
                x.clone(),
            ));
        }
    }
}
