//! `config/prosody/mod_jitape.lua` against a real Prosody (Debian's package): its events, its
//! catch-up query, how it lets jitape's JIDs (and only them) into password-protected and
//! members-only rooms, and how it fails when misconfigured. Two components connect through
//! jitape's own link: `recorder.localhost` plays jitape, `sim.localhost` the Jitsi side.

use jitape_sim::harness as support;

mod instances;

use jitape_sim::harness::components as harness;

use harness::{
    Comp, Event, FOCUS, MUC, NS, NS_COMPONENT, NS_MUC, Occ, RECORDER, error_lines, has_status,
    start_prosody, start_with_module, wait_for_errors, wait_for_log,
};
use jitape::xml::BuilderExt;
use minidom::Element;

const JIBRI: &str = "http://jitsi.org/protocol/jibri";

fn occ(ev: &Event) -> &Occ {
    ev.occupant
        .as_ref()
        .unwrap_or_else(|| panic!("{} event without occupant: {ev:?}", ev.kind))
}

fn assert_event(ev: &Event, kind: &str, room: &str, occupants: &str) {
    assert_eq!(
        (ev.kind.as_str(), ev.room.as_str(), ev.occupants.as_str()),
        (kind, room, occupants),
        "{ev:?}"
    );
    assert_eq!(
        (ev.from.as_str(), ev.to.as_str(), ev.message_type.as_str()),
        (MUC, RECORDER, "normal")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_rooms_and_occupants_in_order() {
    support::logs();
    let prosody = start_with_module();
    let mut rec = Comp::recorder(&prosody).await;
    let mut sim = Comp::sim(&prosody).await;
    let room = format!("events@{MUC}");

    sim.join(FOCUS, &room, "focus", None, "").await.unwrap();
    // The room first (with the meetingId Jitsi sets in muc-room-created), then its creator.
    let created = rec.next_event().await;
    assert_event(&created, "room-created", &room, "1");
    assert_eq!(created.meeting_id.as_deref(), Some("mid-events"));
    assert!(created.occupant.is_none());
    let focus = rec.next_event().await;
    assert_event(&focus, "occupant-joined", &room, "1");
    assert_eq!(
        occ(&focus),
        &Occ {
            nick: "focus".into(),
            jid: FOCUS.into(),
            role: "moderator".into(),
            affiliation: "owner".into(),
            features: vec![],
        }
    );
    assert_eq!(focus.meeting_id.as_deref(), Some("mid-events"));

    let features =
        format!(r#"<features><feature var="{JIBRI}"/><feature var="urn:x:test"/></features>"#);
    sim.join("p1@sim.localhost/x", &room, "p1", None, &features)
        .await
        .unwrap();
    let joined = rec.next_event().await;
    assert_event(&joined, "occupant-joined", &room, "2");
    assert_eq!(
        occ(&joined),
        &Occ {
            nick: "p1".into(),
            jid: "p1@sim.localhost/x".into(),
            role: "participant".into(),
            affiliation: "none".into(),
            features: vec![JIBRI.into(), "urn:x:test".into()],
        }
    );

    sim.leave("p1@sim.localhost/x", &room, "p1").await;
    let left = rec.next_event().await;
    assert_event(&left, "occupant-left", &room, "1");
    assert_eq!(occ(&left).nick, "p1");
    assert_eq!(occ(&left).jid, "p1@sim.localhost/x");
    assert_eq!(occ(&left).role, "none");

    sim.leave(FOCUS, &room, "focus").await;
    let last = rec.next_event().await;
    assert_event(&last, "occupant-left", &room, "0");
    assert_eq!(occ(&last).nick, "focus");
    let destroyed = rec.next_event().await;
    assert_event(&destroyed, "room-destroyed", &room, "0");
    assert_eq!(destroyed.meeting_id.as_deref(), Some("mid-events"));
    assert!(destroyed.occupant.is_none());

    assert!(
        rec.downs.is_empty(),
        "recorder link dropped: {:?}",
        rec.downs
    );
    assert!(error_lines(&prosody.log()).is_empty(), "{}", prosody.log());
    rec.close().await;
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_lists_existing_rooms_to_jitape_only() {
    support::logs();
    let prosody = start_with_module();
    let mut sim = Comp::sim(&prosody).await;
    let (a, b) = (format!("alpha@{MUC}"), format!("beta@{MUC}"));
    let before = now();
    // Rooms created and filled while jitape is not connected.
    sim.join(FOCUS, &a, "focus", None, "").await.unwrap();
    let features = format!(r#"<features><feature var="{JIBRI}"/></features>"#);
    sim.join("p1@sim.localhost/x", &a, "p1", None, &features)
        .await
        .unwrap();
    sim.join(FOCUS, &b, "focus", None, "").await.unwrap();

    let mut rec = Comp::recorder(&prosody).await;
    let answer = rec.query_rooms("rec@recorder.localhost/catchup").await;
    assert_eq!(
        answer.attr("type"),
        Some("result"),
        "{}",
        String::from(&answer)
    );
    assert_eq!(answer.attr("from"), Some(MUC));
    let rooms = answer.get_child("rooms", NS).expect("<rooms/> payload");
    // One instance: no lease (jitape then writes no owner records and fences nothing).
    assert_eq!(rooms.attr("lease"), None);
    let mut listed: Vec<(String, Option<String>, Vec<Occ>)> = rooms
        .children()
        .map(|r| {
            assert_eq!(r.name(), "room");
            let created: u64 = r
                .attr("created")
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("room without created time: {}", String::from(r)));
            assert!(
                (before.saturating_sub(5)..=now() + 5).contains(&created),
                "created={created}, test started at {before}"
            );
            let mut occupants: Vec<Occ> = r.children().map(Occ::from_element).collect();
            occupants.sort_by(|x, y| x.nick.cmp(&y.nick));
            (
                r.attr("jid").unwrap_or_default().to_string(),
                r.attr("meeting-id").map(str::to_string),
                occupants,
            )
        })
        .collect();
    listed.sort_by(|x, y| x.0.cmp(&y.0));
    let focus = Occ {
        nick: "focus".into(),
        jid: FOCUS.into(),
        role: "moderator".into(),
        affiliation: "owner".into(),
        features: vec![],
    };
    let p1 = Occ {
        nick: "p1".into(),
        jid: "p1@sim.localhost/x".into(),
        role: "participant".into(),
        affiliation: "none".into(),
        features: vec![JIBRI.into()],
    };
    assert_eq!(
        listed,
        vec![
            (a.clone(), Some("mid-alpha".into()), vec![focus.clone(), p1]),
            (b.clone(), Some("mid-beta".into()), vec![focus]),
        ]
    );

    // Any other JID is refused, even one that may create and own rooms.
    let refused = sim.query_rooms(FOCUS).await;
    assert_eq!(refused.attr("type"), Some("error"));
    assert_eq!(
        harness::error_condition(&refused).as_deref(),
        Some("forbidden")
    );
    assert!(refused.get_child("rooms", NS).is_none());

    // While jitape was away its events were not sent (an absent component bounces them).
    assert!(
        !prosody.log().contains("Component not connected"),
        "{}",
        prosody.log()
    );
    rec.close().await;
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_protected_room_admits_jitape_only() {
    support::logs();
    let prosody = start_with_module();
    let mut rec = Comp::recorder(&prosody).await;
    let mut sim = Comp::sim(&prosody).await;
    let room = format!("secret@{MUC}");
    sim.join(FOCUS, &room, "focus", None, "").await.unwrap();
    sim.configure(
        FOCUS,
        &room,
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "s3cret"),
        ],
    )
    .await;

    let outsider = sim.join("p2@sim.localhost/x", &room, "p2", None, "").await;
    assert_eq!(outsider.err().as_deref(), Some("not-authorized"));
    let wrong = sim
        .join("p3@sim.localhost/x", &room, "p3", Some("guess"), "")
        .await;
    assert_eq!(wrong.err().as_deref(), Some("not-authorized"));

    rec.join("rec@recorder.localhost/r1", &room, "rec1", None, "")
        .await
        .expect("jitape joins a password-protected room without the password");
    // A wrong password is replaced by the right one.
    rec.join(
        "rec2@recorder.localhost/r2",
        &room,
        "rec2",
        Some("guess"),
        "",
    )
    .await
    .expect("jitape joins with a wrong password");

    // jitape's own occupants are reported too, as members.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = rec.next_event().await;
        if ev.kind == "occupant-joined" && occ(&ev).jid.contains("@recorder.localhost/") {
            seen.push(occ(&ev).clone());
        }
    }
    assert_eq!(
        seen.iter()
            .map(|o| (o.nick.as_str(), o.affiliation.as_str(), o.role.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("rec1", "member", "participant"),
            ("rec2", "member", "participant")
        ]
    );
    rec.close().await;
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_only_room_admits_jitape_only() {
    support::logs();
    let prosody = start_with_module();
    let mut rec = Comp::recorder(&prosody).await;
    let mut sim = Comp::sim(&prosody).await;
    let room = format!("closed@{MUC}");
    sim.join(FOCUS, &room, "focus", None, "").await.unwrap();
    sim.configure(FOCUS, &room, &[("muc#roomconfig_membersonly", "1")])
        .await;

    let outsider = sim.join("p2@sim.localhost/x", &room, "p2", None, "").await;
    assert_eq!(outsider.err().as_deref(), Some("registration-required"));
    // Only the domain counts, not a JID that merely mentions it.
    let lookalike = sim
        .join("recorder.localhost@sim.localhost/x", &room, "p3", None, "")
        .await;
    assert_eq!(lookalike.err().as_deref(), Some("registration-required"));

    let own = rec
        .join("rec@recorder.localhost/r1", &room, "rec1", None, "")
        .await
        .expect("jitape joins a members-only room");
    let item = own
        .get_child("x", harness::NS_MUC_USER)
        .and_then(|x| x.get_child("item", harness::NS_MUC_USER))
        .expect("self-presence item");
    assert_eq!(item.attr("affiliation"), Some("member"));
    assert_eq!(item.attr("role"), Some("participant"));
    rec.close().await;
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_of_jitape_is_respected() {
    support::logs();
    let prosody = start_with_module();
    let mut rec = Comp::recorder(&prosody).await;
    let mut sim = Comp::sim(&prosody).await;
    let room = format!("banned@{MUC}");
    sim.join(FOCUS, &room, "focus", None, "").await.unwrap();
    sim.send(harness::xml(&format!(
        r#"<iq xmlns="{NS_COMPONENT}" type="set" from="{FOCUS}" to="{room}" id="ban1"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="outcast" jid="rec@recorder.localhost"/></query></iq>"#
    )))
    .await;
    let answer = sim.iq_answer("ban1").await;
    assert_eq!(
        answer.attr("type"),
        Some("result"),
        "{}",
        String::from(&answer)
    );

    let refused = rec
        .join("rec@recorder.localhost/r1", &room, "rec1", None, "")
        .await;
    assert_eq!(refused.err().as_deref(), Some("forbidden"));
    // Other JIDs of the component are not affected by that ban.
    rec.join("rec2@recorder.localhost/r2", &room, "rec2", None, "")
        .await
        .expect("another jitape JID joins");
    rec.close().await;
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_members_only_kicks_others_but_not_jitape() {
    support::logs();
    let prosody = start_with_module();
    let mut rec = Comp::recorder(&prosody).await;
    let mut sim = Comp::sim(&prosody).await;
    let room = format!("switch@{MUC}");
    sim.join(FOCUS, &room, "focus", None, "").await.unwrap();
    sim.join("p1@sim.localhost/x", &room, "p1", None, "")
        .await
        .unwrap();
    rec.join("rec@recorder.localhost/r1", &room, "rec1", None, "")
        .await
        .unwrap();

    sim.configure(FOCUS, &room, &[("muc#roomconfig_membersonly", "1")])
        .await;
    // The non-member is removed with status 322 ...
    let p1_occupant = format!("{room}/p1");
    let kicked = sim
        .expect("p1's removal (322)", |e| {
            e.name() == "presence"
                && e.attr("from") == Some(p1_occupant.as_str())
                && e.attr("to") == Some("p1@sim.localhost/x")
                && e.attr("type") == Some("unavailable")
        })
        .await;
    assert!(has_status(&kicked, "322"), "{}", String::from(&kicked));
    // ... and reported as having left; jitape is still in the room.
    loop {
        let ev = rec.next_event().await;
        if ev.kind == "occupant-left" {
            assert_eq!(occ(&ev).nick, "p1", "{ev:?}");
            assert_eq!(ev.occupants, "2");
            break;
        }
    }
    let answer = rec.query_rooms(RECORDER).await;
    let listed = answer
        .get_child("rooms", NS)
        .and_then(|r| r.children().find(|r| r.attr("jid") == Some(room.as_str())))
        .expect("room still listed");
    let mut nicks: Vec<_> = listed
        .children()
        .map(|o| o.attr("nick").unwrap_or_default().to_string())
        .collect();
    nicks.sort();
    assert_eq!(nicks, vec!["focus", "rec1"]);
    rec.close().await;
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_jitape_component_fails_loudly_and_the_muc_keeps_working() {
    support::logs();
    let prosody = start_prosody("  modules_enabled = { \"jitape\" }\n", "");
    let log = wait_for_log(&prosody, "option jitape_component is not set");
    assert!(
        error_lines(&log)
            .iter()
            .any(|l| l.contains("jitape_component") && l.contains("jitape.meet.jitsi")),
        "no error line naming the option and an example value:\n{log}"
    );

    let mut sim = Comp::sim(&prosody).await;
    let mut rec = Comp::recorder(&prosody).await;
    let room = format!("plain@{MUC}");
    sim.join(FOCUS, &room, "focus", None, "").await.unwrap();
    sim.join("p1@sim.localhost/x", &room, "p1", None, "")
        .await
        .unwrap();
    // The module is not active: its query is unknown to the MUC.
    let answer = rec.query_rooms(RECORDER).await;
    assert_eq!(
        harness::error_condition(&answer).as_deref(),
        Some("service-unavailable"),
        "{}",
        String::from(&answer)
    );
    rec.close().await;
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misplaced_module_and_wrong_component_are_reported() {
    support::logs();
    // Globally enabled (so it loads on the VirtualHost too), a MUC pointing at the
    // VirtualHost, one pointing nowhere, and one with Jitsi's max-occupants limit but no
    // whitelist entry for jitape.
    let global = "modules_enabled = { \"disco\", \"ping\", \"jitape\" }\n\
        Component \"wrong1.localhost\" \"muc\"\n  modules_enabled = { \"jitape\" }\n  jitape_component = \"localhost\"\n\
        Component \"wrong2.localhost\" \"muc\"\n  modules_enabled = { \"jitape\" }\n  jitape_component = \"nowhere.localhost\"\n";
    let prosody = start_prosody(
        &format!(
            "  modules_enabled = {{ \"jitape\", \"muc_max_occupants\" }}\n  jitape_component = \"{RECORDER}\"\n  muc_max_occupants = \"5\"\n  muc_access_whitelist = {{ \"focus@auth.localhost\" }}\n"
        ),
        global,
    );
    let log = wait_for_errors(
        &prosody,
        &[
            // Loaded on the VirtualHost.
            &["'localhost'", "not a MUC component"],
            &["\"localhost\" is a VirtualHost, not an external component"],
            &["\"nowhere.localhost\" is not declared"],
            &["muc_max_occupants", "muc_access_whitelist", RECORDER],
        ],
    );
    let errors = error_lines(&log);
    // The correctly configured MUC does not complain about its component.
    assert!(
        !errors
            .iter()
            .any(|l| l.contains(&format!("\"{RECORDER}\" is"))),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_features_never_break_the_module_or_the_link() {
    support::logs();
    let prosody = start_with_module();
    let mut rec = Comp::recorder(&prosody).await;
    let mut sim = Comp::sim(&prosody).await;
    let room = format!("odd@{MUC}");
    sim.join(FOCUS, &room, "focus", None, "").await.unwrap();
    let presence = odd_presence(&room);
    sim.join_with(presence)
        .await
        .expect("an odd presence still joins");
    let joined = loop {
        let ev = rec.next_event().await;
        if ev.kind == "occupant-joined" && occ(&ev).nick == "p1" {
            break ev;
        }
    };
    let mut expected = vec!["ok:1".to_string(), "ok:2".to_string()];
    expected.extend((0..30).map(|i| format!("f{i}")));
    assert_eq!(occ(&joined).features, expected);

    // A presence without any <features> and one with an empty list.
    sim.join("p2@sim.localhost/x", &room, "p2", None, "<features/>")
        .await
        .unwrap();
    sim.join("p3@sim.localhost/x", &room, "p3", None, "")
        .await
        .unwrap();
    let mut rest = Vec::new();
    while rest.len() < 2 {
        let ev = rec.next_event().await;
        if ev.kind == "occupant-joined" {
            rest.push((occ(&ev).nick.clone(), occ(&ev).features.len()));
        }
    }
    assert_eq!(rest, vec![("p2".to_string(), 0), ("p3".to_string(), 0)]);

    assert!(
        rec.downs.is_empty(),
        "recorder link dropped: {:?}",
        rec.downs
    );
    let log = prosody.log();
    assert!(error_lines(&log).is_empty(), "{log}");
    rec.close().await;
    sim.close().await;
}

/// A join whose `<features>` are everything but well-formed Jitsi: a list in another
/// namespace first, features without or with an empty var, nested and non-feature children,
/// text, an 8000-byte var (the test's own link refuses attributes over 8 KiB, and Prosody echoes
/// the presence back to it), more than the module forwards, and a second list.
fn odd_presence(room: &str) -> Element {
    let feature = |var: Option<&str>| {
        let b = Element::builder("feature", NS_COMPONENT);
        match var {
            Some(v) => b.set("var", v),
            None => b,
        }
        .build()
    };
    let mut list = Element::builder("features", NS_COMPONENT)
        .append(feature(None))
        .append(feature(Some("")))
        .append(
            Element::builder("feature", NS_COMPONENT)
                .set("var", "ok:1")
                .append(feature(Some("nested")))
                .build(),
        )
        .append("text".to_string())
        .append(
            Element::builder("other", NS_COMPONENT)
                .set("var", "not-a-feature")
                .build(),
        )
        .append(feature(Some(&"h".repeat(8000))))
        .append(feature(Some("ok:2")));
    for i in 0..40 {
        list = list.append(feature(Some(&format!("f{i}"))));
    }
    Element::builder("presence", NS_COMPONENT)
        .set("from", "p1@sim.localhost/x")
        .set("to", format!("{room}/p1"))
        .append(Element::builder("x", NS_MUC).build())
        .append(
            Element::builder("features", "urn:other")
                .append(
                    Element::builder("feature", "urn:other")
                        .set("var", "other-ns")
                        .build(),
                )
                .build(),
        )
        .append(list.build())
        .append(
            Element::builder("features", NS_COMPONENT)
                .append(feature(Some("second-list")))
                .build(),
        )
        .build()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_prosody_restores_after_a_restart_is_announced_with_its_occupants() {
    support::logs();
    let mut prosody = start_with_module();
    let room = format!("survivor@{MUC}");
    {
        let mut sim = Comp::sim(&prosody).await;
        sim.join(FOCUS, &room, "focus", None, "").await.unwrap();
        sim.join("p1@sim.localhost/x", &room, "p1", None, "")
            .await
            .unwrap();
        // Prosody saves every live room, occupants included, when it stops.
        prosody.stop();
        sim.close().await;
    }
    prosody.restart();
    let mut rec = Comp::recorder(&prosody).await;
    let mut sim = Comp::sim(&prosody).await;
    // Touching the room restores it (no muc-room-created, no joins for the restored
    // occupants): the module must still tell jitape the room is alive and who is in it.
    sim.join(FOCUS, &room, "focus", None, "").await.ok();
    let created = rec.next_event().await;
    assert_eq!(
        (created.kind.as_str(), created.room.as_str()),
        ("room-created", room.as_str())
    );
    let mut nicks = Vec::new();
    for _ in 0..2 {
        let ev = rec.next_event().await;
        assert_eq!(ev.kind, "occupant-joined", "{ev:?}");
        nicks.push(occ(&ev).nick.clone());
    }
    nicks.sort();
    assert_eq!(nicks, ["focus", "p1"]);
}
