//! Machine inputs as bytes, for the `machine` target: presences of a few nicks (join, leave,
//! kick, ban, destroy, errors, services, hidden participants), Jingle IQs from the focus and
//! from others with every action and a choice of sids and sources, answers to the machine's
//! own IQs, other IQs and messages, link up/down, room status and destruction, media ready and
//! failed, recording start, stop, and ticks that advance the synthetic clock.
//!
//! In: fuzz bytes ([`run`]) or [`Op`]s (the seed generator, [`encode`]). Out: nothing; the
//! [`Room`] asserts its invariants after every input, and at the end a valid source-add must
//! still be accepted if a session is left.

use std::time::Duration;

use jitape::conference::machine::{EndReason, Input, Occupancy, RoomView};
use jitape::jingle::model::Reason;
use minidom::Element;

use super::bytes::{Reader, Writer};
use super::room::{
    FOCUS, FOCUS_REAL, HUMANS, NS, ROOM, Room, US, bridge_session, el, iq_from, local_transport,
    offer, presence, source,
};

/// One machine input, in a form that is easy to mutate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `who` picks a nick (0 = ours, 1 = the focus), `kind` what the presence says.
    Presence {
        who: u8,
        kind: u8,
        extra: u8,
    },
    /// A Jingle IQ set; `shape` bits: 1 JSON sources, 2 drop the transport, 4 restart.
    Jingle {
        from: u8,
        id: u8,
        action: u8,
        sid: u8,
        shape: u8,
        sources: Vec<(u32, u8)>,
    },
    /// A result or error for one of the IQs the machine sent (`which` indexes them).
    Answer {
        which: u8,
        error: bool,
        condition: u8,
    },
    Iq {
        from: u8,
        kind: u8,
    },
    Message {
        from: u8,
        kind: u8,
    },
    LinkUp,
    LinkDown,
    RoomStatus {
        alive: bool,
        humans: u8,
    },
    RoomDestroyed {
        occupied: bool,
    },
    MediaReady {
        sid: u8,
    },
    MediaFailed {
        sid: u8,
    },
    RecordingStarted {
        elapsed_s: u16,
    },
    Stop {
        reason: u8,
    },
    /// Advance the clock by `ms` milliseconds (seconds when `seconds`) and tick.
    Tick {
        ms: u16,
        seconds: bool,
    },
}

const OPS: u8 = 14;
const NICKS: [&str; 7] = [
    "", // ours, whatever it is now
    FOCUS,
    HUMANS[0],
    HUMANS[1],
    "f0e1d2c3",
    "jibri0001",
    "jvb",
];
const ACTIONS: [&str; 19] = [
    "session-initiate",
    "transport-replace",
    "source-add",
    "source-remove",
    "session-terminate",
    "transport-info",
    "session-info",
    "session-accept",
    "transport-accept",
    "content-add",
    "content-accept",
    "content-modify",
    "content-reject",
    "content-remove",
    "description-info",
    "security-info",
    "transport-reject",
    "addsource",
    "dance",
];
const CONDITIONS: [&str; 6] = [
    "item-not-found",
    "bad-request",
    "resource-constraint",
    "service-unavailable",
    "conflict",
    "forbidden",
];

impl Op {
    pub fn decode(r: &mut Reader) -> Op {
        match r.u8() % OPS {
            0 => Op::Presence {
                who: r.u8(),
                kind: r.u8(),
                extra: r.u8(),
            },
            1 => {
                let (from, id, action, sid, shape) = (r.u8(), r.u8(), r.u8(), r.u8(), r.u8());
                let n = r.u8() % 6;
                let sources = (0..n).map(|_| (r.u32(), r.u8())).collect();
                Op::Jingle {
                    from,
                    id,
                    action,
                    sid,
                    shape,
                    sources,
                }
            }
            2 => Op::Answer {
                which: r.u8(),
                error: r.bool(),
                condition: r.u8(),
            },
            3 => Op::Iq {
                from: r.u8(),
                kind: r.u8(),
            },
            4 => Op::Message {
                from: r.u8(),
                kind: r.u8(),
            },
            5 => Op::LinkUp,
            6 => Op::LinkDown,
            7 => Op::RoomStatus {
                alive: r.bool(),
                humans: r.u8(),
            },
            8 => Op::RoomDestroyed { occupied: r.bool() },
            9 => Op::MediaReady { sid: r.u8() },
            10 => Op::MediaFailed { sid: r.u8() },
            11 => Op::RecordingStarted { elapsed_s: r.u16() },
            12 => Op::Stop { reason: r.u8() },
            _ => Op::Tick {
                ms: r.u16(),
                seconds: r.bool(),
            },
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Op::Presence { who, kind, extra } => w.u8(0).u8(*who).u8(*kind).u8(*extra),
            Op::Jingle {
                from,
                id,
                action,
                sid,
                shape,
                sources,
            } => {
                w.u8(1).u8(*from).u8(*id).u8(*action).u8(*sid).u8(*shape);
                w.u8(sources.len().min(5) as u8);
                for (ssrc, owner) in sources.iter().take(5) {
                    w.u32(*ssrc).u8(*owner);
                }
                w
            }
            Op::Answer {
                which,
                error,
                condition,
            } => w.u8(2).u8(*which).bool(*error).u8(*condition),
            Op::Iq { from, kind } => w.u8(3).u8(*from).u8(*kind),
            Op::Message { from, kind } => w.u8(4).u8(*from).u8(*kind),
            Op::LinkUp => w.u8(5),
            Op::LinkDown => w.u8(6),
            Op::RoomStatus { alive, humans } => w.u8(7).bool(*alive).u8(*humans),
            Op::RoomDestroyed { occupied } => w.u8(8).bool(*occupied),
            Op::MediaReady { sid } => w.u8(9).u8(*sid),
            Op::MediaFailed { sid } => w.u8(10).u8(*sid),
            Op::RecordingStarted { elapsed_s } => w.u8(11).u16(*elapsed_s),
            Op::Stop { reason } => w.u8(12).u8(*reason),
            Op::Tick { ms, seconds } => w.u8(13).u16(*ms).bool(*seconds),
        };
    }
}

/// Encodes a scenario (first byte: 0 = a fresh machine, 1 = one already in a session).
pub fn encode(in_session: bool, ops: &[Op]) -> Vec<u8> {
    let mut w = Writer::default();
    w.bool(in_session);
    for op in ops {
        op.encode(&mut w);
    }
    w.0
}

/// The `machine` target: decode and apply ops until the input runs out (at most 256).
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let mut room = if r.bool() {
        Room::in_session()
    } else {
        Room::fresh()
    };
    for _ in 0..256 {
        if r.is_empty() {
            break;
        }
        let op = Op::decode(&mut r);
        apply(&mut room, &op);
    }
    room.assert_session_works();
}

fn nick(room: &Room, who: u8) -> String {
    match NICKS[usize::from(who) % NICKS.len()] {
        "" => room.m.nick().to_string(),
        n => n.to_string(),
    }
}

/// The sid an op means: bit 7 the current session's, bit 6 empty, else one of four.
fn sid(room: &Room, b: u8) -> String {
    if b & 0x80 != 0 {
        room.m.session_sid().unwrap_or("sid1").to_string()
    } else if b & 0x40 != 0 {
        String::new()
    } else {
        format!("sid{}", b % 4)
    }
}

pub fn apply(room: &mut Room, op: &Op) {
    match op {
        Op::Presence { who, kind, extra } => {
            let p = presence_op(room, *who, *kind, *extra);
            room.stanza(p);
        }
        Op::Jingle { from, id, .. } => {
            let payload = jingle_op(room, op);
            let id = if *id == 0 {
                String::new()
            } else {
                format!("j{id}")
            };
            let from = nick(room, *from);
            room.stanza(iq_from(&from, &id, payload));
        }
        Op::Answer {
            which,
            error,
            condition,
        } => {
            let a = answer_op(room, *which, *error, *condition);
            room.stanza(a);
        }
        Op::Iq { from, kind } => {
            let iq = iq_op(&nick(room, *from), *kind);
            room.stanza(iq);
        }
        Op::Message { from, kind } => {
            let m = message_op(&nick(room, *from), *kind);
            room.stanza(m);
        }
        Op::Tick { ms, seconds } => {
            let unit = if *seconds { 1000 } else { 1 };
            room.advance(Duration::from_millis(u64::from(*ms) * unit));
        }
        other => {
            let input = plain_input(room, other);
            room.feed(input);
        }
    }
}

fn plain_input(room: &Room, op: &Op) -> Input {
    match op {
        Op::LinkUp => Input::LinkUp,
        Op::LinkDown => Input::LinkDown,
        Op::RoomStatus { alive, humans } => Input::RoomStatus(RoomView {
            alive: *alive,
            // 255: the module is absent; otherwise `humans` people, the low bit says whether
            // one more occupant is a service.
            occupancy: (*humans != 255).then(|| {
                let n = usize::from(*humans);
                Occupancy {
                    humans: n,
                    others: n + usize::from(*humans & 1),
                    nicks: (0..n).map(|i| format!("h{i}")).collect(),
                }
            }),
            meeting_id: None,
        }),
        Op::RoomDestroyed { occupied } => Input::RoomDestroyed {
            occupied: *occupied,
        },
        Op::MediaReady { sid: s } => Input::MediaReady {
            sid: sid(room, *s),
            transport: local_transport(),
        },
        Op::MediaFailed { sid: s } => Input::MediaFailed {
            sid: sid(room, *s),
            reason: "fuzz".into(),
            silent: false,
        },
        Op::RecordingStarted { elapsed_s } => Input::RecordingStarted {
            elapsed: Duration::from_secs(u64::from(*elapsed_s)),
        },
        Op::Stop { reason } => Input::Stop(match reason % 3 {
            0 => EndReason::Shutdown,
            1 => EndReason::Stopped,
            _ => EndReason::CannotRecord("fuzz".into()),
        }),
        _ => Input::Tick,
    }
}

fn presence_op(room: &Room, who: u8, kind: u8, extra: u8) -> Element {
    let nick = nick(room, who);
    let ours = nick == room.m.nick();
    let self_code = if ours { r#"<status code="110"/>"# } else { "" };
    let cond = CONDITIONS[usize::from(extra) % CONDITIONS.len()];
    match kind % 9 {
        0 => presence(&nick, None, "", self_code),
        1 => presence(&nick, Some("unavailable"), "", self_code),
        2 => presence(
            &nick,
            Some("unavailable"),
            "",
            &format!(r#"<status code="307"/>{self_code}"#),
        ),
        3 => presence(
            &nick,
            Some("unavailable"),
            "",
            &format!(r#"<status code="301"/>{self_code}"#),
        ),
        4 => presence(
            &nick,
            Some("unavailable"),
            "",
            &format!("<destroy/>{self_code}"),
        ),
        5 => el(&format!(
            r#"<presence xmlns="{NS}" type="error" from="{ROOM}/{nick}" to="{US}"><error type="cancel"><{cond} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>"#
        )),
        6 => presence(
            &nick,
            None,
            r#"<features><feature var="http://jitsi.org/protocol/jibri"/></features>"#,
            self_code,
        ),
        7 => presence(
            &nick,
            None,
            &format!(
                "<identity><user><id>u{}</id><hidden-from-recorder>{}</hidden-from-recorder></user></identity>",
                extra % 4,
                extra & 0x10 != 0
            ),
            self_code,
        ),
        _ => presence(
            &nick,
            None,
            &format!(
                r#"<stats-id>stats{}</stats-id><nick xmlns="http://jabber.org/protocol/nick">N{extra}</nick>"#,
                extra % 3
            ),
            self_code,
        ),
    }
}

fn jingle_op(room: &Room, op: &Op) -> Element {
    let Op::Jingle {
        action,
        sid: s,
        shape,
        sources,
        ..
    } = op
    else {
        return el(r#"<jingle xmlns="urn:xmpp:jingle:1"/>"#);
    };
    let sid = sid(room, *s);
    let json = shape & 1 != 0;
    let sources: Vec<_> = sources
        .iter()
        .map(|(ssrc, owner)| {
            let o = match NICKS[usize::from(*owner) % NICKS.len()] {
                "" => "jitape",
                n => n,
            };
            source(*ssrc, o)
        })
        .collect();
    let bs = bridge_session(shape & 4 != 0);
    let name = ACTIONS[usize::from(*action) % ACTIONS.len()];
    let mut j = match name {
        "session-initiate" => {
            jitape::jingle::session_initiate(&sid, FOCUS_REAL, &offer(), &sources, &bs, json)
        }
        "transport-replace" => {
            jitape::jingle::transport_replace(&sid, FOCUS_REAL, &offer(), &sources, &bs, json)
        }
        "source-add" => jitape::jingle::source_add(&sid, &sources, json),
        "source-remove" => jitape::jingle::source_remove(&sid, &sources, json),
        "session-terminate" => {
            let reason = Reason {
                condition: ["success", "expired", "gone", "decline"][usize::from(shape >> 3) % 4]
                    .into(),
                text: Some("fuzz".into()),
            };
            jitape::jingle::session_terminate(&sid, None, &reason, Some(&bs))
        }
        "transport-info" => jitape::jingle::transport_info(&sid, None, &offer().transport),
        "session-info" => jitape::jingle::session_info_ice_restart(&sid, FOCUS_REAL, "bs1"),
        "session-accept" => jitape::jingle::session_accept(
            &sid,
            FOCUS_REAL,
            US,
            &offer().description,
            &local_transport(),
        ),
        "transport-accept" => {
            jitape::jingle::transport_accept(&sid, FOCUS_REAL, &local_transport())
        }
        other => el(&format!(
            r#"<jingle xmlns="urn:xmpp:jingle:1" action="{other}" sid="{sid}"/>"#
        )),
    };
    if shape & 2 != 0 {
        strip_transports(&mut j);
    }
    j
}

/// Removes the ICE transport of every content (an offer without transport is malformed).
fn strip_transports(j: &mut Element) {
    for content in j.children_mut() {
        content.remove_child("transport", jitape::jingle::ns::ICE_UDP);
    }
}

fn answer_op(room: &Room, which: u8, error: bool, condition: u8) -> Element {
    let ids = &room.check.sent_ids;
    let id = match ids.len() {
        0 => format!("jitape-{which}"),
        _ if which >= 200 => format!("jitape-{}", which - 200),
        n => ids[usize::from(which) % n].clone(),
    };
    let from = if condition & 0x80 != 0 {
        HUMANS[0]
    } else {
        FOCUS
    };
    if error {
        let cond = CONDITIONS[usize::from(condition) % CONDITIONS.len()];
        el(&format!(
            r#"<iq xmlns="{NS}" type="error" id="{id}" from="{ROOM}/{from}" to="{US}"><error type="cancel"><{cond} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>"#
        ))
    } else {
        el(&format!(
            r#"<iq xmlns="{NS}" type="result" id="{id}" from="{ROOM}/{from}" to="{US}"/>"#
        ))
    }
}

fn iq_op(nick: &str, kind: u8) -> Element {
    let head = format!(r#"xmlns="{NS}" id="q{kind}" from="{ROOM}/{nick}" to="{US}""#);
    el(&match kind % 7 {
        0 => format!(r#"<iq {head} type="get"><ping xmlns="urn:xmpp:ping"/></iq>"#),
        1 => format!(
            r#"<iq {head} type="get"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>"#
        ),
        2 => format!(
            r#"<iq {head} type="set"><mute xmlns="http://jitsi.org/jitmeet/audio">true</mute></iq>"#
        ),
        3 => format!(r#"<iq {head} type="set"><unknown xmlns="urn:example:x"/></iq>"#),
        4 => format!(r#"<iq {head} type="get"/>"#),
        5 => format!(
            r#"<iq xmlns="{NS}" id="bare{kind}" type="set" from="{ROOM}" to="{US}"><jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="sid1"/></iq>"#
        ),
        _ => format!(r#"<iq xmlns="{NS}" type="result" from="{ROOM}/{nick}" to="{US}"/>"#),
    })
}

fn message_op(nick: &str, kind: u8) -> Element {
    el(&match kind % 4 {
        0 => format!(
            r#"<message xmlns="{NS}" type="groupchat" from="{ROOM}/{nick}" to="{US}"><body>hi</body></message>"#
        ),
        1 => format!(r#"<message xmlns="{NS}" type="error" from="{ROOM}" to="{US}"/>"#),
        2 => format!(
            r#"<message xmlns="{NS}" type="error" from="{ROOM}/{nick}" to="{US}"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>"#
        ),
        _ => format!(
            r#"<message xmlns="{NS}" from="{ROOM}" to="{US}"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="u@meet.jitsi/x"/></x></message>"#
        ),
    })
}
