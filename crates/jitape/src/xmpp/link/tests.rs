//! Unit tests of `link`.

use super::*;

#[test]
fn backoff_doubles_to_the_cap_and_resets() {
    let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
    let full: Vec<_> = (0..6).map(|_| b.next_delay(1.0)).collect();
    assert_eq!(
        full,
        [500, 1000, 2000, 4000, 4000, 4000].map(Duration::from_millis)
    );
    assert_eq!(b.next_delay(0.0), Duration::from_secs(2));
    b.reset();
    assert_eq!(b.next_delay(1.0), Duration::from_millis(500));
}

#[test]
fn ping_replies_and_stream_errors_are_recognised() {
    let ok: Element = r#"<iq xmlns="jabber:component:accept" type="error" id="jitape-ping-3"/>"#
        .parse()
        .unwrap();
    assert!(is_ping_reply(&ok, "jitape-ping-3"));
    assert!(!is_ping_reply(&ok, "jitape-ping-4"));
    let se: Element = r#"<error xmlns="http://etherx.jabber.org/streams"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error>"#.parse().unwrap();
    assert!(is_stream_error(&se));
    assert!(describe_refusal(&se).starts_with("conflict"));
}
