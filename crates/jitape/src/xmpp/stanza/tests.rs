//! Unit tests of `stanza`.

use super::*;

#[test]
fn jid_parsing_normalises_bare_part_only() {
    let j = Jid::parse("WeeklySync@MUC.meet.jitsi/Focus").unwrap();
    assert_eq!(j.bare, "weeklysync@muc.meet.jitsi");
    assert_eq!(j.resource.as_deref(), Some("Focus"));
    assert_eq!(j.domain(), "muc.meet.jitsi");
    assert_eq!(j.node(), Some("weeklysync"));
    let d = Jid::parse("recorder.meet.jitsi").unwrap();
    assert_eq!(d.domain(), "recorder.meet.jitsi");
    assert_eq!(d.node(), None);
    // Resources may contain '/' and '@'.
    let r = Jid::parse("a@b/c/d@e").unwrap();
    assert_eq!(r.resource.as_deref(), Some("c/d@e"));
}

#[test]
fn hostile_jids_are_refused() {
    let long = "a".repeat(5000);
    for bad in [
        "", "@x", "a@", "a@b/", "a b@c", "a\0@c", "a@b@c", &long, "/r",
    ] {
        assert_eq!(Jid::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn iq_replies_swap_addresses_and_keep_the_id() {
    let req: Element = r#"<iq xmlns="jabber:component:accept" type="get" id="b64==" from="room@muc/focus" to="rec@rec.example/r1"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>"#.parse().unwrap();
    let res = iq_result(&req, None);
    assert_eq!(res.attr("to"), Some("room@muc/focus"));
    assert_eq!(res.attr("from"), Some("rec@rec.example/r1"));
    assert_eq!(res.attr("id"), Some("b64=="));
    assert_eq!(res.attr("type"), Some("result"));
    let err = iq_error(&req, "bad-request", Some("no sid"));
    assert_eq!(err.attr("type"), Some("error"));
    assert_eq!(error_condition(&err).as_deref(), Some("bad-request"));
    let e = err.get_child("error", NS_COMPONENT).unwrap();
    assert_eq!(e.attr("type"), Some("modify"));
}

#[test]
fn headers_are_read() {
    let p: Element = r#"<presence xmlns="jabber:component:accept" type="unavailable" from="r@m/x" to="rec@d/1"/>"#.parse().unwrap();
    let h = Header::of(&p).unwrap();
    assert_eq!(h.kind, Kind::Presence);
    assert!(h.is_type("unavailable"));
    assert!(!h.is_iq_request());
    let other: Element = r#"<handshake xmlns="jabber:component:accept"/>"#.parse().unwrap();
    assert_eq!(Header::of(&other), None);
}
