//! The builders reproduce the reference stanzas element for element: built from the model the
//! reference itself parses to, each output equals the reference `<jingle>` (indentation aside).

use super::super::model::{BridgeSession, Reason, Setup};
use super::super::{Jingle, build, parse};
use super::{F02, F03, F04, F05, F06, canonical, nth, xml_string};

fn parsed(xml: &str, n: usize) -> Jingle {
    parse(&nth(xml, n)).expect("reference stanza parses")
}

fn assert_same(built: &minidom::Element, reference: &minidom::Element) {
    assert_eq!(canonical(built), canonical(reference));
}

#[test]
fn session_initiate_matches_02a_and_02b() {
    for (n, json) in [(0, false), (1, true)] {
        let j = parsed(F02, n);
        let built = build::session_initiate(
            &j.sid,
            j.initiator.as_deref().expect("initiator"),
            j.audio.as_ref().expect("audio"),
            &j.sources,
            j.bridge_session.as_ref().expect("bridge-session"),
            json,
        );
        assert_same(&built, &nth(F02, n));
    }
}

#[test]
fn session_accept_for_the_02_offer_matches_03() {
    let offer = parsed(F02, 0);
    let reference = parsed(F03, 0);
    let desc =
        build::answer_description(&offer.audio.expect("audio").description).expect("opus offered");
    let ours = reference.audio.expect("audio").transport;
    let built = build::session_accept(
        &offer.sid,
        offer.initiator.as_deref().expect("initiator"),
        "rec@recorder.meet.jitsi/c9f1a2b7",
        &desc,
        &ours,
    );
    assert_same(&built, &nth(F03, 0));
    let text = xml_string(&built);
    assert!(
        !text.contains("<source"),
        "receive-only accept carries no source: {text}"
    );
    assert!(text.contains("setup='active'"));
    assert!(!text.contains("telephone-event") && !text.contains("sdes:mid"));
}

#[test]
fn session_accept_forces_the_active_dtls_role() {
    let mut transport = parsed(F03, 0).audio.expect("audio").transport;
    transport.fingerprints[0].setup = Setup::Actpass;
    let desc = parsed(F03, 0).audio.expect("audio").description;
    let built = build::session_accept("s", "focus", "rec", &desc, &transport);
    let back = parse(&built)
        .expect("parses")
        .audio
        .expect("audio")
        .transport;
    assert_eq!(back.fingerprints[0].setup, Setup::Active);
    let accept = build::transport_accept("s", "focus", &transport);
    let back = parse(&accept)
        .expect("parses")
        .audio
        .expect("audio")
        .transport;
    assert_eq!(back.fingerprints[0].setup, Setup::Active);
}

#[test]
fn source_add_and_remove_match_04() {
    let add = parsed(F04, 0);
    assert_same(
        &build::source_add(&add.sid, &add.sources, false),
        &nth(F04, 0),
    );
    assert_same(
        &build::source_add(&add.sid, &add.sources, true),
        &nth(F04, 1),
    );
    let remove = parsed(F04, 2);
    assert_same(
        &build::source_remove(&remove.sid, &remove.sources, true),
        &nth(F04, 2),
    );
}

#[test]
fn ice_restart_request_and_transport_infos_match_05() {
    let req = parsed(F05, 0);
    let initiator = req.initiator.as_deref().expect("initiator");
    let id = &req.bridge_session.as_ref().expect("bridge-session").id;
    assert_same(
        &build::session_info_ice_restart(&req.sid, initiator, id),
        &nth(F05, 0),
    );
    for n in 1..=3 {
        let ti = parsed(F05, n);
        let built = build::transport_info(
            &ti.sid,
            ti.initiator.as_deref(),
            ti.transport.as_ref().expect("transport"),
        );
        assert_same(&built, &nth(F05, n));
    }
}

#[test]
fn terminates_ice_failed_replace_accept_and_decline_match_06() {
    for n in 0..=2 {
        let t = parsed(F06, n);
        let built = build::session_terminate(
            &t.sid,
            t.initiator.as_deref(),
            t.reason.as_ref().expect("reason"),
            t.bridge_session.as_ref(),
        );
        assert_same(&built, &nth(F06, n));
    }

    let failed = parsed(F06, 3);
    let built = build::session_info_ice_failed(
        &failed.sid,
        failed.initiator.as_deref().expect("initiator"),
        &failed.bridge_session.as_ref().expect("bridge-session").id,
    );
    assert_same(&built, &nth(F06, 3));

    let replace = parsed(F06, 4);
    let built = build::transport_replace(
        &replace.sid,
        replace.initiator.as_deref().expect("initiator"),
        replace.audio.as_ref().expect("audio"),
        &replace.sources,
        replace.bridge_session.as_ref().expect("bridge-session"),
        false,
    );
    assert_same(&built, &nth(F06, 4));

    let accept = parsed(F06, 5);
    let built = build::transport_accept(
        &accept.sid,
        accept.initiator.as_deref().expect("initiator"),
        &accept.audio.as_ref().expect("audio").transport,
    );
    assert_same(&built, &nth(F06, 5));

    let decline = parsed(F06, 7);
    assert_same(
        &build::decline(&decline.sid, decline.initiator.as_deref()),
        &nth(F06, 7),
    );
}

#[test]
fn restart_request_built_from_scratch_carries_restart_true() {
    let reason = Reason {
        condition: "connectivity-error".to_owned(),
        text: Some("ICE FAILED".to_owned()),
    };
    let bs = BridgeSession {
        id: "494e9ec631985e2d".to_owned(),
        restart: true,
        ..BridgeSession::default()
    };
    let built = build::session_terminate(
        "3ebc29f2f4077b6d",
        Some("focus@auth.meet.jitsi/focus"),
        &reason,
        Some(&bs),
    );
    assert_same(&built, &nth(F06, 2));
    assert!(xml_string(&built).contains("restart='true'"));
}
