//! Unit tests of `seq`.

use super::*;

#[test]
fn sequence_wraps_forward_and_back() {
    let mut u = SeqUnwrapper::new();
    assert_eq!(u.extend(65534), 65534);
    assert_eq!(u.extend(65535), 65535);
    assert_eq!(u.extend(0), 65536);
    assert_eq!(u.extend(1), 65537);
    // a reordered packet from before the wrap
    assert_eq!(u.extend(65533), 65533);
    assert_eq!(u.highest(), Some(65537));
    assert_eq!(u.extend(3), 65539);
}

#[test]
fn timestamp_wraps_and_goes_below_zero() {
    let mut u = TsUnwrapper::new();
    let start = u32::MAX - 959;
    assert_eq!(u.extend(start), i64::from(start));
    assert_eq!(u.extend(start.wrapping_add(960)), i64::from(start) + 960);
    assert_eq!(u.extend(start.wrapping_add(1920)), i64::from(start) + 1920);
    let mut v = TsUnwrapper::new();
    assert_eq!(v.extend(100), 100);
    assert_eq!(v.extend(u32::MAX - 99), -100);
    assert_eq!(v.highest(), Some(100));
}

#[test]
fn history_remembers_recent_sequence_numbers_only() {
    let mut h = History::new();
    h.mark(5);
    assert!(h.contains(5));
    assert!(!h.contains(6));
    h.mark(5 + HISTORY as i64);
    assert!(!h.contains(5));
    h.mark(-3);
    assert!(h.contains(-3));
}
