//! The external-bridge protocol against stand-in processes (`sh` scripts): the offer becomes
//! Jicofo's transport, facts and errors are collected, the sent log is converted, a process
//! that dies or never answers is an error (not a hang), and dropping the handle kills it.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::voice::Voice;

fn sh(script: &str) -> ExternalBridgeSpec {
    ExternalBridgeSpec {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![],
    }
}

fn script(endpoint: &str) -> SpeakerScript {
    SpeakerScript {
        endpoint: endpoint.into(),
        voice: Arc::new(Voice::tone(440.0, 0.3).expect("tone")),
        windows: vec![TalkWindow {
            start: Duration::from_secs(1),
            end: Duration::from_secs(2),
        }],
    }
}

const OFFER: &str = r#"{"event":"offer","ufrag":"uf","pwd":"pwpwpwpwpwpwpwpwpwpwpw","fingerprint":{"hash":"sha-256","value":"AB:CD"},"candidates":[{"foundation":"1","component":1,"priority":2130706431,"ip":"127.0.0.1","port":5000},{"foundation":"1","component":2,"priority":1,"ip":"127.0.0.1","port":5001}]}"#;

#[tokio::test]
async fn the_offer_becomes_jicofos_transport_and_the_speakers_sources() {
    // Answers allocate with an offer, reports a fact and an error, and answers close with a
    // sent log; it echoes the allocate line to stderr (logged).
    let body = format!(
        r#"read a; echo "$a" >&2; echo '{OFFER}'
echo '{{"event":"fact","key":"srtp_profile","value":"SRTP_AEAD_AES_128_GCM"}}'
echo '{{"event":"error","message":"boom"}}'
read b; read c; read d
echo '{{"event":"closed","sent":{{"speakers":[{{"endpoint":"e1","ssrc":7,"windows":[{{"start":1.0,"end":2.0,"first_unix":1000.5,"last_unix":1001.5,"first_seq":10,"last_seq":59,"packets":50}}]}}],"skipped_ticks":2}}}}'"#
    );
    let (mut bridge, offer, sources) =
        ExternalBridge::allocate(&sh(&body), 4, 9, vec![script("e1")])
            .await
            .expect("allocated");
    let t = &offer.transport;
    assert_eq!(
        (t.ufrag.as_str(), t.fingerprints[0].setup),
        ("uf", Setup::Actpass)
    );
    assert_eq!(t.candidates.len(), 1, "component 2 is dropped");
    assert_eq!(offer.description.payload_types[0].id, 111);
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].owner, BRIDGE_OWNER);
    assert_eq!(sources[1].owner, "e1");
    assert_ne!(sources[0].ssrc, sources[1].ssrc);
    let mut answer = t.clone();
    answer.fingerprints[0].setup = Setup::Active;
    bridge.accept(&answer).expect("accept");
    bridge.start(Instant::now()).expect("start");
    let log = bridge.close().await;
    assert_eq!(log.skipped_ticks, 2);
    let sent = log.speaker("e1").expect("e1");
    assert_eq!((sent.ssrc, sent.windows[0].packets), (7, 50));
    assert_eq!(
        sent.windows[0]
            .last
            .duration_since(sent.windows[0].first)
            .ok(),
        Some(Duration::from_secs(1))
    );
    assert!(
        log.facts
            .contains(&("srtp_profile".into(), "SRTP_AEAD_AES_128_GCM".into()))
    );
    assert!(log.facts.contains(&("error".into(), "boom".into())));
}

#[tokio::test]
async fn a_process_that_cannot_start_or_dies_before_its_offer_is_an_error() {
    let missing = ExternalBridgeSpec {
        program: "/nonexistent/bridge".into(),
        args: vec![],
        env: vec![],
    };
    assert!(matches!(
        ExternalBridge::allocate(&missing, 1, 1, vec![]).await,
        Err(BridgeError::External(_))
    ));
    assert!(matches!(
        ExternalBridge::allocate(&sh("exit 3"), 1, 1, vec![]).await,
        Err(BridgeError::External(_))
    ));
}

#[tokio::test]
async fn an_answer_without_an_active_or_passive_setup_is_refused() {
    let body = format!("read a; echo '{OFFER}'; sleep 5");
    let (mut bridge, offer, _) = ExternalBridge::allocate(&sh(&body), 1, 1, vec![])
        .await
        .expect("allocated");
    assert!(matches!(
        bridge.accept(&offer.transport),
        Err(BridgeError::InvalidAnswer(_))
    ));
    assert!(matches!(
        bridge.start(Instant::now()),
        Err(BridgeError::State(_))
    ));
}

#[tokio::test]
async fn dropping_the_handle_kills_the_process() {
    let body = format!("read a; echo '{OFFER}'; sleep 60");
    let (bridge, _, _) = ExternalBridge::allocate(&sh(&body), 1, 1, vec![])
        .await
        .expect("allocated");
    let pid = bridge.pid().expect("running");
    drop(bridge);
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
    };
    for _ in 0..100 {
        if gone() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("process {pid} still runs after the handle was dropped");
}
