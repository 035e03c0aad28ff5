//! Unit tests of `muc`.

use super::*;

fn from(s: &str) -> Jid {
    Jid::parse(s).unwrap()
}

#[test]
fn caps_ver_matches_xep_0115_algorithm() {
    // Recompute by hand from the documented rule to pin the format.
    let ver = caps_ver(false);
    assert_eq!(ver.len(), 28, "base64 of 20 bytes");
    assert_ne!(caps_ver(true), ver, "the caps hash covers opus-red");
    let red: Vec<_> = disco_info(None, true)
        .children()
        .filter_map(|c| c.attr("var").map(str::to_owned))
        .collect();
    assert!(red.iter().any(|v| v == FEATURE_OPUS_RED));
    let q = disco_info(Some("n#v"), false);
    assert_eq!(q.attr("node"), Some("n#v"));
    let vars: Vec<_> = q.children().filter_map(|c| c.attr("var")).collect();
    assert!(vars.contains(&"urn:xmpp:jingle:apps:rtp:audio"));
    assert!(
        !vars
            .iter()
            .any(|v| v.contains("video") || v.contains("sctp") || v.contains("ssrc-rewriting"))
    );
}

#[test]
fn join_presence_has_what_jitsi_needs() {
    let features = vec![FEATURE_JIGASI.to_string()];
    let p = join_presence(&JoinSpec {
        from: "rec@rec.example/r1",
        room: "room@muc.example",
        nick: "jitape0a1b2c3d",
        display_name: "Recorder",
        features: &features,
        password: None,
        opus_red: true,
    });
    assert_eq!(p.attr("to"), Some("room@muc.example/jitape0a1b2c3d"));
    assert!(p.get_child("x", NS_MUC).is_some());
    assert!(p.get_child("c", NS_CAPS).is_some());
    let f = client_child(&p, "features").unwrap();
    assert_eq!(
        f.children().next().unwrap().attr("var"),
        Some(FEATURE_JIGASI)
    );
}

#[test]
fn occupant_presence_is_parsed() {
    let el: Element = r#"<presence xmlns="jabber:component:accept" from="room@muc/a1b2c3d4" to="rec@r/1">
            <nick xmlns="http://jabber.org/protocol/nick">Alice</nick>
            <identity><user><id>u-42</id><name>Alice A.</name><email>a@example.org</email><hidden-from-recorder>true</hidden-from-recorder></user></identity>
            <features><feature var="http://jitsi.org/protocol/jibri"/></features>
            <x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant" jid="u@meet/xyz"/><status code="100"/></x>
        </presence>"#.parse().unwrap();
    let p = parse_presence(&el, &from("room@muc/a1b2c3d4")).unwrap();
    assert_eq!(p.nick, "a1b2c3d4");
    assert_eq!(p.display_name.as_deref(), Some("Alice"));
    assert_eq!(p.identity.id.as_deref(), Some("u-42"));
    assert!(p.identity.hidden_from_recorder);
    assert_eq!(p.features, vec![FEATURE_JIBRI]);
    assert_eq!(p.item.jid.as_ref().unwrap().bare, "u@meet");
    assert!(p.status(100));
    assert!(!p.unavailable);
}

#[test]
fn destroy_kick_and_errors_are_seen() {
    let el: Element = r#"<presence xmlns="jabber:component:accept" type="unavailable" from="room@muc/me"><x xmlns="http://jabber.org/protocol/muc#user"><item role="none"/><destroy/><status code="110"/></x></presence>"#.parse().unwrap();
    let p = parse_presence(&el, &from("room@muc/me")).unwrap();
    assert!(p.unavailable && p.destroyed && p.status(110));
    let el: Element = r#"<presence xmlns="jabber:component:accept" type="error" from="room@muc/me"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>"#.parse().unwrap();
    let p = parse_presence(&el, &from("room@muc/me")).unwrap();
    assert_eq!(p.error.as_deref(), Some("conflict"));
    assert!(parse_presence(&el, &from("room@muc")).is_none());
}
