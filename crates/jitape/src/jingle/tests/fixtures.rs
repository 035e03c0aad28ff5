//! Every Jingle stanza of the reference files, parsed and checked field by field.

use std::net::IpAddr;

use super::super::model::{CandidateType, Protocol, Setup, Source};
use super::super::{Action, Jingle, JingleError, parse, parse_header};
use super::{F02, F03, F04, F05, F06, element, jingles, nth, xml_string};

const BRIDGE_FP: &str = "38:E0:06:12:E5:E4:B9:26:B4:6D:87:7E:73:94:51:B7:AB:39:66:96:CB:7D:FD:28:23:B0:26:F0:10:2D:3A:ED";
const OUR_FP: &str = "70:98:53:DF:B9:0A:62:5B:80:96:35:48:99:80:9E:DD:83:7F:2E:C4:61:09:DD:22:26:C6:3A:FF:70:3E:3F:39";
const FOCUS: &str = "focus@auth.meet.jitsi/focus";
const SID: &str = "3ebc29f2f4077b6d";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

fn parsed(xml: &str, n: usize) -> Jingle {
    parse(&nth(xml, n)).expect("reference stanza parses")
}

fn source(ssrc: u32, name: &str, owner: &str, msid: Option<&str>) -> Source {
    Source {
        ssrc: crate::types::Ssrc(ssrc),
        name: Some(name.to_owned()),
        owner: owner.to_owned(),
        msid: msid.map(str::to_owned),
    }
}

/// The three sources of example 02 (bridge feedback source first).
fn sources_02() -> Vec<Source> {
    vec![
        source(3122330487, "jvb-a0", "jvb", None),
        source(
            4238875577,
            "a1b2c3d4-a0",
            "a1b2c3d4",
            Some("a1b2c3d4-audio-0-1 6f0f2b1e-8c1a-4d8e-9a55-0c5c3a1e7d21"),
        ),
        source(
            2631363243,
            "e5f6a7b8-a0",
            "e5f6a7b8",
            Some("e5f6a7b8-audio-0-1 0b6c1f4a-2d3e-4a5b-8c9d-1e2f3a4b5c6d"),
        ),
    ]
}

fn source_f0() -> Source {
    source(
        3009702669,
        "f0e1d2c3-a0",
        "f0e1d2c3",
        Some("f0e1d2c3-audio-0-1 9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"),
    )
}

#[test]
fn session_initiate_02a_xml_sources() {
    let j = parsed(F02, 0);
    assert_eq!(j.action, Action::SessionInitiate);
    assert_eq!(j.sid, SID);
    assert_eq!(j.initiator.as_deref(), Some(FOCUS));
    assert_eq!(j.responder, None);
    assert!(j.other_contents.is_empty());
    assert_eq!(j.group, ["audio"]);
    let bs = j.bridge_session.as_ref().expect("bridge-session");
    assert_eq!(bs.id, "494e9ec631985e2d");
    assert_eq!(bs.region.as_deref(), Some("eu-west"));
    assert!(!bs.restart && !bs.ice_restart);
    assert_eq!(j.sources, sources_02());
    assert_eq!(j.media_sources().count(), 2);
    assert!(j.sources[0].is_bridge());

    let audio = j.audio.as_ref().expect("audio content");
    assert_eq!(audio.content_name, "audio");
    let d = &audio.description;
    assert_eq!(d.maxptime, Some(60));
    assert!(d.rtcp_mux && d.extmap_allow_mixed);
    let opus = d.opus().expect("opus offered");
    assert_eq!((opus.id, opus.clockrate, opus.channels), (111, 48000, 2));
    assert_eq!(
        opus.parameters,
        [
            ("minptime".to_owned(), "10".to_owned()),
            ("useinbandfec".to_owned(), "1".to_owned())
        ]
    );
    let te = &d.payload_types[1];
    assert_eq!(
        (te.id, te.name.as_str(), te.clockrate, te.channels),
        (126, "telephone-event", 8000, 1)
    );
    assert_eq!(d.audio_level_id(), Some(1));
    assert_eq!(d.header_extensions[1].id, 10);
    assert_eq!(
        d.header_extensions[1].uri,
        "urn:ietf:params:rtp-hdrext:sdes:mid"
    );

    let t = &audio.transport;
    assert_eq!(t.ufrag, "5kj1a1j5ub3cbj");
    assert_eq!(t.pwd, "2jkc2o6d3hqf6p6ssjbcf5m2v9");
    assert!(t.rtcp_mux);
    assert_eq!(t.ice_generation, None);
    assert_eq!(t.fingerprints.len(), 1);
    assert_eq!(t.fingerprints[0].hash, "sha-256");
    assert_eq!(t.fingerprints[0].setup, Setup::Actpass);
    assert_eq!(t.fingerprints[0].value, BRIDGE_FP);
    assert_eq!(
        t.web_socket.as_deref(),
        Some(
            "wss://meet.example.com/colibri-ws/default-id/9d1c4b7e2f0a6c35/rec7f3a9c21?pwd=4hjd3k2l1m0n9b8v7c6x5z4a3s"
        )
    );
    assert_eq!(t.candidates.len(), 2);
    let host = &t.candidates[0];
    assert_eq!(
        (host.component, host.foundation.as_str(), host.generation),
        (1, "1", 0)
    );
    assert_eq!(host.id.as_deref(), Some("6a1b0f2c3d4e5f607182"));
    assert_eq!(
        (host.ip, host.port, host.priority),
        (ip("172.18.0.5"), 10000, 2130706431)
    );
    assert_eq!(
        (host.protocol, host.kind, host.network),
        (Protocol::Udp, CandidateType::Host, Some(0))
    );
    assert_eq!((host.rel_addr, host.rel_port), (None, None));
    let srflx = &t.candidates[1];
    assert_eq!(srflx.kind, CandidateType::Srflx);
    assert_eq!((srflx.ip, srflx.priority), (ip("203.0.113.10"), 1677724415));
    assert_eq!(
        (srflx.rel_addr, srflx.rel_port),
        (Some(ip("172.18.0.5")), Some(10000))
    );
}

#[test]
fn session_initiate_02b_json_sources_equal_the_xml_form() {
    let xml = parsed(F02, 0);
    let json = parsed(F02, 1);
    assert_eq!(json.action, Action::SessionInitiate);
    assert_eq!(json.sources, xml.sources);
    assert_eq!(json.sources, sources_02());
    assert_eq!(json.bridge_session, xml.bridge_session);
    let (a, b) = (json.audio.expect("audio"), xml.audio.expect("audio"));
    assert_eq!(a.description, b.description);
    assert_eq!(a.transport.candidates, b.transport.candidates[..1]);
    assert_eq!(a.transport.web_socket, None);
}

#[test]
fn session_accept_03() {
    let j = parsed(F03, 0);
    assert_eq!(j.action, Action::SessionAccept);
    assert_eq!(j.sid, SID);
    assert_eq!(j.initiator.as_deref(), Some(FOCUS));
    assert_eq!(
        j.responder.as_deref(),
        Some("rec@recorder.meet.jitsi/c9f1a2b7")
    );
    assert!(j.sources.is_empty());
    assert_eq!(j.group, ["audio"]);
    let audio = j.audio.expect("audio");
    assert_eq!(audio.content_name, "audio");
    let d = &audio.description;
    assert_eq!(d.payload_types.len(), 1);
    assert_eq!(d.opus().map(|o| o.id), Some(111));
    assert_eq!(d.audio_level_id(), Some(1));
    assert!(d.rtcp_mux && !d.extmap_allow_mixed && d.maxptime.is_none());
    let t = &audio.transport;
    assert_eq!(
        (t.ufrag.as_str(), t.pwd.as_str()),
        ("q8Zr", "Vt3k9pLq2xYw7mNc4bHs1dFe")
    );
    assert_eq!(t.fingerprints[0].setup, Setup::Active);
    assert_eq!(t.fingerprints[0].value, OUR_FP);
    assert_eq!(t.candidates.len(), 1);
    assert_eq!(
        (t.candidates[0].ip, t.candidates[0].port),
        (ip("172.18.0.9"), 40123)
    );
    assert_eq!(t.candidates[0].id.as_deref(), Some("r1c1"));
}

#[test]
fn source_add_and_remove_04() {
    let add = parsed(F04, 0);
    assert_eq!(add.action, Action::SourceAdd);
    assert_eq!((add.sid.as_str(), add.initiator.as_deref()), (SID, None));
    assert_eq!(add.sources, [source_f0()]);
    assert!(add.audio.is_none() && add.other_contents.is_empty());

    let add_json = parsed(F04, 1);
    assert_eq!(add_json.action, Action::SourceAdd);
    assert_eq!(add_json.sources, add.sources);

    let remove = parsed(F04, 2);
    assert_eq!(remove.action, Action::SourceRemove);
    assert_eq!(remove.sources, [source_f0()]);
}

#[test]
fn ice_restart_and_transport_info_05() {
    let req = parsed(F05, 0);
    assert_eq!(req.action, Action::SessionInfo);
    assert!(req.ice_restart_requested() && !req.restart_requested());
    assert_eq!(
        req.bridge_session.map(|b| b.id).as_deref(),
        Some("494e9ec631985e2d")
    );

    let from_focus = parsed(F05, 1);
    assert_eq!(from_focus.action, Action::TransportInfo);
    assert_eq!(from_focus.initiator, None);
    let t = from_focus.transport.expect("transport");
    assert_eq!(
        (t.ufrag.as_str(), t.pwd.as_str()),
        ("1s7vq3l0m2b4cn", "5g1ho3e8kq7rj2t6ud9wa4ncf0")
    );
    assert_eq!(t.ice_generation, Some(1));
    assert_eq!(t.fingerprints[0].setup, Setup::Passive);
    assert_eq!(t.fingerprints[0].value, BRIDGE_FP);
    assert_eq!(t.candidates[0].id.as_deref(), Some("7c2d1e0f9a8b7c6d5e4f"));
    assert_eq!(t.candidates[0].generation, 0);

    let ours = parsed(F05, 2);
    assert_eq!(ours.initiator.as_deref(), Some(FOCUS));
    let t = ours.transport.expect("transport");
    assert_eq!((t.ufrag.as_str(), t.ice_generation), ("Hk2w", Some(1)));
    assert_eq!(t.fingerprints[0].setup, Setup::Active);
    assert!(t.candidates.is_empty() && t.rtcp_mux);

    let trickle = parsed(F05, 3);
    let t = trickle.transport.expect("transport");
    assert_eq!((t.ufrag.as_str(), t.ice_generation), ("q8Zr", None));
    assert!(t.fingerprints.is_empty() && !t.rtcp_mux);
    let c = &t.candidates[0];
    assert_eq!(
        (c.kind, c.ip, c.port),
        (CandidateType::Srflx, ip("198.51.100.23"), 40123)
    );
    assert_eq!(
        (c.rel_addr, c.rel_port),
        (Some(ip("172.18.0.9")), Some(40123))
    );
}

#[test]
fn terminates_and_session_info_06() {
    let idle = parsed(F06, 0);
    assert_eq!(idle.action, Action::SessionTerminate);
    assert_eq!(idle.initiator, None);
    let r = idle.reason.expect("reason");
    assert_eq!(
        (r.condition.as_str(), r.text.as_deref()),
        ("expired", Some("Idle session timeout"))
    );

    let moving = parsed(F06, 1).reason.expect("reason");
    assert_eq!(
        (moving.condition.as_str(), moving.text.as_deref()),
        ("success", Some("moving"))
    );

    let restart = parsed(F06, 2);
    assert!(restart.restart_requested());
    let r = restart.reason.as_ref().expect("reason");
    assert_eq!(
        (r.condition.as_str(), r.text.as_deref()),
        ("connectivity-error", Some("ICE FAILED"))
    );
    assert_eq!(
        restart.bridge_session.map(|b| b.id).as_deref(),
        Some("494e9ec631985e2d")
    );

    let failed = parsed(F06, 3);
    assert_eq!(failed.action, Action::SessionInfo);
    assert_eq!(failed.ice_state.as_deref(), Some("failed"));
    let bs = failed.bridge_session.expect("bridge-session");
    assert!(!bs.restart && !bs.ice_restart);
}

#[test]
fn transport_replace_and_accept_06d() {
    let replace = parsed(F06, 4);
    assert_eq!(replace.action, Action::TransportReplace);
    assert_eq!(replace.sid, SID);
    let bs = replace.bridge_session.expect("bridge-session");
    assert_eq!(
        (bs.id.as_str(), bs.region.as_deref()),
        ("a7c3e9d1b5f20864", Some("eu-west"))
    );
    let a = replace.audio.expect("audio");
    assert_eq!(a.transport.ufrag, "0h2k4m6p8r1t3v");
    assert_eq!(a.transport.candidates[0].ip, ip("172.18.0.7"));
    assert_eq!(
        a.description
            .opus()
            .and_then(|o| o.parameters.get(1).cloned()),
        Some(("useinbandfec".to_owned(), "1".to_owned()))
    );
    assert_eq!(
        replace.sources,
        [source(4238875577, "a1b2c3d4-a0", "a1b2c3d4", None)]
    );

    let accept = parsed(F06, 5);
    assert_eq!(accept.action, Action::TransportAccept);
    let a = accept.audio.expect("audio");
    assert_eq!(a.content_name, "audio");
    assert_eq!(a.description, Default::default());
    assert_eq!(
        (a.transport.ufrag.as_str(), a.transport.pwd.as_str()),
        ("Pw4e", "Kd9fG2hJ5kL8mN1pQ4rS7tUv")
    );
    assert_eq!(a.transport.fingerprints[0].setup, Setup::Active);
}

#[test]
fn browser_p2p_offer_06e_has_a_readable_header_and_no_audio() {
    let offer = nth(F06, 6);
    let h = parse_header(&offer).expect("header");
    assert_eq!(h.action, Action::SessionInitiate);
    assert_eq!(h.sid, "p2p5c0ffee");
    assert_eq!(
        h.initiator.as_deref(),
        Some("8f14e45f-ceea-467f-a0e6-9b9a2c8e1d11@meet.jitsi/Yk3Xr8Qe")
    );
    assert_eq!(parse(&offer), Err(JingleError::MissingTransport));

    let decline = parsed(F06, 7);
    assert_eq!(decline.sid, "p2p5c0ffee");
    let r = decline.reason.expect("reason");
    assert_eq!(
        (r.condition.as_str(), r.text.as_deref()),
        ("decline", Some("P2P disabled"))
    );
}

#[test]
fn legacy_owner_jid_and_legacy_action_names() {
    let legacy = xml_string(&nth(F02, 0)).replace(
        "owner='a1b2c3d4'",
        "owner='weeklysync@muc.meet.jitsi/a1b2c3d4'",
    );
    assert!(legacy.contains("weeklysync@muc.meet.jitsi/a1b2c3d4"));
    assert_eq!(
        parse(&element(&legacy)).expect("parses").sources,
        sources_02()
    );

    let addsource = xml_string(&nth(F04, 0)).replace("'source-add'", "'addsource'");
    let j = parse(&element(&addsource)).expect("parses");
    assert_eq!((j.action, j.sources.len()), (Action::SourceAdd, 1));
    let removesource = xml_string(&nth(F04, 2)).replace("'source-remove'", "'removesource'");
    assert_eq!(
        parse(&element(&removesource)).map(|j| j.action),
        Ok(Action::SourceRemove)
    );
}

#[test]
fn xml_and_json_sources_in_one_stanza_are_merged_without_duplicates() {
    let mut offer = nth(F02, 0);
    // The JSON form repeats a1b2c3d4's source and adds f0e1d2c3.
    let json = r#"{"sources":{"a1b2c3d4":[[{"s":1111}],[["f",1111,2222]],[{"s":4238875577,"n":"dup"}]],"f0e1d2c3":[[],[],[{"s":3009702669,"n":"f0e1d2c3-a0","m":"f0e1d2c3-audio-0-1 9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d","v":"d"}],[]]}}"#;
    offer.append_child(
        minidom::Element::builder("json-message", super::super::ns::JITMEET)
            .append(json)
            .build(),
    );
    let mut expected = sources_02();
    expected.push(source_f0());
    assert_eq!(parse(&offer).expect("parses").sources, expected);
}

#[test]
fn source_parameter_in_the_ssma_namespace_and_video_contents_are_reported() {
    let xml = r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="s1">
      <content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">
        <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="42" name="x-a0">
          <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="x"/>
          <parameter name="msid" value="stream track"/>
          <unknown-child/>
        </source></description></content>
      <content name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
        <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="43">
          <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="x"/></source></description></content>
      <something-new xmlns="urn:example:new"/>
    </jingle>"#;
    let j = parse(&element(xml)).expect("parses");
    assert_eq!(j.sources, [source(42, "x-a0", "x", Some("stream track"))]);
    assert_eq!(j.other_contents, ["video"]);
}

#[test]
fn offer_with_video_and_data_reports_them_and_tcp_candidates_parse() {
    let xml = xml_string(&nth(F02, 0)).replace(
        "<group",
        r#"<content xmlns="urn:xmpp:jingle:1" creator="initiator" name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"/></content><content xmlns="urn:xmpp:jingle:1" creator="initiator" name="data"/><group"#,
    ).replace(
        "protocol='udp' type='host'",
        "protocol='tcp' type='host' tcptype='passive'",
    );
    let j = parse(&element(&xml)).expect("parses");
    assert_eq!(j.other_contents, ["video", "data"]);
    let t = j.audio.expect("audio").transport;
    assert_eq!(t.candidates[0].protocol, Protocol::Tcp);
    assert_eq!(t.candidates[1].protocol, Protocol::Udp);
}

#[test]
fn jingle_from_a_component_stream_namespace_parses_the_same() {
    // On the XEP-0114 stream the IQ is in jabber:component:accept; only <jingle> is handed over.
    let iq = xml_string(&nth(F02, 0));
    let wrapped = format!("<iq xmlns='jabber:component:accept' type='set' id='x'>{iq}</iq>");
    let iq = element(&wrapped);
    let j = iq
        .get_child("jingle", super::super::ns::JINGLE)
        .expect("jingle");
    assert_eq!(parse(j), Ok(parsed(F02, 0)));
    assert_eq!(jingles(F02).len(), 2);
}
