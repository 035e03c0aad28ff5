//! The malformed-input table for the conference machine: each row is a hostile stanza from
//! the room, the state the machine is in, and the expected outcome.
//!
//! In: nothing (the rows are data). Out: [`cases`], checked by `run_case` in
//! `tests/malformed.rs`: the router sends the stanza to the room, the machine answers as the
//! row says (a specific IQ error, a result, or no stanza at all), and its state afterwards is
//! as the row says (by default: unchanged, and a following valid source-add still works).

use minidom::Element;

use crate::hostile::{self, SID};
use crate::room::{FOCUS, HUMANS};

/// What the machine is doing when the stanza arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Join sent, no self-presence yet.
    Joining,
    /// In the room, no Jingle session.
    Joined,
    /// session-initiate `sid1` acked, media not up yet.
    Starting,
    /// Session `sid1` active (accepted).
    Active,
    /// Media failed; a new session was asked for.
    RestartRequested,
}

pub const STATES: [State; 5] = [
    State::Joining,
    State::Joined,
    State::Starting,
    State::Active,
    State::RestartRequested,
];

/// The reply the machine must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// An IQ error with this defined condition, to the sender, with the request's id.
    Error(&'static str),
    /// An IQ result, to the sender, with the request's id.
    Result,
    /// No stanza at all.
    Nothing,
}

/// The machine's state afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Joined-ness, session, restart request and humans as before.
    Unchanged,
    /// As before, but one more human in the room (the hostile presence joined).
    OneMoreHuman,
    /// As before, but the current session is now this sid.
    Session(&'static str),
}

pub struct Case {
    pub name: &'static str,
    pub category: &'static str,
    pub state: State,
    pub stanza: fn() -> Element,
    pub reply: Reply,
    pub after: After,
}

const fn case(
    category: &'static str,
    name: &'static str,
    state: State,
    stanza: fn() -> Element,
    reply: Reply,
    after: After,
) -> Case {
    Case {
        name,
        category,
        state,
        stanza,
        reply,
        after,
    }
}

use After::*;
use Reply::*;
use State::*;

const BAD: Reply = Error("bad-request");

/// Every row. Candidates and SSRCs are tried in a transport-replace for the current session,
/// so a refusal must leave the session as it was.
pub fn cases() -> Vec<Case> {
    vec![
        // ---- oversized ----
        case(
            "oversized",
            "400 KB presence (4,000 features)",
            Active,
            || hostile::huge_presence("f0e1d2c3", 400_000),
            Nothing,
            OneMoreHuman,
        ),
        case(
            "oversized",
            "source-add with 10,000 sources",
            Active,
            || {
                hostile::from_focus(
                    "big",
                    jitape::jingle::source_add(SID, &hostile::many_sources(10_000), false),
                )
            },
            Error("policy-violation"),
            Unchanged,
        ),
        case(
            "oversized",
            "source-add with 10,000 JSON sources",
            Active,
            || {
                hostile::from_focus(
                    "bigj",
                    jitape::jingle::source_add(SID, &hostile::many_sources(10_000), true),
                )
            },
            Error("policy-violation"),
            Unchanged,
        ),
        case(
            "oversized",
            "json-message over 1 MiB",
            Active,
            || {
                hostile::source_add_json(
                    SID,
                    &format!(r#"{{"sources":{{}},"pad":"{}"}}"#, "x".repeat(1 << 20)),
                )
            },
            Error("policy-violation"),
            Unchanged,
        ),
        case(
            "oversized",
            "transport-replace with 1,000 candidates",
            Active,
            || hostile::offer_with_candidates(SID, 1_000),
            Error("policy-violation"),
            Unchanged,
        ),
        case(
            "oversized",
            "presence with a 9 KiB attribute value",
            Active,
            || hostile::long_attribute_presence("f0e1d2c3", 9 * 1024),
            Nothing,
            OneMoreHuman,
        ),
        case(
            "oversized",
            "presence with a 1,000-character nick",
            Active,
            || hostile::presence(&"n".repeat(1000), ""),
            Nothing,
            OneMoreHuman,
        ),
        case(
            "oversized",
            "presence with 100 KB display name and identity",
            Active,
            || hostile::odd_features_presence("f0e1d2c3", 3, 20_000),
            Nothing,
            OneMoreHuman,
        ),
        case(
            "oversized",
            "groupchat message with a 300 KB body",
            Active,
            || {
                hostile::from_room(
                    "message",
                    &format!("{}/{}", crate::room::ROOM, HUMANS[0]),
                    "groupchat",
                    &format!("<body>{}</body>", "b".repeat(300_000)),
                )
            },
            Nothing,
            Unchanged,
        ),
        // ---- deeply nested ----
        // The link drops anything nested deeper than `WireLimits::max_depth` (32) before it
        // is parsed (see the link tests); up to that depth it reaches the machine.
        case(
            "nested",
            "presence nested 30 deep",
            Active,
            || hostile::nested_presence("f0e1d2c3", 30),
            Nothing,
            OneMoreHuman,
        ),
        case(
            "nested",
            "Jingle IQ nested 28 deep inside <reason>",
            Active,
            || {
                hostile::iq(
                    FOCUS,
                    "deep",
                    &format!(
                        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-info" sid="{SID}"><reason>{}x{}</reason></jingle>"#,
                        "<a>".repeat(28),
                        "</a>".repeat(28)
                    ),
                )
            },
            Result,
            Unchanged,
        ),
        // ---- wrong namespaces ----
        case(
            "namespace",
            "<jingle> in urn:xmpp:jingle:0",
            Active,
            || {
                hostile::iq(
                    FOCUS,
                    "ns0",
                    &format!(
                        r#"<jingle xmlns="urn:xmpp:jingle:0" action="source-add" sid="{SID}"/>"#
                    ),
                )
            },
            Error("service-unavailable"),
            Unchanged,
        ),
        case(
            "namespace",
            "session-initiate with its description in a foreign namespace",
            Active,
            || {
                hostile::offer_with_candidate(
                    "session-initiate",
                    "sid2",
                    "urn:xmpp:jingle:apps:rtp:1",
                    "urn:example:rtp",
                )
            },
            BAD,
            Unchanged,
        ),
        case(
            "namespace",
            "source-add whose <source> is in a foreign namespace",
            Active,
            || {
                hostile::iq(
                    FOCUS,
                    "nss",
                    &format!(
                        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{SID}"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><source xmlns="urn:example" ssrc="5"/></description></content></jingle>"#
                    ),
                )
            },
            Result,
            Unchanged,
        ),
        case(
            "namespace",
            "presence whose muc#user <x> is in a foreign namespace",
            Active,
            || {
                hostile::presence(
                    "f0e1d2c3",
                    r#"<x xmlns="http://jabber.org/protocol/muc#owner"><destroy/></x>"#,
                )
            },
            Nothing,
            OneMoreHuman,
        ),
        case(
            "namespace",
            "ping in a foreign namespace",
            Active,
            || hostile::iq(HUMANS[0], "png", r#"<ping xmlns="urn:xmpp:pong"/>"#),
            Error("service-unavailable"),
            Unchanged,
        ),
        // ---- duplicate sids and sources ----
        case(
            "duplicate",
            "session-initiate again with the current sid",
            Active,
            || {
                hostile::from_focus(
                    "dup",
                    jitape::jingle::session_initiate(
                        SID,
                        crate::room::FOCUS_REAL,
                        &crate::room::offer(),
                        &[crate::room::source(1, HUMANS[0])],
                        &crate::room::bridge_session(false),
                        false,
                    ),
                )
            },
            Result,
            Session(SID),
        ),
        case(
            "duplicate",
            "session-initiate with a second sid replaces the session",
            Active,
            || {
                hostile::from_focus(
                    "dup2",
                    jitape::jingle::session_initiate(
                        "sid2",
                        crate::room::FOCUS_REAL,
                        &crate::room::offer(),
                        &[crate::room::source(1, HUMANS[0])],
                        &crate::room::bridge_session(false),
                        false,
                    ),
                )
            },
            Result,
            Session("sid2"),
        ),
        case(
            "duplicate",
            "one SSRC twice in a source-add (XML and JSON)",
            Active,
            || {
                let mut j = jitape::jingle::source_add(
                    SID,
                    &[
                        crate::room::source(55, HUMANS[0]),
                        crate::room::source(55, HUMANS[1]),
                    ],
                    false,
                );
                j.append_child(
                    Element::builder("json-message", jitape::jingle::ns::JITMEET)
                        .append(r#"{"sources":{"e5f6a7b8":[[],[],[{"s":55}]]}}"#)
                        .build(),
                );
                hostile::from_focus("dups", j)
            },
            Result,
            Unchanged,
        ),
        // ---- unknown session ----
        case(
            "unknown session",
            "source-add for an unknown sid",
            Active,
            || hostile::source_add_ssrc("nosuch", "5"),
            Error("item-not-found"),
            Unchanged,
        ),
        case(
            "unknown session",
            "source-remove for an unknown sid",
            Active,
            || {
                hostile::from_focus(
                    "rm",
                    jitape::jingle::source_remove(
                        "nosuch",
                        &[crate::room::source(1, HUMANS[0])],
                        false,
                    ),
                )
            },
            Error("item-not-found"),
            Unchanged,
        ),
        case(
            "unknown session",
            "transport-replace for an unknown sid",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    "nosuch",
                    "port='10000'",
                    "port='10001'",
                )
            },
            Error("item-not-found"),
            Unchanged,
        ),
        case(
            "unknown session",
            "session-terminate for an unknown sid",
            Active,
            || hostile::bare_jingle(FOCUS, "session-terminate", "nosuch"),
            Error("item-not-found"),
            Unchanged,
        ),
        case(
            "unknown session",
            "transport-info for an unknown sid",
            Active,
            || hostile::transport_info_with("nosuch", "port='10000'", "port='10002'"),
            Error("item-not-found"),
            Unchanged,
        ),
        case(
            "unknown session",
            "source-add with no session at all",
            Joined,
            || hostile::source_add_ssrc(SID, "5"),
            Error("item-not-found"),
            Unchanged,
        ),
        // ---- SSRCs ----
        case(
            "ssrc",
            "SSRC 0",
            Active,
            || hostile::source_add_ssrc(SID, "0"),
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "SSRC 2^32",
            Active,
            || hostile::source_add_ssrc(SID, "4294967296"),
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "SSRC -1",
            Active,
            || hostile::source_add_ssrc(SID, "-1"),
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "SSRC with a sign or spaces",
            Active,
            || hostile::source_add_ssrc(SID, " +5"),
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "SSRC of 40 digits",
            Active,
            || hostile::source_add_ssrc(SID, &"9".repeat(40)),
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "JSON SSRC 0",
            Active,
            || hostile::source_add_json(SID, r#"{"sources":{"a1b2c3d4":[[],[],[{"s":0}]]}}"#),
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "JSON SSRC above u32",
            Active,
            || {
                hostile::source_add_json(
                    SID,
                    r#"{"sources":{"a1b2c3d4":[[],[],[{"s":4294967296}]]}}"#,
                )
            },
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "JSON SSRC negative / fractional",
            Active,
            || hostile::source_add_json(SID, r#"{"sources":{"a1b2c3d4":[[],[],[{"s":-1.5}]]}}"#),
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "JSON that is not JSON",
            Active,
            || hostile::source_add_json(SID, r#"{"sources":"#),
            BAD,
            Unchanged,
        ),
        case(
            "ssrc",
            "source without an owner",
            Active,
            || {
                hostile::iq(
                    FOCUS,
                    "own",
                    &format!(
                        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{SID}"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="77"/></description></content></jingle>"#
                    ),
                )
            },
            BAD,
            Unchanged,
        ),
        // ---- candidates (transport-replace of the current session) ----
        case(
            "candidate",
            "negative port",
            Active,
            || hostile::offer_with_candidate("transport-replace", SID, "port='10000'", "port='-1'"),
            BAD,
            Unchanged,
        ),
        case(
            "candidate",
            "port 70000",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    SID,
                    "port='10000'",
                    "port='70000'",
                )
            },
            BAD,
            Unchanged,
        ),
        case(
            "candidate",
            "port 2^64",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    SID,
                    "port='10000'",
                    "port='18446744073709551616'",
                )
            },
            BAD,
            Unchanged,
        ),
        case(
            "candidate",
            "hostname candidate",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    SID,
                    "ip='127.0.0.1'",
                    "ip='jvb.example.com'",
                )
            },
            // A candidate jitape cannot use is skipped; the rest of the offer is taken.
            Result,
            Session(SID),
        ),
        case(
            "candidate",
            "mDNS candidate",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    SID,
                    "ip='127.0.0.1'",
                    "ip='6b1a8c3e.local'",
                )
            },
            // A candidate jitape cannot use is skipped; the rest of the offer is taken.
            Result,
            Session(SID),
        ),
        case(
            "candidate",
            "IPv6 with a zone",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    SID,
                    "ip='127.0.0.1'",
                    "ip='fe80::1%eth0'",
                )
            },
            // A candidate jitape cannot use is skipped; the rest of the offer is taken.
            Result,
            Session(SID),
        ),
        case(
            "candidate",
            "component 300",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    SID,
                    "component='1'",
                    "component='300'",
                )
            },
            BAD,
            Unchanged,
        ),
        case(
            "candidate",
            "protocol sctp",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    SID,
                    "protocol='udp'",
                    "protocol='sctp'",
                )
            },
            // A candidate jitape cannot use is skipped; the rest of the offer is taken.
            Result,
            Session(SID),
        ),
        case(
            "candidate",
            "unknown candidate type",
            Active,
            || {
                hostile::offer_with_candidate(
                    "transport-replace",
                    SID,
                    "type='host'",
                    "type='bogus'",
                )
            },
            // A candidate jitape cannot use is skipped; the rest of the offer is taken.
            Result,
            Session(SID),
        ),
        case(
            "candidate",
            "hostname in a new session-initiate",
            Active,
            || {
                hostile::offer_with_candidate(
                    "session-initiate",
                    "sid3",
                    "ip='127.0.0.1'",
                    "ip='bridge.example'",
                )
            },
            // The candidate is skipped; the new session is taken.
            Result,
            Session("sid3"),
        ),
        case(
            "candidate",
            "hostname in a transport-info",
            Active,
            || hostile::transport_info_with(SID, "ip='127.0.0.1'", "ip='bridge.example'"),
            // The candidate is skipped; a transport-info is acked and changes nothing.
            Result,
            Unchanged,
        ),
        // ---- odd presences ----
        case(
            "presence",
            "200 features and 2 KB identity fields",
            Active,
            || hostile::odd_features_presence("f0e1d2c3", 200, 2_000),
            Nothing,
            OneMoreHuman,
        ),
        case(
            "presence",
            "nick with bidi and combining characters",
            Active,
            || hostile::presence("\u{202e}evil\u{0301}\u{200b}", ""),
            Nothing,
            OneMoreHuman,
        ),
        case(
            "presence",
            "identity without <user>, stats-id empty",
            Active,
            || {
                hostile::presence(
                    "f0e1d2c3",
                    "<identity><group>g</group></identity><stats-id/>",
                )
            },
            Nothing,
            OneMoreHuman,
        ),
        case(
            "presence",
            "status codes that are not numbers",
            Active,
            || {
                crate::room::presence(
                    "f0e1d2c3",
                    None,
                    "",
                    r#"<status code="abc"/><status code="99999999999"/>"#,
                )
            },
            Nothing,
            OneMoreHuman,
        ),
        case(
            "presence",
            "presence from the room itself (no nick)",
            Active,
            || hostile::from_room("presence", crate::room::ROOM, "", ""),
            Nothing,
            Unchanged,
        ),
        case(
            "presence",
            "unavailable for a nick never seen",
            Active,
            || crate::room::presence("ghost00", Some("unavailable"), "", ""),
            Nothing,
            Unchanged,
        ),
        case(
            "presence",
            "presence of type error from the room",
            Active,
            || {
                hostile::from_room(
                    "presence",
                    crate::room::ROOM,
                    "error",
                    r#"<error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>"#,
                )
            },
            Nothing,
            Unchanged,
        ),
        case(
            "presence",
            "presence of type error from an occupant",
            Active,
            || {
                hostile::from_room(
                    "presence",
                    &format!("{}/{}", crate::room::ROOM, HUMANS[1]),
                    "error",
                    "",
                )
            },
            Nothing,
            Unchanged,
        ),
        case(
            "presence",
            "presence of an unknown type",
            Active,
            || crate::room::presence("f0e1d2c3", Some("bogus"), "", ""),
            Nothing,
            OneMoreHuman,
        ),
        // ---- messages ----
        case(
            "message",
            "message of type error from the room",
            Active,
            || hostile::from_room("message", crate::room::ROOM, "error", ""),
            Nothing,
            Unchanged,
        ),
        case(
            "message",
            "message of type error from an occupant",
            Active,
            || {
                hostile::from_room(
                    "message",
                    &format!("{}/{}", crate::room::ROOM, HUMANS[0]),
                    "error",
                    r#"<error type="cancel"><remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>"#,
                )
            },
            Nothing,
            Unchanged,
        ),
        case(
            "message",
            "private chat with an unknown payload",
            Active,
            || {
                hostile::from_room(
                    "message",
                    &format!("{}/{}", crate::room::ROOM, HUMANS[0]),
                    "chat",
                    r#"<x xmlns="urn:example"/>"#,
                )
            },
            Nothing,
            Unchanged,
        ),
        // ---- IQs ----
        case(
            "iq",
            "IQ set without an id",
            Active,
            || {
                crate::room::iq_from(
                    FOCUS,
                    "",
                    jitape::jingle::source_add(SID, &[crate::room::source(66, HUMANS[0])], false),
                )
            },
            Result,
            Unchanged,
        ),
        case(
            "iq",
            "Jingle from the room itself (no nick)",
            Active,
            || {
                hostile::from_room(
                    "iq",
                    crate::room::ROOM,
                    "set",
                    &format!(
                        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{SID}"/>"#
                    ),
                )
            },
            BAD,
            Unchanged,
        ),
        case(
            "iq",
            "IQ get without a payload",
            Active,
            || hostile::from_room("iq", &hostile::our_occupant(), "get", ""),
            BAD,
            Unchanged,
        ),
        case(
            "iq",
            "IQ of an unknown type",
            Active,
            || {
                hostile::from_room(
                    "iq",
                    &format!("{}/{FOCUS}", crate::room::ROOM),
                    "bogus",
                    "<ping xmlns='urn:xmpp:ping'/>",
                )
            },
            Nothing,
            Unchanged,
        ),
        case(
            "iq",
            "result for an id never sent",
            Active,
            || {
                hostile::from_room(
                    "iq",
                    &format!("{}/{FOCUS}", crate::room::ROOM),
                    "result",
                    "",
                )
            },
            Nothing,
            Unchanged,
        ),
        case(
            "iq",
            "error for an id never sent",
            Active,
            || {
                hostile::from_room(
                    "iq",
                    &format!("{}/{FOCUS}", crate::room::ROOM),
                    "error",
                    r#"<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>"#,
                )
            },
            Nothing,
            Unchanged,
        ),
        case(
            "iq",
            "Jingle without action",
            Active,
            || {
                hostile::iq(
                    FOCUS,
                    "na",
                    &format!(r#"<jingle xmlns="urn:xmpp:jingle:1" sid="{SID}"/>"#),
                )
            },
            BAD,
            Unchanged,
        ),
        case(
            "iq",
            "Jingle without sid",
            Active,
            || {
                hostile::iq(
                    FOCUS,
                    "ns",
                    r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add"/>"#,
                )
            },
            BAD,
            Unchanged,
        ),
        case(
            "iq",
            "unknown Jingle action",
            Active,
            || hostile::bare_jingle(FOCUS, "session-dance", SID),
            Error("feature-not-implemented"),
            Unchanged,
        ),
        case(
            "iq",
            "source-add from a participant, not the focus",
            Active,
            || hostile::bare_jingle(HUMANS[0], "source-add", SID),
            Error("item-not-found"),
            Unchanged,
        ),
        case(
            "iq",
            "transport-replace from a participant",
            Active,
            || hostile::bare_jingle(HUMANS[1], "transport-replace", SID),
            Error("item-not-found"),
            Unchanged,
        ),
    ]
}

/// Actions that are valid Jingle but never expected from the focus: refused in every state,
/// and nothing changes.
pub const UNEXPECTED_ACTIONS: [&str; 6] = [
    "session-accept",
    "transport-accept",
    "content-add",
    "content-modify",
    "description-info",
    "transport-reject",
];
