//! Unit tests of `deaf`.

use super::*;

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

#[test]
fn a_dead_bridge_is_deaf_from_its_last_traffic_to_the_next_session() {
    let t0 = Instant::now();
    let mut d = Deafness::default();
    assert_eq!(d.on_state(MediaState::Connecting, t0, s(5.0)), None);
    assert_eq!(d.on_state(MediaState::Connected, t0 + s(0.2), s(5.0)), None);
    // Traffic stops at 10 s; disconnected is declared 5 s later, failed 10 s later.
    assert_eq!(
        d.on_state(MediaState::Disconnected, t0 + s(15.0), s(5.0)),
        None
    );
    assert_eq!(d.on_state(MediaState::Failed, t0 + s(20.0), s(5.0)), None);
    d.on_closed(t0 + s(20.0));
    let got = d.on_state(MediaState::Connected, t0 + s(22.0), s(5.0));
    assert_eq!(
        got,
        Some(DeafStretch {
            start: t0 + s(10.0),
            end: t0 + s(22.0),
            why: "no traffic from the bridge"
        })
    );
    assert_eq!(d.finish(t0 + s(30.0)), None, "heard again until the end");
}

#[test]
fn a_quick_reinvite_is_not_listed_but_a_session_never_replaced_is() {
    let t0 = Instant::now();
    let mut d = Deafness::default();
    d.on_state(MediaState::Connected, t0, s(5.0));
    d.on_closed(t0 + s(3.0));
    assert_eq!(d.on_state(MediaState::Connected, t0 + s(3.3), s(5.0)), None);
    d.on_closed(t0 + s(8.0));
    assert_eq!(
        d.finish(t0 + s(20.0)),
        Some(DeafStretch {
            start: t0 + s(8.0),
            end: t0 + s(20.0),
            why: "no media session"
        })
    );
}

#[test]
fn nothing_is_lost_before_the_first_session_connects() {
    let t0 = Instant::now();
    let mut d = Deafness::default();
    d.on_closed(t0);
    assert_eq!(d.on_state(MediaState::Failed, t0 + s(10.0), s(5.0)), None);
    assert_eq!(d.finish(t0 + s(60.0)), None);
}
