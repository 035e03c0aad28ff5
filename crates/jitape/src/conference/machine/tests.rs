//! The room lifecycle driven with synthetic time and hand-built stanzas.

use std::time::Duration;

use super::*;
use crate::conference::roster::RosterLimits;
use crate::jingle::model::{
    AudioOffer, BridgeSession, Candidate, CandidateType, Fingerprint, IceTransport, PayloadType,
    Protocol, RtpDescription, Setup,
};
use crate::xmpp::stanza;

const ROOM: &str = "weeklysync@muc.example";
const US: &str = "rec@rec.example/i1";
const NICK: &str = "jitape0a0b0c0d";

fn settings() -> Settings {
    Settings {
        room: ROOM.into(),
        our_jid: US.into(),
        nick: NICK.into(),
        focus_nick: "focus".into(),
        display_name: "Recorder".into(),
        presence_features: vec![],
        service_domains: vec![],
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

struct Harness {
    m: Machine,
    now: Instant,
}

fn el(s: &str) -> Element {
    s.parse().unwrap()
}

fn presence(nick: &str, extra: &str) -> Element {
    el(&format!(
        r#"<presence xmlns="jabber:component:accept" from="{ROOM}/{nick}" to="{US}">{extra}<x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant" jid="{nick}@meet.example/r"/></x></presence>"#
    ))
}

fn unavailable(nick: &str, x_extra: &str) -> Element {
    el(&format!(
        r#"<presence xmlns="jabber:component:accept" type="unavailable" from="{ROOM}/{nick}" to="{US}"><x xmlns="http://jabber.org/protocol/muc#user"><item role="none"/>{x_extra}</x></presence>"#
    ))
}

fn self_presence() -> Element {
    el(&format!(
        r#"<presence xmlns="jabber:component:accept" from="{ROOM}/{NICK}" to="{US}"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant"/><status code="110"/></x></presence>"#
    ))
}

fn iq_from(nick: &str, id: &str, payload: Element) -> Element {
    let mut iq = el(&format!(
        r#"<iq xmlns="jabber:component:accept" type="set" id="{id}" from="{ROOM}/{nick}" to="{US}"/>"#
    ));
    iq.append_child(payload);
    iq
}

fn src(ssrc: u32, owner: &str) -> Source {
    Source {
        ssrc: crate::types::Ssrc(ssrc),
        name: Some(format!("{owner}-a0")),
        owner: owner.into(),
        msid: None,
    }
}

fn offer() -> AudioOffer {
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
            ufrag: "uf".into(),
            pwd: "pwpwpwpwpwpwpwpwpwpwpwpw".into(),
            fingerprints: vec![Fingerprint {
                hash: "sha-256".into(),
                setup: Setup::Actpass,
                value: "AA:BB".into(),
            }],
            candidates: vec![Candidate {
                component: 1,
                foundation: "1".into(),
                generation: 0,
                id: None,
                ip: "127.0.0.1".parse().unwrap(),
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

fn bridge() -> BridgeSession {
    BridgeSession {
        id: "bs1".into(),
        ..Default::default()
    }
}

fn initiate(sid: &str, sources: &[Source]) -> Element {
    crate::jingle::session_initiate(
        sid,
        "focus@auth.example/focus",
        &offer(),
        sources,
        &bridge(),
        false,
    )
}

fn local_transport() -> IceTransport {
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

impl Harness {
    /// A machine for a room we were invited to (alive, humans unknown).
    fn new() -> Self {
        let mut h = Harness::waiting();
        assert!(
            h.input(Input::RoomStatus(RoomView {
                alive: true,
                occupancy: None,
                meeting_id: None
            }))
            .is_empty()
        );
        h
    }

    /// A machine that knows nothing about its room yet.
    fn waiting() -> Self {
        Harness {
            m: Machine::new(settings()),
            now: Instant::now(),
        }
    }

    fn input(&mut self, i: Input) -> Vec<Action> {
        self.m.handle(self.now, i)
    }

    fn stanza(&mut self, e: Element) -> Vec<Action> {
        self.input(Input::Stanza(e))
    }

    fn advance(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        self.input(Input::Tick)
    }

    /// Join and become an occupant with a focus and two humans present.
    fn joined() -> Self {
        let mut h = Harness::new();
        let a = h.input(Input::LinkUp);
        assert!(matches!(&a[..], [Action::Send(p)] if p.name() == "presence"));
        h.stanza(presence("focus", ""));
        h.stanza(presence("a1b2c3d4", ""));
        h.stanza(presence("e5f6a7b8", ""));
        let a = h.stanza(self_presence());
        assert_eq!(a, vec![Action::StartRecording]);
        h
    }

    /// ...and with an active session carrying both humans' sources.
    fn in_session() -> Self {
        let mut h = Harness::joined();
        let sources = [src(1, "a1b2c3d4"), src(2, "e5f6a7b8"), src(99, "jvb")];
        let a = h.stanza(iq_from("focus", "init1", initiate("sid1", &sources)));
        assert!(
            matches!(&a[0], Action::Send(r) if r.attr("type") == Some("result") && r.attr("id") == Some("init1"))
        );
        h.input(Input::MediaReady {
            sid: "sid1".into(),
            transport: local_transport(),
        });
        h
    }
}

/// The join presence among the actions (available, with the MUC `<x/>`).
fn join_sent(actions: &[Action]) -> Option<&Element> {
    sent(actions).into_iter().find(|p| {
        p.name() == "presence"
            && p.attr("type").is_none()
            && p.get_child("x", "http://jabber.org/protocol/muc").is_some()
    })
}

/// Whether a leave presence precedes the join among the actions.
fn leaves_before_join(actions: &[Action]) -> bool {
    let s = sent(actions);
    let leave = s.iter().position(|p| p.attr("type") == Some("unavailable"));
    let join = s
        .iter()
        .position(|p| p.name() == "presence" && p.attr("type").is_none());
    matches!((leave, join), (Some(l), Some(j)) if l < j)
}

fn sent(actions: &[Action]) -> Vec<&Element> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn tracks(actions: &[Action]) -> Option<Vec<(Ssrc, TrackId)>> {
    actions.iter().find_map(|a| match a {
        Action::Tracks { tracks, .. } => Some(tracks.clone()),
        _ => None,
    })
}

fn jingle_of(e: &Element) -> &Element {
    e.get_child("jingle", crate::jingle::ns::JINGLE)
        .expect("jingle payload")
}

#[test]
fn joins_with_muc_x_and_starts_recording_on_self_presence() {
    let mut h = Harness::new();
    let a = h.input(Input::LinkUp);
    let p = sent(&a)[0];
    assert_eq!(p.attr("to"), Some(format!("{ROOM}/{NICK}").as_str()));
    assert_eq!(p.attr("from"), Some(US));
    assert!(p.get_child("x", "http://jabber.org/protocol/muc").is_some());
    assert!(!h.m.is_joined());
    assert_eq!(h.stanza(self_presence()), vec![Action::StartRecording]);
    assert!(h.m.is_joined());
    // A second self-presence (presence update) does not restart the recording.
    assert!(h.stanza(self_presence()).is_empty());
}

#[test]
fn session_initiate_is_acked_then_accepted_with_our_transport() {
    let mut h = Harness::joined();
    let sources = [src(1, "a1b2c3d4"), src(2, "e5f6a7b8"), src(99, "jvb")];
    let a = h.stanza(iq_from("focus", "Zm9vYmFy", initiate("sid1", &sources)));
    let ack = sent(&a)[0];
    assert_eq!(ack.attr("type"), Some("result"));
    assert_eq!(ack.attr("id"), Some("Zm9vYmFy"));
    assert_eq!(ack.attr("to"), Some(format!("{ROOM}/focus").as_str()));
    assert_eq!(ack.attr("from"), Some(US));
    let start = a.iter().find_map(|x| match x {
        Action::StartMedia { sid, sources, .. } => Some((sid.clone(), sources.clone())),
        _ => None,
    });
    let (sid, media_sources) = start.expect("media started");
    assert_eq!(sid, "sid1");
    assert_eq!(
        media_sources.iter().map(|s| s.ssrc).collect::<Vec<_>>(),
        [1, 2],
        "bridge source excluded"
    );
    let t = tracks(&a).unwrap();
    assert_eq!(t.len(), 2);
    assert_ne!(t[0].1, t[1].1);

    let a = h.input(Input::MediaReady {
        sid: "sid1".into(),
        transport: local_transport(),
    });
    let accept = sent(&a)[0];
    assert_eq!(accept.attr("type"), Some("set"));
    assert_eq!(accept.attr("to"), Some(format!("{ROOM}/focus").as_str()));
    let j = jingle_of(accept);
    assert_eq!(j.attr("action"), Some("session-accept"));
    assert_eq!(j.attr("sid"), Some("sid1"));
    let parsed = crate::jingle::parse(j).unwrap();
    assert!(parsed.sources.is_empty(), "receive-only: no sources");
    let t = parsed.audio.unwrap().transport;
    assert_eq!(t.ufrag, "ours");
    assert!(t.fingerprints.iter().all(|f| f.setup == Setup::Active));
}

#[test]
fn source_add_and_leave_update_media_and_tracks() {
    let mut h = Harness::in_session();
    h.stanza(presence("f0e1d2c3", ""));
    let add = crate::jingle::source_add("sid1", &[src(3, "f0e1d2c3")], true);
    let a = h.stanza(iq_from("focus", "add1", add));
    assert_eq!(sent(&a)[0].attr("type"), Some("result"));
    let update = a.iter().find_map(|x| match x {
        Action::UpdateSources(s) => Some(s.iter().map(|s| s.ssrc.0).collect::<Vec<_>>()),
        _ => None,
    });
    assert_eq!(update, Some(vec![1, 2, 3]));
    assert_eq!(tracks(&a).unwrap().len(), 3);

    // Jicofo sends no source-remove when someone leaves: their presence removes the sources.
    let a = h.stanza(unavailable("e5f6a7b8", ""));
    let update = a.iter().find_map(|x| match x {
        Action::UpdateSources(s) => Some(s.iter().map(|s| s.ssrc.0).collect::<Vec<_>>()),
        _ => None,
    });
    assert_eq!(update, Some(vec![1, 3]));
    assert_eq!(
        tracks(&a).unwrap().iter().map(|t| t.0).collect::<Vec<_>>(),
        [1, 3]
    );
    assert!(sent(&a).is_empty(), "nothing is sent for a leave");
}

#[test]
fn malformed_jingle_gets_an_iq_error_and_the_session_continues() {
    let mut h = Harness::in_session();
    let cases = [
        // session-initiate without a transport
        (
            r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="x2"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><payload-type id="111" name="opus" clockrate="48000" channels="2"/></description></content></jingle>"#,
            "bad-request",
        ),
        (
            r#"<jingle xmlns="urn:xmpp:jingle:1" action="dance" sid="sid1"/>"#,
            "feature-not-implemented",
        ),
        (
            r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="sid1"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="abc"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="a1b2c3d4"/></source></description></content></jingle>"#,
            "bad-request",
        ),
        (
            r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="no-such-session"/>"#,
            "item-not-found",
        ),
    ];
    for (i, (xml, condition)) in cases.iter().enumerate() {
        let id = format!("bad{i}");
        let a = h.stanza(iq_from("focus", &id, el(xml)));
        let reply = sent(&a)[0];
        assert_eq!(reply.attr("type"), Some("error"), "{xml}");
        assert_eq!(reply.attr("id"), Some(id.as_str()));
        assert_eq!(
            stanza::error_condition(reply).as_deref(),
            Some(*condition),
            "{xml}"
        );
        assert!(
            !a.iter()
                .any(|x| matches!(x, Action::StopMedia | Action::End(_))),
            "{xml}"
        );
    }
    assert_eq!(h.m.session_sid(), Some("sid1"));
    // The session still works.
    let a = h.stanza(iq_from(
        "focus",
        "ok",
        crate::jingle::source_add("sid1", &[src(5, "a1b2c3d4")], false),
    ));
    assert_eq!(sent(&a)[0].attr("type"), Some("result"));
}

#[test]
fn a_browser_p2p_offer_is_acked_and_declined() {
    let mut h = Harness::in_session();
    let p2p = el(
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" initiator="u@meet/x" sid="p2p1"><content creator="initiator" name="0" senders="both"/></jingle>"#,
    );
    let a = h.stanza(iq_from("a1b2c3d4", "p2pid", p2p));
    let s = sent(&a);
    assert_eq!(s[0].attr("type"), Some("result"));
    assert_eq!(s[0].attr("id"), Some("p2pid"));
    let decline = s[1];
    assert_eq!(
        decline.attr("to"),
        Some(format!("{ROOM}/a1b2c3d4").as_str())
    );
    let j = jingle_of(decline);
    assert_eq!(j.attr("action"), Some("session-terminate"));
    assert!(
        j.get_child("reason", crate::jingle::ns::JINGLE)
            .unwrap()
            .get_child("decline", crate::jingle::ns::JINGLE)
            .is_some()
    );
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::StartMedia { .. } | Action::StopMedia))
    );
    assert_eq!(h.m.session_sid(), Some("sid1"));
}

#[test]
fn terminate_then_reinvite_continues_without_ending() {
    let mut h = Harness::in_session();
    let term = crate::jingle::session_terminate(
        "sid1",
        None,
        &crate::jingle::model::Reason {
            condition: "success".into(),
            text: Some("moving".into()),
        },
        None,
    );
    let a = h.stanza(iq_from("focus", "t1", term));
    assert_eq!(sent(&a)[0].attr("type"), Some("result"));
    assert!(a.contains(&Action::StopMedia));
    assert!(!a.iter().any(|x| matches!(x, Action::End(_))));
    assert_eq!(h.m.session_sid(), None);
    let a = h.stanza(iq_from(
        "focus",
        "i2",
        initiate("sid2", &[src(7, "a1b2c3d4")]),
    ));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::StartMedia { sid, .. } if sid == "sid2"))
    );
    // The same participant keeps its track across sessions.
    let t = tracks(&a).unwrap();
    assert_eq!(t, vec![(crate::types::Ssrc(7), TrackId(1))]);
}

#[test]
fn room_messages_are_never_answered() {
    let mut h = Harness::in_session();
    for m in [
        r#"<message xmlns="jabber:component:accept" type="groupchat" from="weeklysync@muc.example/a1b2c3d4" to="rec@rec.example/i1"><body>hello</body></message>"#,
        r#"<message xmlns="jabber:component:accept" type="error" from="weeklysync@muc.example" to="rec@rec.example/i1"/>"#,
        r#"<presence xmlns="jabber:component:accept" type="error" from="weeklysync@muc.example/zz" to="rec@rec.example/i1"/>"#,
    ] {
        assert!(h.stanza(el(m)).is_empty(), "{m}");
    }
}

#[test]
fn destroy_ends_without_a_leave_and_stop_leaves() {
    let mut h = Harness::in_session();
    let a = h.stanza(unavailable(NICK, r#"<destroy/><status code="110"/>"#));
    assert!(sent(&a).is_empty());
    assert!(a.contains(&Action::StopMedia));
    assert_eq!(a.last(), Some(&Action::End(EndReason::RoomDestroyed)));
    // Nothing happens after the end.
    assert!(h.stanza(presence("x", "")).is_empty());

    let mut h = Harness::in_session();
    let a = h.input(Input::Stop(EndReason::Shutdown));
    let leave = sent(&a)[0];
    assert_eq!(leave.attr("type"), Some("unavailable"));
    assert_eq!(a.last(), Some(&Action::End(EndReason::Shutdown)));
}

#[test]
fn kicked_rejoins_and_banned_ends() {
    let mut h = Harness::in_session();
    let a = h.stanza(unavailable(
        NICK,
        r#"<status code="307"/><status code="110"/>"#,
    ));
    assert!(!a.iter().any(|x| matches!(x, Action::End(_))));
    assert!(sent(&a).is_empty());
    let (at, timer) = h.m.next_deadline().unwrap();
    assert_eq!(timer, Timer::Rejoin);
    let a = h.advance(at - h.now);
    assert!(join_sent(&a).is_some(), "{a:?}");
    let a = h.stanza(self_presence());
    assert!(
        !a.contains(&Action::StartRecording),
        "still the same recording"
    );
    assert!(matches!(&a[..], [Action::Interruption { .. }]), "{a:?}");
    assert!(h.m.is_joined());

    let mut h = Harness::in_session();
    let a = h.stanza(unavailable(
        NICK,
        r#"<status code="301"/><status code="110"/>"#,
    ));
    assert_eq!(a.last(), Some(&Action::End(EndReason::Banned)));
}

#[test]
fn nick_conflict_retries_with_a_new_nick_and_gives_up_eventually() {
    let mut h = Harness::new();
    h.input(Input::LinkUp);
    let err = el(&format!(
        r#"<presence xmlns="jabber:component:accept" type="error" from="{ROOM}/{NICK}" to="{US}"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>"#
    ));
    h.stanza(err);
    let (at, _) = h.m.next_deadline().unwrap();
    let a = h.advance(at - h.now);
    let to = sent(&a)[0].attr("to").unwrap().to_string();
    assert_ne!(to, format!("{ROOM}/{NICK}"));
    assert!(h.m.nick().starts_with("jitape") && h.m.nick().len() == NICK.len());

    let mut h = Harness::new();
    h.input(Input::LinkUp);
    let forbidden = |nick: &str| {
        el(&format!(
            r#"<presence xmlns="jabber:component:accept" type="error" from="{ROOM}/{nick}" to="{US}"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>"#
        ))
    };
    let mut ended = None;
    for _ in 0..10 {
        let nick = h.m.nick().to_string();
        let a = h.stanza(forbidden(&nick));
        if let Some(Action::End(r)) = a.last() {
            ended = Some(r.clone());
            break;
        }
        let (at, _) = h.m.next_deadline().unwrap();
        h.advance(at - h.now);
    }
    assert_eq!(ended, Some(EndReason::JoinRefused("forbidden".into())));
}

#[test]
fn media_failure_requests_a_restart_within_jicofos_rate_limit() {
    let mut h = Harness::in_session();
    let a = h.input(Input::MediaFailed {
        sid: "sid1".into(),
        reason: "ice".into(),
        silent: false,
    });
    let req = sent(&a)[0];
    let j = jingle_of(req);
    assert_eq!(j.attr("action"), Some("session-terminate"));
    let parsed = crate::jingle::parse(j).unwrap();
    let bs = parsed.bridge_session.unwrap();
    assert!(bs.restart);
    assert_eq!(bs.id, "bs1");
    assert!(a.contains(&Action::StopMedia));

    // Jicofo re-invites; the new session fails at once: the next request waits for the gap.
    h.now += Duration::from_secs(1);
    h.stanza(iq_from(
        "focus",
        "i2",
        initiate("sid2", &[src(1, "a1b2c3d4")]),
    ));
    let a = h.input(Input::MediaFailed {
        sid: "sid2".into(),
        reason: "ice".into(),
        silent: false,
    });
    assert!(sent(&a).is_empty(), "rate-limited");
    let (at, timer) = h.m.next_deadline().unwrap();
    assert_eq!(timer, Timer::RestartSession);
    assert!(at - h.now >= Duration::from_secs(4));
    let a = h.advance(at - h.now);
    let j = jingle_of(sent(&a)[0]);
    assert_eq!(j.attr("sid"), Some("sid2"));
    assert!(crate::jingle::parse(j).unwrap().restart_requested());
}

#[test]
fn link_drop_rejoins_and_keeps_the_recording() {
    let mut h = Harness::in_session();
    assert!(h.input(Input::LinkDown).is_empty());
    h.input(Input::LinkUp);
    // The router's catch-up (or the absence of the module) says the room is alive.
    let a = h.input(Input::RoomStatus(RoomView {
        alive: true,
        occupancy: None,
        meeting_id: None,
    }));
    assert!(join_sent(&a).is_some(), "{a:?}");
    let a = h.stanza(self_presence());
    assert!(
        !a.contains(&Action::StartRecording),
        "one recording across reconnects"
    );
}

#[test]
fn hidden_participants_are_not_mapped_to_tracks() {
    let mut h = Harness::joined();
    h.stanza(presence(
        "c0ffee00",
        "<identity><user><id>u9</id><hidden-from-recorder>true</hidden-from-recorder></user></identity>",
    ));
    let a = h.stanza(iq_from(
        "focus",
        "i",
        initiate("s", &[src(1, "a1b2c3d4"), src(9, "c0ffee00")]),
    ));
    let t = tracks(&a).unwrap();
    assert_eq!(t.iter().map(|x| x.0).collect::<Vec<_>>(), [1]);
}

#[test]
fn a_refreshing_participant_continues_its_track() {
    let mut h = Harness::in_session();
    let stats = "<stats-id>Alice-1x2</stats-id>";
    h.stanza(presence("aa000001", stats));
    let a = h.stanza(iq_from(
        "focus",
        "x",
        crate::jingle::source_add("sid1", &[src(10, "aa000001")], false),
    ));
    let before = tracks(&a)
        .unwrap()
        .into_iter()
        .find(|t| t.0 == 10)
        .unwrap()
        .1;
    h.stanza(unavailable("aa000001", ""));
    h.stanza(presence("bb000002", stats));
    let a = h.stanza(iq_from(
        "focus",
        "y",
        crate::jingle::source_add("sid1", &[src(11, "bb000002")], false),
    ));
    let after = tracks(&a)
        .unwrap()
        .into_iter()
        .find(|t| t.0 == 11)
        .unwrap()
        .1;
    assert_eq!(before, after);
}

#[test]
fn join_timeout_resends_the_join() {
    let mut h = Harness::new();
    h.input(Input::LinkUp);
    let (at, timer) = h.m.next_deadline().unwrap();
    assert_eq!(timer, Timer::JoinTimeout);
    let a = h.advance(at - h.now);
    assert!(join_sent(&a).is_some(), "{a:?}");
}

fn ends_with(a: &[Action]) -> Option<EndReason> {
    a.iter().find_map(|x| match x {
        Action::End(r) => Some(r.clone()),
        _ => None,
    })
}

#[test]
fn everyone_gone_for_a_minute_does_not_end_the_recording() {
    let mut h = Harness::in_session();
    h.stanza(unavailable("a1b2c3d4", ""));
    h.stanza(unavailable("e5f6a7b8", ""));
    assert_eq!(h.m.humans(), Some(0));
    let (at, timer) = h.m.next_deadline().unwrap();
    assert_eq!(timer, Timer::EmptyGrace);
    assert_eq!(at - h.now, Duration::from_secs(300));
    assert!(ends_with(&h.advance(Duration::from_secs(60))).is_none());
    h.stanza(presence("a1b2c3d4", ""));
    assert!(
        !h.m.timers.contains_key(&Timer::EmptyGrace),
        "a returning human cancels the grace"
    );
    assert!(ends_with(&h.advance(Duration::from_secs(600))).is_none());
}

#[test]
fn no_human_for_the_grace_period_ends_it() {
    let mut h = Harness::in_session();
    h.stanza(unavailable("a1b2c3d4", ""));
    // The focus and services do not count as humans.
    h.stanza(presence(
        "jibri7",
        "<features><feature var=\"http://jitsi.org/protocol/jibri\"/></features>",
    ));
    h.stanza(unavailable("e5f6a7b8", ""));
    h.advance(Duration::from_secs(299));
    let a = h.advance(Duration::from_secs(1));
    assert_eq!(ends_with(&a), Some(EndReason::Empty));
    assert!(
        sent(&a)
            .iter()
            .any(|p| p.attr("type") == Some("unavailable")),
        "leaves the room"
    );
}

#[test]
fn max_duration_ends_it_counting_from_the_recording_start() {
    let mut h = Harness::in_session();
    // Started 5 h 59 min ago (a recording resumed after a restart).
    h.input(Input::RecordingStarted {
        elapsed: Duration::from_secs(6 * 3600 - 60),
    });
    assert!(ends_with(&h.advance(Duration::from_secs(59))).is_none());
    assert_eq!(
        ends_with(&h.advance(Duration::from_secs(1))),
        Some(EndReason::MaxDuration)
    );
}

#[test]
fn module_news_of_destruction_ends_it_even_when_not_in_the_room() {
    let mut h = Harness::in_session();
    h.input(Input::LinkDown);
    let a = h.input(Input::RoomDestroyed { occupied: true });
    assert_eq!(ends_with(&a), Some(EndReason::RoomDestroyed));
    assert!(sent(&a).is_empty(), "nothing to leave");
}

#[test]
fn after_a_reconnect_it_waits_for_the_room_then_rejoins_and_notes_the_gap() {
    let mut h = Harness::in_session();
    h.input(Input::LinkDown);
    h.now += Duration::from_secs(3);
    // The link is back but the room may not exist (Prosody restarted): do not create it.
    assert!(sent(&h.input(Input::LinkUp)).is_empty());
    assert!(
        sent(&h.input(Input::RoomStatus(RoomView {
            alive: false,
            occupancy: Some(Occupancy {
                humans: 0,
                others: 0,
                nicks: (0..0).map(|i| format!("h{i}")).collect()
            }),
            meeting_id: None
        })))
        .is_empty()
    );
    assert_eq!(h.m.next_deadline().map(|d| d.1), Some(Timer::EmptyGrace));
    h.now += Duration::from_secs(2);
    let a = h.input(Input::RoomStatus(RoomView {
        alive: true,
        occupancy: Some(Occupancy {
            humans: 2,
            others: 2,
            nicks: (0..2).map(|i| format!("h{i}")).collect(),
        }),
        meeting_id: None,
    }));
    assert!(join_sent(&a).is_some(), "{a:?}");
    assert!(!h.m.timers.contains_key(&Timer::EmptyGrace));
    for nick in ["focus", "a1b2c3d4", "e5f6a7b8"] {
        h.stanza(presence(nick, ""));
    }
    let a = h.stanza(self_presence());
    let gap = a.iter().find_map(|x| match x {
        Action::Interruption { start, end, .. } => Some(*end - *start),
        _ => None,
    });
    assert_eq!(gap, Some(Duration::from_secs(5)));
    assert!(!a.contains(&Action::StartRecording));
}

#[test]
fn without_news_after_a_reconnect_it_rejoins_anyway() {
    let mut h = Harness::in_session();
    h.input(Input::LinkDown);
    h.input(Input::LinkUp);
    let (at, timer) = h.m.next_deadline().unwrap();
    assert_eq!(timer, Timer::RoomStatusTimeout);
    let a = h.advance(at - h.now);
    assert!(join_sent(&a).is_some(), "{a:?}");
}

#[test]
fn a_waiting_machine_joins_only_when_the_room_is_alive() {
    let mut h = Harness::waiting();
    assert!(sent(&h.input(Input::LinkUp)).is_empty());
    assert!(
        sent(&h.input(Input::RoomStatus(RoomView {
            alive: false,
            occupancy: Some(Occupancy {
                humans: 0,
                others: 0,
                nicks: (0..0).map(|i| format!("h{i}")).collect()
            }),
            meeting_id: None
        })))
        .is_empty()
    );
    let a = h.input(Input::RoomStatus(RoomView {
        alive: true,
        occupancy: Some(Occupancy {
            humans: 2,
            others: 2,
            nicks: (0..2).map(|i| format!("h{i}")).collect(),
        }),
        meeting_id: None,
    }));
    assert!(join_sent(&a).is_some(), "{a:?}");
}

#[test]
fn a_refused_restart_request_leads_to_a_rejoin() {
    let mut h = Harness::in_session();
    let a = h.input(Input::MediaFailed {
        sid: "sid1".into(),
        reason: "ice".into(),
        silent: false,
    });
    let req = sent(&a)[0].clone();
    let id = req.attr("id").unwrap().to_string();
    // Jicofo: rate-limited (it removed us as a participant and will not re-invite).
    let err = el(&format!(
        r#"<iq xmlns="jabber:component:accept" type="error" id="{id}" from="{ROOM}/focus" to="{US}"><error type="wait"><resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>"#
    ));
    h.stanza(err);
    let (at, timer) = h.m.next_deadline().unwrap();
    assert_eq!(timer, Timer::RestartSession);
    assert!(
        at - h.now <= Duration::from_secs(2),
        "soon, not after the generic retry"
    );
    let a = h.advance(at - h.now);
    assert!(
        join_sent(&a).is_some(),
        "join again, so Jicofo invites us anew: {a:?}"
    );
    assert!(leaves_before_join(&a));
}

#[test]
fn a_source_add_for_someone_who_already_left_does_not_count_as_a_human() {
    let mut h = Harness::in_session();
    h.stanza(unavailable("a1b2c3d4", ""));
    h.stanza(unavailable("e5f6a7b8", ""));
    h.stanza(iq_from(
        "focus",
        "late",
        crate::jingle::source_add("sid1", &[src(42, "deadbeef")], false),
    ));
    assert_eq!(h.m.humans(), Some(0));
    assert!(h.m.timers.contains_key(&Timer::EmptyGrace));
}

#[test]
fn the_echo_of_our_own_leave_before_a_rejoin_is_not_a_kick() {
    let mut h = Harness::in_session();
    h.input(Input::LinkDown);
    h.input(Input::LinkUp);
    let a = h.input(Input::RoomStatus(RoomView {
        alive: true,
        occupancy: Some(Occupancy {
            humans: 2,
            others: 2,
            nicks: (0..2).map(|i| format!("h{i}")).collect(),
        }),
        meeting_id: None,
    }));
    assert!(leaves_before_join(&a));
    // Prosody answers the leave with our unavailable (a restored stale occupant of ours was
    // there), then the join with the occupants and our own presence.
    let a = h.stanza(unavailable(NICK, r#"<status code="110"/>"#));
    assert!(sent(&a).is_empty(), "no new join for the echo: {a:?}");
    assert!(!h.m.timers.contains_key(&Timer::Rejoin));
    for nick in ["focus", "a1b2c3d4", "e5f6a7b8"] {
        h.stanza(presence(nick, ""));
    }
    let a = h.stanza(self_presence());
    assert!(matches!(&a[..], [Action::Interruption { .. }]), "{a:?}");
    assert!(h.m.is_joined());
    // A real kick later is still a kick.
    h.stanza(unavailable(
        NICK,
        r#"<status code="307"/><status code="110"/>"#,
    ));
    assert!(h.m.timers.contains_key(&Timer::Rejoin));
}

mod limits;
mod membership;
