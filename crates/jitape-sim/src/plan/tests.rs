//! Unit tests of `plan`.

use super::*;

#[test]
fn demo_plan_is_consistent() {
    let p = ConferencePlan::demo("demo@conference.localhost");
    assert_eq!(p.speakers.len(), 3);
    let endpoints: std::collections::HashSet<_> =
        p.speakers.iter().map(|s| &s.stints[0].endpoint).collect();
    assert_eq!(endpoints.len(), 3);
    for s in &p.speakers {
        let st = &s.stints[0];
        assert!(st.endpoint.chars().all(|c| c.is_ascii_hexdigit()));
        let leave = st.leave_at.unwrap_or(p.end_at);
        for w in &s.talk {
            assert!(
                w.start >= st.join_at && w.end <= leave && w.start < w.end,
                "{s:?}"
            );
        }
    }
    assert!(
        p.speakers
            .iter()
            .any(|s| s.stints[0].join_at > Duration::ZERO)
    );
    assert!(p.speakers.iter().any(|s| s.stints[0].leave_at.is_some()));
    let last_talk = p
        .speakers
        .iter()
        .flat_map(|s| &s.talk)
        .map(|w| w.end)
        .max()
        .unwrap();
    assert!(p.end_at - last_talk >= Duration::from_secs(3));
}

#[test]
fn a_loss_burst_is_a_blackout_then_the_plans_own_netem() {
    let netem = NetemConfig {
        loss: 0.02,
        ..NetemConfig::default()
    };
    let plan = ConferencePlan::empty("r@m", 10.0)
        .with_netem(netem.clone())
        .with_loss_burst(2.01, 0.3);
    assert_eq!(plan.disruptions.len(), 2);
    let (at, Disruption::Netem(on)) = &plan.disruptions[0] else {
        panic!("{:?}", plan.disruptions)
    };
    assert_eq!(*at, secs(2.01));
    assert_eq!(on.loss, 1.0);
    assert_eq!(
        plan.disruptions[1],
        (secs(2.01 + 0.3), Disruption::Netem(netem))
    );
}

#[test]
fn audible_windows_are_cut_to_the_stints() {
    let mut s = SpeakerPlan::simple(
        "e1",
        "A",
        VoiceSpec::Tone(440.0),
        secs(0.0),
        Some(secs(10.0)),
        vec![window(8.0, 14.0)],
    );
    s.stints.push(Stint {
        endpoint: "e2".into(),
        join_at: secs(12.0),
        leave_at: None,
        knock: false,
    });
    let plan = ConferencePlan {
        speakers: vec![s],
        ..ConferencePlan::empty("r@m", 13.0)
    };
    let w = &plan.audible()[0].1;
    assert_eq!(w, &vec![window(8.0, 10.0), window(12.0, 13.0)]);
}
