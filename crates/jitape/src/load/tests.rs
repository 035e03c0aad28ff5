//! Unit tests of `load`.

use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn guard() -> Guard {
    Guard::new(Duration::from_secs(5))
}

/// Feeds the delays and returns the steps.
fn feed(g: &mut Guard, delays: &[u64]) -> Vec<Step> {
    delays.iter().map(|&d| g.step(ms(d))).collect()
}

#[test]
fn strain_refuses_overload_sheds_and_calm_restores() {
    let mut g = guard();
    let normal = Step {
        level: Level::Normal,
        admit: true,
        shed_percent: 0,
    };
    assert_eq!(g.step(ms(40)), normal);
    assert_eq!(g.step(ms(400)), normal, "under a tenth of the window");
    // A single stall of 3 s: its backlog shows for one period, and that is all.
    assert_eq!(g.step(ms(3000)), normal, "a one-off stall");
    assert_eq!(g.step(ms(60)), normal);
    assert_eq!(g.step(ms(1200)), normal, "strain must last");
    assert_eq!(
        g.step(ms(1300)),
        Step {
            level: Level::Strained,
            admit: false,
            shed_percent: 0
        }
    );
    assert_eq!(g.step(ms(2600)).shed_percent, 0, "overload must last");
    assert_eq!(g.step(ms(2600)).shed_percent, 0);
    // Three periods over half the window; the backlog grew 1.3 s in 3 s: the work is
    // 1.43 times what jitape gets through, so 41 % would go (keeping 85 % of capacity);
    // at most 34 % go at once.
    assert_eq!(
        g.step(ms(2600)),
        Step {
            level: Level::Overloaded,
            admit: false,
            shed_percent: 34
        }
    );
    // The shed conferences need time to stop: the guard waits before judging again.
    assert_eq!(g.step(ms(2700)).shed_percent, 0, "cooling down");
    assert_eq!(g.step(ms(2600)).shed_percent, 0, "cooling down");
    // Still overloaded, the backlog standing still: it must drain, so 15 % more go.
    assert_eq!(
        g.step(ms(2600)),
        Step {
            level: Level::Overloaded,
            admit: false,
            shed_percent: 15
        }
    );
    // Easing: strained, no more shedding, and no new recording until calm for 10 s.
    assert_eq!(
        g.step(ms(800)),
        Step {
            level: Level::Strained,
            admit: false,
            shed_percent: 0
        }
    );
    for _ in 0..9 {
        assert_eq!(g.step(ms(100)).level, Level::Strained);
    }
    assert_eq!(g.step(ms(100)), normal);
}

#[test]
fn a_fast_growing_backlog_is_an_overload_before_it_reaches_half_the_window() {
    // The work doubled: the backlog grows a second per second. Waiting for three periods
    // over half the window would be too late (it would be at the window); two periods of
    // strain heading there are enough, and more than half go.
    let mut g = guard();
    let steps = feed(&mut g, &[100, 1000, 2000]);
    assert_eq!(steps[1].level, Level::Normal, "one period is not a strain");
    assert_eq!(steps[2].level, Level::Overloaded);
    // 1 s/s over the strain: keep 0.85 / 2 = 42.5 % of the conferences; but a growth seen
    // over two periods may be a stall of the machine, so a third goes first.
    assert_eq!(steps[2].shed_percent, 34);
    // Still growing after the pause: the next third.
    let more = feed(&mut g, &[2500, 3000, 3500]);
    assert_eq!(
        more.iter().map(|s| s.shed_percent).collect::<Vec<_>>(),
        [0, 0, 34]
    );
}

#[test]
fn a_slowly_growing_backlog_is_sized_by_its_growth() {
    let mut g = guard();
    let steps = feed(&mut g, &[1000, 1400, 1800, 2200, 2600, 3000, 3400]);
    let first = steps.iter().position(|s| s.shed_percent > 0).unwrap();
    // Growing 0.4 s/s never reaches the window within 3 periods; what decides is half the
    // window lasting 3 periods.
    assert_eq!(first, 6);
    assert_eq!(steps[first].level, Level::Overloaded);
    assert!(steps[..first].iter().all(|s| s.level <= Level::Strained));
    // 0.4 s/s: keep 0.85 / 1.4 = 60.7 %: 40 % would go, at most 34 % go at once.
    assert_eq!(steps[first].shed_percent, 34);
    // A gentler growth is sized exactly: 0.1 s/s keeps 0.85 / 1.1 = 77.3 %.
    let mut g = guard();
    let steps = feed(&mut g, &[2600, 2700, 2800]);
    assert_eq!(steps[2].shed_percent, 23);
}

#[test]
fn new_recordings_wait_while_packets_keep_waiting_a_tenth_of_the_window() {
    let mut g = guard();
    // One busy period (a stall) does not refuse; two in a row do, while the level is
    // still normal (nothing is lost yet, and /ready says ready).
    let steps = feed(&mut g, &[600, 100, 600, 700, 100]);
    assert!(steps.iter().all(|s| s.level == Level::Normal));
    let admit: Vec<bool> = steps.iter().map(|s| s.admit).collect();
    assert_eq!(admit, [true, true, true, false, true]);
}

#[test]
fn a_sustained_overload_keeps_shedding_until_the_backlog_drains() {
    let mut g = guard();
    let mut shed = Vec::new();
    for _ in 0..12 {
        shed.push(g.step(ms(4000)).shed_percent);
    }
    // Overloaded at the third period of 4 s, then every third period (two of cooling).
    assert_eq!(shed, [0, 0, 15, 0, 0, 15, 0, 0, 15, 0, 0, 15]);
}

#[test]
fn a_backlog_that_falls_after_a_shed_ends_no_more_conferences() {
    // As at 268 conferences on two cores: the backlog shot up, a third went, and while the
    // ended ones stopped it rose further, then fell by half; a second third went then, and
    // a period later packets waited 9 ms. Falling, it sheds nothing; rising again, it does.
    let mut g = guard();
    let steps = feed(&mut g, &[100, 1000, 2000, 3400, 5400, 2800, 900]);
    let shed: Vec<u32> = steps.iter().map(|s| s.shed_percent).collect();
    assert_eq!(shed, [0, 0, 34, 0, 0, 0, 0]);
    assert_eq!(
        steps[5].level,
        Level::Overloaded,
        "still overloaded, only waiting"
    );
    let again = feed(&mut g, &[1500, 2600]);
    assert_eq!(again[1].shed_percent, 34, "growing again: {again:?}");
    // A backlog that stands still is not falling: it must drain, so some go.
    let mut g = guard();
    let steps = feed(&mut g, &[100, 1000, 2000, 3400, 5400, 5400]);
    assert!(steps[5].shed_percent > 0, "{steps:?}");
}
