//! Tests of the roster and ledger, and of their bounds.

use super::*;
use std::time::Duration;

fn presence(nick: &str) -> OccupantPresence {
    OccupantPresence {
        nick: nick.into(),
        ..Default::default()
    }
}

fn roster() -> Roster {
    Roster::new(Classifier {
        our_nick: "jitape1".into(),
        our_domain: "rec.example".into(),
        focus_nick: "focus".into(),
        service_domains: vec!["hidden.example".into()],
    })
}

#[test]
fn refresh_with_same_identity_continues_the_track() {
    let t0 = Instant::now();
    let mut r = roster();
    let mut alice = presence("a1");
    alice.stats_id = Some("st-alice".into());
    r.apply(&alice, t0);
    let track = r.participant_of("a1").unwrap().track;
    let mut gone = alice.clone();
    gone.unavailable = true;
    r.apply(&gone, t0 + Duration::from_secs(5));
    let mut again = alice.clone();
    again.nick = "b2".into();
    assert_eq!(
        r.apply(&again, t0 + Duration::from_secs(7)),
        RosterChange::Joined { nick: "b2".into() }
    );
    let p = r.participant_of("b2").unwrap();
    assert_eq!(p.track, track);
    assert_eq!(p.nicks, vec!["a1", "b2"]);
    assert_eq!(p.intervals.len(), 2);
    assert_eq!(r.participants().len(), 1);
}

#[test]
fn classification_of_occupants() {
    let t0 = Instant::now();
    let mut r = roster();
    r.apply(&presence("focus"), t0);
    r.apply(&presence("jitape1"), t0);
    let mut jibri = presence("j1");
    jibri.features = vec![FEATURE_JIBRI.into()];
    r.apply(&jibri, t0);
    let mut svc = presence("s1");
    svc.item.jid = Jid::parse("x@hidden.example/1");
    r.apply(&svc, t0);
    assert_eq!(r.humans(), 0);
    r.apply(&presence("h1"), t0);
    assert_eq!(r.humans(), 1);
    assert_eq!(r.occupant("focus").unwrap().kind, OccupantKind::Focus);
    assert_eq!(r.occupant("jitape1").unwrap().kind, OccupantKind::Us);
    assert_eq!(r.occupant("j1").unwrap().kind, OccupantKind::Service);
    assert_eq!(r.occupant("s1").unwrap().kind, OccupantKind::Service);
}

#[test]
fn two_guests_without_identity_are_distinct() {
    let t0 = Instant::now();
    let mut r = roster();
    r.apply(&presence("g1"), t0);
    r.apply(&presence("g2"), t0);
    assert_ne!(
        r.participant_of("g1").unwrap().track,
        r.participant_of("g2").unwrap().track
    );
}

#[test]
fn sources_before_presence_get_a_placeholder_the_occupant_adopts() {
    let t0 = Instant::now();
    let mut r = roster();
    let track = r.track_for_owner("e5f6").track;
    assert_eq!(r.humans(), 0, "a placeholder is nobody present");
    let mut p = presence("e5f6");
    p.display_name = Some("Bob".into());
    p.stats_id = Some("st-bob".into());
    assert_eq!(
        r.apply(&p, t0),
        RosterChange::Joined {
            nick: "e5f6".into()
        }
    );
    let part = r.participant_of("e5f6").unwrap();
    assert_eq!(part.track, track);
    assert_eq!(part.key, "stats:st-bob");
    assert_eq!(part.display_name.as_deref(), Some("Bob"));
    assert_eq!(r.participants().len(), 1);
    assert_eq!(r.humans(), 1);
}

#[test]
fn sources_of_someone_who_left_map_to_their_old_track() {
    let t0 = Instant::now();
    let mut r = roster();
    r.apply(&presence("a1"), t0);
    let track = r.participant_of("a1").unwrap().track;
    let mut gone = presence("a1");
    gone.unavailable = true;
    r.apply(&gone, t0);
    assert_eq!(r.track_for_owner("a1").track, track);
    assert_eq!(r.humans(), 0);
    assert_eq!(r.participants().len(), 1);
}

#[test]
fn clear_closes_every_interval() {
    let t0 = Instant::now();
    let mut r = roster();
    r.apply(&presence("h1"), t0);
    r.clear(t0 + Duration::from_secs(1));
    assert_eq!(r.humans(), 0);
    assert!(!r.participants()[0].present());
}

fn limited(max_participants: usize, max_presences: usize) -> Roster {
    Roster::with_limits(
        roster().classifier,
        RosterLimits {
            max_participants,
            max_presences,
        },
    )
}

#[test]
fn a_client_cycling_through_new_nicknames_grows_the_ledger_only_to_its_limit() {
    let t0 = Instant::now();
    let mut r = limited(50, 10);
    r.apply(&presence("h0"), t0);
    for i in 0..10_000u64 {
        let at = t0 + Duration::from_millis(i * 10);
        let nick = format!("cycler{i}");
        let mut p = presence(&nick);
        r.apply(&p, at);
        assert_eq!(r.humans(), 2, "the cycler counts as present while in");
        p.unavailable = true;
        r.apply(&p, at + Duration::from_millis(5));
        assert_eq!(r.humans(), 1);
    }
    // 50 entries of their own (h0 and the first 49 nicks), then one shared overflow entry.
    assert_eq!(r.participants().len(), 51);
    assert_eq!(r.hits().participants, 10_000 - 49);
    let overflow = r.participants().last().unwrap().clone();
    assert_eq!(overflow.key, OVERFLOW_KEY);
    assert!(overflow.nicks.len() <= 10 && overflow.intervals.len() <= 10);
    assert!(!overflow.present());
    assert!(r.hits().presences > 0);
    assert!(r.participants().iter().all(|p| p.intervals.len() <= 10));
    // The one who stayed is untouched.
    assert!(r.participant_of("h0").unwrap().present());
    // Sources announced for yet another newcomer land in the overflow entry too.
    assert_eq!(r.track_for_owner("late-src").track, overflow.track);
    assert_eq!(r.participants().len(), 51);
}

#[test]
fn a_participant_rejoining_without_end_keeps_a_bounded_history_and_the_right_presence() {
    let t0 = Instant::now();
    let mut r = limited(50, 5);
    let mut p = presence("a1");
    p.stats_id = Some("st-a".into());
    for i in 0..1000u64 {
        let at = t0 + Duration::from_secs(i);
        p.nick = format!("a{i}");
        p.unavailable = false;
        r.apply(&p, at);
        assert!(r.participant_of(&p.nick).unwrap().present());
        p.unavailable = true;
        r.apply(&p, at + Duration::from_millis(500));
        assert!(!r.participants()[0].present());
    }
    let part = &r.participants()[0];
    assert_eq!(r.participants().len(), 1);
    assert_eq!(part.intervals.len(), 5);
    assert_eq!(part.nicks.len(), 5);
    // The last stay was extended to the last leave.
    let last = part.intervals[4];
    assert_eq!(last.1, Some(t0 + Duration::from_millis(999_500)));
    assert_eq!(r.hits().presences, 995 + 995);
    assert_eq!(r.hits().participants, 0);
}

#[test]
fn the_overflow_entry_stays_open_while_any_of_its_people_is_in() {
    let t0 = Instant::now();
    let mut r = limited(2, 100);
    r.apply(&presence("a"), t0);
    r.apply(&presence("b"), t0);
    r.apply(&presence("c"), t0);
    r.apply(&presence("d"), t0);
    let c = r.participant_of("c").unwrap().track;
    assert_eq!(r.participant_of("d").unwrap().track, c);
    let mut gone = presence("c");
    gone.unavailable = true;
    r.apply(&gone, t0 + Duration::from_secs(1));
    assert!(r.participant_of("d").unwrap().present(), "d is still in");
    let mut gone = presence("d");
    gone.unavailable = true;
    r.apply(&gone, t0 + Duration::from_secs(2));
    let overflow = r.participants().last().unwrap();
    assert_eq!(
        overflow.intervals,
        vec![(t0, Some(t0 + Duration::from_secs(2)))]
    );
    assert_eq!(r.humans(), 2);
}
