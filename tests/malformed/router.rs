//! The malformed-input table for the router's decision (`router::classify`): module events
//! with missing or bogus attributes, invitations to foreign domains, traffic for a ghost
//! resource, stanzas without `from`, for other domains, or that are no stanzas at all.
//!
//! In: nothing (the rows are data). Out: [`cases`], checked by the router test in
//! `tests/malformed.rs`: the route is the expected one, an error reply goes only to an IQ
//! request or (on purpose, so that Prosody kicks it) to traffic for a ghost of ours.

use jitape::router::classify::Route;
use minidom::Element;

use crate::room::{DOMAIN, MUC, NS, ROOM, el};

/// What the router must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Dropped, nothing sent.
    Drop,
    /// An error reply of this kind (`iq`/`presence`/`message`) and condition.
    Error(&'static str, &'static str),
    /// Handed to the room's conference.
    Conference,
    /// Recognised as a module event.
    Module,
    /// A catch-up answer that failed.
    CatchUpFailed,
}

pub struct Case {
    pub name: &'static str,
    pub category: &'static str,
    pub stanza: fn() -> Element,
    pub expect: Expect,
}

const fn case(
    category: &'static str,
    name: &'static str,
    stanza: fn() -> Element,
    expect: Expect,
) -> Case {
    Case {
        name,
        category,
        stanza,
        expect,
    }
}

/// A message from the MUC service carrying a module `<event>`.
pub fn module(event: &str) -> Element {
    el(&format!(
        r#"<message xmlns="{NS}" from="{MUC}" to="{DOMAIN}">{event}</message>"#
    ))
}

fn invite(from: &str, x: &str) -> Element {
    el(&format!(
        r#"<message xmlns="{NS}" from="{from}" to="{DOMAIN}">{x}</message>"#
    ))
}

const GHOST: &str = "rec@recorder.meet.jitsi/crashed0";

fn to_ghost(kind: &str, type_: &str) -> Element {
    let t = if type_.is_empty() {
        String::new()
    } else {
        format!(r#" type="{type_}""#)
    };
    let payload = if kind == "iq" {
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="s"/>"#
    } else {
        ""
    };
    el(&format!(
        r#"<{kind} xmlns="{NS}"{t} id="g1" from="{ROOM}/focus" to="{GHOST}">{payload}</{kind}>"#
    ))
}

use Expect::*;

/// Every row.
pub fn cases() -> Vec<Case> {
    vec![
        // ---- module events ----
        case(
            "module event",
            "event without a type",
            || {
                module(&format!(
                    r#"<event xmlns="urn:jitape:prosody:1" room="{ROOM}"/>"#
                ))
            },
            Drop,
        ),
        case(
            "module event",
            "event of an unknown type",
            || {
                module(&format!(
                    r#"<event xmlns="urn:jitape:prosody:1" type="room-exploded" room="{ROOM}"/>"#
                ))
            },
            Drop,
        ),
        case(
            "module event",
            "room-created without a room",
            || module(r#"<event xmlns="urn:jitape:prosody:1" type="room-created"/>"#),
            Drop,
        ),
        case(
            "module event",
            "room that is not a JID",
            || module(r#"<event xmlns="urn:jitape:prosody:1" type="room-created" room="a b@@c"/>"#),
            Drop,
        ),
        case(
            "module event",
            "room with a resource",
            || {
                module(&format!(
                    r#"<event xmlns="urn:jitape:prosody:1" type="room-created" room="{ROOM}/nick"/>"#
                ))
            },
            Drop,
        ),
        case(
            "module event",
            "occupant-joined without an occupant",
            || {
                module(&format!(
                    r#"<event xmlns="urn:jitape:prosody:1" type="occupant-joined" room="{ROOM}"/>"#
                ))
            },
            Drop,
        ),
        case(
            "module event",
            "occupant with an empty nick",
            || {
                module(&format!(
                    r#"<event xmlns="urn:jitape:prosody:1" type="occupant-joined" room="{ROOM}"><occupant nick=""/></event>"#
                ))
            },
            Drop,
        ),
        case(
            "module event",
            "occupant with a 2,000-character nick",
            || {
                module(&format!(
                    r#"<event xmlns="urn:jitape:prosody:1" type="occupant-left" room="{ROOM}"><occupant nick="{}"/></event>"#,
                    "n".repeat(2000)
                ))
            },
            Drop,
        ),
        case(
            "module event",
            "event from a server that is no MUC service",
            || {
                el(&format!(
                    r#"<message xmlns="{NS}" from="evil.example" to="{DOMAIN}"><event xmlns="urn:jitape:prosody:1" type="room-created" room="{ROOM}"/></message>"#
                ))
            },
            Drop,
        ),
        case(
            "module event",
            "a well-formed event is recognised",
            || {
                module(&format!(
                    r#"<event xmlns="urn:jitape:prosody:1" type="room-destroyed" room="{ROOM}"/>"#
                ))
            },
            Module,
        ),
        case(
            "module event",
            "catch-up answer without <rooms>",
            || {
                el(&format!(
                    r#"<iq xmlns="{NS}" type="result" id="jitape-catchup-1" from="{MUC}" to="{DOMAIN}"/>"#
                ))
            },
            CatchUpFailed,
        ),
        case(
            "module event",
            "catch-up error",
            || {
                el(&format!(
                    r#"<iq xmlns="{NS}" type="error" id="jitape-catchup-2" from="{MUC}" to="{DOMAIN}"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>"#
                ))
            },
            CatchUpFailed,
        ),
        // ---- invitations ----
        case(
            "invitation",
            "direct invitation to a foreign domain",
            || {
                invite(
                    "u@meet.jitsi/x",
                    r#"<x xmlns="jabber:x:conference" jid="room@evil.example"/>"#,
                )
            },
            Drop,
        ),
        case(
            "invitation",
            "direct invitation to an occupant JID",
            || {
                invite(
                    "u@meet.jitsi/x",
                    &format!(r#"<x xmlns="jabber:x:conference" jid="{ROOM}/focus"/>"#),
                )
            },
            Drop,
        ),
        case(
            "invitation",
            "direct invitation to the MUC service itself",
            || {
                invite(
                    "u@meet.jitsi/x",
                    &format!(r#"<x xmlns="jabber:x:conference" jid="{MUC}"/>"#),
                )
            },
            Drop,
        ),
        case(
            "invitation",
            "direct invitation without a jid",
            || invite("u@meet.jitsi/x", r#"<x xmlns="jabber:x:conference"/>"#),
            Drop,
        ),
        case(
            "invitation",
            "direct invitation with a 5,000-byte jid",
            || {
                invite(
                    "u@meet.jitsi/x",
                    &format!(
                        r#"<x xmlns="jabber:x:conference" jid="{}@{MUC}"/>"#,
                        "r".repeat(5000)
                    ),
                )
            },
            Drop,
        ),
        case(
            "invitation",
            "mediated invitation from a foreign room",
            || {
                invite(
                    "room@evil.example",
                    r#"<x xmlns="http://jabber.org/protocol/muc#user"><invite from="u@x/y"/></x>"#,
                )
            },
            Drop,
        ),
        case(
            "invitation",
            "invitation of type error",
            || {
                el(&format!(
                    r#"<message xmlns="{NS}" type="error" from="u@meet.jitsi/x" to="{DOMAIN}"><x xmlns="jabber:x:conference" jid="{ROOM}"/></message>"#
                ))
            },
            Drop,
        ),
        // ---- ghost resources ----
        case(
            "ghost",
            "presence to a ghost of ours",
            || to_ghost("presence", ""),
            Error("presence", "gone"),
        ),
        case(
            "ghost",
            "message to a ghost of ours",
            || to_ghost("message", "groupchat"),
            Error("message", "gone"),
        ),
        case(
            "ghost",
            "IQ to a ghost of ours",
            || to_ghost("iq", "set"),
            Error("iq", "item-not-found"),
        ),
        case(
            "ghost",
            "unavailable to a ghost",
            || to_ghost("presence", "unavailable"),
            Drop,
        ),
        case(
            "ghost",
            "error to a ghost",
            || to_ghost("message", "error"),
            Drop,
        ),
        case(
            "ghost",
            "result to a ghost",
            || to_ghost("iq", "result"),
            Drop,
        ),
        case(
            "ghost",
            "ghost traffic from outside the MUC",
            || {
                el(&format!(
                    r#"<presence xmlns="{NS}" from="u@meet.jitsi/x" to="{GHOST}"/>"#
                ))
            },
            Drop,
        ),
        // ---- addressing ----
        case(
            "addressing",
            "stanza without from",
            || {
                el(&format!(
                    r#"<message xmlns="{NS}" to="rec@{DOMAIN}/c9f1a2b7"><body>x</body></message>"#
                ))
            },
            Drop,
        ),
        case(
            "addressing",
            "IQ without from",
            || {
                el(&format!(
                    r#"<iq xmlns="{NS}" type="set" id="x" to="rec@{DOMAIN}/c9f1a2b7"><jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="s"/></iq>"#
                ))
            },
            Drop,
        ),
        case(
            "addressing",
            "from with a 5,000-byte resource",
            || {
                el(&format!(
                    r#"<presence xmlns="{NS}" from="{ROOM}/{}" to="rec@{DOMAIN}/c9f1a2b7"/>"#,
                    "r".repeat(5000)
                ))
            },
            Drop,
        ),
        case(
            "addressing",
            "stanza for another domain",
            || {
                el(&format!(
                    r#"<presence xmlns="{NS}" from="{ROOM}/focus" to="rec@other.example/x"/>"#
                ))
            },
            Drop,
        ),
        case(
            "addressing",
            "IQ request from outside the MUC",
            || {
                el(&format!(
                    r#"<iq xmlns="{NS}" type="set" id="o1" from="u@meet.jitsi/x" to="rec@{DOMAIN}/c9f1a2b7"><jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s"/></iq>"#
                ))
            },
            Error("iq", "service-unavailable"),
        ),
        case(
            "addressing",
            "error from outside the MUC",
            || {
                el(&format!(
                    r#"<iq xmlns="{NS}" type="error" id="o2" from="u@meet.jitsi/x" to="rec@{DOMAIN}/c9f1a2b7"/>"#
                ))
            },
            Drop,
        ),
        case(
            "addressing",
            "not a stanza",
            || {
                el(&format!(
                    r#"<handshake xmlns="{NS}" from="{ROOM}" to="{DOMAIN}"/>"#
                ))
            },
            Drop,
        ),
        case(
            "addressing",
            "room JID in upper case is the same room",
            || {
                el(&format!(
                    r#"<presence xmlns="{NS}" from="WeeklySync@MUC.meet.jitsi/x" to="rec@{DOMAIN}/c9f1a2b7"/>"#
                ))
            },
            Conference,
        ),
        case(
            "addressing",
            "room traffic is the room's",
            || {
                el(&format!(
                    r#"<presence xmlns="{NS}" from="{ROOM}/x" to="rec@{DOMAIN}/c9f1a2b7"/>"#
                ))
            },
            Conference,
        ),
    ]
}

/// Whether `route` is what `expect` says.
pub fn matches(route: &Route, expect: &Expect) -> bool {
    match (route, expect) {
        (Route::Drop(_), Drop) => true,
        (Route::Conference(r), Conference) => r == ROOM,
        (Route::Module(_), Module) => true,
        (Route::CatchUp { rooms: Err(_), .. }, CatchUpFailed) => true,
        (Route::Reply(r), Error(kind, condition)) => {
            r.name() == *kind
                && r.attr("type") == Some("error")
                && jitape::xmpp::stanza::error_condition(r).as_deref() == Some(*condition)
        }
        _ => false,
    }
}
