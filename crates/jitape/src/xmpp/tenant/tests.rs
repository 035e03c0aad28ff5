//! The two spellings of a tenant room, and the names users see.

use super::*;

fn domains() -> Vec<String> {
    vec!["muc.meet.jitsi".into(), "breakout.meet.jitsi".into()]
}

fn internal(s: &str) -> Option<String> {
    to_internal_str(&domains(), s)
}

#[test]
fn the_virtual_form_becomes_the_internal_form_resource_kept() {
    let cases = [
        ("room@muc.acme.meet.jitsi", "[acme]room@muc.meet.jitsi"),
        (
            "room@muc.acme.meet.jitsi/focus",
            "[acme]room@muc.meet.jitsi/focus",
        ),
        // Resources keep their case and may hold '/' and '@'.
        (
            "room@muc.acme.meet.jitsi/Jo/x@y",
            "[acme]room@muc.meet.jitsi/Jo/x@y",
        ),
        // Every configured domain has its own tenant form.
        (
            "b1@breakout.acme.meet.jitsi",
            "[acme]b1@breakout.meet.jitsi",
        ),
        // Bare JIDs are lowercased (Prosody's nodeprep/nameprep did so already).
        ("Room@MUC.Acme.Meet.Jitsi/N", "[acme]room@muc.meet.jitsi/N"),
        // docker-jitsi-meet spells a dotted URL tenant with '_'.
        ("r@muc.big_co.meet.jitsi", "[big_co]r@muc.meet.jitsi"),
        // A node that already starts with brackets gets one more pair, as the mapper's own
        // internal-to-virtual rewrite would take `[t2][t]r` apart into `[t]r@muc.t2...`.
        ("[t]r@muc.t2.meet.jitsi", "[t2][t]r@muc.meet.jitsi"),
        ("%c3%bcber@muc.t.meet.jitsi", "[t]%c3%bcber@muc.meet.jitsi"),
    ];
    for (virt, int) in cases {
        assert_eq!(internal(virt).as_deref(), Some(int), "{virt}");
    }
}

#[test]
fn anything_else_is_left_alone() {
    for jid in [
        // Already internal, or a plain room.
        "[acme]room@muc.meet.jitsi/focus",
        "room@muc.meet.jitsi",
        // No node: a MUC service (tenant or not) is not a room.
        "muc.acme.meet.jitsi",
        "muc.meet.jitsi",
        // More than one label, an empty one, brackets in the label.
        "room@muc.a.b.meet.jitsi",
        "room@muc..meet.jitsi",
        "room@muc.[x].meet.jitsi",
        "room@muc.a]b.meet.jitsi",
        // Domains that merely contain or end with the base or start with the prefix.
        "room@xmuc.acme.meet.jitsi",
        "room@muc.acme.evilmeet.jitsi",
        "room@muc.acme.meet.jitsi.evil.example",
        "room@mucacme.meet.jitsi",
        "room@acme.meet.jitsi",
        "room@meet.jitsi",
        "room@other.acme.meet.jitsi",
        "focus@auth.meet.jitsi/focus",
        // Not JIDs at all.
        "",
        "a b@muc.acme.meet.jitsi",
    ] {
        assert_eq!(internal(jid), None, "{jid:?}");
    }
}

#[test]
fn a_configured_domain_that_looks_virtual_is_its_own() {
    let d = vec![
        "muc.meet.jitsi".to_string(),
        "muc.acme.meet.jitsi".to_string(),
    ];
    assert_eq!(to_internal_str(&d, "r@muc.acme.meet.jitsi"), None);
    assert_eq!(
        to_internal_str(&d, "r@muc.other.meet.jitsi").as_deref(),
        Some("[other]r@muc.meet.jitsi")
    );
    // A single-label MUC domain has no base: nothing is its tenant form.
    let single = vec!["muc".to_string()];
    assert_eq!(to_internal_str(&single, "r@muc.acme"), None);
    // Configured domains in capitals (not what the config loader gives, but harmless).
    let caps = vec!["MUC.Meet.Jitsi".to_string()];
    assert_eq!(
        to_internal_str(&caps, "r@muc.acme.meet.jitsi").as_deref(),
        Some("[acme]r@muc.meet.jitsi")
    );
}

fn el(s: &str) -> Element {
    s.parse().unwrap()
}

#[test]
fn inbound_stanzas_get_from_and_invitation_rooms_rewritten() {
    let p = normalize_inbound(
        &domains(),
        el(
            r#"<presence xmlns="jabber:component:accept" from="room@muc.acme.meet.jitsi/jitape1" to="rec@rec.example/i"><x xmlns="http://jabber.org/protocol/muc#user"><status code="110"/></x></presence>"#,
        ),
    );
    assert_eq!(p.attr("from"), Some("[acme]room@muc.meet.jitsi/jitape1"));
    assert_eq!(
        p.attr("to"),
        Some("rec@rec.example/i"),
        "to is never touched"
    );
    assert!(p.children().next().is_some(), "payload kept");

    let invite = normalize_inbound(
        &domains(),
        el(
            r#"<message xmlns="jabber:component:accept" from="focus@auth.meet.jitsi/f" to="rec.example"><x xmlns="jabber:x:conference" jid="Room@muc.acme.meet.jitsi"/></message>"#,
        ),
    );
    assert_eq!(invite.attr("from"), Some("focus@auth.meet.jitsi/f"));
    let x = invite.get_child("x", NS_CONFERENCE).unwrap();
    assert_eq!(x.attr("jid"), Some("[acme]room@muc.meet.jitsi"));

    // An internal-form stanza (a join error Prosody sent with origin.send) is unchanged.
    let raw = r#"<presence xmlns="jabber:component:accept" type="error" from="[acme]room@muc.meet.jitsi/jitape1" to="rec@rec.example/i"/>"#;
    assert_eq!(normalize_inbound(&domains(), el(raw)), el(raw));
}
