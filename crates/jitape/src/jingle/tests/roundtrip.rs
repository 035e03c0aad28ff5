//! `parse(build(model)) == model` for every builder with a parse counterpart, on hand-made
//! models that use every field (IPv6, TCP, relay/prflx, ice-generation, escaped JSON strings),
//! both directly and through serialised XML text.

use std::net::IpAddr;

use super::super::model::{
    AUDIO_LEVEL_URI, AudioOffer, BridgeSession, Candidate, CandidateType, Fingerprint,
    HeaderExtension, IceTransport, PayloadType, Protocol, Reason, RtpDescription, Setup, Source,
};
use super::super::{Action, Jingle, build, parse};
use super::{element, xml_string};

/// Parses the element and its serialisation; both must agree.
fn reparse(el: &minidom::Element) -> Jingle {
    let direct = parse(el).expect("built element parses");
    let text = xml_string(el);
    assert_eq!(
        parse(&element(&text)).as_ref(),
        Ok(&direct),
        "via text: {text}"
    );
    direct
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

fn candidate(n: u8, ip_: &str, protocol: Protocol, kind: CandidateType) -> Candidate {
    Candidate {
        component: 1,
        foundation: format!("f{n}"),
        generation: u32::from(n),
        id: n.is_multiple_of(2).then(|| format!("id{n}")),
        ip: ip(ip_),
        port: 65535 - u16::from(n),
        priority: u32::MAX - u32::from(n),
        protocol,
        kind,
        rel_addr: (kind != CandidateType::Host).then(|| ip("10.0.0.1")),
        rel_port: (kind != CandidateType::Host).then_some(0),
        network: (!n.is_multiple_of(2)).then_some(u32::from(n)),
    }
}

fn transport(setup: Setup) -> IceTransport {
    IceTransport {
        ufrag: "uf+/".to_owned(),
        pwd: "pw<&>\"'".to_owned(),
        fingerprints: vec![
            Fingerprint {
                hash: "sha-256".to_owned(),
                setup,
                value: "AA:BB".to_owned(),
            },
            Fingerprint {
                hash: "sha-1".to_owned(),
                setup,
                value: "CC:DD".to_owned(),
            },
        ],
        candidates: vec![
            candidate(0, "192.0.2.1", Protocol::Udp, CandidateType::Host),
            candidate(1, "2001:db8::1", Protocol::Tcp, CandidateType::Srflx),
            candidate(2, "198.51.100.7", Protocol::Udp, CandidateType::Relay),
            candidate(3, "::1", Protocol::Udp, CandidateType::Prflx),
        ],
        rtcp_mux: true,
        web_socket: Some("wss://example.org/colibri-ws/a/b/c?pwd=x&y=z".to_owned()),
        ice_generation: Some(7),
    }
}

fn description() -> RtpDescription {
    RtpDescription {
        payload_types: vec![
            PayloadType {
                id: 111,
                name: "opus".to_owned(),
                clockrate: 48000,
                channels: 2,
                parameters: vec![
                    ("useinbandfec".to_owned(), "1".to_owned()),
                    ("x".to_owned(), String::new()),
                ],
            },
            PayloadType {
                id: 0,
                name: "PCMU".to_owned(),
                clockrate: 0,
                channels: 1,
                parameters: vec![],
            },
        ],
        header_extensions: vec![
            HeaderExtension {
                id: 1,
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            HeaderExtension {
                id: 255,
                uri: "urn:example:ext".to_owned(),
            },
        ],
        extmap_allow_mixed: true,
        rtcp_mux: true,
        maxptime: Some(120),
    }
}

/// Sources grouped by owner (the JSON form groups them), with odd names and missing fields.
fn sources() -> Vec<Source> {
    let s = |ssrc: u32, name: Option<&str>, owner: &str, msid: Option<&str>| Source {
        ssrc: crate::types::Ssrc(ssrc),
        name: name.map(str::to_owned),
        owner: owner.to_owned(),
        msid: msid.map(str::to_owned),
    };
    vec![
        s(1, Some("jvb-a0"), "jvb", None),
        s(
            u32::MAX,
            Some("quote\"back\\slash"),
            "ünïcode-owner",
            Some("s t"),
        ),
        s(77, None, "ünïcode-owner", None),
        s(4238875577, Some("<a&b>"), "e5f6a7b8", Some("m é ☃")),
    ]
}

fn bridge_session() -> BridgeSession {
    BridgeSession {
        id: "bs1".to_owned(),
        region: Some("eu".to_owned()),
        restart: false,
        ice_restart: false,
    }
}

#[test]
fn session_initiate_and_transport_replace_round_trip_in_both_source_forms() {
    let offer = AudioOffer {
        content_name: "audio".to_owned(),
        description: description(),
        transport: transport(Setup::Actpass),
    };
    for json in [false, true] {
        for action in [Action::SessionInitiate, Action::TransportReplace] {
            let builder = match action {
                Action::SessionInitiate => build::session_initiate,
                _ => build::transport_replace,
            };
            let el = builder(
                "sid1",
                "focus@auth/focus",
                &offer,
                &sources(),
                &bridge_session(),
                json,
            );
            let mut expected = Jingle::new(action, "sid1");
            expected.initiator = Some("focus@auth/focus".to_owned());
            expected.audio = Some(offer.clone());
            expected.sources = sources();
            expected.bridge_session = Some(bridge_session());
            expected.group = vec!["audio".to_owned()];
            assert_eq!(reparse(&el), expected, "json={json} action={action}");
        }
    }
}

#[test]
fn session_accept_and_transport_accept_round_trip() {
    let desc = build::answer_description(&description()).expect("opus");
    assert_eq!(desc.payload_types.len(), 1);
    assert_eq!(desc.audio_level_id(), Some(1));
    let t = transport(Setup::Active);
    let mut expected = Jingle::new(Action::SessionAccept, "sid2");
    expected.initiator = Some("focus".to_owned());
    expected.responder = Some("rec".to_owned());
    expected.audio = Some(AudioOffer {
        content_name: "audio".to_owned(),
        description: desc.clone(),
        transport: t.clone(),
    });
    expected.group = vec!["audio".to_owned()];
    assert_eq!(
        reparse(&build::session_accept("sid2", "focus", "rec", &desc, &t)),
        expected
    );

    let mut expected = Jingle::new(Action::TransportAccept, "sid2");
    expected.initiator = Some("focus".to_owned());
    expected.audio = Some(AudioOffer {
        content_name: "audio".to_owned(),
        description: RtpDescription::default(),
        transport: t.clone(),
    });
    assert_eq!(
        reparse(&build::transport_accept("sid2", "focus", &t)),
        expected
    );
}

#[test]
fn transport_info_round_trips_with_and_without_initiator() {
    for initiator in [None, Some("focus")] {
        let t = transport(Setup::Passive);
        let mut expected = Jingle::new(Action::TransportInfo, "sid3");
        expected.initiator = initiator.map(str::to_owned);
        expected.transport = Some(t.clone());
        assert_eq!(
            reparse(&build::transport_info("sid3", initiator, &t)),
            expected
        );
    }
}

#[test]
fn source_add_and_remove_round_trip_in_both_forms() {
    for json in [false, true] {
        let add = reparse(&build::source_add("sid4", &sources(), json));
        assert_eq!(
            (add.action, add.initiator.as_deref()),
            (Action::SourceAdd, None)
        );
        assert_eq!(add.sources, sources(), "json={json}");
        let remove = reparse(&build::source_remove("sid4", &sources()[1..2], json));
        assert_eq!(
            (remove.action, &remove.sources[..]),
            (Action::SourceRemove, &sources()[1..2])
        );
        let empty = reparse(&build::source_add("sid4", &[], json));
        assert!(empty.sources.is_empty());
    }
}

#[test]
fn terminate_decline_and_session_infos_round_trip() {
    let reason = Reason {
        condition: "expired".to_owned(),
        text: Some("Idle session timeout".to_owned()),
    };
    let mut expected = Jingle::new(Action::SessionTerminate, "sid5");
    expected.reason = Some(reason.clone());
    assert_eq!(
        reparse(&build::session_terminate("sid5", None, &reason, None)),
        expected
    );

    let success = Reason {
        condition: "success".to_owned(),
        text: None,
    };
    let restart = BridgeSession {
        id: "bs".to_owned(),
        region: None,
        restart: true,
        ice_restart: false,
    };
    let j = reparse(&build::session_terminate(
        "sid5",
        Some("focus"),
        &success,
        Some(&restart),
    ));
    assert!(j.restart_requested());
    assert_eq!((j.reason, j.bridge_session), (Some(success), Some(restart)));

    let d = reparse(&build::decline("p2p", Some("browser@x/y")));
    assert_eq!(
        d.reason.map(|r| (r.condition, r.text)),
        Some(("decline".to_owned(), Some("P2P disabled".to_owned())))
    );
    assert_eq!(d.initiator.as_deref(), Some("browser@x/y"));

    let ice = reparse(&build::session_info_ice_restart("sid5", "focus", "bs"));
    assert_eq!(ice.action, Action::SessionInfo);
    assert!(ice.ice_restart_requested() && !ice.restart_requested());
    assert_eq!(ice.ice_state, None);

    let failed = reparse(&build::session_info_ice_failed("sid5", "focus", "bs"));
    assert_eq!(failed.ice_state.as_deref(), Some("failed"));
    assert_eq!(failed.bridge_session.map(|b| b.id).as_deref(), Some("bs"));
}

#[test]
fn answer_description_needs_opus() {
    let mut d = description();
    d.payload_types.retain(|p| p.name != "opus");
    assert_eq!(build::answer_description(&d), None);
}
