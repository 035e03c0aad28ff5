//! Where each inbound stanza goes: the router's decision, as a pure function.
//!
//! In: a stanza and what the router is (its domain, its full JID, the MUC domains, the ids of
//! its outstanding catch-up queries). Out: a [`Route`]. Component-level requests (ping,
//! disco#info) are answered here; invitations, module events and catch-up answers are
//! recognised; stanzas for a *previous* jitape process's occupant (a ghost left by a crash)
//! get an error reply, which makes Prosody remove that occupant.

use minidom::Element;

use super::rooms::{self, ModuleEvent, NS_JITAPE, RoomReport};
use crate::xml::BuilderExt;
use crate::xmpp::muc;
use crate::xmpp::stanza::{
    self, Header, Jid, Kind, NS_COMPONENT, NS_CONFERENCE, NS_DISCO_INFO, NS_MUC_USER, NS_PING,
    NS_STANZAS,
};

/// What the router needs to know to classify stanzas.
#[derive(Debug, Clone)]
pub struct ClassifySettings {
    /// Our component domain.
    pub domain: String,
    /// Our full JID in rooms (`rec@domain/instance`).
    pub our_jid: String,
    pub muc_domains: Vec<String>,
    /// Advertise Opus RED in disco#info (`media.opus_red`).
    pub opus_red: bool,
}

/// Prefix of the ids of our catch-up queries.
pub const CATCHUP_ID: &str = "jitape-catchup-";

/// Where a stanza goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// To the conference of this room (bare JID).
    Conference(String),
    /// Answer on the link right away.
    Reply(Element),
    /// We were invited to record this room.
    Invitation { room: String, via: &'static str },
    /// An event from the Prosody module.
    Module(ModuleEvent),
    /// The answer to a catch-up query (`Err` when the module did not answer it).
    CatchUp {
        id: String,
        rooms: Result<Vec<RoomReport>, String>,
        /// With several instances: the lease and the rooms other instances own.
        shared: Option<rooms::Shared>,
    },
    /// Nothing to do (results for others, chatter, stale traffic). The reason is for logs.
    Drop(&'static str),
}

fn on_muc_domain(s: &ClassifySettings, jid: &Jid) -> bool {
    jid.node().is_some() && s.muc_domains.iter().any(|d| d == jid.domain())
}

fn is_muc_service(s: &ClassifySettings, jid: &Jid) -> bool {
    jid.node().is_none() && s.muc_domains.iter().any(|d| d == jid.domain())
}

/// Classify one inbound stanza. Pure.
pub fn classify(s: &ClassifySettings, el: &Element) -> Route {
    let Some(h) = Header::of(el) else {
        return Route::Drop("not a stanza");
    };
    let Some(to) = h.to.as_ref().filter(|t| t.domain() == s.domain) else {
        return Route::Drop("not addressed to our domain");
    };
    if h.is_iq_request()
        && let Some(reply) = answer_component_iq(el, s.opus_red)
    {
        return Route::Reply(reply);
    }
    if let Some(r) = ghost(s, &h, to, el) {
        return r;
    }
    if let Some(r) = from_module(s, &h, el) {
        return r;
    }
    if h.kind == Kind::Message
        && let Some(r) = invitation(s, &h, el)
    {
        return r;
    }
    let Some(from) = h.from.as_ref() else {
        return Route::Drop("no from");
    };
    if on_muc_domain(s, from) {
        return Route::Conference(from.bare.clone());
    }
    if h.is_iq_request() {
        return Route::Reply(stanza::iq_error(el, "service-unavailable", None));
    }
    Route::Drop("not from a conference room")
}

/// Ping and disco#info are answered for any of our JIDs (the component domain and every
/// occupant JID we use), immediately: Jicofo blocks a room's presence handling until our
/// disco#info answer arrives.
fn answer_component_iq(el: &Element, opus_red: bool) -> Option<Element> {
    let p = stanza::payload(el)?;
    if el.attr("type") == Some("get") && p.is("ping", NS_PING) {
        return Some(stanza::iq_result(el, None));
    }
    if el.attr("type") == Some("get") && p.is("query", NS_DISCO_INFO) {
        return Some(stanza::iq_result(
            el,
            Some(muc::disco_info(p.attr("node"), opus_red)),
        ));
    }
    None
}

/// Traffic for an occupant JID of ours that is not this process's (`user@domain/other`):
/// a ghost a crashed jitape left in a room. Answer with an error so Prosody kicks it (a
/// presence error from an occupant always does) and Jicofo drops its session.
fn ghost(s: &ClassifySettings, h: &Header, to: &Jid, el: &Element) -> Option<Route> {
    let ours = Jid::parse(&s.our_jid)?;
    let is_ghost = to.resource.is_some() && to.bare == ours.bare && to.resource != ours.resource;
    if !is_ghost || h.is_type("error") || h.is_type("result") || h.is_type("unavailable") {
        return (is_ghost).then_some(Route::Drop("stale traffic for a previous jitape"));
    }
    let from = h.from.as_ref()?;
    if !on_muc_domain(s, from) {
        return Some(Route::Drop("stale traffic for a previous jitape"));
    }
    if h.kind == Kind::Iq {
        return Some(Route::Reply(stanza::iq_error(
            el,
            "item-not-found",
            Some("gone"),
        )));
    }
    let name = if h.kind == Kind::Presence {
        "presence"
    } else {
        "message"
    };
    let error = Element::builder("error", NS_COMPONENT)
        .set("type", "cancel")
        .append(Element::builder("gone", NS_STANZAS).build())
        .build();
    let mut reply = Element::builder(name, NS_COMPONENT)
        .set("type", "error")
        .set("from", to.full())
        .set("to", from.full());
    if let Some(id) = &h.id {
        reply = reply.set("id", id.as_str());
    }
    Some(Route::Reply(reply.append(error).build()))
}

/// Module events (messages from a MUC service) and answers to our catch-up queries.
fn from_module(s: &ClassifySettings, h: &Header, el: &Element) -> Option<Route> {
    let from = h.from.as_ref()?;
    if !is_muc_service(s, from) {
        return None;
    }
    if h.kind == Kind::Message && el.get_child("event", NS_JITAPE).is_some() {
        return Some(match rooms::parse_event(el) {
            // A MUC service speaks only for its own rooms: an event naming a room elsewhere
            // would make jitape join outside `xmpp.muc_domains`.
            Some(ev) if rooms::domain_of(ev.room()) == from.domain() => Route::Module(ev),
            Some(_) => Route::Drop("module event about a room of another service"),
            None => Route::Drop("malformed module event"),
        });
    }
    let id = h.id.as_deref().filter(|id| id.starts_with(CATCHUP_ID))?;
    if h.kind != Kind::Iq {
        return None;
    }
    let rooms = if h.is_type("result") {
        rooms::parse_catchup(el)
            .map(|mut list| {
                list.retain(|r| rooms::domain_of(&r.room) == from.domain());
                list
            })
            .ok_or_else(|| "unparsable catch-up answer".to_string())
    } else {
        Err(stanza::error_condition(el).unwrap_or_else(|| "no answer".into()))
    };
    let shared = rooms::parse_shared(el).map(|mut sh| {
        sh.elsewhere
            .retain(|r| rooms::domain_of(r) == from.domain());
        sh
    });
    Some(Route::CatchUp {
        id: id.to_string(),
        rooms,
        shared,
    })
}

/// XEP-0249 direct invitations and XEP-0045 mediated invitations.
fn invitation(s: &ClassifySettings, h: &Header, el: &Element) -> Option<Route> {
    if h.is_type("error") {
        return None;
    }
    if let Some(x) = el.get_child("x", NS_CONFERENCE) {
        let room = x.attr("jid").and_then(Jid::parse)?;
        if !on_muc_domain(s, &room) || room.resource.is_some() {
            return Some(Route::Drop(
                "invitation to a room outside the configured MUC domains",
            ));
        }
        return Some(Route::Invitation {
            room: room.bare,
            via: "direct invitation",
        });
    }
    let x = el.get_child("x", NS_MUC_USER)?;
    x.children().find(|c| c.name() == "invite")?;
    let room = h.from.as_ref()?;
    if !on_muc_domain(s, room) {
        return Some(Route::Drop(
            "invitation from a room outside the configured MUC domains",
        ));
    }
    Some(Route::Invitation {
        room: room.bare.clone(),
        via: "mediated invitation",
    })
}

#[cfg(test)]
mod tests;
