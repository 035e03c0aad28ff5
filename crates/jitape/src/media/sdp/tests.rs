//! Unit tests of `sdp`.

use super::*;
use crate::jingle::model::{HeaderExtension, PayloadType, RtpDescription};

pub(crate) fn offer() -> AudioOffer {
    AudioOffer {
        content_name: "audio".into(),
        description: RtpDescription {
            payload_types: vec![
                PayloadType {
                    id: 111,
                    name: "opus".into(),
                    clockrate: 48_000,
                    channels: 2,
                    parameters: vec![("useinbandfec".into(), "1".into())],
                },
                PayloadType {
                    id: 126,
                    name: "telephone-event".into(),
                    clockrate: 8_000,
                    channels: 1,
                    parameters: vec![],
                },
            ],
            header_extensions: vec![HeaderExtension {
                id: 1,
                uri: crate::jingle::model::AUDIO_LEVEL_URI.into(),
            }],
            extmap_allow_mixed: true,
            rtcp_mux: true,
            maxptime: Some(60),
        },
        transport: IceTransport {
            ufrag: "5kj1a1j5ub3cbj".into(),
            pwd: "2jkc2o6d3hqf6p6ssjbcf5m2v9".into(),
            fingerprints: vec![Fingerprint {
                hash: "sha-256".into(),
                setup: Setup::Actpass,
                value: "38:E0:06:12".into(),
            }],
            candidates: vec![
                host("1", "172.18.0.5", Protocol::Udp, 1),
                host("2", "172.18.0.6", Protocol::Tcp, 1),
                host("3", "172.18.0.7", Protocol::Udp, 2),
            ],
            rtcp_mux: true,
            web_socket: None,
            ice_generation: None,
        },
    }
}

fn host(foundation: &str, ip: &str, protocol: Protocol, component: u8) -> Candidate {
    Candidate {
        component,
        foundation: foundation.into(),
        generation: 0,
        id: None,
        ip: ip.parse().expect("test literal"),
        port: 10_000,
        priority: 2_130_706_431,
        protocol,
        kind: CandidateType::Host,
        rel_addr: None,
        rel_port: None,
        network: None,
    }
}

#[test]
fn renders_one_m_line_per_slot_with_transport_on_the_first() {
    let t = OfferTemplate::new(&offer()).expect("valid");
    let sdp = t.render(&[Some(7), None, Some(9)], 3);
    assert!(sdp.contains("o=- 1 3 IN IP4"));
    assert!(sdp.contains("a=group:BUNDLE 0 1 2\r\n"));
    assert_eq!(
        sdp.matches("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n").count(),
        3
    );
    assert_eq!(
        sdp.matches("a=candidate:").count(),
        1,
        "only UDP component 1"
    );
    assert!(sdp.contains("a=candidate:1 1 udp 2130706431 172.18.0.5 10000 typ host generation 0"));
    assert!(sdp.contains("a=ssrc:7 msid:jitape s0\r\n"));
    assert!(sdp.contains("a=mid:1\r\na=inactive\r\n"));
    assert!(sdp.contains("a=ssrc:9 msid:jitape s2\r\n"));
    assert!(sdp.contains("a=fingerprint:sha-256 38:E0:06:12\r\n"));
    assert!(sdp.contains("a=setup:actpass"));
    assert!(sdp.contains("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level"));
    assert_eq!(sdp.matches("a=ssrc:").count(), 2);
}

#[test]
fn red_and_two_byte_audio_level_ids_are_offered_to_the_stack() {
    let mut o = offer();
    o.description.payload_types.insert(
        0,
        PayloadType {
            id: 112,
            name: "red".into(),
            clockrate: 48_000,
            channels: 2,
            parameters: vec![(String::new(), "111/111".into())],
        },
    );
    o.description.header_extensions[0].id = 16;
    let t = OfferTemplate::new(&o).expect("valid");
    assert_eq!(
        (t.opus_pt, t.red_pt, t.audio_level_id),
        (111, Some(112), Some(16))
    );
    let sdp = t.render(&[Some(7), Some(9)], 1);
    assert_eq!(
        sdp.matches("m=audio 9 UDP/TLS/RTP/SAVPF 111 112\r\n")
            .count(),
        2
    );
    assert_eq!(
        sdp.matches("a=rtpmap:112 red/48000/2\r\na=fmtp:112 111/111\r\n")
            .count(),
        2
    );
    assert!(sdp.contains("a=extmap:16 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"));
    assert!(sdp.contains("a=extmap-allow-mixed\r\n"));
    // Without RED the m-lines carry Opus only.
    let plain = OfferTemplate::new(&offer())
        .expect("valid")
        .render(&[Some(7)], 1);
    assert!(!plain.contains("red") && plain.contains("SAVPF 111\r\n"));
}

#[test]
fn an_empty_session_still_has_one_receiving_m_line() {
    let t = OfferTemplate::new(&offer()).expect("valid");
    let sdp = t.render(&[], 1);
    assert_eq!(sdp.matches("m=audio").count(), 1);
    assert!(sdp.contains("a=sendonly"));
    assert!(!sdp.contains("a=ssrc"));
}

#[test]
fn rejects_values_that_would_inject_sdp() {
    let mut o = offer();
    o.transport.ufrag = "ab\r\na=evil".into();
    assert!(matches!(
        OfferTemplate::new(&o),
        Err(MediaError::InvalidOffer(_))
    ));
    let mut o = offer();
    o.transport.fingerprints[0].value = "38:E0 x".into();
    assert!(matches!(
        OfferTemplate::new(&o),
        Err(MediaError::InvalidOffer(_))
    ));
    let mut o = offer();
    o.transport.candidates[0].foundation = "1 2".into();
    assert!(matches!(
        OfferTemplate::new(&o),
        Err(MediaError::InvalidOffer(_))
    ));
}

#[test]
fn rejects_offers_it_cannot_serve() {
    let mut o = offer();
    o.description.payload_types.remove(0);
    assert!(matches!(
        OfferTemplate::new(&o),
        Err(MediaError::Unsupported(_))
    ));
    let mut o = offer();
    o.transport.fingerprints.clear();
    assert!(matches!(
        OfferTemplate::new(&o),
        Err(MediaError::InvalidOffer(_))
    ));
    let mut o = offer();
    o.transport.fingerprints[0].hash = "md5".into();
    assert!(matches!(
        OfferTemplate::new(&o),
        Err(MediaError::Unsupported(_))
    ));
}

#[test]
fn reads_our_transport_from_an_answer_and_adds_advertised_addresses() {
    let answer = "v=0\r\na=fingerprint:sha-256 9E:9F\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=setup:active\r\na=ice-ufrag:XyTW\r\na=ice-pwd:Imqv\r\n\
            a=candidate:269 1 udp 2130706431 127.0.0.1 49337 typ host\r\n\
            a=candidate:269 2 udp 2130706431 127.0.0.1 49337 typ host\r\n\
            a=candidate:270 1 udp 2130706431 host.local 49337 typ host\r\n";
    let local = LocalTransport::from_answer(answer).expect("complete answer");
    assert_eq!(local.candidates.len(), 1);
    let t = local.into_ice_transport(&["203.0.113.9".parse().expect("literal")]);
    assert_eq!(t.ufrag, "XyTW");
    assert_eq!(t.fingerprints[0].setup, Setup::Active);
    assert_eq!(t.candidates.len(), 2);
    assert_eq!(t.candidates[1].port, 49337);
    assert!(t.candidates[1].priority < t.candidates[0].priority);
    assert!(t.candidates.iter().all(|c| c.generation == 0));
}

#[test]
fn track_ids_map_back_to_slots() {
    assert_eq!(slot_of_track("s12"), Some(12));
    assert_eq!(slot_of_track("x12"), None);
    assert_eq!(slot_of_track("s"), None);
}
