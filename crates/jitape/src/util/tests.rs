//! Unit tests of `util`.

use super::*;

#[test]
fn five_per_minute_then_a_summary() {
    let t0 = Instant::now();
    let mut w = (t0, 0);
    let logged: Vec<bool> = (0..8).map(|_| admit(&mut w, t0).0).collect();
    assert_eq!(logged, [true, true, true, true, true, false, false, false]);
    let (log, suppressed) = admit(&mut w, t0 + WINDOW);
    assert!(log);
    assert_eq!(suppressed, Some(3));
}
