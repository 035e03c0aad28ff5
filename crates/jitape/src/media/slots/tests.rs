//! Unit tests of `slots`.

use super::*;

#[test]
fn keeps_existing_slots_and_fills_the_lowest_free_one() {
    let mut t = SlotTable::default();
    let c = t.assign(&[10, 20, 30]);
    assert_eq!(c.added, vec![(0, 10), (1, 20), (2, 30)]);
    assert!(c.grew);
    let c = t.assign(&[10, 30]);
    assert_eq!(c.removed, vec![(1, 20)]);
    assert_eq!(t.lines(), &[Some(10), None, Some(30)]);
    let c = t.assign(&[10, 30, 40, 50]);
    assert_eq!(c.added, vec![(1, 40), (3, 50)]);
    assert_eq!(t.lines(), &[Some(10), Some(40), Some(30), Some(50)]);
}

#[test]
fn no_change_is_reported_as_empty() {
    let mut t = SlotTable::default();
    t.assign(&[1, 2]);
    let c = t.assign(&[2, 1, 2]);
    assert!(c.is_empty());
    assert!(!c.grew);
}

#[test]
fn churn_never_grows_beyond_the_peak_concurrency() {
    let mut t = SlotTable::default();
    let mut live: Vec<u32> = (0..5).collect();
    t.assign(&live);
    for cycle in 0..200u32 {
        // one leaves, one joins: five concurrent sources throughout
        live.remove(usize::try_from(cycle % 5).unwrap_or(0));
        live.push(1000 + cycle);
        let c = t.assign(&live);
        assert_eq!(c.added.len(), 1);
        assert_eq!(c.removed.len(), 1);
        assert_eq!(t.len(), 5);
    }
}

#[test]
fn removing_everything_keeps_the_lines() {
    let mut t = SlotTable::default();
    t.assign(&[1, 2, 3]);
    let c = t.assign(&[]);
    assert_eq!(c.removed.len(), 3);
    assert_eq!(t.lines(), &[None, None, None]);
}
