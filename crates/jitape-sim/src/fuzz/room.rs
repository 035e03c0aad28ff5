//! A room and its conference [`Machine`], named like the reference stanzas
//! (`/work/shared/reference/jingle/`, `crates/jitape/src/jingle/fixtures/`), so that their stanzas are valid
//! input as they are; and the invariants every batch of the machine's actions must satisfy.
//!
//! In: [`Input`]s (with the fact whether they came from the room). Out: the actions, after
//! [`Checker`] has asserted, with a message naming the input:
//! - after `End`, nothing more (and `End` is the last action of its batch);
//! - every stanza sent for room traffic goes to the room, and never an error in answer to
//!   anything but an IQ request; every IQ request is answered exactly once, with its id;
//! - no more `StartMedia` than offers (session-initiate/transport-replace) the machine acked;
//! - media source sets and track maps hold no SSRC 0, no duplicates, no bridge source;
//! - no timer is left in the past, and ticking at the same instant settles.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use jitape::conference::machine::{Action, Input, Machine, RoomView, Settings};
use jitape::jingle::model::{
    AudioOffer, BridgeSession, Candidate, CandidateType, Fingerprint, IceTransport, PayloadType,
    Protocol, RtpDescription, Setup, Source,
};
use jitape::router::classify::ClassifySettings;
use jitape::xmpp::stanza::{Header, Jid, Kind};
use minidom::Element;

pub const NS: &str = "jabber:component:accept";
pub const MUC: &str = "muc.meet.jitsi";
pub const ROOM: &str = "weeklysync@muc.meet.jitsi";
pub const DOMAIN: &str = "recorder.meet.jitsi";
pub const US: &str = "rec@recorder.meet.jitsi/c9f1a2b7";
pub const NICK: &str = "rec7f3a9c21";
pub const FOCUS: &str = "focus";
pub const FOCUS_REAL: &str = "focus@auth.meet.jitsi/focus";
/// The humans of the reference stanzas (nick = endpoint id = source owner).
pub const HUMANS: [&str; 2] = ["a1b2c3d4", "e5f6a7b8"];

pub fn settings() -> Settings {
    Settings {
        room: ROOM.into(),
        our_jid: US.into(),
        nick: NICK.into(),
        focus_nick: FOCUS.into(),
        display_name: "Recorder".into(),
        presence_features: vec!["http://jitsi.org/protocol/jigasi".into()],
        service_domains: vec!["hidden.meet.jitsi".into()],
        join_timeout: Duration::from_secs(10),
        max_join_attempts: 4,
        empty_grace: Duration::from_secs(300),
        min_participants: 2,
        lone_hold: Duration::from_secs(20),
        max_duration: Duration::from_secs(6 * 3600),
        room_status_timeout: Duration::from_secs(15),
        max_sources: 1000,
        opus_red: true,
        roster_limits: Default::default(),
    }
}

pub fn router_settings() -> ClassifySettings {
    ClassifySettings {
        domain: DOMAIN.into(),
        our_jid: US.into(),
        muc_domains: vec![MUC.into()],
        opus_red: true,
    }
}

/// Parses XML written by the harness itself.
pub fn el(xml: &str) -> Element {
    match xml.parse() {
        Ok(e) => e,
        Err(e) => panic!(
            "harness XML does not parse ({e}): {}",
            xml.chars().take(300).collect::<String>()
        ),
    }
}

/// An available presence of `nick` with `extra` children and a muc#user `<x>` (whose own
/// children get `x_extra`).
pub fn presence(nick: &str, type_: Option<&str>, extra: &str, x_extra: &str) -> Element {
    let t = type_.map(|t| format!(r#" type="{t}""#)).unwrap_or_default();
    el(&format!(
        r#"<presence xmlns="{NS}"{t} from="{ROOM}/{nick}" to="{US}">{extra}<x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant" jid="{nick}@meet.jitsi/r"/>{x_extra}</x></presence>"#
    ))
}

pub fn self_presence(nick: &str) -> Element {
    presence(nick, None, "", r#"<status code="110"/>"#)
}

/// An IQ set from the occupant `nick` (no `id` attribute when `id` is empty).
pub fn iq_from(nick: &str, id: &str, payload: Element) -> Element {
    let id = if id.is_empty() {
        String::new()
    } else {
        format!(r#" id="{id}""#)
    };
    let mut iq = el(&format!(
        r#"<iq xmlns="{NS}" type="set"{id} from="{ROOM}/{nick}" to="{US}"/>"#
    ));
    iq.append_child(payload);
    iq
}

pub fn source(ssrc: u32, owner: &str) -> Source {
    Source {
        ssrc: jitape::types::Ssrc(ssrc),
        name: Some(format!("{owner}-a0")),
        owner: owner.into(),
        msid: None,
    }
}

pub fn offer() -> AudioOffer {
    AudioOffer {
        content_name: "audio".into(),
        description: RtpDescription {
            payload_types: vec![PayloadType {
                id: 111,
                name: "opus".into(),
                clockrate: 48000,
                channels: 2,
                parameters: vec![("useinbandfec".into(), "1".into())],
            }],
            header_extensions: vec![],
            extmap_allow_mixed: true,
            rtcp_mux: true,
            maxptime: Some(60),
        },
        transport: IceTransport {
            ufrag: "bridgeufrag".into(),
            pwd: "bridgepasswordbridgepassword".into(),
            fingerprints: vec![Fingerprint {
                hash: "sha-256".into(),
                setup: Setup::Actpass,
                value: "AA:BB:CC".into(),
            }],
            candidates: vec![Candidate {
                component: 1,
                foundation: "1".into(),
                generation: 0,
                id: None,
                ip: std::net::IpAddr::from([127, 0, 0, 1]),
                port: 10000,
                priority: 1,
                protocol: Protocol::Udp,
                kind: CandidateType::Host,
                rel_addr: None,
                rel_port: None,
                network: None,
            }],
            rtcp_mux: true,
            web_socket: None,
            ice_generation: None,
        },
    }
}

pub fn bridge_session(restart: bool) -> BridgeSession {
    BridgeSession {
        id: "bs1".into(),
        region: None,
        restart,
        ice_restart: false,
    }
}

/// jitape's own transport, as the media session reports it.
pub fn local_transport() -> IceTransport {
    IceTransport {
        ufrag: "ours".into(),
        pwd: "ourpasswordourpassword".into(),
        fingerprints: vec![Fingerprint {
            hash: "sha-256".into(),
            setup: Setup::Active,
            value: "CC:DD".into(),
        }],
        ..offer().transport
    }
}

/// What the checker needs to know about an input before the machine consumes it.
#[derive(Debug, Clone, Default)]
struct InputFacts {
    iq_request: Option<String>,
    /// A session-initiate or transport-replace from the focus.
    offer_from_focus: bool,
    label: String,
}

fn facts(input: &Input) -> InputFacts {
    let Input::Stanza(el) = input else {
        return InputFacts {
            label: format!("{input:?}").chars().take(200).collect(),
            ..InputFacts::default()
        };
    };
    let h = Header::of(el);
    let request = h.as_ref().is_some_and(Header::is_iq_request);
    // Like the machine: the focus is whoever speaks with its nick (the router delivers only
    // the room's traffic).
    let from_focus = h
        .as_ref()
        .and_then(|h| h.from.as_ref())
        .is_some_and(|f| f.resource.as_deref() == Some(FOCUS));
    let action = el
        .get_child("jingle", jitape::jingle::ns::JINGLE)
        .and_then(|j| j.attr("action"));
    InputFacts {
        iq_request: request.then(|| el.attr("id").unwrap_or_default().to_string()),
        offer_from_focus: from_focus
            && matches!(action, Some("session-initiate" | "transport-replace")),
        // Cheap to build for every input; a crash's reproducer shows the rest.
        label: format!(
            "<{} type={:?} id={:?} from={:?}> jingle {action:?}",
            el.name(),
            el.attr("type"),
            el.attr("id"),
            el.attr("from"),
        )
        .chars()
        .take(300)
        .collect(),
    }
}

pub fn xml_bytes(el: &Element) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = el.write_to(&mut out);
    out
}

/// The invariants across a run of one machine.
#[derive(Debug, Default)]
pub struct Checker {
    pub ended: bool,
    pub offers_acked: u32,
    pub media_started: u32,
    /// Ids of the IQ requests the machine sent (for answers in `machine_ops`).
    pub sent_ids: Vec<String>,
}

impl Checker {
    fn check(&mut self, f: &InputFacts, from_room: bool, actions: &[Action], now: Instant) {
        let what = &f.label;
        if self.ended {
            assert!(
                actions.is_empty(),
                "actions after End for {what}: {actions:?}"
            );
            return;
        }
        let mut replies = 0;
        for (i, a) in actions.iter().enumerate() {
            match a {
                Action::Send(e) => {
                    let reply = self.check_send(f, from_room, e);
                    if reply && f.offer_from_focus && e.attr("type") == Some("result") {
                        self.offers_acked += 1;
                    }
                    replies += usize::from(reply);
                }
                Action::End(_) => {
                    assert_eq!(i + 1, actions.len(), "End is not last for {what}");
                    self.ended = true;
                }
                Action::StartMedia { sources, .. } => {
                    self.media_started += 1;
                    check_sources(sources, what);
                }
                Action::UpdateSources(sources) => check_sources(sources, what),
                Action::Tracks { tracks, at } => {
                    let ssrcs: Vec<u32> = tracks.iter().map(|x| x.0.0).collect();
                    check_ssrcs(&ssrcs, what);
                    assert!(*at <= now, "tracks changed in the future: {what}");
                }
                Action::Interruption { start, end, .. } => {
                    assert!(
                        start <= end && *end <= now,
                        "interruption out of time: {what}"
                    );
                }
                Action::StartRecording
                | Action::StopMedia
                | Action::SourceLimitHit
                | Action::SteppedOut
                | Action::MediaProblem { .. } => {}
            }
        }
        if f.iq_request.is_some() {
            assert_eq!(replies, 1, "IQ request not answered exactly once: {what}");
        }
        assert!(
            self.media_started <= self.offers_acked,
            "{} StartMedia for {} acked offers, at {what}",
            self.media_started,
            self.offers_acked
        );
    }

    /// Checks one sent stanza; returns whether it answers the input IQ request.
    fn check_send(&mut self, f: &InputFacts, from_room: bool, e: &Element) -> bool {
        let what = &f.label;
        let type_ = e.attr("type");
        if from_room {
            let to = e.attr("to").and_then(Jid::parse);
            assert_eq!(
                to.map(|j| j.bare).as_deref(),
                Some(ROOM),
                "sent outside the room for {what}: {:?}",
                String::from_utf8_lossy(&xml_bytes(e))
            );
        }
        if e.name() == "iq"
            && type_ == Some("set")
            && let Some(id) = e.attr("id")
        {
            self.sent_ids.push(id.to_string());
        }
        let reply = e.name() == "iq"
            && matches!(type_, Some("result" | "error"))
            && f.iq_request.as_deref() == Some(e.attr("id").unwrap_or_default());
        if type_ == Some("error") {
            assert!(
                reply,
                "error stanza sent in answer to a non-request: {what}"
            );
        }
        reply
    }
}

fn check_sources(sources: &[Source], what: &str) {
    assert!(
        sources.iter().all(|s| !s.is_bridge()),
        "bridge source given to media: {what}"
    );
    let ssrcs: Vec<u32> = sources.iter().map(|s| s.ssrc.0).collect();
    check_ssrcs(&ssrcs, what);
}

fn check_ssrcs(ssrcs: &[u32], what: &str) {
    let unique: HashSet<u32> = ssrcs.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ssrcs.len(),
        "duplicate SSRC {ssrcs:?}: {what}"
    );
    assert!(!unique.contains(&0), "SSRC 0 used: {what}");
}

/// A machine for [`ROOM`] at a synthetic instant, checked after every input.
pub struct Room {
    pub m: Machine,
    pub now: Instant,
    pub check: Checker,
    probes: u32,
}

impl Room {
    /// A machine that knows nothing yet (link down, room status unknown).
    pub fn fresh() -> Room {
        Room {
            m: Machine::new(settings()),
            now: Instant::now(),
            check: Checker::default(),
            probes: 0,
        }
    }

    /// Joined, with the focus and both humans present and session `sid1` active.
    pub fn in_session() -> Room {
        let mut r = Room::fresh();
        r.feed(Input::RoomStatus(RoomView {
            alive: true,
            occupancy: None,
            meeting_id: None,
        }));
        r.feed(Input::LinkUp);
        for nick in [FOCUS, HUMANS[0], HUMANS[1]] {
            r.stanza(presence(nick, None, "", ""));
        }
        let a = r.stanza(self_presence(NICK));
        assert_eq!(a, vec![Action::StartRecording], "harness: join");
        let sources = [
            source(1, HUMANS[0]),
            source(2, HUMANS[1]),
            source(99, "jvb"),
        ];
        let init = jitape::jingle::session_initiate(
            "sid1",
            FOCUS_REAL,
            &offer(),
            &sources,
            &bridge_session(false),
            false,
        );
        let a = r.stanza(iq_from(FOCUS, "init1", init));
        assert!(
            a.iter().any(|x| matches!(x, Action::StartMedia { .. })),
            "harness: session-initiate"
        );
        r.feed(Input::MediaReady {
            sid: "sid1".into(),
            transport: local_transport(),
        });
        assert_eq!(r.m.session_sid(), Some("sid1"), "harness: session");
        r
    }

    /// Handles one input that came from the room (or is not a stanza).
    pub fn feed(&mut self, input: Input) -> Vec<Action> {
        self.feed_from(input, true)
    }

    pub fn stanza(&mut self, el: Element) -> Vec<Action> {
        self.feed(Input::Stanza(el))
    }

    /// Handles one input; `from_room`: the router would have delivered it to this room.
    pub fn feed_from(&mut self, input: Input, from_room: bool) -> Vec<Action> {
        let f = facts(&input);
        let tick = matches!(input, Input::Tick);
        let actions = self.m.handle(self.now, input);
        self.check.check(&f, from_room, &actions, self.now);
        if tick {
            self.settle(&f.label);
        }
        if let Some((at, timer)) = self.m.next_deadline() {
            assert!(
                self.check.ended || at >= self.now,
                "timer {timer:?} left in the past after {}",
                f.label
            );
        }
        if let Some(h) = self.m.humans().filter(|_| self.m.is_joined()) {
            assert!(
                h <= self.m.roster().occupants().count(),
                "more humans than occupants"
            );
        }
        actions
    }

    /// Ticking again at the same instant must run out of due timers.
    fn settle(&mut self, label: &str) {
        for _ in 0..8 {
            match self.m.next_deadline() {
                Some((at, _)) if at <= self.now && !self.check.ended => {
                    let f = facts(&Input::Tick);
                    let a = self.m.handle(self.now, Input::Tick);
                    self.check.check(&f, true, &a, self.now);
                }
                _ => return,
            }
        }
        panic!("timers keep firing at the same instant after {label}");
    }

    /// Moves the clock and ticks.
    pub fn advance(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        self.feed(Input::Tick)
    }

    /// If the machine still has a session, a valid source-add from the focus is accepted.
    pub fn assert_session_works(&mut self) {
        if self.check.ended {
            return;
        }
        let Some(sid) = self.m.session_sid().map(str::to_string) else {
            return;
        };
        self.probes += 1;
        let id = format!("probe{}", self.probes);
        let add = jitape::jingle::source_add(
            &sid,
            &[source(0x7fff_0000 + self.probes, HUMANS[0])],
            false,
        );
        let a = self.stanza(iq_from(FOCUS, &id, add));
        let reply = a.iter().find_map(|x| match x {
            Action::Send(e) if e.attr("id") == Some(id.as_str()) => e.attr("type"),
            _ => None,
        });
        assert_eq!(
            reply,
            Some("result"),
            "a valid source-add was refused: {a:?}"
        );
    }
}

/// Whether a stanza is a presence or a message (never answered with an error).
pub fn is_presence_or_message(el: &Element) -> bool {
    Header::of(el).is_some_and(|h| h.kind != Kind::Iq)
}
