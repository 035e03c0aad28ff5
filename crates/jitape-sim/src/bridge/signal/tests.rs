//! Unit tests of `signal`.

use super::*;

fn transport() -> IceTransport {
    IceTransport {
        ufrag: "q8Zr".into(),
        pwd: "Vt3k9pLq2xYw7mNc4bHs1dFe".into(),
        fingerprints: vec![Fingerprint {
            hash: "sha-256".into(),
            setup: Setup::Active,
            value: "70:98".into(),
        }],
        candidates: vec![Candidate {
            component: 1,
            foundation: "r1".into(),
            generation: 0,
            id: None,
            ip: "127.0.0.1".parse().expect("literal"),
            port: 40123,
            priority: 2_130_706_431,
            protocol: Protocol::Udp,
            kind: CandidateType::Host,
            rel_addr: None,
            rel_port: None,
            network: None,
        }],
        rtcp_mux: true,
        web_socket: None,
        ice_generation: None,
    }
}

#[test]
fn the_answer_mirrors_the_mids_and_carries_jitapes_transport() {
    let sdp =
        answer_sdp(&transport(), &["0".into(), "1".into()], &Wire::default()).expect("answer");
    assert!(sdp.contains("a=group:BUNDLE 0 1\r\n"));
    assert_eq!(sdp.matches("a=recvonly").count(), 2);
    assert!(sdp.contains("a=setup:active"));
    assert!(sdp.contains("a=ice-ufrag:q8Zr\r\n"));
    assert!(sdp.contains("a=candidate:r1 1 udp 2130706431 127.0.0.1 40123 typ host\r\n"));
}

#[test]
fn an_answer_that_would_inject_lines_is_refused() {
    let mut t = transport();
    t.pwd = "x\r\na=evil".into();
    assert!(answer_sdp(&t, &["0".into()], &Wire::default()).is_err());
    let mut t = transport();
    t.fingerprints[0].setup = Setup::Actpass;
    assert!(answer_sdp(&t, &["0".into()], &Wire::default()).is_err());
}

#[test]
fn reads_the_transport_jvb_would_signal_from_an_offer() {
    let offer = "v=0\r\na=fingerprint:sha-256 AB:CD\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=mid:0\r\na=ice-ufrag:uf\r\na=ice-pwd:pw\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n\
            a=candidate:1 2 udp 2130706431 127.0.0.1 5000 typ host\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\n";
    let (t, mids) = transport_from_offer(offer).expect("transport");
    assert_eq!(mids, vec!["0", "1"]);
    assert_eq!(t.fingerprints[0].setup, Setup::Actpass);
    assert_eq!(t.candidates.len(), 1);
    assert_eq!((t.ufrag.as_str(), t.pwd.as_str()), ("uf", "pw"));
}
