//! Loopback conferences through the whole pipeline: the in-process XMPP server, jitape as a
//! component, a simulated focus and bridge on webrtc-rs. Each test checks the FLAC with
//! `flac -t` and by decoding it independently against what the simulation sent.

use jitape_sim::harness as support;

use std::time::Duration;

use jitape::sink::sidecar;
use jitape_sim::analyze::{Expected, check_recording, decode_flac};
use jitape_sim::loopback::{Loopback, MUC_DOMAIN};
use jitape_sim::netem::NetemConfig;
use jitape_sim::offer::OfferVariants;
use jitape_sim::plan::{ConferencePlan, Disruption, SpeakerPlan, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn speaker(i: usize, join: f64, leave: Option<f64>, talk: &[(f64, f64)]) -> SpeakerPlan {
    SpeakerPlan::simple(
        &format!("{:08x}", 0xe000_0000u32 + i as u32),
        &format!("Speaker{i}"),
        VoiceSpec::Tone(default_tone_hz(i)),
        secs(join),
        leave.map(secs),
        talk.iter().map(|(a, b)| window(*a, *b)).collect(),
    )
}

async fn verify(
    outcome: &jitape_sim::world::ConferenceOutcome,
    files: &jitape::sink::FinalizedFiles,
) {
    support::flac_test(&files.flac);
    let sc = sidecar::read(&files.sidecar).expect("sidecar");
    assert_eq!(sc.status, sidecar::Status::Final);
    let report = check_recording(&files.flac, &sc, outcome).expect("analysis");
    eprintln!("{}:\n{report}", outcome.plan.room);
    assert!(
        report.ok(),
        "recording does not match the script:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_conference_is_one_exact_flac() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let plan = ConferencePlan::demo(&format!("lesson@{MUC_DOMAIN}"));
    let (outcome, files) = lb.play(plan).await.unwrap();
    lb.stop().await;

    let flacs = support::files_with_suffix(dir.path(), ".flac");
    assert_eq!(flacs, vec![files.flac.clone()], "exactly one recording");
    assert!(support::files_with_suffix(dir.path(), ".partial").is_empty());
    verify(&outcome, &files).await;
    let sc = sidecar::read(&files.sidecar).unwrap();
    assert_eq!(sc.room, format!("lesson@{MUC_DOMAIN}"));
    assert_eq!(sc.sample_rate, 48_000);
    let mut names: Vec<_> = sc
        .participants
        .iter()
        .filter_map(|p| p.display_name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["Alice", "Bob", "Carol"]);
    assert_eq!(outcome.sessions, 1);
    broken_copies_fail(&outcome, &files, dir.path());
}

/// Copies of a real recording broken on purpose, each the way a recorder could break it,
/// decoded, changed and encoded again: the analysis must reject every one, for its reason.
fn broken_copies_fail(
    outcome: &jitape_sim::world::ConferenceOutcome,
    files: &jitape::sink::FinalizedFiles,
    dir: &std::path::Path,
) {
    let sc = sidecar::read(&files.sidecar).unwrap();
    let original = decode_flac(&files.flac).unwrap().samples;
    let expected = Expected::from_outcome(outcome, &sc).unwrap();
    let rate = f64::from(sc.sample_rate);
    let at = |t: f64| (t * rate) as usize;
    // Alice's first window (2-5 s) and Bob's (6-8.5 s, alone until Carol at 8 s), in the file.
    let alice = expected.tones[0].on[0];
    let bob = expected.tones[1].on[0];
    let mut cases: Vec<(&str, Vec<i16>, &str)> = Vec::new();
    // 30 ms cut out of the middle: everything after it 30 ms early, the file 30 ms short.
    let mut cut = original.clone();
    let mid = at((alice.1 + bob.0) / 2.0);
    cut.drain(mid..mid + at(0.030));
    cases.push(("30 ms cut out", cut, "the room lasted"));
    // 12 ms of silence in front: every edge 12 ms late.
    let mut late = vec![0i16; at(0.012)];
    late.extend(&original);
    cases.push(("12 ms late", late, "onset expected at"));
    // 25 ms of silence inside Alice's first window.
    let mut hole = original.clone();
    let h = at(alice.0 + 1.0);
    hole[h..h + at(0.025)].fill(0);
    cases.push(("a 25 ms hole", hole, "Alice (440 Hz): hole"));
    // Bob 3 dB too quiet for a second.
    let mut quiet = original.clone();
    for v in &mut quiet[at(bob.0 + 0.5)..at(bob.0 + 1.5)] {
        *v = (f64::from(*v) / 2f64.sqrt()).round() as i16;
    }
    cases.push(("3 dB quiet", quiet, "Bob (660 Hz): level -3.0 dB"));
    // Bob 2 % sharp (every 50th sample dropped for a second): pitch, and the file short.
    let mut fast = original[..at(bob.0 + 0.5)].to_vec();
    fast.extend(
        original[at(bob.0 + 0.5)..at(bob.0 + 1.5)]
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 50 != 49)
            .map(|(_, v)| *v),
    );
    fast.extend(&original[at(bob.0 + 1.5)..]);
    cases.push(("2 % sharp", fast, "Bob (660 Hz): pitch +2."));
    for (what, samples, reason) in cases {
        let path = dir.join(format!("broken-{}.flac", what.replace(' ', "-")));
        let mut w = jitape::sink::flac::FlacWriter::create(&path, sc.sample_rate).unwrap();
        w.write(&samples).unwrap();
        w.finalize().unwrap();
        let report = check_recording(&path, &sc, outcome).unwrap();
        assert!(
            !report.ok() && report.problems.iter().any(|p| p.contains(reason)),
            "{what}: expected a problem containing {reason:?}:\n{report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_conferences_at_once_give_two_correct_files() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let mut a = ConferencePlan::demo(&format!("roomone@{MUC_DOMAIN}"));
    let mut b = ConferencePlan::demo(&format!("roomtwo@{MUC_DOMAIN}"));
    a.end_at = secs(12.0);
    b.end_at = secs(14.0);
    for p in [&mut a, &mut b] {
        for s in &mut p.speakers {
            s.talk.retain(|w| w.end <= secs(11.0));
        }
    }
    let (ra, rb) = tokio::join!(lb.world.run(a), lb.world.run(b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let fa = lb
        .wait_finalized(&format!("roomone@{MUC_DOMAIN}"), secs(20.0))
        .await
        .unwrap();
    let fb = lb
        .wait_finalized(&format!("roomtwo@{MUC_DOMAIN}"), secs(20.0))
        .await
        .unwrap();
    lb.stop().await;
    assert_ne!(fa.flac, fb.flac);
    verify(&ra, &fa).await;
    verify(&rb, &fb).await;
    assert_eq!(support::files_with_suffix(dir.path(), ".flac").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_add_is_heard_from_its_first_packet_and_a_leaver_is_dropped() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let mut plan = ConferencePlan::demo(&format!("churn@{MUC_DOMAIN}"));
    plan.speakers = vec![
        speaker(0, 0.0, None, &[(1.0, 3.0)]),
        // Talks from the instant it joins: its source-add and its first packet race.
        speaker(1, 4.0, None, &[(4.0, 6.0)]),
        // Leaves at 7 s while the (stale) bridge keeps forwarding its audio until 9 s.
        speaker(2, 0.0, Some(7.0), &[(5.0, 9.0)]),
    ];
    plan.bridge_keeps_leavers = true;
    plan.end_at = secs(10.5);
    let (outcome, files) = lb.play(plan).await.unwrap();
    lb.stop().await;
    // The check requires speaker 1's onset within 40 ms of 4.0 s and speaker 2's audio to
    // end within 40 ms of 7.0 s with no sound after it.
    verify(&outcome, &files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_jingle_gets_iq_errors_and_the_recording_continues() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let mut plan = ConferencePlan::demo(&format!("hostile@{MUC_DOMAIN}"));
    plan.disruptions = vec![(secs(3.0), Disruption::MalformedJingle)];
    let (outcome, files) = lb.play(plan).await.unwrap();
    lb.stop().await;
    let replies: Vec<_> = outcome
        .probe_replies
        .iter()
        .map(|(label, kind, cond)| (label.as_str(), kind.as_str(), cond.as_deref()))
        .collect();
    // Every probe gets the IQ error a Jingle peer would expect, in the order it was sent.
    let expected = [
        ("session-initiate without transport", "bad-request"),
        ("unknown action", "feature-not-implemented"),
        ("source-add with a bad SSRC", "bad-request"),
        ("source-add with SSRC 0", "bad-request"),
        ("source-add with an SSRC above 2^32", "bad-request"),
        ("source-add with 3,000 sources", "policy-violation"),
        ("source-add whose JSON is not JSON", "bad-request"),
        ("source-add for an unknown session", "item-not-found"),
        ("source-remove for an unknown session", "item-not-found"),
        (
            "transport-replace with a candidate port above 65535",
            "bad-request",
        ),
        ("transport-info with a negative port", "bad-request"),
        ("session-initiate without Opus", "feature-not-implemented"),
        ("session-accept from the focus", "feature-not-implemented"),
        ("Jingle without a sid", "bad-request"),
        ("Jingle in a foreign namespace", "service-unavailable"),
    ]
    .map(|(label, cond)| (label, "error", Some(cond)));
    assert_eq!(replies, expected);
    assert_eq!(outcome.sessions, 1, "the session was not disturbed");
    verify(&outcome, &files).await;
}

/// The SSRCs jitape gives an m-line (and a track) right now: its admin snapshot's sources.
async fn recorded_ssrcs(lb: &Loopback, room: &str) -> Vec<u32> {
    let control = lb.app.as_ref().expect("jitape runs").control();
    let (reply, list) = tokio::sync::oneshot::channel();
    control
        .send(jitape::router::Control::List { reply })
        .await
        .expect("router runs");
    let list = list.await.expect("answered");
    let conf = list.iter().find(|c| c.room == room).expect("recording");
    let mut ssrcs: Vec<u32> = conf.sources.iter().map(|s| s.ssrc.0).collect();
    ssrcs.sort_unstable();
    ssrcs
}

/// A Jicofo offer with every variant that matters (docs/protocol.md, "Offer variants"):
/// RED at 112 before Opus with Jicofo's nameless fmtp parameter (jitape advertises
/// `opus-red`, so this Jicofo with RED enabled offers it and the bridge forwards RED),
/// telephone-event, audio-level + mid + tcc header extensions, extmap-allow-mixed, two
/// synthetic translation sources per speaker, the bridge's feedback source with its msid, a
/// TCP and an ssltcp candidate next to the UDP one, startmuted, traceparent and unknown
/// elements and attributes. jitape takes the session, records every speaker exactly, and
/// gives the synthetic sources no m-line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jicofo_offer_with_every_variant_is_recorded_exactly() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let room = format!("variants@{MUC_DOMAIN}");
    let mut plan = ConferencePlan::demo(&room);
    plan.offer = OfferVariants {
        red_distance: Some(2),
        translations: vec!["es".into(), "fr".into()],
        extras: true,
    };
    let plan = plan.with_netem(NetemConfig {
        loss: 0.05,
        seed: 7,
        ..NetemConfig::default()
    });
    // Alice and Bob are in the session-initiate (with their translations); Carol comes at
    // 7 s with a source-add, Bob leaves at 10 s.
    let during = async {
        tokio::time::sleep(secs(5.0)).await;
        let first = recorded_ssrcs(&lb, &room).await;
        tokio::time::sleep(secs(6.5)).await;
        (first, recorded_ssrcs(&lb, &room).await)
    };
    let (outcome, (at5, at11)) = tokio::join!(lb.world.run(plan), during);
    let outcome = outcome.unwrap();
    let files = lb.wait_finalized(&room, secs(20.0)).await.unwrap();
    lb.stop().await;

    assert_eq!(outcome.sessions, 1, "the offer was accepted");
    let sent = &outcome.sent[0];
    let ssrc = |who: &str| {
        sent.speakers
            .iter()
            .find(|s| {
                outcome
                    .plan
                    .speakers
                    .iter()
                    .any(|p| p.display_name == who && p.stints[0].endpoint == s.endpoint)
            })
            .map(|s| s.ssrc)
            .expect("speaker sent")
    };
    let sorted = |mut v: Vec<u32>| {
        v.sort_unstable();
        v
    };
    assert_eq!(
        at5,
        sorted(vec![ssrc("Alice"), ssrc("Bob")]),
        "no m-line for synthetic or bridge sources"
    );
    assert_eq!(at11, sorted(vec![ssrc("Alice"), ssrc("Carol")]));
    verify(&outcome, &files).await;
}

/// A Jicofo configured with other payload types and ids (`jicofo.codec.audio.opus.pt = 109`,
/// the audio level at id 16, which needs RFC 8285's two-byte form): the Opus payload type of
/// the offer is the one the recording decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_with_other_payload_types_is_recorded_exactly() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let mut plan = ConferencePlan::demo(&format!("payloadtypes@{MUC_DOMAIN}"));
    plan.bridge.wire.opus_pt = 109;
    plan.bridge.wire.audio_level_id = 16;
    let (outcome, files) = lb.play(plan).await.unwrap();
    lb.stop().await;
    assert_eq!(outcome.sessions, 1);
    verify(&outcome, &files).await;
}
