//! The `stanza` target: any XML element, as the link would deliver it, through the router's
//! tenant-room normalisation (`xmpp::tenant`) and decision (`router::classify`) and through a conference machine that is joined and in a
//! session.
//!
//! In: fuzz bytes (UTF-8 XML; anything else is skipped). Out: nothing; asserts that
//! - a reply from the router answers an IQ request with its id, and an error reply to a
//!   presence or message happens only for a ghost resource of ours (which is meant to make
//!   Prosody kick it); no error or result is ever answered;
//! - rooms named by a route are bare JIDs on the configured MUC domain;
//! - the machine keeps its [`super::room`] invariants (for traffic the router sends to the
//!   room, replies go to the room), and a valid source-add still works afterwards.

use jitape::router::classify::{Route, classify};
use jitape::xmpp::stanza::{Header, Jid};
use jitape::xmpp::tenant::normalize_inbound;
use minidom::Element;

use super::room::{DOMAIN, MUC, ROOM, Room, US, router_settings};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = text.parse::<Element>() else {
        return;
    };
    let settings = router_settings();
    // As the router does: tenant rooms to their internal form first (idempotent).
    let el = normalize_inbound(&settings.muc_domains, el);
    assert_eq!(
        normalize_inbound(&settings.muc_domains, el.clone()),
        el,
        "normalising twice changed the stanza"
    );
    let route = classify(&settings, &el);
    check_route(&el, &route);
    let to_room = route == Route::Conference(ROOM.into());
    let mut room = Room::in_session();
    room.feed_from(jitape::conference::machine::Input::Stanza(el), to_room);
    room.assert_session_works();
}

fn on_muc(room: &str) -> bool {
    Jid::parse(room).is_some_and(|j| {
        j.resource.is_none() && j.node().is_some() && j.domain() == MUC && j.bare == room
    })
}

fn check_route(el: &Element, route: &Route) {
    let h = Header::of(el);
    match route {
        Route::Reply(r) => check_reply(el, h.as_ref(), r),
        Route::Conference(room) | Route::Invitation { room, .. } => {
            assert!(
                on_muc(room),
                "route to a room outside the MUC domain: {room:?}"
            );
        }
        Route::Module(_) | Route::CatchUp { .. } | Route::Drop(_) => {}
    }
}

fn check_reply(el: &Element, h: Option<&Header>, reply: &Element) {
    let Some(h) = h else {
        panic!("a reply to a non-stanza");
    };
    assert!(
        !h.is_type("error") && !h.is_type("result"),
        "an error or result was answered"
    );
    if h.is_iq_request() {
        assert_eq!(reply.name(), "iq");
        assert!(matches!(reply.attr("type"), Some("result" | "error")));
        assert_eq!(reply.attr("id"), Some(el.attr("id").unwrap_or_default()));
        return;
    }
    assert_eq!(
        reply.attr("type"),
        Some("error"),
        "non-error reply to a non-IQ"
    );
    let to = h.to.as_ref();
    let ours = Jid::parse(US);
    let ghost = to.is_some_and(|t| {
        ours.as_ref().is_some_and(|o| t.bare == o.bare)
            && t.resource.is_some()
            && t.resource != ours.as_ref().and_then(|o| o.resource.clone())
    });
    assert!(
        ghost,
        "error reply to a presence/message that is not for a ghost"
    );
    let from = reply.attr("from").and_then(Jid::parse);
    assert!(
        from.is_some_and(|f| f.domain() == DOMAIN),
        "ghost reply not from our domain"
    );
}
