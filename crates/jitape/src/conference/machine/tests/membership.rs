//! jitape's membership changes nothing for the people in the room: where the Prosody
//! module lets it see the room from outside, it is in only while at least
//! `min_participants` others are (Jicofo's own threshold), leaves at once when nobody else
//! is left (so the room closes as it would without it), leaves after `lone_hold` when one
//! person stays alone, and comes back, in the same recording, when enough people return.

use super::*;

/// What the module reports: these nicks, all human.
fn view(alive: bool, nicks: &[&str]) -> Input {
    Input::RoomStatus(RoomView {
        alive,
        occupancy: Some(Occupancy {
            humans: nicks.len(),
            others: nicks.len(),
            nicks: nicks.iter().map(|n| n.to_string()).collect(),
        }),
        meeting_id: None,
    })
}

const A: &str = "a1b2c3d4";
const B: &str = "e5f6a7b8";

impl Harness {
    /// In the room with the focus and two humans, as the module reported them.
    fn joined_with_module() -> Self {
        let mut h = Harness::waiting();
        h.input(view(true, &[A, B]));
        assert!(join_sent(&h.input(Input::LinkUp)).is_some());
        for nick in ["focus", A, B] {
            h.stanza(presence(nick, ""));
        }
        assert_eq!(h.stanza(self_presence()), vec![Action::StartRecording]);
        h
    }
}

fn left(actions: &[Action]) -> bool {
    sent(actions)
        .iter()
        .any(|p| p.name() == "presence" && p.attr("type") == Some("unavailable"))
}

#[test]
fn it_joins_only_once_jicofo_runs_the_room_without_it() {
    let mut h = Harness::waiting();
    h.input(Input::LinkUp);
    // One person alone: Jicofo has not put them on a bridge; joining would (we count).
    assert!(sent(&h.input(view(true, &[A]))).is_empty());
    assert!(!h.m.is_joined());
    let a = h.input(view(true, &[A, B]));
    assert!(join_sent(&a).is_some(), "{a:?}");
}

#[test]
fn without_the_module_it_joins_and_stays_as_before() {
    // Invited (or asked by the admin API) where no module reports the room: nobody could
    // tell jitape when people come back, so it stays.
    let mut h = Harness::in_session();
    h.stanza(unavailable(A, ""));
    let a = h.stanza(unavailable(B, ""));
    assert!(!left(&a), "{a:?}");
    assert!(h.m.is_joined());
    assert!(h.m.timers.contains_key(&Timer::EmptyGrace));
}

#[test]
fn when_nobody_else_is_left_it_leaves_at_once_and_keeps_recording() {
    let mut h = Harness::joined_with_module();
    h.stanza(iq_from(
        "focus",
        "init1",
        initiate("sid1", &[src(1, A), src(2, B)]),
    ));
    h.now += Duration::from_secs(30);
    h.stanza(unavailable(A, ""));
    h.input(view(true, &[B]));
    assert!(
        !h.m.is_away(),
        "one other is still there: the lone hold runs"
    );
    h.now += Duration::from_secs(1);
    let a = h.stanza(unavailable(B, ""));
    assert!(left(&a), "left at once: {a:?}");
    assert!(a.contains(&Action::StopMedia));
    assert!(a.contains(&Action::SteppedOut));
    assert!(!a.iter().any(|x| matches!(x, Action::End(_))));
    assert!(h.m.is_away());
    let out_at = h.now;
    // The room empties and Prosody destroys it: that is what would have happened without
    // jitape, and it does not end the recording.
    h.input(view(true, &[]));
    h.now += Duration::from_secs(2);
    assert!(h.input(Input::RoomDestroyed { occupied: false }).is_empty());
    assert!(h.m.timers.contains_key(&Timer::EmptyGrace));
    // Within the grace they come back (a new room): jitape rejoins, same recording.
    h.now += Duration::from_secs(60);
    h.input(view(true, &[A]));
    assert!(!h.m.is_joined(), "not for one person");
    let a = h.input(view(true, &[A, B]));
    assert!(join_sent(&a).is_some(), "{a:?}");
    assert!(!h.m.timers.contains_key(&Timer::EmptyGrace));
    for nick in ["focus", A, B] {
        h.stanza(presence(nick, ""));
    }
    let back_at = h.now;
    let a = h.stanza(self_presence());
    assert!(!a.contains(&Action::StartRecording), "one recording");
    let gap = a.iter().find_map(|x| match x {
        Action::Interruption {
            start, end, kind, ..
        } => Some((*start, *end, *kind)),
        _ => None,
    });
    assert_eq!(gap, Some((out_at, back_at, GapKind::Away)));
    assert!(h.m.is_joined());
}

#[test]
fn away_for_the_whole_grace_ends_the_recording_as_empty() {
    let mut h = Harness::joined_with_module();
    h.stanza(unavailable(A, ""));
    h.stanza(unavailable(B, ""));
    h.input(view(false, &[]));
    let (at, timer) = h.m.next_deadline().unwrap();
    assert_eq!(timer, Timer::EmptyGrace);
    assert_eq!(at - h.now, Duration::from_secs(300));
    let a = h.advance(Duration::from_secs(300));
    assert_eq!(a, vec![Action::End(EndReason::Empty)], "nothing to leave");
}

#[test]
fn one_person_left_alone_is_kept_company_for_the_lone_hold_only() {
    let mut h = Harness::joined_with_module();
    h.stanza(unavailable(B, ""));
    h.input(view(true, &[A]));
    let (at, timer) = h.m.next_deadline().unwrap();
    assert_eq!(timer, Timer::LoneHold);
    assert_eq!(at - h.now, Duration::from_secs(20));
    // A page reload within the hold: nothing happens.
    h.now += Duration::from_secs(8);
    h.stanza(presence("0c0d0e0f", ""));
    assert!(!h.m.timers.contains_key(&Timer::LoneHold));
    h.stanza(unavailable("0c0d0e0f", ""));
    let a = h.advance(Duration::from_secs(19));
    assert!(
        !left(&a),
        "the hold restarted with the second departure: {a:?}"
    );
    let a = h.advance(Duration::from_secs(1));
    assert!(left(&a), "{a:?}");
    assert!(h.m.is_away());
    assert!(
        !h.m.timers.contains_key(&Timer::EmptyGrace),
        "a human is still in the room"
    );
}

#[test]
fn whoever_stays_while_jitape_is_out_stays_present_in_the_sidecar() {
    let mut h = Harness::joined_with_module();
    let t_join = h.now;
    h.stanza(unavailable(B, ""));
    h.input(view(true, &[A]));
    h.advance(Duration::from_secs(20));
    assert!(h.m.is_away());
    let a_present = |h: &Harness| h.m.roster().participant_of_any(A).map(|p| p.present());
    assert_eq!(a_present(&h), Some(true), "A is still in the room");
    h.now += Duration::from_secs(40);
    let a_left_at = h.now;
    h.input(view(true, &[]));
    assert_eq!(a_present(&h), Some(false));
    let p = h.m.roster().participant_of_any(A).unwrap();
    assert_eq!(p.intervals, vec![(t_join, Some(a_left_at))]);
}

#[test]
fn a_destroy_while_people_are_in_ends_the_recording() {
    // "End meeting for everyone": the room is destroyed with people in it.
    let mut h = Harness::joined_with_module();
    let a = h.input(Input::RoomDestroyed { occupied: true });
    assert!(matches!(
        a.last(),
        Some(Action::End(EndReason::RoomDestroyed))
    ));
}
