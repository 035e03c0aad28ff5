//! Tests of the pure MUC core: stanzas in, stanzas out, no sockets.

use minidom::Element;

use super::*;
use crate::router::xml::{NS_COMPONENT, NS_MUC_USER, NS_STANZAS};

const MUC: &str = "muc.test";
const ROOM: &str = "room@muc.test";
const FOCUS: &str = "focus@sim.test/focus";
const REC: &str = "rec@rec.test/r1";
const ALICE: &str = "alice@sim.test/a";

fn service() -> MucService {
    MucService::new(MUC, &[], 7)
}

fn xml(s: &str) -> Element {
    s.parse().expect("test XML")
}

fn send(svc: &mut MucService, s: &str) -> Vec<Element> {
    let mut out = Vec::new();
    svc.handle(xml(s), &mut out);
    out
}

const JOIN_PAYLOAD: &str = "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>\
    <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>\
    <nick xmlns='http://jabber.org/protocol/nick'>Nick</nick>\
    <features><feature var='http://jitsi.org/protocol/jigasi'/></features>\
    <SourceInfo>{}</SourceInfo><stats-id>sid</stats-id>";

fn join(svc: &mut MucService, from: &str, nick: &str) -> Vec<Element> {
    send(
        svc,
        &format!(
            "<presence xmlns='jabber:component:accept' id='j-{nick}' from='{from}' to='{ROOM}/{nick}'>{JOIN_PAYLOAD}</presence>"
        ),
    )
}

fn leave(svc: &mut MucService, from: &str, nick: &str) -> Vec<Element> {
    send(
        svc,
        &format!(
            "<presence xmlns='jabber:component:accept' type='unavailable' from='{from}' to='{ROOM}/{nick}'/>"
        ),
    )
}

/// The muc#user `<x/>` children as a compact list: status codes, "item", "destroy".
fn x_shape(p: &Element) -> Vec<String> {
    let Some(x) = p.get_child("x", NS_MUC_USER) else {
        return Vec::new();
    };
    x.children()
        .map(|c| match c.name() {
            "status" => c.attr("code").unwrap_or("?").to_owned(),
            other => other.to_owned(),
        })
        .collect()
}

fn item(p: &Element) -> &Element {
    p.get_child("x", NS_MUC_USER)
        .and_then(|x| x.get_child("item", NS_MUC_USER))
        .expect("item")
}

fn addressed<'a>(out: &'a [Element], to: &str) -> Vec<&'a Element> {
    out.iter().filter(|s| s.attr("to") == Some(to)).collect()
}

fn condition(s: &Element) -> Option<String> {
    s.get_child("error", NS_COMPONENT)
        .and_then(|e| {
            e.children()
                .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        })
        .map(|c| c.name().to_owned())
}

#[test]
fn creator_gets_201_100_item_110_then_the_empty_subject() {
    let mut svc = service();
    let out = join(&mut svc, FOCUS, "focus");
    assert_eq!(out.len(), 2);
    let own = &out[0];
    assert_eq!(own.name(), "presence");
    assert_eq!(own.attr("from"), Some("room@muc.test/focus"));
    assert_eq!(own.attr("to"), Some(FOCUS));
    assert_eq!(x_shape(own), ["201", "100", "item", "110"]);
    assert_eq!(item(own).attr("affiliation"), Some("owner"));
    assert_eq!(item(own).attr("role"), Some("moderator"));
    assert_eq!(item(own).attr("jid"), Some(FOCUS));
    let subject = &out[1];
    assert_eq!(subject.name(), "message");
    assert_eq!(subject.attr("type"), Some("groupchat"));
    assert_eq!(subject.attr("from"), Some(ROOM));
    assert_eq!(
        subject.get_child("subject", NS_COMPONENT).map(|s| s.text()),
        Some(String::new())
    );
    let rooms = svc.snapshot();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].jid, ROOM);
}

#[test]
fn joiner_sees_existing_occupants_first_and_others_see_its_payload() {
    let mut svc = service();
    join(&mut svc, FOCUS, "focus");
    let out = join(&mut svc, REC, "rec7");
    let names: Vec<(Option<&str>, Option<&str>)> =
        out.iter().map(|s| (s.attr("from"), s.attr("to"))).collect();
    assert_eq!(
        names,
        [
            (Some("room@muc.test/focus"), Some(REC)),
            (Some("room@muc.test/rec7"), Some(FOCUS)),
            (Some("room@muc.test/rec7"), Some(REC)),
            (Some(ROOM), Some(REC)),
        ]
    );
    assert_eq!(x_shape(&out[0]), ["item"]);
    assert_eq!(x_shape(&out[1]), ["item"]);
    assert_eq!(x_shape(&out[2]), ["100", "item", "110"]);
    let to_focus = &out[1];
    assert_eq!(
        to_focus.attr("id"),
        Some("j-rec7"),
        "original presence id kept"
    );
    assert_eq!(item(to_focus).attr("jid"), Some(REC));
    assert_eq!(item(to_focus).attr("role"), Some("participant"));
    assert_eq!(item(to_focus).attr("affiliation"), Some("none"));
    assert!(to_focus.has_child("c", "http://jabber.org/protocol/caps"));
    assert!(to_focus.has_child("nick", "http://jabber.org/protocol/nick"));
    assert!(to_focus.has_child("features", NS_COMPONENT));
    assert!(to_focus.has_child("SourceInfo", NS_COMPONENT));
    assert!(to_focus.has_child("stats-id", NS_COMPONENT));
    assert!(
        !to_focus.has_child("x", "http://jabber.org/protocol/muc"),
        "join <x/> filtered"
    );
    assert_eq!(
        to_focus.children().last().map(|c| (c.name(), c.ns())),
        Some(("x", NS_MUC_USER.to_owned())),
        "muc#user x appended last"
    );
}

#[test]
fn room_names_are_nodeprepped() {
    let mut svc = service();
    send(
        &mut svc,
        &format!(
            "<presence xmlns='jabber:component:accept' from='{FOCUS}' to='ConfA@muc.test/focus'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ),
    );
    send(
        &mut svc,
        &format!(
            "<presence xmlns='jabber:component:accept' from='{REC}' to='confa@muc.test/rec'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ),
    );
    let rooms = svc.snapshot();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].jid, "confa@muc.test");
    assert_eq!(rooms[0].occupants.len(), 2);
}

#[test]
fn nick_conflict_is_a_presence_error_from_the_occupant_jid() {
    let mut svc = service();
    join(&mut svc, FOCUS, "focus");
    let out = join(&mut svc, ALICE, "focus");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].attr("type"), Some("error"));
    assert_eq!(out[0].attr("from"), Some("room@muc.test/focus"));
    assert_eq!(out[0].attr("to"), Some(ALICE));
    assert_eq!(condition(&out[0]).as_deref(), Some("conflict"));
    let by = out[0]
        .get_child("error", NS_COMPONENT)
        .and_then(|e| e.attr("by"));
    assert_eq!(by, Some(ROOM));
}

#[test]
fn presence_without_muc_x_neither_creates_nor_joins() {
    let mut svc = service();
    let out = send(
        &mut svc,
        &format!("<presence xmlns='jabber:component:accept' from='{FOCUS}' to='{ROOM}/focus'/>"),
    );
    assert_eq!(condition(&out[0]).as_deref(), Some("item-not-found"));
    assert!(svc.snapshot().is_empty());
    join(&mut svc, FOCUS, "focus");
    let out = send(
        &mut svc,
        &format!("<presence xmlns='jabber:component:accept' from='{REC}' to='{ROOM}/rec'/>"),
    );
    assert_eq!(condition(&out[0]).as_deref(), Some("item-not-found"));
    assert_eq!(svc.snapshot()[0].occupants.len(), 1);
}

#[test]
fn update_and_leave_are_broadcast_and_the_empty_room_disappears() {
    let mut svc = service();
    join(&mut svc, FOCUS, "focus");
    join(&mut svc, REC, "rec");
    let out = send(
        &mut svc,
        &format!(
            "<presence xmlns='jabber:component:accept' from='{FOCUS}' to='{ROOM}/focus'><SourceInfo>{{\"a\":1}}</SourceInfo></presence>"
        ),
    );
    let to_rec = addressed(&out, REC);
    assert_eq!(to_rec.len(), 1);
    assert_eq!(
        to_rec[0]
            .get_child("SourceInfo", NS_COMPONENT)
            .map(|s| s.text())
            .as_deref(),
        Some("{\"a\":1}")
    );
    assert_eq!(x_shape(addressed(&out, FOCUS)[0]), ["item", "110"]);

    let out = leave(&mut svc, REC, "rec");
    let to_focus = addressed(&out, FOCUS);
    assert_eq!(to_focus[0].attr("type"), Some("unavailable"));
    assert_eq!(item(to_focus[0]).attr("role"), Some("none"));
    let to_rec = addressed(&out, REC);
    assert_eq!(to_rec[0].attr("type"), Some("unavailable"));
    assert_eq!(x_shape(to_rec[0]), ["item", "110"]);

    leave(&mut svc, FOCUS, "focus");
    assert!(svc.snapshot().is_empty());
}

fn two_occupants() -> MucService {
    let mut svc = service();
    join(&mut svc, FOCUS, "focus");
    join(&mut svc, REC, "rec");
    svc
}

#[test]
fn iq_to_occupant_gets_an_opaque_id_and_the_reply_finds_its_way_back() {
    let mut svc = two_occupants();
    let out = send(
        &mut svc,
        &format!(
            "<iq xmlns='jabber:component:accept' type='set' id='orig-1' from='{FOCUS}' to='{ROOM}/rec'><jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'/></iq>"
        ),
    );
    assert_eq!(out.len(), 1);
    let relayed = &out[0];
    assert_eq!(relayed.attr("from"), Some("room@muc.test/focus"));
    assert_eq!(relayed.attr("to"), Some(REC));
    let token = relayed.attr("id").expect("id").to_owned();
    assert_ne!(token, "orig-1");
    assert!(
        relayed.has_child("jingle", "urn:xmpp:jingle:1"),
        "payload untouched"
    );

    let reply = format!(
        "<iq xmlns='jabber:component:accept' type='result' id='{token}' from='{REC}' to='{ROOM}/focus'/>"
    );
    let back = send(&mut svc, &reply);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].attr("from"), Some("room@muc.test/rec"));
    assert_eq!(back[0].attr("to"), Some(FOCUS));
    assert_eq!(back[0].attr("id"), Some("orig-1"));

    let forged = format!(
        "<iq xmlns='jabber:component:accept' type='result' id='{token}' from='rec@rec.test/other' to='{ROOM}/focus'/>"
    );
    assert!(
        send(&mut svc, &forged).is_empty(),
        "reply from another full JID is dropped"
    );
    let bare = format!(
        "<iq xmlns='jabber:component:accept' type='result' id='{token}' from='rec@rec.test' to='{ROOM}/focus'/>"
    );
    assert_eq!(
        send(&mut svc, &bare).len(),
        1,
        "Prosody accepts the bare JID too"
    );
    let garbage = format!(
        "<iq xmlns='jabber:component:accept' type='result' id='orig-1' from='{REC}' to='{ROOM}/focus'/>"
    );
    assert!(send(&mut svc, &garbage).is_empty());
}

#[test]
fn iq_from_a_non_occupant_or_to_a_missing_nick_is_refused() {
    let mut svc = two_occupants();
    let out = send(
        &mut svc,
        &format!(
            "<iq xmlns='jabber:component:accept' type='get' id='q' from='{ALICE}' to='{ROOM}/rec'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ),
    );
    assert_eq!(condition(&out[0]).as_deref(), Some("not-acceptable"));
    assert_eq!(out[0].attr("to"), Some(ALICE));
    let text = out[0]
        .get_child("error", NS_COMPONENT)
        .and_then(|e| e.get_child("text", NS_STANZAS))
        .map(|t| t.text());
    assert_eq!(
        text.as_deref(),
        Some("You are not currently connected to this chat")
    );
    let out = send(
        &mut svc,
        &format!(
            "<iq xmlns='jabber:component:accept' type='get' id='q' from='{FOCUS}' to='{ROOM}/nobody'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ),
    );
    assert_eq!(condition(&out[0]).as_deref(), Some("item-not-found"));
}

#[test]
fn self_ping_is_answered_by_the_room() {
    let mut svc = two_occupants();
    let out = send(
        &mut svc,
        &format!(
            "<iq xmlns='jabber:component:accept' type='get' id='p' from='{REC}' to='{ROOM}/rec'><ping xmlns='urn:xmpp:ping'/></iq>"
        ),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].attr("type"), Some("result"));
    assert_eq!(out[0].attr("to"), Some(REC));
    assert_eq!(out[0].attr("id"), Some("p"));
}

#[test]
fn destroy_gives_each_occupant_only_its_own_unavailable() {
    let mut svc = two_occupants();
    let refused = send(
        &mut svc,
        &format!(
            "<iq xmlns='jabber:component:accept' type='set' id='d' from='{REC}' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>"
        ),
    );
    assert_eq!(condition(&refused[0]).as_deref(), Some("forbidden"));
    let out = send(
        &mut svc,
        &format!(
            "<iq xmlns='jabber:component:accept' type='set' id='d' from='{FOCUS}' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='new@muc.test'><reason>bye</reason></destroy></query></iq>"
        ),
    );
    assert_eq!(out.len(), 3);
    for (p, who, nick) in [(&out[0], FOCUS, "focus"), (&out[1], REC, "rec")] {
        assert_eq!(p.attr("to"), Some(who));
        assert_eq!(p.attr("from"), Some(format!("{ROOM}/{nick}").as_str()));
        assert_eq!(p.attr("type"), Some("unavailable"));
        assert_eq!(x_shape(p), ["destroy", "item", "110"]);
        let destroy = p
            .get_child("x", NS_MUC_USER)
            .and_then(|x| x.get_child("destroy", NS_MUC_USER));
        assert_eq!(destroy.and_then(|d| d.attr("jid")), Some("new@muc.test"));
    }
    assert_eq!(out[2].attr("type"), Some("result"));
    assert!(svc.snapshot().is_empty());
}

fn admin_item(from: &str, item: &str) -> String {
    format!(
        "<iq xmlns='jabber:component:accept' type='set' id='a' from='{from}' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'>{item}</query></iq>"
    )
}

#[test]
fn kick_sends_307_to_everybody_and_needs_a_moderator() {
    let mut svc = two_occupants();
    join(&mut svc, ALICE, "alice");
    let refused = send(
        &mut svc,
        &admin_item(REC, "<item nick='alice' role='none'/>"),
    );
    assert_eq!(condition(&refused[0]).as_deref(), Some("not-allowed"));
    let out = send(
        &mut svc,
        &admin_item(
            FOCUS,
            "<item nick='alice' role='none'><reason>out</reason></item>",
        ),
    );
    let victim = addressed(&out, ALICE);
    assert_eq!(x_shape(victim[0]), ["307", "item", "110"]);
    assert_eq!(victim[0].attr("type"), Some("unavailable"));
    let actor = item(victim[0])
        .get_child("actor", NS_MUC_USER)
        .expect("actor");
    assert_eq!(actor.attr("nick"), Some("focus"));
    assert_eq!(
        actor.attr("jid"),
        None,
        "the victim does not see the actor's JID"
    );
    let to_rec = addressed(&out, REC);
    assert_eq!(x_shape(to_rec[0]), ["307", "item"]);
    let result = addressed(&out, FOCUS);
    assert_eq!(result.last().and_then(|s| s.attr("type")), Some("result"));
    assert!(svc.snapshot()[0].occupant("alice").is_none());
}

#[test]
fn ban_sends_301_and_blocks_rejoining() {
    let mut svc = two_occupants();
    join(&mut svc, ALICE, "alice");
    let out = send(
        &mut svc,
        &admin_item(FOCUS, "<item jid='alice@sim.test' affiliation='outcast'/>"),
    );
    let victim = addressed(&out, ALICE);
    assert_eq!(x_shape(victim[0]), ["301", "item", "110"]);
    assert_eq!(item(victim[0]).attr("affiliation"), Some("outcast"));
    assert_eq!(x_shape(addressed(&out, REC)[0]), ["301", "item"]);
    let again = join(&mut svc, "alice@sim.test/other", "alice2");
    assert_eq!(again.len(), 1);
    assert_eq!(condition(&again[0]).as_deref(), Some("forbidden"));
}

#[test]
fn kickable_message_error_removes_the_sender_with_333() {
    let mut svc = two_occupants();
    let harmless = send(
        &mut svc,
        &format!(
            "<message xmlns='jabber:component:accept' type='error' from='{REC}' to='{ROOM}'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        ),
    );
    assert!(harmless.is_empty());
    let out = send(
        &mut svc,
        &format!(
            "<message xmlns='jabber:component:accept' type='error' from='{REC}' to='{ROOM}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        ),
    );
    let to_focus = addressed(&out, FOCUS);
    assert_eq!(x_shape(to_focus[0]), ["333", "item"]);
    assert_eq!(to_focus[0].attr("type"), Some("unavailable"));
    assert_eq!(
        to_focus[0]
            .get_child("status", NS_COMPONENT)
            .map(|s| s.text())
            .as_deref(),
        Some("Kicked: service unavailable")
    );
    assert_eq!(x_shape(addressed(&out, REC)[0]), ["333", "item", "110"]);
    assert!(svc.snapshot()[0].occupant("rec").is_none());
}

#[test]
fn any_presence_error_from_an_occupant_kicks_it() {
    let mut svc = two_occupants();
    let out = send(
        &mut svc,
        &format!(
            "<presence xmlns='jabber:component:accept' type='error' from='{REC}' to='{ROOM}/focus'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
        ),
    );
    assert_eq!(x_shape(addressed(&out, FOCUS)[0]), ["333", "item"]);
    assert!(svc.snapshot()[0].occupant("rec").is_none());
}

#[test]
fn a_vanished_component_leaves_every_room() {
    let mut svc = two_occupants();
    let mut out = Vec::new();
    svc.remove_occupants_on_domain("rec.test", &mut out);
    let to_focus = addressed(&out, FOCUS);
    assert_eq!(to_focus.len(), 1);
    assert_eq!(x_shape(to_focus[0]), ["333", "item"]);
    assert_eq!(to_focus[0].attr("from"), Some("room@muc.test/rec"));
    assert_eq!(svc.snapshot()[0].occupants.len(), 1);
    svc.remove_occupants_on_domain("sim.test", &mut out);
    assert!(svc.snapshot().is_empty());
}

#[test]
fn groupchat_is_broadcast_from_the_occupant_jid_and_private_messages_relayed() {
    let mut svc = two_occupants();
    let out = send(
        &mut svc,
        &format!(
            "<message xmlns='jabber:component:accept' type='groupchat' from='{FOCUS}' to='{ROOM}'><body>hi</body></message>"
        ),
    );
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|m| m.attr("from") == Some("room@muc.test/focus"))
    );
    assert!(out.iter().all(|m| m.attr("id").is_some()));
    let refused = send(
        &mut svc,
        &format!(
            "<message xmlns='jabber:component:accept' type='groupchat' from='{ALICE}' to='{ROOM}'><body>hi</body></message>"
        ),
    );
    assert_eq!(condition(&refused[0]).as_deref(), Some("not-acceptable"));
    let pm = send(
        &mut svc,
        &format!(
            "<message xmlns='jabber:component:accept' type='chat' from='{REC}' to='{ROOM}/focus'><body>psst</body></message>"
        ),
    );
    assert_eq!(pm.len(), 1);
    assert_eq!(pm[0].attr("from"), Some("room@muc.test/rec"));
    assert_eq!(pm[0].attr("to"), Some(FOCUS));
    assert!(pm[0].has_child("x", NS_MUC_USER));
}

#[test]
fn disco_info_of_room_and_domain() {
    let mut svc = two_occupants();
    let out = send(
        &mut svc,
        &format!(
            "<iq xmlns='jabber:component:accept' type='get' id='i' from='{ALICE}' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ),
    );
    let query = out[0]
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("query");
    let identity = query
        .get_child("identity", "http://jabber.org/protocol/disco#info")
        .expect("identity");
    assert_eq!(identity.attr("category"), Some("conference"));
    assert!(
        query
            .children()
            .any(|f| f.attr("var") == Some("http://jabber.org/protocol/muc"))
    );
    let out = send(
        &mut svc,
        &format!(
            "<iq xmlns='jabber:component:accept' type='get' id='i' from='{ALICE}' to='{MUC}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ),
    );
    let query = out[0]
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("query");
    let identity = query
        .get_child("identity", "http://jabber.org/protocol/disco#info")
        .expect("identity");
    assert_eq!(
        (identity.attr("category"), identity.attr("type")),
        (Some("conference"), Some("text"))
    );
}

#[test]
fn configured_admins_own_every_room() {
    let mut svc = MucService::new(MUC, &["focus@sim.test".to_owned()], 1);
    join(&mut svc, ALICE, "alice");
    let out = join(&mut svc, FOCUS, "focus");
    let own = addressed(&out, FOCUS);
    let own = own
        .iter()
        .find(|p| p.name() == "presence" && p.attr("from") == Some("room@muc.test/focus"));
    assert_eq!(
        own.map(|p| item(p).attr("affiliation")),
        Some(Some("owner"))
    );
    let snapshot = svc.snapshot();
    let focus = snapshot[0].occupant("focus").expect("focus");
    assert_eq!(
        (focus.role, focus.affiliation),
        (Role::Moderator, Affiliation::Owner)
    );
    let alice = snapshot[0].occupant("alice").expect("alice");
    assert_eq!(
        alice.affiliation,
        Affiliation::Owner,
        "the room's creator owns it too"
    );
}

#[test]
fn missing_room_answers_item_not_found_but_never_to_errors() {
    let mut svc = service();
    let out = send(
        &mut svc,
        &format!(
            "<message xmlns='jabber:component:accept' type='groupchat' from='{FOCUS}' to='{ROOM}'><body>x</body></message>"
        ),
    );
    assert_eq!(condition(&out[0]).as_deref(), Some("item-not-found"));
    let by = out[0]
        .get_child("error", NS_COMPONENT)
        .and_then(|e| e.attr("by"));
    assert_eq!(by, Some(MUC));
    let out = send(
        &mut svc,
        &format!(
            "<message xmlns='jabber:component:accept' type='error' from='{FOCUS}' to='{ROOM}'/>"
        ),
    );
    assert!(out.is_empty());
}
