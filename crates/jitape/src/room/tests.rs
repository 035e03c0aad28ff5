//! Unit tests of `room`.

use super::*;
#[test]
fn room_names_are_the_urls() {
    let cases = [
        ("[acme]weekly@muc.meet.jitsi", Some("acme"), "weekly"),
        ("weekly@muc.meet.jitsi", None, "weekly"),
        ("[acme]caf%c3%a9@muc.meet.jitsi/nick", Some("acme"), "café"),
        ("%e4%bc%9a%e8%ad%b0@muc.meet.jitsi", None, "会議"),
        ("[t2][t]r@muc.meet.jitsi", Some("t2"), "[t]r"),
        // Not a tenant: empty brackets, nothing after them, no closing bracket.
        ("[]r@muc.meet.jitsi", None, "[]r"),
        ("[t]@muc.meet.jitsi", None, "[t]"),
        ("[tr@muc.meet.jitsi", None, "[tr"),
        // Broken escapes stay; bytes that are not UTF-8 keep the node as it is.
        ("50%25+off%zz%4@muc.meet.jitsi", None, "50%+off%zz%4"),
        ("%ff%fe@muc.meet.jitsi", None, "%ff%fe"),
        ("%+1@muc.meet.jitsi", None, "%+1"),
        ("muc.meet.jitsi", None, "muc.meet.jitsi"),
    ];
    for (jid, tenant, room) in cases {
        let n = RoomName::of(jid);
        assert_eq!(
            (n.tenant.as_deref(), n.room.as_str()),
            (tenant, room),
            "{jid}"
        );
    }
    assert_eq!(
        RoomName::of("[acme]caf%c3%a9@muc.meet.jitsi").to_string(),
        "acme/café"
    );
    assert_eq!(RoomName::of("weekly@muc.meet.jitsi").to_string(), "weekly");
}

#[test]
fn a_room_jid_is_a_bare_lowercased_node_at_domain() {
    let j = RoomJid::parse("WeeklySync@MUC.meet.jitsi/focus").expect("a room");
    assert_eq!(j.as_str(), "weeklysync@muc.meet.jitsi");
    assert_eq!(j.to_string(), "weeklysync@muc.meet.jitsi");
    let t = RoomJid::parse("[acme]caf%c3%a9@muc.meet.jitsi").expect("a tenant room");
    assert_eq!(t.name().to_string(), "acme/café");
    for bad in [
        "",
        "muc.meet.jitsi",
        "@muc.meet.jitsi",
        "room@",
        "a@b@c",
        "a b@muc",
        "/r",
    ] {
        assert_eq!(RoomJid::parse(bad), None, "{bad:?}");
    }
}
