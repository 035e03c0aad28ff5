//! Session churn over the loopback deployment: Jicofo's idle timeout and re-invite,
//! bridge moves, transport-replace, an ICE failure, a kick, and a browser's P2P offer —
//! each must continue the same timeline in the same file, with silence for any gap.

use jitape_sim::harness as support;

use std::time::Duration;

use jitape::sink::sidecar;
use jitape_sim::analyze::check_recording;
use jitape_sim::loopback::{Loopback, MUC_DOMAIN};
use jitape_sim::plan::{ConferencePlan, Disruption, SpeakerPlan, Stint, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn speaker(i: usize, stints: &[(f64, Option<f64>)], talk: &[(f64, f64)]) -> SpeakerPlan {
    SpeakerPlan {
        display_name: format!("Speaker{i}"),
        voice: VoiceSpec::Tone(default_tone_hz(i)),
        stats_id: format!("stats{i}"),
        stints: stints
            .iter()
            .enumerate()
            .map(|(k, (join, leave))| Stint {
                endpoint: format!("{:08x}", 0xc000_0000u32 + (i as u32) * 16 + k as u32),
                join_at: secs(*join),
                leave_at: leave.map(secs),
                knock: false,
            })
            .collect(),
        talk: talk.iter().map(|(a, b)| window(*a, *b)).collect(),
        identity: None,
        hidden_from_recorder: false,
    }
}

async fn record(
    plan: ConferencePlan,
) -> (
    jitape_sim::world::ConferenceOutcome,
    jitape::sink::FinalizedFiles,
    tempfile::TempDir,
) {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let (outcome, files) = lb.play(plan).await.unwrap();
    lb.stop().await;
    let flacs = support::files_with_suffix(dir.path(), ".flac");
    assert_eq!(flacs, vec![files.flac.clone()], "one conference, one file");
    support::flac_test(&files.flac);
    let sc = sidecar::read(&files.sidecar).unwrap();
    let report = check_recording(&files.flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}");
    (outcome, files, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_while_everyone_is_away_then_reinvited() {
    let mut plan = ConferencePlan::empty(&format!("away@{MUC_DOMAIN}"), 24.0);
    plan.idle_timeout = secs(3.0);
    plan.speakers = vec![
        // Both leave at 6 s; one refreshes back at 15 s under a new endpoint id.
        speaker(
            0,
            &[(0.0, Some(6.0)), (15.0, None)],
            &[(1.0, 3.0), (17.0, 20.0)],
        ),
        speaker(1, &[(0.0, Some(6.0))], &[(3.5, 5.5)]),
    ];
    let (outcome, files, _dir) = record(plan).await;
    // Jicofo expired the idle session at 9 s and invited jitape again at 15 s.
    assert_eq!(
        outcome.sessions, 2,
        "a second session after the idle timeout"
    );
    assert_eq!(outcome.recorder_joins.len(), 1, "jitape never left");
    let sc = sidecar::read(&files.sidecar).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"));
    let alice = sc
        .participants
        .iter()
        .find(|p| p.display_name.as_deref() == Some("Speaker0"))
        .unwrap();
    assert_eq!(
        alice.presence.len(),
        2,
        "the refresh continues the same participant"
    );
    assert_eq!(alice.nicks.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_moves_transport_replace_kick_and_p2p_keep_one_recording() {
    let mut plan = ConferencePlan::empty(&format!("churn@{MUC_DOMAIN}"), 27.0);
    plan.speakers = vec![
        speaker(
            0,
            &[(0.0, None)],
            &[(1.0, 3.5), (8.0, 10.0), (14.0, 16.0), (21.0, 24.0)],
        ),
        speaker(1, &[(0.0, None)], &[(4.0, 6.0), (17.0, 19.0)]),
    ];
    plan.disruptions = vec![
        (secs(6.5), Disruption::MoveBridge),
        (secs(11.0), Disruption::ReplaceTransport),
        (secs(12.5), Disruption::P2pOffer(1)),
        (secs(19.5), Disruption::KickRecorder),
    ];
    let (outcome, files, _dir) = record(plan).await;
    assert_eq!(
        outcome.sessions, 4,
        "initial, moved, replaced, after the kick's rejoin"
    );
    assert_eq!(outcome.recorder_joins.len(), 2, "rejoined after the kick");
    let p2p: Vec<_> = outcome
        .probe_replies
        .iter()
        .filter(|r| r.0.starts_with("p2p"))
        .collect();
    assert!(
        p2p.iter().any(|r| r.0 == "p2p offer" && r.1 == "result"),
        "the offer is acked: {p2p:?}"
    );
    assert!(
        p2p.iter()
            .any(|r| r.0 == "p2p declined" && r.2.as_deref() == Some("decline")),
        "and declined: {p2p:?}"
    );
    let sc = sidecar::read(&files.sidecar).unwrap();
    assert!(
        sc.gaps
            .iter()
            .any(|g| g.kind == sidecar::GapKind::XmppReconnect),
        "the kick is noted as an interruption: {:?}",
        sc.gaps
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_failure_gets_a_new_session_and_the_gap_is_silence() {
    let mut plan = ConferencePlan::empty(&format!("icefail@{MUC_DOMAIN}"), 34.0);
    plan.speakers = vec![speaker(0, &[(0.0, None)], &[(1.0, 4.0), (27.0, 31.0)])];
    plan.disruptions = vec![(secs(5.0), Disruption::FailBridge)];
    // The bridge dies at 5 s; jitape declares ICE failed 5 + 10 s after the last packet,
    // asks for a new session (bridge-session restart), and hears the 27 s window again.
    let (outcome, _files, _dir) = record(plan).await;
    assert_eq!(outcome.sessions, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xmpp_link_drop_reconnects_rejoins_and_continues() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let room = format!("linkdrop@{MUC_DOMAIN}");
    let mut plan = ConferencePlan::empty(&room, 16.0);
    plan.speakers = vec![speaker(0, &[(0.0, None)], &[(1.0, 5.0), (10.0, 14.0)])];
    let server = &lb.server;
    let drop = async {
        tokio::time::sleep(secs(6.0)).await;
        server.drop_component(jitape_sim::loopback::RECORDER_DOMAIN);
    };
    let (outcome, ()) = tokio::join!(lb.world.run(plan), drop);
    let outcome = outcome.unwrap();
    let files = lb.wait_finalized(&room, secs(20.0)).await.unwrap();
    lb.stop().await;
    assert_eq!(
        support::files_with_suffix(dir.path(), ".flac"),
        vec![files.flac.clone()]
    );
    support::flac_test(&files.flac);
    let sc = sidecar::read(&files.sidecar).unwrap();
    let report = check_recording(&files.flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(outcome.recorder_joins.len(), 2, "rejoined after the drop");
    assert!(
        sc.gaps
            .iter()
            .any(|g| g.kind == sidecar::GapKind::XmppReconnect),
        "{:?}",
        sc.gaps
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_jitape_cannot_take_is_a_listed_gap_counted_shown_and_replaced() {
    use jitape::router::Control;
    support::logs();
    let room = format!("badoffer@{MUC_DOMAIN}");
    let mut plan = ConferencePlan::empty(&room, 14.0);
    plan.unusable_offers = 1;
    plan.speakers = vec![
        speaker(0, &[(0.0, None)], &[(4.0, 7.0)]),
        speaker(1, &[(0.0, None)], &[(8.0, 11.0)]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let metrics = lb.metrics().unwrap();
    let control = lb.control().unwrap();
    // While jitape has no session, the admin API and the metrics say so.
    let probe = tokio::spawn(async move {
        tokio::time::sleep(secs(1.6)).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        control.send(Control::List { reply: tx }).await.unwrap();
        rx.await.unwrap()
    });
    let (outcome, files) = lb.play(plan).await.unwrap();
    let during = probe.await.unwrap();
    let offer_refused = metrics.media_offer_refused.get();
    let deaf_after = metrics.conferences_deaf.get();
    lb.stop().await;

    let snap = during.iter().find(|c| c.room == room).expect("listed");
    assert!(snap.deaf_ms.is_some_and(|ms| ms >= 1000), "{snap:?}");
    assert!(
        snap.media_problem
            .as_deref()
            .is_some_and(|p| p.starts_with("offer-refused")),
        "{snap:?}"
    );
    assert_eq!(offer_refused, 1);
    assert_eq!(deaf_after, 0, "heard again once the new session came");
    assert_eq!(
        outcome.recorder_joins.len(),
        2,
        "rejoined to get a new offer"
    );
    assert_eq!(outcome.sessions, 1, "the second offer was taken");
    support::flac_test(&files.flac);
    let sc = sidecar::read(&files.sidecar).unwrap();
    let deaf: Vec<&sidecar::Gap> = sc
        .gaps
        .iter()
        .filter(|g| g.kind == sidecar::GapKind::MediaSession)
        .collect();
    assert_eq!(deaf.len(), 1, "{:?}", sc.gaps);
    let secs_of = |s: u64| s as f64 / f64::from(sc.sample_rate);
    let (a, b) = (secs_of(deaf[0].start.sample), secs_of(deaf[0].end.sample));
    assert!(a < 0.2 && (1.9..4.0).contains(&b), "deaf {a:.2}-{b:.2} s");
    let report = check_recording(&files.flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_bridge_that_forwards_nothing_is_replaced_and_listed() {
    support::logs();
    let room = format!("quiet@{MUC_DOMAIN}");
    let mut plan = ConferencePlan::empty(&room, 20.0);
    // From 5 s the bridge keeps ICE and DTLS up but forwards no RTP and no RTCP.
    plan.disruptions = vec![(secs(5.0), Disruption::QuietBridge)];
    plan.speakers = vec![
        speaker(0, &[(0.0, None)], &[(1.0, 4.0), (6.0, 8.0), (14.0, 17.0)]),
        speaker(1, &[(0.0, None)], &[(4.5, 9.0), (17.5, 19.0)]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start_with(
        dir.path(),
        48_000,
        "[media]\nbind = \"127.0.0.1\"\nsilence_timeout = \"3s\"",
    )
    .await
    .unwrap();
    let metrics = lb.metrics().unwrap();
    let (outcome, files) = lb.play(plan).await.unwrap();
    let no_packets = metrics.media_no_packets.get();
    lb.stop().await;

    assert_eq!(no_packets, 1, "noticed once");
    assert_eq!(outcome.sessions, 2, "a new session replaced the quiet one");
    support::flac_test(&files.flac);
    let sc = sidecar::read(&files.sidecar).unwrap();
    let deaf: Vec<&sidecar::Gap> = sc
        .gaps
        .iter()
        .filter(|g| g.kind == sidecar::GapKind::MediaSession)
        .collect();
    assert_eq!(deaf.len(), 1, "{:?}", sc.gaps);
    let secs_of = |s: u64| s as f64 / f64::from(sc.sample_rate);
    let (a, b) = (secs_of(deaf[0].start.sample), secs_of(deaf[0].end.sample));
    // Plan time = file time + the recording's start after the epoch (jitape joins at once).
    assert!((4.5..5.6).contains(&a), "deaf from the last packet: {a:.2}");
    assert!((7.5..11.0).contains(&b), "until the new session: {b:.2}");
}
