//! Routing decisions, stanza by stanza.

use super::*;

fn settings() -> ClassifySettings {
    ClassifySettings {
        domain: "rec.example".into(),
        our_jid: "rec@rec.example/i1".into(),
        muc_domains: vec!["muc.example".into()],
        opus_red: true,
    }
}

fn el(s: &str) -> Element {
    s.parse().unwrap()
}

#[test]
fn ping_and_disco_are_answered_for_any_of_our_jids() {
    let s = settings();
    let ping = el(
        r#"<iq xmlns="jabber:component:accept" type="get" id="p1" from="muc.example" to="rec.example"><ping xmlns="urn:xmpp:ping"/></iq>"#,
    );
    let Route::Reply(r) = classify(&s, &ping) else {
        panic!()
    };
    assert_eq!(
        (r.attr("type"), r.attr("id"), r.attr("to")),
        (Some("result"), Some("p1"), Some("muc.example"))
    );
    let disco = el(
        r#"<iq xmlns="jabber:component:accept" type="get" id="Zm9v" from="room@muc.example/focus" to="rec@rec.example/i1"><query xmlns="http://jabber.org/protocol/disco#info" node="n#v"/></iq>"#,
    );
    let Route::Reply(r) = classify(&s, &disco) else {
        panic!()
    };
    assert_eq!(r.attr("from"), Some("rec@rec.example/i1"));
    assert_eq!(r.attr("to"), Some("room@muc.example/focus"));
    assert_eq!(r.attr("id"), Some("Zm9v"));
    let q = r.get_child("query", NS_DISCO_INFO).unwrap();
    assert_eq!(q.attr("node"), Some("n#v"));
}

#[test]
fn invitations_for_configured_muc_domains_only() {
    let s = settings();
    let direct = el(
        r#"<message xmlns="jabber:component:accept" from="u@meet/x" to="rec.example"><x xmlns="jabber:x:conference" jid="Room1@muc.example"/></message>"#,
    );
    assert_eq!(
        classify(&s, &direct),
        Route::Invitation {
            room: "room1@muc.example".into(),
            via: "direct invitation"
        }
    );
    let elsewhere = el(
        r#"<message xmlns="jabber:component:accept" from="u@meet/x" to="rec.example"><x xmlns="jabber:x:conference" jid="room@other.example"/></message>"#,
    );
    assert!(matches!(classify(&s, &elsewhere), Route::Drop(_)));
    let mediated = el(
        r#"<message xmlns="jabber:component:accept" from="room2@muc.example" to="rec@rec.example"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="u@meet/x"/></x></message>"#,
    );
    assert_eq!(
        classify(&s, &mediated),
        Route::Invitation {
            room: "room2@muc.example".into(),
            via: "mediated invitation"
        }
    );
}

#[test]
fn room_traffic_goes_to_the_conference() {
    let s = settings();
    let p = el(
        r#"<presence xmlns="jabber:component:accept" from="Room@muc.example/a1" to="rec@rec.example/i1"/>"#,
    );
    assert_eq!(
        classify(&s, &p),
        Route::Conference("room@muc.example".into())
    );
    let jingle = el(
        r#"<iq xmlns="jabber:component:accept" type="set" id="x" from="room@muc.example/focus" to="rec@rec.example/i1"><jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="s"/></iq>"#,
    );
    assert_eq!(
        classify(&s, &jingle),
        Route::Conference("room@muc.example".into())
    );
}

#[test]
fn unknown_requests_get_errors_but_messages_never_do() {
    let s = settings();
    let iq = el(
        r#"<iq xmlns="jabber:component:accept" type="set" id="x" from="u@meet/x" to="rec.example"><foo xmlns="urn:foo"/></iq>"#,
    );
    let Route::Reply(r) = classify(&s, &iq) else {
        panic!()
    };
    assert_eq!(
        stanza::error_condition(&r).as_deref(),
        Some("service-unavailable")
    );
    let msg = el(
        r#"<message xmlns="jabber:component:accept" type="chat" from="u@meet/x" to="rec.example"><body>hi</body></message>"#,
    );
    assert!(matches!(classify(&s, &msg), Route::Drop(_)));
    let other = el(
        r#"<presence xmlns="jabber:component:accept" from="room@muc.example/a" to="someone@else.example"/>"#,
    );
    assert!(matches!(classify(&s, &other), Route::Drop(_)));
}

#[test]
fn module_events_and_catchup_answers_are_recognised() {
    let s = settings();
    let ev = el(
        r#"<message xmlns="jabber:component:accept" from="muc.example" to="rec.example"><event xmlns="urn:jitape:prosody:1" type="room-created" room="r@muc.example"/></message>"#,
    );
    assert_eq!(
        classify(&s, &ev),
        Route::Module(ModuleEvent::RoomCreated {
            room: "r@muc.example".into(),
            meeting_id: None,
        })
    );
    // The same message from a room (not the service) is not a module event.
    let fake = el(
        r#"<message xmlns="jabber:component:accept" from="r@muc.example/x" to="rec@rec.example/i1"><event xmlns="urn:jitape:prosody:1" type="room-destroyed" room="r@muc.example"/></message>"#,
    );
    assert!(matches!(classify(&s, &fake), Route::Conference(_)));
    let ok = el(
        r#"<iq xmlns="jabber:component:accept" type="result" id="jitape-catchup-3" from="muc.example" to="rec.example"><rooms xmlns="urn:jitape:prosody:1"/></iq>"#,
    );
    assert_eq!(
        classify(&s, &ok),
        Route::CatchUp {
            id: "jitape-catchup-3".into(),
            rooms: Ok(vec![]),
            shared: None,
        }
    );
    // A service speaks only for its own rooms: others in an event or a catch-up are dropped.
    let foreign = el(
        r#"<message xmlns="jabber:component:accept" from="muc.example" to="rec.example"><event xmlns="urn:jitape:prosody:1" type="room-created" room="r@evil.example"/></message>"#,
    );
    assert!(matches!(classify(&s, &foreign), Route::Drop(_)));
    let mixed = el(
        r#"<iq xmlns="jabber:component:accept" type="result" id="jitape-catchup-5" from="muc.example" to="rec.example"><rooms xmlns="urn:jitape:prosody:1"><room jid="a@evil.example"/><room jid="b@muc.example"/></rooms></iq>"#,
    );
    let Route::CatchUp {
        rooms: Ok(rooms), ..
    } = classify(&s, &mixed)
    else {
        panic!("a catch-up answer");
    };
    let names: Vec<_> = rooms.iter().map(|r| r.room.as_str()).collect();
    assert_eq!(names, ["b@muc.example"]);
    let no = el(
        r#"<iq xmlns="jabber:component:accept" type="error" id="jitape-catchup-4" from="muc.example" to="rec.example"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>"#,
    );
    assert_eq!(
        classify(&s, &no),
        Route::CatchUp {
            id: "jitape-catchup-4".into(),
            rooms: Err("service-unavailable".into()),
            shared: None,
        }
    );
}

#[test]
fn a_catch_up_answer_with_several_instances_gives_the_lease_and_the_rooms_owned_elsewhere() {
    let s = settings();
    let answer = el(
        r#"<iq xmlns="jabber:component:accept" type="result" id="jitape-catchup-7" from="muc.example" to="rec.example"><rooms xmlns="urn:jitape:prosody:1" lease="2.5"><room jid="mine@muc.example"/><elsewhere jid="moved@muc.example" owner="jitape-2.rec.example"/><elsewhere jid="x@evil.example" owner="jitape-2.rec.example"/><instance component="jitape-2.rec.example" state="live" rooms="1"/></rooms></iq>"#,
    );
    let Route::CatchUp {
        rooms: Ok(rooms),
        shared: Some(shared),
        ..
    } = classify(&s, &answer)
    else {
        panic!("a catch-up answer with the lease");
    };
    assert_eq!(rooms.len(), 1);
    assert_eq!(shared.lease, std::time::Duration::from_millis(2500));
    // Only rooms of the answering service.
    assert_eq!(shared.elsewhere, ["moved@muc.example"]);
    // A lease that is not a positive number of seconds: as if there were one instance.
    for bad in ["", "0", "-1", "soon", "NaN"] {
        let answer = el(&format!(
            r#"<iq xmlns="jabber:component:accept" type="result" id="jitape-catchup-8" from="muc.example" to="rec.example"><rooms xmlns="urn:jitape:prosody:1" lease="{bad}"/></iq>"#
        ));
        assert!(
            matches!(classify(&s, &answer), Route::CatchUp { shared: None, .. }),
            "{bad:?}"
        );
    }
}

#[test]
fn traffic_for_a_ghost_of_a_previous_process_is_refused() {
    let s = settings();
    let p = el(
        r#"<presence xmlns="jabber:component:accept" from="room@muc.example/a1" to="rec@rec.example/old" id="p9"/>"#,
    );
    let Route::Reply(r) = classify(&s, &p) else {
        panic!()
    };
    assert_eq!(
        (r.name(), r.attr("type"), r.attr("from"), r.attr("to")),
        (
            "presence",
            Some("error"),
            Some("rec@rec.example/old"),
            Some("room@muc.example/a1")
        )
    );
    assert!(
        r.get_child("error", NS_COMPONENT)
            .unwrap()
            .get_child("gone", NS_STANZAS)
            .is_some()
    );
    let iq = el(
        r#"<iq xmlns="jabber:component:accept" type="set" id="x" from="room@muc.example/focus" to="rec@rec.example/old"><jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s"/></iq>"#,
    );
    let Route::Reply(r) = classify(&s, &iq) else {
        panic!()
    };
    assert_eq!(r.attr("type"), Some("error"));
    // Never answer errors, results or unavailable presences (no loops, nothing to kick).
    for quiet in [
        r#"<presence xmlns="jabber:component:accept" type="unavailable" from="room@muc.example/a1" to="rec@rec.example/old"/>"#,
        r#"<iq xmlns="jabber:component:accept" type="result" id="y" from="room@muc.example/focus" to="rec@rec.example/old"/>"#,
        r#"<message xmlns="jabber:component:accept" type="error" from="room@muc.example" to="rec@rec.example/old"/>"#,
    ] {
        assert!(
            matches!(classify(&s, &el(quiet)), Route::Drop(_)),
            "{quiet}"
        );
    }
    // Our own JID is not a ghost.
    let mine = el(
        r#"<presence xmlns="jabber:component:accept" from="room@muc.example/a1" to="rec@rec.example/i1"/>"#,
    );
    assert!(matches!(classify(&s, &mine), Route::Conference(_)));
}

/// What the router does with an inbound stanza: tenant rooms to their internal form, then
/// classify. Returns the stanza as the conference would get it, and the route.
fn inbound(s: &ClassifySettings, xml: &str) -> (Element, Route) {
    let el = crate::xmpp::tenant::normalize_inbound(&s.muc_domains, el(xml));
    let route = classify(s, &el);
    (el, route)
}

#[test]
fn tenant_rooms_in_either_spelling_are_one_conference_answered_in_the_internal_form() {
    let s = settings();
    let room = "[acme]room@muc.example";
    // Routed by the MUC through mod_muc_domain_mapper: the virtual form. Without the
    // normalisation jitape would not see its own self-presence, and would refuse Jingle.
    let self_presence = r#"<presence xmlns="jabber:component:accept" from="room@muc.acme.example/jitape1" to="rec@rec.example/i1"><x xmlns="http://jabber.org/protocol/muc#user"><status code="110"/></x></presence>"#;
    assert!(matches!(classify(&s, &el(self_presence)), Route::Drop(_)));
    let (p, route) = inbound(&s, self_presence);
    assert_eq!(route, Route::Conference(room.into()));
    assert_eq!(p.attr("from"), Some("[acme]room@muc.example/jitape1"));

    let initiate = r#"<iq xmlns="jabber:component:accept" type="set" id="b64==" from="room@muc.acme.example/focus" to="rec@rec.example/i1"><jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s"/></iq>"#;
    assert!(matches!(classify(&s, &el(initiate)), Route::Reply(_)));
    let (iq, route) = inbound(&s, initiate);
    assert_eq!(route, Route::Conference(room.into()));
    // The conference answers to the stanza's `from`: the internal form, which Prosody routes.
    let reply = stanza::iq_result(&iq, None);
    assert_eq!(reply.attr("to"), Some("[acme]room@muc.example/focus"));
    assert_eq!(reply.attr("id"), Some("b64=="));

    // Replies the MUC sends itself (origin.send) already carry the internal form.
    let (_, route) = inbound(
        &s,
        r#"<presence xmlns="jabber:component:accept" type="error" from="[acme]room@muc.example/jitape1" to="rec@rec.example/i1"/>"#,
    );
    assert_eq!(route, Route::Conference(room.into()));

    // Component-level IQs are answered to the internal form.
    let (_, route) = inbound(
        &s,
        r#"<iq xmlns="jabber:component:accept" type="get" id="d1" from="room@muc.acme.example/focus" to="rec@rec.example/i1"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>"#,
    );
    let Route::Reply(r) = route else { panic!() };
    assert_eq!(r.attr("to"), Some("[acme]room@muc.example/focus"));

    // Invitations in either spelling, and module events (internal), name the same room.
    for invitation in [
        r#"<message xmlns="jabber:component:accept" from="focus@auth.example/f" to="rec.example"><x xmlns="jabber:x:conference" jid="Room@muc.acme.example"/></message>"#,
        r#"<message xmlns="jabber:component:accept" from="focus@auth.example/f" to="rec.example"><x xmlns="jabber:x:conference" jid="[acme]room@muc.example"/></message>"#,
    ] {
        assert_eq!(
            inbound(&s, invitation).1,
            Route::Invitation {
                room: room.into(),
                via: "direct invitation"
            }
        );
    }
    let (_, route) = inbound(
        &s,
        r#"<message xmlns="jabber:component:accept" from="room@muc.acme.example" to="rec@rec.example"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="u@meet/x"/></x></message>"#,
    );
    assert_eq!(
        route,
        Route::Invitation {
            room: room.into(),
            via: "mediated invitation"
        }
    );
    let (_, route) = inbound(
        &s,
        r#"<message xmlns="jabber:component:accept" from="muc.example" to="rec.example"><event xmlns="urn:jitape:prosody:1" type="room-created" room="[acme]room@muc.example"/></message>"#,
    );
    let Route::Module(ev) = route else { panic!() };
    assert_eq!(ev.room(), room);

    // A ghost of a previous jitape in a tenant room: the error goes to the internal form.
    let (_, route) = inbound(
        &s,
        r#"<presence xmlns="jabber:component:accept" from="room@muc.acme.example/a1" to="rec@rec.example/old"/>"#,
    );
    let Route::Reply(r) = route else { panic!() };
    assert_eq!(r.attr("to"), Some("[acme]room@muc.example/a1"));

    // A look-alike domain is not a tenant of ours.
    let (_, route) = inbound(
        &s,
        r#"<presence xmlns="jabber:component:accept" from="room@muc.acme.example.evil/a1" to="rec@rec.example/i1"/>"#,
    );
    assert!(matches!(route, Route::Drop(_)));
}
