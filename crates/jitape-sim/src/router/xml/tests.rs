//! Unit tests of `xml`.

use super::*;

fn parse(xml: &str) -> Element {
    xml.parse().expect("test XML")
}

#[test]
fn error_reply_swaps_addresses_and_omits_by_equal_to_from() {
    let iq = parse(
        "<iq xmlns='jabber:component:accept' type='get' id='a1' from='x@c/r' to='room@muc'><q xmlns='u'/></iq>",
    );
    let err = error_reply(
        &iq,
        ErrorSpec::new("cancel", "item-not-found").by("room@muc"),
    )
    .expect("reply");
    assert_eq!(err.attr("from"), Some("room@muc"));
    assert_eq!(err.attr("to"), Some("x@c/r"));
    assert_eq!(err.attr("id"), Some("a1"));
    assert_eq!(err.attr("type"), Some("error"));
    let error = err.get_child("error", NS_COMPONENT).expect("error child");
    assert_eq!(error.attr("by"), None);
    assert!(error.has_child("item-not-found", NS_STANZAS));
    assert_eq!(err.children().count(), 1, "original payload is not copied");
}

#[test]
fn errors_are_never_answered() {
    let err = parse("<message xmlns='jabber:component:accept' type='error' from='a@b' to='c@d'/>");
    assert!(error_reply(&err, ErrorSpec::new("cancel", "gone")).is_none());
    assert!(!may_bounce(&err));
    let result = parse("<iq xmlns='jabber:component:accept' type='result' from='a@b' to='c@d'/>");
    assert!(!may_bounce(&result));
}

#[test]
fn error_condition_follows_prosody_get_error() {
    let none = parse("<presence xmlns='jabber:component:accept' type='error'/>");
    assert_eq!(error_condition(&none), None);
    let undefined = parse(
        "<presence xmlns='jabber:component:accept' type='error'><error type='cancel'/></presence>",
    );
    assert_eq!(
        error_condition(&undefined),
        Some(("undefined-condition".to_owned(), None))
    );
    let full = parse(
        "<message xmlns='jabber:component:accept' type='error'><error type='cancel'>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>why</text>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    );
    assert_eq!(
        error_condition(&full),
        Some(("service-unavailable".to_owned(), Some("why".to_owned())))
    );
}

#[test]
fn addr_normalises_like_prosody_jid_prep() {
    let a = Addr::parse("ConfA@MUC.Localhost/Nick").expect("valid");
    assert_eq!(a.bare(), "confa@muc.localhost");
    assert_eq!(a.full(), "confa@muc.localhost/Nick");
    assert!(Addr::parse("a@b@c").is_none());
    assert_eq!(domain_of("x@d.example/r"), "d.example");
    assert_eq!(bare_of("d.example/r"), "d.example");
}

#[test]
fn muc_x_is_filtered_and_other_payload_kept() {
    let p = parse(
        "<presence xmlns='jabber:component:accept' id='p1'><x xmlns='http://jabber.org/protocol/muc'/>\
             <nick xmlns='http://jabber.org/protocol/nick'>N</nick><stats-id>s</stats-id></presence>",
    );
    let f = without_muc_x(&p);
    assert_eq!(f.attr("id"), Some("p1"));
    assert!(!f.has_child("x", NS_MUC));
    assert!(f.has_child("nick", "http://jabber.org/protocol/nick"));
    assert!(f.has_child("stats-id", NS_COMPONENT));
}
