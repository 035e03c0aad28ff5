//! The per-conference limits: sources per conference, the bound on IQs awaiting an
//! answer, and what a focus that never answers gets.

use super::*;

fn condition(e: &Element) -> Option<String> {
    crate::xmpp::stanza::error_condition(e)
}

fn limited(max_sources: usize) -> Harness {
    let mut h = Harness {
        m: Machine::new(Settings {
            max_sources,
            ..settings()
        }),
        now: Instant::now(),
    };
    h.input(Input::RoomStatus(RoomView {
        alive: true,
        occupancy: None,
        meeting_id: None,
    }));
    h.input(Input::LinkUp);
    h.stanza(presence("focus", ""));
    h.stanza(presence("a1b2c3d4", ""));
    h.stanza(presence("e5f6a7b8", ""));
    assert_eq!(h.stanza(self_presence()), vec![Action::StartRecording]);
    h
}

#[test]
fn sources_beyond_the_limit_are_not_taken_and_the_focus_is_told() {
    let mut h = limited(3);
    // An offer with more: the session is accepted (refusing it would lose everything),
    // the first three sources are taken.
    let five: Vec<Source> = (1..=5).map(|i| src(i, "a1b2c3d4")).collect();
    let a = h.stanza(iq_from("focus", "init", initiate("sid1", &five)));
    assert_eq!(sent(&a)[0].attr("type"), Some("result"));
    assert!(a.contains(&Action::SourceLimitHit));
    let started = a.iter().find_map(|x| match x {
        Action::StartMedia { sources, .. } => Some(sources.len()),
        _ => None,
    });
    assert_eq!(started, Some(3));
    // A source-add beyond the limit: resource-constraint, nothing added.
    let add = crate::jingle::source_add("sid1", &[src(9, "e5f6a7b8")], true);
    let a = h.stanza(iq_from("focus", "add9", add));
    assert_eq!(
        condition(sent(&a)[0]).as_deref(),
        Some("resource-constraint")
    );
    assert!(a.contains(&Action::SourceLimitHit));
    assert_eq!(h.m.sources().len(), 3);
    // Re-announcing a source we hold is not a new one.
    let again = crate::jingle::source_add("sid1", &[src(2, "a1b2c3d4")], true);
    let a = h.stanza(iq_from("focus", "again", again));
    assert_eq!(sent(&a)[0].attr("type"), Some("result"));
    // Room frees up when someone leaves.
    h.stanza(unavailable("a1b2c3d4", ""));
    let add = crate::jingle::source_add("sid1", &[src(9, "e5f6a7b8")], true);
    let a = h.stanza(iq_from("focus", "add9b", add));
    assert_eq!(sent(&a)[0].attr("type"), Some("result"));
    assert_eq!(
        h.m.sources().iter().map(|s| s.ssrc).collect::<Vec<_>>(),
        [9]
    );
}

/// Synthetic translation sources, the bridge's own and the repair SSRC of an audio FID
/// group carry no media to jitape: no m-line, and no place in `max_sources`.
#[test]
fn sources_without_media_of_their_own_take_no_place() {
    let mut h = limited(2);
    let translation = |ssrc: u32, owner: &str, lang: &str| Source {
        name: Some(format!("{owner}-a0.{lang}")),
        msid: None,
        ..src(ssrc, owner)
    };
    let offer = vec![
        src(1, "a1b2c3d4"),
        translation(11, "a1b2c3d4", "es"),
        translation(12, "a1b2c3d4", "fr"),
        src(2, "e5f6a7b8"),
        translation(21, "e5f6a7b8", "es"),
        Source {
            name: Some("jvb-a0".into()),
            ..src(99, "jvb")
        },
    ];
    let a = h.stanza(iq_from("focus", "init", initiate("sid1", &offer)));
    assert_eq!(sent(&a)[0].attr("type"), Some("result"));
    assert!(!a.contains(&Action::SourceLimitHit), "{a:?}");
    let ssrcs = |h: &Harness| h.m.sources().iter().map(|s| s.ssrc).collect::<Vec<_>>();
    assert_eq!(ssrcs(&h), [1, 2]);
    // An FID group's repair SSRC in a source-add (JSON form) takes no place either.
    let mut add = crate::jingle::source_add("sid1", &[], true);
    add.remove_child("json-message", crate::jingle::ns::JITMEET);
    add.append_child(
        Element::builder("json-message", crate::jingle::ns::JITMEET)
            .append(r#"{"sources":{"e5f6a7b8":[[],[],[{"s":2},{"s":3}],[["f",2,3]]]}}"#)
            .build(),
    );
    let a = h.stanza(iq_from("focus", "add", add));
    assert_eq!(sent(&a)[0].attr("type"), Some("result"), "{a:?}");
    assert_eq!(ssrcs(&h), [1, 2]);
}

#[test]
fn a_focus_that_never_answers_our_iqs_does_not_grow_our_pending_map() {
    let mut h = Harness::in_session();
    // The focus keeps inviting, but never answers an IQ of ours (accepts, restart requests).
    for i in 0..500 {
        h.now += Duration::from_secs(30);
        let sid = format!("sid-{i}");
        h.stanza(iq_from(
            "focus",
            &format!("init{i}"),
            initiate(&sid, &[src(1, "a1b2c3d4")]),
        ));
        h.input(Input::MediaReady {
            sid: sid.clone(),
            transport: local_transport(),
        });
        h.input(Input::MediaFailed {
            sid,
            reason: "ice".into(),
            silent: false,
        });
    }
    assert!(h.m.pending.len() <= MAX_PENDING, "{}", h.m.pending.len());
    assert!(h.m.is_joined());
}

#[test]
fn a_silent_focus_gets_rejoins_with_backoff_and_the_recording_goes_on() {
    let mut h = Harness::in_session();
    h.input(Input::MediaFailed {
        sid: "sid1".into(),
        reason: "ice".into(),
        silent: false,
    });
    let mut joins = Vec::new();
    let start = h.now;
    for _ in 0..(6 * 3600 / 10 - 10) {
        let a = h.advance(Duration::from_secs(10));
        assert_eq!(ends_with(&a), None);
        if join_sent(&a).is_some() {
            joins.push(h.now - start);
            // Prosody answers the join; the focus stays silent.
            h.stanza(presence("a1b2c3d4", ""));
            h.stanza(self_presence());
        }
    }
    // It keeps trying, spaced out more and more, never more than every 5 minutes at the end.
    assert!(joins.len() >= 10, "{joins:?}");
    assert!(joins.len() <= 6 * 12 + 10, "{joins:?}");
    let gaps: Vec<Duration> = joins.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2)
            .all(|g| g[1] + Duration::from_secs(10) >= g[0]),
        "{gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_secs(310)),
        "{gaps:?}"
    );
    assert!(h.m.is_joined());
}

#[test]
fn a_client_cycling_through_ten_thousand_nicknames_leaves_a_bounded_roster() {
    let mut h = Harness {
        m: Machine::new(Settings {
            roster_limits: RosterLimits {
                max_participants: 100,
                max_presences: 10,
            },
            ..settings()
        }),
        now: Instant::now(),
    };
    h.input(Input::RoomStatus(RoomView {
        alive: true,
        occupancy: None,
        meeting_id: None,
    }));
    h.input(Input::LinkUp);
    h.stanza(presence("focus", ""));
    h.stanza(presence("a1b2c3d4", ""));
    h.stanza(presence("e5f6a7b8", ""));
    assert_eq!(h.stanza(self_presence()), vec![Action::StartRecording]);
    for i in 0..10_000 {
        h.now += Duration::from_millis(50);
        let nick = format!("c{i:08x}");
        h.stanza(presence(&nick, ""));
        h.stanza(unavailable(&nick, ""));
    }
    // The room goes on as before: the two who stayed, recorded.
    assert_eq!(h.m.humans(), Some(2));
    let roster = h.m.roster();
    // focus, jitape, the two, 96 cyclers, then one shared entry.
    assert_eq!(roster.participants().len(), 101);
    assert_eq!(roster.hits().participants, 10_000 - 96);
    assert!(
        roster
            .participants()
            .iter()
            .all(|p| p.intervals.len() <= 10 && p.nicks.len() <= 10)
    );
}
