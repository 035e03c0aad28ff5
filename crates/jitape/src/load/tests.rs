//! Unit tests of `load`.

use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn strain_refuses_overload_sheds_and_calm_restores() {
    let mut g = Guard::new(Duration::from_secs(5));
    let normal = Step {
        level: Level::Normal,
        shed: false,
    };
    assert_eq!(g.step(ms(40)), normal);
    assert_eq!(g.step(ms(900)), normal, "under a fifth of the window");
    // A single stall of 3 s: its backlog shows for one period, and that is all.
    assert_eq!(g.step(ms(3000)), normal, "a one-off stall");
    assert_eq!(g.step(ms(60)), normal);
    assert_eq!(g.step(ms(1200)), normal, "strain must last");
    assert_eq!(
        g.step(ms(1300)),
        Step {
            level: Level::Strained,
            shed: false
        }
    );
    assert!(!g.step(ms(2600)).shed, "overload must last");
    assert!(!g.step(ms(2600)).shed);
    assert_eq!(
        g.step(ms(2600)),
        Step {
            level: Level::Overloaded,
            shed: true
        }
    );
    assert_eq!(
        g.step(ms(2700)),
        Step {
            level: Level::Overloaded,
            shed: true
        },
        "one more each period while it lasts"
    );
    // Easing: strained, no more shedding, and no new recording until calm for 10 s.
    assert_eq!(
        g.step(ms(800)),
        Step {
            level: Level::Strained,
            shed: false
        }
    );
    for _ in 0..9 {
        assert_eq!(g.step(ms(100)).level, Level::Strained);
    }
    assert_eq!(g.step(ms(100)).level, Level::Normal);
}
