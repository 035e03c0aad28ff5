//! jitape against media stacks that are not its own (the simulated bridge runs on webrtc-rs,
//! like jitape, so a bug both share would stay invisible). The simulated focus plays a
//! Jicofo-shaped conference whose bridge is an external process on 127.0.0.1:
//!
//! - aiortc (aioice ICE, OpenSSL DTLS, libsrtp): ICE controlling, DTLS server after `actpass`,
//!   several Opus SSRCs bundled on one transport, talk spurts with nothing sent in between and
//!   RTP timestamps jumping over the silences, the audio-level extension (id 1) only;
//! - Bouncy Castle's DTLS (the videobridge's library) with the videobridge's cipher suites,
//!   certificate and SRTP profiles, our own controlling ICE agent and SRTP (tests/interop/java).
//!
//! Each recording is checked like the loopback tests check theirs: `flac -t`, claxon decoding,
//! every tone at its place within 10 ms, without holes, at its level and pitch, and nothing
//! elsewhere. The tools come from
//! `scripts/ensure-interop`; a missing one fails the test.

use jitape_sim::harness as support;
mod tools;

use std::time::Duration;

use jitape::sink::{FinalizedFiles, sidecar};
use jitape_sim::analyze::check_recording;
use jitape_sim::bridge::SentLog;
use jitape_sim::external::ExternalBridgeSpec;
use jitape_sim::loopback::{Loopback, MUC_DOMAIN};
use jitape_sim::plan::{ConferencePlan, SpeakerPlan, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;
use jitape_sim::world::ConferenceOutcome;

/// Bound on a whole test: the conference, the process start-ups and finalizing.
const TEST_LIMIT: Duration = Duration::from_secs(90);

fn speaker(i: usize, talk: &[(f64, f64)]) -> SpeakerPlan {
    SpeakerPlan::simple(
        &format!("{:08x}", 0xf000_0000u32 + i as u32),
        &format!("Speaker{i}"),
        VoiceSpec::Tone(default_tone_hz(i)),
        Duration::ZERO,
        None,
        talk.iter().map(|(a, b)| window(*a, *b)).collect(),
    )
}

/// Plays `plan` with `bridge` as the bridge and checks the recording against it.
async fn record(
    mut plan: ConferencePlan,
    bridge: ExternalBridgeSpec,
) -> (ConferenceOutcome, FinalizedFiles, tempfile::TempDir) {
    support::logs();
    plan.bridge.external = Some(bridge);
    let dir = tempfile::tempdir().unwrap();
    let run = async {
        let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
        let played = lb.play(plan).await;
        lb.stop().await;
        played.unwrap()
    };
    let (outcome, files) = tokio::time::timeout(TEST_LIMIT, run)
        .await
        .expect("the interop conference finishes in time");
    (outcome, files, dir)
}

/// One session, no error from the other stack, every talk window sent, and the recording
/// exact.
fn verify(outcome: &ConferenceOutcome, files: &FinalizedFiles) -> SentLog {
    assert_eq!(outcome.sessions, 1, "one Jingle session");
    assert_eq!(outcome.sent.len(), 1, "one bridge session");
    let log = outcome.sent[0].clone();
    let errors: Vec<_> = log.facts.iter().filter(|(k, _)| k == "error").collect();
    assert!(errors.is_empty(), "the other stack failed: {errors:?}");
    for (sp, windows) in outcome.plan.audible() {
        let endpoint = &sp.stints[0].endpoint;
        let sent = log
            .speaker(endpoint)
            .unwrap_or_else(|| panic!("{endpoint} was not sent: {log:?}"));
        assert_eq!(sent.windows.len(), windows.len(), "{endpoint}: {sent:?}");
        for (w, s) in windows.iter().zip(&sent.windows) {
            let expected = ((w.end - w.start).as_millis() / 20) as u32;
            assert!(
                s.packets + 2 >= expected,
                "{endpoint}: {} of {expected} packets in {w:?} (was the bridge connected?)",
                s.packets
            );
        }
    }
    support::flac_test(&files.flac);
    let sc = sidecar::read(&files.sidecar).expect("sidecar");
    assert_eq!(sc.status, sidecar::Status::Final);
    let report = check_recording(&files.flac, &sc, outcome).expect("analysis");
    eprintln!("{report}");
    assert!(
        report.ok(),
        "recording does not match the script:\n{report}"
    );
    log
}

/// Three speakers in turns with overlaps and silences, each with gaps inside their part.
/// Nobody talks in the first 2.5 s: the other stack's process starts (a JVM, a Python) and
/// connects in that time, and what is talked before it can send is not sent at all.
fn turns(room: &str) -> ConferencePlan {
    let mut plan = ConferencePlan::empty(&format!("{room}@{MUC_DOMAIN}"), 13.5);
    plan.speakers = vec![
        speaker(0, &[(2.5, 4.5), (8.5, 10.0)]),
        speaker(1, &[(4.0, 6.0), (10.5, 11.5)]),
        speaker(2, &[(7.0, 8.0), (9.5, 11.0)]),
    ];
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aiortc_bridge_conference_is_recorded_exactly() {
    let bridge = tools::aiortc_bridge();
    let (outcome, files, _dir) = record(turns("aiortc"), bridge).await;
    let log = verify(&outcome, &files);
    assert_eq!(tools::fact(&log, "ice_role"), Some("controlling"));
    assert_eq!(tools::fact(&log, "dtls_role"), Some("server"));
    assert_eq!(tools::fact(&log, "dtls_version"), Some("DTLSv1.2"));
    assert_eq!(
        tools::fact(&log, "srtp_profile"),
        Some("SRTP_AEAD_AES_128_GCM")
    );
    // jitape's RTCP receiver reports reached aiortc and passed its SRTCP.
    assert!(
        tools::count(&log, "senders_with_receiver_reports_from_jitape") >= 1,
        "{:?}",
        log.facts
    );
}

/// Two speakers with a pause and an overlap (from 2.5 s on, as in [`turns`]).
fn duet(room: &str) -> ConferencePlan {
    let mut plan = ConferencePlan::empty(&format!("{room}@{MUC_DOMAIN}"), 10.5);
    plan.speakers = vec![
        speaker(0, &[(2.5, 4.0), (6.0, 7.5)]),
        speaker(1, &[(3.5, 5.0), (8.0, 8.5)]),
    ];
    plan
}

/// The Bouncy Castle bridge with `args` (SRTP profiles, options): the recording is exact, and the handshake is the
/// videobridge's (DTLS 1.2, ECDHE-ECDSA, extended master secret, client certificate checked
/// against jitape's fingerprint, jitape's SRTCP verified with the exported keys).
async fn bouncy_castle(room: &str, args: &[&str]) -> SentLog {
    let classes = tempfile::tempdir().unwrap();
    let bridge = tools::bc_bridge(classes.path(), args);
    let (outcome, files, _dir) = record(duet(room), bridge).await;
    let log = verify(&outcome, &files);
    let fact = |k| tools::fact(&log, k);
    assert_eq!(fact("dtls_role"), Some("server"));
    assert_eq!(fact("dtls_version"), Some("DTLS 1.2"));
    assert_eq!(
        fact("cipher_suite"),
        Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(fact("extended_master_secret"), Some("true"));
    assert_eq!(
        fact("client_certificate_matches_signalled_fingerprint"),
        Some("true")
    );
    assert_eq!(fact("ice_nominated"), Some("true"));
    assert_eq!(fact("peer_sent_ice_controlled"), Some("true"));
    assert!(
        tools::count(&log, "consent_checks_answered_after_nomination") > 0,
        "jitape keeps checking the pair: {:?}",
        log.facts
    );
    assert!(
        tools::count(&log, "srtcp_packets_from_jitape_verified") > 0,
        "jitape's RTCP authenticates with the exported keys: {:?}",
        log.facts
    );
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bouncy_castle_dtls_with_the_videobridges_profiles_negotiates_aes_gcm() {
    let log = bouncy_castle(
        "bcgcm",
        &["SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_HMAC_SHA1_80"],
    )
    .await;
    assert_eq!(
        tools::fact(&log, "srtp_profile"),
        Some("SRTP_AEAD_AES_128_GCM")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bouncy_castle_dtls_with_only_aes_cm_hmac_sha1_80_works_too() {
    let log = bouncy_castle("bccm", &["SRTP_AES128_CM_HMAC_SHA1_80"]).await;
    assert_eq!(
        tools::fact(&log, "srtp_profile"),
        Some("SRTP_AES128_CM_HMAC_SHA1_80")
    );
}

/// A videobridge behind NAT whose advertised candidate does not reach jitape: jitape's checks
/// to it go nowhere, so the pair can only come from the bridge's own checks (jitape learns it
/// as peer-reflexive), as JVB does when it starts ICE towards an endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_whose_advertised_candidate_is_unreachable_is_reached_by_its_checks() {
    let log = bouncy_castle("bcnat", &["--unreachable-candidate"]).await;
    assert_eq!(
        tools::fact(&log, "srtp_profile"),
        Some("SRTP_AEAD_AES_128_GCM")
    );
}
