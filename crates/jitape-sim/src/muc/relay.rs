//! Per-stanza dispatch inside one simulated room: presences to `muc_room.rs`, IQs and
//! messages relayed between occupants, the room's own IQs (disco#info, muc#admin,
//! muc#owner).
//!
//! In: one stanza for `room@muc[/nick]` with normalised `from`/`to`. Out: the stanzas the
//! room sends. Rules from Prosody 0.12 `muc.lib.lua`:
//! - IQ get/set to an occupant: only from an occupant's joined full JID (else
//!   `not-acceptable` "You are not currently connected to this chat"); re-addressed from the
//!   sender's occupant JID to the target's real JID with an opaque id token
//!   `base64(target_real \0 orig_id \0 hash(salt, sender_real))`; the result/error must come
//!   back from the target's real JID (or its bare JID) with that id or it is dropped;
//! - a presence of type error from an occupant (any condition) or a message error with a
//!   kickable condition gets the sender kicked (status 333);
//! - groupchat messages are broadcast from the sender's occupant JID to everybody.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use minidom::Element;
use sha1::{Digest, Sha1};

use super::Role;
use super::room::Room;
use crate::router::xml::{
    ErrorSpec, NS_COMPONENT, NS_DATA, NS_DELAY, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC_ADMIN,
    NS_MUC_OWNER, NS_MUC_USER, NS_PING, bare_of, data_field, error_condition, error_reply,
    iq_payload, iq_result, set_attr, stanza, stanza_type, with_attr, with_child, with_text,
    without_muc_x,
};

/// `kickable_error_conditions` in Prosody's `plugins/muc/util.lib.lua` (an error stanza with
/// no `<error/>` at all counts as "malformed error", also kickable).
const KICKABLE: [&str; 9] = [
    "gone",
    "internal-server-error",
    "item-not-found",
    "jid-malformed",
    "recipient-unavailable",
    "redirect",
    "remote-server-not-found",
    "remote-server-timeout",
    "service-unavailable",
];

fn is_kickable_error(stanza: &Element) -> bool {
    match error_condition(stanza) {
        None => true,
        Some((condition, _)) => KICKABLE.contains(&condition.as_str()),
    }
}

impl Room {
    /// Dispatches one stanza to this room (`nick` is the resource of `to`, if any).
    pub(super) fn handle(
        &mut self,
        stanza: Element,
        from: &str,
        nick: Option<&str>,
        out: &mut Vec<Element>,
    ) {
        match (stanza.name(), nick) {
            ("presence", Some(nick)) => self.presence_to_occupant(&stanza, from, nick, out),
            ("presence", None) => self.presence_to_room(&stanza, from, out),
            ("iq", Some(nick)) => self.iq_to_occupant(stanza, from, nick, out),
            ("iq", None) => self.iq_to_room(&stanza, from, out),
            ("message", Some(nick)) => self.message_to_occupant(&stanza, from, nick, out),
            ("message", None) => self.message_to_room(stanza, from, out),
            _ => {}
        }
    }

    fn refuse(&self, stanza: &Element, spec: ErrorSpec<'_>, out: &mut Vec<Element>) {
        out.extend(error_reply(stanza, spec.by(&self.jid)));
    }

    fn presence_to_occupant(
        &mut self,
        p: &Element,
        from: &str,
        nick: &str,
        out: &mut Vec<Element>,
    ) {
        let current = self.by_real(from);
        match stanza_type(p) {
            Some("error") => self.kick_for_error(from, p, out),
            Some("unavailable") => {
                if let Some(idx) = current {
                    self.leave(idx, p, out);
                }
            }
            Some("probe") => self.probe(p, current, nick, out),
            None => match current {
                None if !p.has_child("x", crate::router::xml::NS_MUC) => {
                    let spec = ErrorSpec::new("cancel", "item-not-found");
                    self.refuse(
                        p,
                        spec.text("You are not currently connected to this chat"),
                        out,
                    );
                }
                None => self.join(p, from, nick, false, out),
                Some(idx) if self.occupants.get(idx).is_some_and(|o| o.nick == nick) => {
                    self.update(idx, p, out)
                }
                Some(_) => {
                    let spec = ErrorSpec::new("cancel", "not-acceptable");
                    self.refuse(p, spec.text("Nickname changes are not supported"), out);
                }
            },
            Some("result" | "visible" | "invisible") => {}
            Some(_) => self.refuse(p, ErrorSpec::new("modify", "bad-request"), out),
        }
    }

    /// "some buggy clients send presence updates to the room rather than their nick": an
    /// occupant's presence to the bare room goes to its nick; anyone else's is unhandled.
    fn presence_to_room(&mut self, p: &Element, from: &str, out: &mut Vec<Element>) {
        match self.by_real(from).and_then(|i| self.occupants.get(i)) {
            Some(occupant) => {
                let nick = occupant.nick.clone();
                self.presence_to_occupant(p, from, &nick, out);
            }
            None => out.extend(error_reply(
                p,
                ErrorSpec::new("cancel", "service-unavailable"),
            )),
        }
    }

    fn probe(&self, p: &Element, current: Option<usize>, nick: &str, out: &mut Vec<Element>) {
        let Some(prober) = current.and_then(|i| self.occupants.get(i)) else {
            let spec = ErrorSpec::new("cancel", "not-acceptable");
            return self.refuse(
                p,
                spec.text("You are not currently connected to this chat"),
                out,
            );
        };
        if let Some(probed) = self.by_nick(nick).and_then(|i| self.occupants.get(i)) {
            out.push(self.presence_for(probed, &prober.real));
        }
    }

    fn token_hash(&self, real: &str) -> [u8; 8] {
        let mut hasher = Sha1::new();
        hasher.update(self.salt);
        hasher.update(real.as_bytes());
        let digest: [u8; 20] = hasher.finalize().into();
        let mut hash = [0u8; 8];
        hash.copy_from_slice(&digest[..8]);
        hash
    }

    fn iq_to_occupant(&mut self, mut iq: Element, from: &str, nick: &str, out: &mut Vec<Element>) {
        let target = self.by_nick(nick).and_then(|i| self.occupants.get(i));
        if matches!(stanza_type(&iq), Some("result" | "error")) {
            // The reply travels back to the original sender (the occupant at `nick`).
            let Some(sender) = target else {
                return;
            };
            let Some((replier_real, orig_id, hash)) = decode_token(iq.attr("id").unwrap_or(""))
            else {
                return;
            };
            if from != replier_real && from != bare_of(&replier_real) {
                tracing::debug!("sim muc: IQ reply from another JID than the target dropped");
                return;
            }
            let Some(replier) = self
                .by_real(&replier_real)
                .and_then(|i| self.occupants.get(i))
            else {
                return;
            };
            if self.token_hash(&sender.real)[..] != hash[..] {
                return;
            }
            set_attr(&mut iq, "from", self.occupant_jid(&replier.nick));
            set_attr(&mut iq, "to", sender.real.as_str());
            set_attr(&mut iq, "id", orig_id);
            out.push(iq);
            return;
        }
        let Some(current) = self.by_real(from).and_then(|i| self.occupants.get(i)) else {
            let spec = ErrorSpec::new("cancel", "not-acceptable");
            return self.refuse(
                &iq,
                spec.text("You are not currently connected to this chat"),
                out,
            );
        };
        let Some(target) = target else {
            let spec = ErrorSpec::new("cancel", "item-not-found").text("Recipient not in room");
            return self.refuse(&iq, spec, out);
        };
        let self_ping = target.nick == current.nick
            && stanza_type(&iq) == Some("get")
            && iq.has_child("ping", NS_PING);
        if self_ping {
            out.push(iq_result(&iq));
            return;
        }
        let orig_id = iq.attr("id").unwrap_or("").to_owned();
        let token = encode_token(&target.real, &orig_id, &self.token_hash(from));
        let (sender_jid, target_real) = (self.occupant_jid(&current.nick), target.real.clone());
        set_attr(&mut iq, "from", sender_jid);
        set_attr(&mut iq, "to", target_real);
        set_attr(&mut iq, "id", token);
        out.push(iq);
    }

    fn iq_to_room(&mut self, iq: &Element, from: &str, out: &mut Vec<Element>) {
        let kind = stanza_type(iq);
        if matches!(kind, Some("result" | "error")) {
            return;
        }
        let payload = iq_payload(iq);
        let ns = payload.map(|p| (p.name().to_owned(), p.ns()));
        match (kind, ns.as_ref().map(|(n, s)| (n.as_str(), s.as_str()))) {
            (Some("get"), Some(("query", NS_DISCO_INFO))) => {
                let node = payload
                    .and_then(|p| p.attr("node"))
                    .filter(|n| !n.is_empty());
                out.push(with_child(iq_result(iq), self.disco_info(node)));
            }
            (Some("get"), Some(("query", NS_DISCO_ITEMS))) => {
                out.push(with_child(
                    iq_result(iq),
                    Element::bare("query", NS_DISCO_ITEMS),
                ));
            }
            (Some("set"), Some(("query", NS_MUC_ADMIN))) => self.admin_set(iq, from, out),
            (Some("get"), Some(("query", NS_MUC_OWNER))) => self.owner_get(iq, from, out),
            (Some("set"), Some(("query", NS_MUC_OWNER))) => self.owner_set(iq, from, out),
            _ => out.extend(error_reply(
                iq,
                ErrorSpec::new("cancel", "service-unavailable"),
            )),
        }
    }

    /// Room disco#info as Prosody's `muc-disco#info` hooks build it for a default Jitsi room.
    fn disco_info(&self, node: Option<&str>) -> Element {
        let mut query = Element::bare("query", NS_DISCO_INFO);
        if let Some(node) = node {
            return with_attr(query, "node", node);
        }
        let identity = with_attr(
            Element::bare("identity", NS_DISCO_INFO),
            "category",
            "conference",
        );
        query = with_child(query, with_attr(identity, "type", "text"));
        let features = [
            "http://jabber.org/protocol/muc",
            "http://jabber.org/protocol/muc#stable_id",
            "http://jabber.org/protocol/muc#self-ping-optimization",
            "muc_hidden",
            "muc_open",
            "muc_unmoderated",
            "muc_unsecured",
            "muc_temporary",
            "muc_nonanonymous",
        ];
        for var in features {
            let feature = with_attr(Element::bare("feature", NS_DISCO_INFO), "var", var);
            query = with_child(query, feature);
        }
        let form_type = data_field(
            "FORM_TYPE",
            Some("hidden"),
            "http://jabber.org/protocol/muc#roominfo",
        );
        let count = self.occupants.len().to_string();
        let occupants = data_field("muc#roominfo_occupants", None, &count);
        let form = with_attr(Element::bare("x", NS_DATA), "type", "result");
        with_child(query, with_child(with_child(form, form_type), occupants))
    }

    fn message_to_room(&mut self, m: Element, from: &str, out: &mut Vec<Element>) {
        match stanza_type(&m) {
            Some("groupchat") => self.groupchat(m, from, out),
            Some("error") => {
                if is_kickable_error(&m) {
                    self.kick_for_error(from, &m, out);
                }
            }
            // Invites and role requests are out of scope: unhandled like any other message.
            _ => out.extend(error_reply(
                &m,
                ErrorSpec::new("cancel", "service-unavailable"),
            )),
        }
    }

    /// `handle_groupchat_to_room`: role check, subject change, then broadcast from the
    /// sender's occupant JID (an `id` is added when missing, `<delay from=room/>` stripped).
    fn groupchat(&mut self, mut m: Element, from: &str, out: &mut Vec<Element>) {
        let sender = self.by_real(from).and_then(|i| self.occupants.get(i));
        let role = sender.map_or(Role::None, |o| o.role);
        if role == Role::None {
            let spec = ErrorSpec::new("cancel", "not-acceptable");
            return out.extend(error_reply(
                &m,
                spec.text("You are not currently connected to this chat"),
            ));
        }
        if role == Role::Visitor {
            let spec = ErrorSpec::new("auth", "forbidden")
                .text("You do not currently have permission to speak in this chat");
            return out.extend(error_reply(&m, spec));
        }
        let nick_jid = sender
            .map(|o| self.occupant_jid(&o.nick))
            .unwrap_or_default();
        let subject = m.get_child("subject", NS_COMPONENT).map(|s| s.text());
        let plain = !m.has_child("body", NS_COMPONENT) && !m.has_child("thread", NS_COMPONENT);
        if let (Some(subject), true) = (subject, plain) {
            if role < Role::Moderator {
                let spec = ErrorSpec::new("auth", "forbidden")
                    .text("You are not allowed to change the subject");
                return out.extend(error_reply(&m, spec));
            }
            self.subject = Some((nick_jid.clone(), subject.clone()));
            let msg = with_attr(stanza("message", &nick_jid, ""), "type", "groupchat");
            let m = with_child(
                msg,
                with_text(Element::bare("subject", NS_COMPONENT), &subject),
            );
            return self.broadcast(&m, out);
        }
        if m.attr("id").is_none() {
            let id = self.ids.next_id();
            set_attr(&mut m, "id", id);
        }
        let room = self.jid.clone();
        let mut m = strip_own_delay(&m, &room);
        set_attr(&mut m, "from", nick_jid);
        self.broadcast(&m, out);
    }

    fn broadcast(&self, m: &Element, out: &mut Vec<Element>) {
        for occupant in &self.occupants {
            let mut copy = m.clone();
            set_attr(&mut copy, "to", occupant.real.as_str());
            out.push(copy);
        }
    }

    /// `handle_message_to_occupant`: private messages from occupants only, re-addressed
    /// from the sender's occupant JID with an empty `<x muc#user/>`.
    fn message_to_occupant(&mut self, m: &Element, from: &str, nick: &str, out: &mut Vec<Element>) {
        let kind = stanza_type(m);
        let Some(current) = self.by_real(from).and_then(|i| self.occupants.get(i)) else {
            if kind != Some("error") {
                let spec = ErrorSpec::new("cancel", "not-acceptable");
                self.refuse(
                    m,
                    spec.text("You are not currently connected to this chat"),
                    out,
                );
            }
            return;
        };
        if kind == Some("groupchat") {
            return self.refuse(m, ErrorSpec::new("modify", "bad-request"), out);
        }
        if kind == Some("error") && is_kickable_error(m) {
            return self.kick_for_error(from, m, out);
        }
        let Some(target) = self.by_nick(nick).and_then(|i| self.occupants.get(i)) else {
            let spec = ErrorSpec::new("cancel", "item-not-found").text("Recipient not in room");
            return self.refuse(m, spec, out);
        };
        let mut copy = with_child(without_muc_x(m), Element::bare("x", NS_MUC_USER));
        set_attr(&mut copy, "from", self.occupant_jid(&current.nick));
        set_attr(&mut copy, "to", target.real.as_str());
        out.push(copy);
    }
}

/// A message copy without `<delay xmlns='urn:xmpp:delay' from='room'/>` children.
fn strip_own_delay(m: &Element, room: &str) -> Element {
    let mut copy = Element::bare(m.name(), m.ns());
    for ((ns, name), value) in m.attrs().iter() {
        copy.attrs_mut()
            .insert(ns.clone(), name.clone(), value.clone());
    }
    for node in m.nodes() {
        match node {
            minidom::Node::Element(c)
                if c.is("delay", NS_DELAY) && c.attr("from") == Some(room) => {}
            other => copy.append_node(other.clone()),
        }
    }
    copy
}

fn encode_token(target_real: &str, orig_id: &str, hash: &[u8; 8]) -> String {
    let mut raw = Vec::with_capacity(target_real.len() + orig_id.len() + 10);
    raw.extend_from_slice(target_real.as_bytes());
    raw.push(0);
    raw.extend_from_slice(orig_id.as_bytes());
    raw.push(0);
    raw.extend_from_slice(hash);
    STANDARD.encode(raw)
}

/// `(target_real, orig_id, hash)` from a token, `None` if it is not one of ours.
fn decode_token(token: &str) -> Option<(String, String, Vec<u8>)> {
    let raw = STANDARD.decode(token).ok()?;
    let mut parts = raw.splitn(3, |b| *b == 0);
    let target = std::str::from_utf8(parts.next()?).ok()?;
    let orig_id = std::str::from_utf8(parts.next()?).ok()?;
    let hash = parts.next()?;
    if target.is_empty() || hash.len() != 8 {
        return None;
    }
    Some((target.to_owned(), orig_id.to_owned(), hash.to_vec()))
}
