//! Unit tests of `scenario`.

use super::*;

fn f(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[test]
fn talk_ratio_is_about_a_third_with_real_pauses() {
    let mut rng = StdRng::seed_from_u64(7);
    for duty in [0.30, 0.35, 0.40] {
        let w = talk_windows(&mut rng, 0.0, 3600.0, duty);
        let ratio = talk_seconds(&w) / 3600.0;
        assert!(
            (duty - 0.05..=duty + 0.05).contains(&ratio),
            "{duty}: {ratio}"
        );
        for pair in w.windows(2) {
            assert!(f(pair[1].start) - f(pair[0].end) >= MIN_PAUSE - 1e-9);
        }
        assert!(w.iter().all(|x| f(x.end) - f(x.start) >= MIN_SPURT - 1e-9));
        assert!(w.iter().all(|x| f(x.end) <= 3600.0));
    }
}

#[test]
fn conferences_are_reproducible_and_differ_by_index() {
    let d = Duration::from_secs(600);
    let a = conference(3, 4, d, 42);
    let b = conference(3, 4, d, 42);
    let c = conference(4, 4, d, 42);
    assert_eq!(a.speakers, b.speakers);
    assert_ne!(a.speakers, c.speakers);
    assert_eq!(a.room, "bench003@conference.localhost");
}

#[test]
fn talk_stays_inside_stints_with_margins_and_ids_are_unique() {
    let d = Duration::from_secs(600);
    let mut ids = std::collections::HashSet::new();
    let mut joins_or_leaves = 0;
    for i in 0..40 {
        let p = conference(i, 4, d, 1);
        assert_eq!(p.speakers.len(), 4);
        for s in &p.speakers {
            for st in &s.stints {
                assert!(ids.insert(st.endpoint.clone()), "duplicate endpoint");
                if st.leave_at.is_some() || st.join_at > secs(5.0) {
                    joins_or_leaves += 1;
                }
            }
            for w in &s.talk {
                let inside = s.stints.iter().any(|st| {
                    let leave = st.leave_at.unwrap_or(p.end_at);
                    f(w.start) >= f(st.join_at) + TALK_AFTER_JOIN - 1e-9
                        && f(w.end) <= f(leave) - QUIET_BEFORE_LEAVE + 1e-9
                });
                assert!(inside, "{w:?} outside {:?}", s.stints);
            }
            let present: f64 = s
                .stints
                .iter()
                .map(|st| f(st.leave_at.unwrap_or(p.end_at)) - f(st.join_at))
                .sum();
            let ratio = talk_seconds(&s.talk) / present;
            assert!((0.15..0.5).contains(&ratio), "{ratio} of {present} s");
        }
        assert!(p.speakers[0].stints[0].join_at.is_zero());
    }
    assert!(joins_or_leaves > 10, "people come and go");
}

#[test]
fn a_short_conference_still_has_talk_from_everyone() {
    let p = conference(0, 2, Duration::from_secs(15), 9);
    for s in &p.speakers {
        assert!(!s.talk.is_empty(), "{s:?}");
    }
}

#[test]
fn the_large_case_keeps_the_unmuted_count_and_joins_over_the_minute() {
    let shape = LargeShape::default();
    let p = large_conference(0, &shape, 5);
    assert_eq!(p.speakers.len(), 500);
    let last_join = p.speakers.iter().map(|s| s.stints[0].join_at).max();
    assert!(last_join.is_some_and(|j| f(j) < 60.0 && f(j) > 59.0));
    for t in [20.0, 70.0, 150.0] {
        let talking: Vec<&SpeakerPlan> = p
            .speakers
            .iter()
            .filter(|s| s.talk.iter().any(|w| f(w.start) <= t && t < f(w.end)))
            .collect();
        assert_eq!(talking.len(), 20, "at {t} s");
        let tones: std::collections::HashSet<String> =
            talking.iter().map(|s| format!("{:?}", s.voice)).collect();
        assert_eq!(tones.len(), 20, "no two at once share a tone, at {t} s");
    }
    // Everyone who joined early enough gets a turn over the three minutes... of those
    // with the first tone, several do.
    let first_tone: Vec<&SpeakerPlan> = p
        .speakers
        .iter()
        .filter(|s| s.voice == VoiceSpec::Tone(default_tone_hz(0)) && !s.talk.is_empty())
        .collect();
    assert!(first_tone.len() >= 5, "{}", first_tone.len());
    for s in &p.speakers {
        for w in &s.talk {
            assert!(f(w.start) >= f(s.stints[0].join_at) + TALK_AFTER_JOIN);
            assert!(f(w.end) <= f(p.end_at) - QUIET_BEFORE_LEAVE + 1e-9);
        }
        // consecutive windows stay apart (the voice detector's hangover is 0.5 s)
        for pair in s.talk.windows(2) {
            assert!(f(pair[1].start) - f(pair[0].end) >= 1.0 - 1e-9);
        }
    }
}
