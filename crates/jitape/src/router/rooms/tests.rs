//! Unit tests of `rooms`.

use super::*;

fn classifier() -> Classifier {
    Classifier {
        our_nick: String::new(),
        our_domain: "rec.example".into(),
        focus_nick: "focus".into(),
        service_domains: vec!["hidden.example".into()],
    }
}

fn el(s: &str) -> Element {
    s.parse().unwrap()
}

fn joined(room: &str, nick: &str, jid: &str, features: &[&str]) -> ModuleEvent {
    ModuleEvent::OccupantJoined {
        room: room.into(),
        occupant: OccupantInfo {
            nick: nick.into(),
            jid: Jid::parse(jid),
            features: features.iter().map(|s| s.to_string()).collect(),
        },
    }
}

#[test]
fn events_parse() {
    let m = el(
        r#"<message xmlns="jabber:component:accept" from="muc.example" to="rec.example"><event xmlns="urn:jitape:prosody:1" type="occupant-joined" room="Lesson@muc.example" occupants="2"><occupant nick="a1b2" jid="u@meet.example/x" role="participant"><feature var="http://jitsi.org/protocol/jibri"/></occupant></event></message>"#,
    );
    assert_eq!(
        parse_event(&m),
        Some(joined(
            "lesson@muc.example",
            "a1b2",
            "u@meet.example/x",
            &["http://jitsi.org/protocol/jibri"]
        ))
    );
    let bad = el(
        r#"<message xmlns="jabber:component:accept"><event xmlns="urn:jitape:prosody:1" type="occupant-joined" room="x@muc.example"/></message>"#,
    );
    assert_eq!(parse_event(&bad), None, "occupant event without occupant");
    let odd = el(
        r#"<message xmlns="jabber:component:accept"><event xmlns="urn:jitape:prosody:1" type="party" room="x@muc.example"/></message>"#,
    );
    assert_eq!(parse_event(&odd), None);
    let iq = el(
        r#"<iq xmlns="jabber:component:accept" type="result"><rooms xmlns="urn:jitape:prosody:1"><room jid="a@muc.example"><occupant nick="focus" jid="focus@auth/focus"/><occupant nick="h1" jid="h@meet/1"/></room><room jid="bad jid"/></rooms></iq>"#,
    );
    let reports = parse_catchup(&iq).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].occupants.len(), 2);
    assert!(
        parse_instances(&iq).is_empty(),
        "an older module lists none"
    );
}

#[test]
fn the_instances_a_catch_up_answer_lists_are_read_and_the_rooms_are_unchanged() {
    let iq = el(
        r#"<iq xmlns="jabber:component:accept" type="result"><rooms xmlns="urn:jitape:prosody:1"><room jid="a@muc.example"/><instance component="jitape-1.example" state="live" rooms="3"/><instance component="jitape-2.example" state="away" rooms="1"/><instance component="jitape-3.example" state="down" rooms="0"/><instance component="jitape-4.example" state="asleep" rooms="0"/><instance component="jitape-5.example" state="live" rooms="-1"/><instance state="live" rooms="1"/></rooms></iq>"#,
    );
    let got: Vec<(String, String, u64)> = parse_instances(&iq)
        .into_iter()
        .map(|i| (i.component, i.state, i.rooms))
        .collect();
    let want = [
        ("jitape-1.example", "live", 3),
        ("jitape-2.example", "away", 1),
        ("jitape-3.example", "down", 0),
    ]
    .map(|(c, s, n)| (c.to_string(), s.to_string(), n));
    assert_eq!(
        got, want,
        "unknown states, bad counts and no name are skipped"
    );
    assert_eq!(parse_catchup(&iq).map(|r| r.len()), Some(1));
}

#[test]
fn a_room_is_recorded_once_jicofo_would_run_it_on_the_bridge() {
    let mut r = Rooms::new(classifier(), 2);
    let room = "lesson@muc.example";
    let d = r.on_event(ModuleEvent::RoomCreated {
        room: room.into(),
        meeting_id: Some("m-1".into()),
    });
    assert_eq!(
        d,
        vec![Decision::Status {
            room: room.into(),
            exists: true,
            occupancy: Occupancy::default(),
            meeting_id: Some("m-1".into()),
        }]
    );
    for (nick, jid, f) in [
        ("focus", "focus@auth.example/focus", vec![]),
        ("jitape1", "rec@rec.example/i", vec![]),
        (
            "jibri1",
            "j@x.example/1",
            vec!["http://jitsi.org/protocol/jibri"],
        ),
        ("svc", "s@hidden.example/1", vec![]),
    ] {
        let d = r.on_event(joined(room, nick, jid, &f));
        assert!(
            !d.iter().any(|x| matches!(x, Decision::Record { .. })),
            "{nick}: services alone are not recorded"
        );
    }
    let o = r.occupancy(room);
    assert_eq!(
        (o.humans, o.others),
        (0, 2),
        "focus and jitape are not others"
    );
    // One human with two services: Jicofo's member count is already past 2.
    let d = r.on_event(joined(room, "a1b2c3d4", "g@guest.example/x", &[]));
    assert!(d.contains(&Decision::Record { room: room.into() }));
    let d = r.on_event(ModuleEvent::OccupantLeft {
        room: room.into(),
        occupant: OccupantInfo {
            nick: "a1b2c3d4".into(),
            jid: None,
            features: vec![],
        },
    });
    assert!(matches!(&d[..], [Decision::Status { occupancy, .. }] if occupancy.humans == 0));
    assert_eq!(
        r.on_event(ModuleEvent::RoomDestroyed {
            room: room.into(),
            occupants: vec![OccupantInfo {
                nick: "focus".into(),
                jid: Jid::parse("focus@auth.example/focus"),
                features: vec![],
            }],
        }),
        vec![Decision::Destroyed {
            room: room.into(),
            occupied: false
        }],
        "only the focus was left: the room emptied"
    );
    assert!(!r.exists(room));
}

#[test]
fn a_lone_human_is_not_recorded_until_someone_joins() {
    let mut r = Rooms::new(classifier(), 2);
    let room = "lesson@muc.example";
    r.on_event(joined(room, "focus", "focus@auth.example/focus", &[]));
    let d = r.on_event(joined(room, "teacher", "t@guest.example/x", &[]));
    assert!(
        !d.iter().any(|x| matches!(x, Decision::Record { .. })),
        "one human alone is not on the bridge: nothing to record, and our joining would put them there"
    );
    // A phone caller through a SIP Jigasi is a human.
    let d = r.on_event(joined(
        room,
        "caller",
        "jigasi@auth.example/x",
        &["http://jitsi.org/protocol/jigasi", "urn:xmpp:jingle:dtmf:0"],
    ));
    assert!(d.contains(&Decision::Record { room: room.into() }));
    let o = r.occupancy(room);
    assert_eq!((o.humans, o.others), (2, 2));
    assert_eq!(o.nicks, vec!["caller", "teacher"]);
}

#[test]
fn catchup_replaces_one_domain_and_reports_vanished_rooms() {
    let mut r = Rooms::new(classifier(), 1);
    r.on_event(joined("old@muc.example", "h", "h@meet/1", &[]));
    r.on_event(joined("other@breakout.example", "h", "h@meet/1", &[]));
    let d = r.on_catchup(
        "muc.example",
        vec![RoomReport {
            room: "new@muc.example".into(),
            meeting_id: None,
            occupants: vec![OccupantInfo {
                nick: "h2".into(),
                jid: Jid::parse("h2@meet/2"),
                features: vec![],
            }],
        }],
    );
    assert!(d.contains(&Decision::Status {
        room: "old@muc.example".into(),
        exists: false,
        occupancy: Occupancy::default(),
        meeting_id: None,
    }));
    assert!(d.contains(&Decision::Record {
        room: "new@muc.example".into()
    }));
    assert!(
        r.exists("other@breakout.example"),
        "another domain is untouched"
    );
}
