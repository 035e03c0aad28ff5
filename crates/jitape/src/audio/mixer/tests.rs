//! Unit tests of `mixer`.

use super::*;

#[test]
fn below_the_ceiling_the_mix_is_exact() {
    let mut l = Limiter::new(48_000, -1.0);
    let sum: Vec<i32> = (0..1000).map(|i| (i * 29) % 20000 - 10000).collect();
    let mut out = Vec::new();
    l.process(&sum, &mut out);
    assert!(sum.iter().zip(&out).all(|(a, b)| *a == i32::from(*b)));
    assert_eq!(l.limited, 0);
}

#[test]
fn an_overload_stays_under_the_ceiling_with_its_sign() {
    let mut l = Limiter::new(48_000, -1.0);
    let sum: Vec<i32> = (0..4800)
        .map(|i| (90_000.0 * (i as f64 * 0.05).sin()) as i32)
        .collect();
    let mut out = Vec::new();
    l.process(&sum, &mut out);
    let ceiling = (32767.0 * 10f64.powf(-1.0 / 20.0)) as i32 + 1;
    for (a, b) in sum.iter().zip(&out) {
        assert!(i32::from(*b).abs() <= ceiling);
        assert!(a.signum() == i32::from(*b).signum() || *b == 0 || a.abs() < 100);
    }
    assert!(l.limited > 0);
}
