//! Unit tests of `gate`.

use super::*;
use minidom::Element;
use std::time::Duration;

#[test]
fn a_burst_is_allowed_then_the_rate_holds() {
    let t0 = Instant::now();
    let mut l = IqLimiter::new(10, 5, 100);
    let first: Vec<bool> = (0..7).map(|_| l.allow("mallory", t0)).collect();
    assert_eq!(first, [true, true, true, true, true, false, false]);
    // 10 per second: one more every 100 ms.
    assert!(!l.allow("mallory", t0 + Duration::from_millis(50)));
    assert!(l.allow("mallory", t0 + Duration::from_millis(160)));
    assert!(!l.allow("mallory", t0 + Duration::from_millis(170)));
    // However long the pause, the allowance never exceeds the burst.
    let later = t0 + Duration::from_secs(3600);
    assert_eq!((0..50).filter(|_| l.allow("mallory", later)).count(), 5);
    // Senders have separate buckets.
    assert!(l.allow("alice", t0));
}

#[test]
fn the_sender_map_stays_bounded_under_a_flood_of_new_names() {
    let t0 = Instant::now();
    let mut l = IqLimiter::new(1, 2, 1000);
    for i in 0..20_000 {
        assert!(l.allow(&format!("n{i}"), t0 + Duration::from_secs(i)));
    }
    assert!(l.senders() <= 1000, "{}", l.senders());
    // All at one instant: nobody's bucket is full, so new names are refused instead.
    let t1 = t0 + Duration::from_secs(100_000);
    let allowed = (0..20_000)
        .filter(|i| l.allow(&format!("m{i}"), t1))
        .count();
    assert!(l.senders() <= 1000);
    assert_eq!(allowed, 1000);
}

fn header(xml: &str) -> Header {
    let el: Element = xml.parse().unwrap();
    Header::of(&el).unwrap()
}

#[test]
fn occupants_are_limited_and_the_focus_module_and_server_are_not() {
    let t0 = Instant::now();
    let mut g = IqGate::new(1, 3, "focus", &["muc.example".to_string()]);
    let iq = |from: &str, ty: &str| {
        header(&format!(
            "<iq xmlns='jabber:component:accept' type='{ty}' id='1' from='{from}' to='rec.example'/>"
        ))
    };
    let count = |g: &mut IqGate, h: &Header| (0..50).filter(|_| g.admit(h, t0)).count();
    assert_eq!(count(&mut g, &iq("room@muc.example/mallory", "get")), 3);
    assert_eq!(count(&mut g, &iq("room@muc.example/alice", "set")), 3);
    assert_eq!(count(&mut g, &iq("other@muc.example/mallory", "get")), 3);
    assert_eq!(count(&mut g, &iq("mallory@evil.example/x", "get")), 3);
    assert_eq!(count(&mut g, &iq("room@muc.example/focus", "set")), 50);
    assert_eq!(count(&mut g, &iq("muc.example", "get")), 50);
    assert_eq!(count(&mut g, &iq("example", "get")), 50);
    // Answers and other stanzas are never limited.
    assert_eq!(count(&mut g, &iq("room@muc.example/mallory", "result")), 50);
    let presence = header(
        "<presence xmlns='jabber:component:accept' from='room@muc.example/mallory' to='rec.example'/>",
    );
    assert_eq!(count(&mut g, &presence), 50);
}
