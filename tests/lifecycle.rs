//! Every conference, one recording — against a real Prosody with jitape's module, jitape
//! running as a separate `jitape run` process: discovery without invitations, roster blips,
//! lobby and password rooms, Jicofo's session churn, a Prosody restart, a `kill -9` of
//! jitape, and no leaked threads or descriptors after many churning rooms.

use jitape_sim::harness as support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jitape::sink::sidecar::{self, GapKind};
use jitape_sim::analyze::{Expected, Tolerances, analyse, check_recording, decode_flac};
use jitape_sim::plan::{ConferencePlan, Disruption, SpeakerPlan, Stint, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;
use jitape_sim::world::ConferenceOutcome;
use support::process::{JitapeProcess, idle_counts, thread_names, threads_and_fds, wait_for_final};
use support::prosody::{self, MUC, Prosody, RECORDER, SIM, sim_world};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn start_prosody() -> Prosody {
    Prosody::start(&prosody::with_module(
        MUC,
        RECORDER,
        "rec-secret",
        SIM,
        "sim-secret",
    ))
}

fn jitape_toml(port: u16, dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[xmpp]
host = "127.0.0.1"
port = {port}
domain = "{RECORDER}"
secret = "rec-secret"
muc_domains = ["{MUC}"]
reconnect_min = "200ms"
reconnect_max = "1s"
ping_interval = "5s"
ping_timeout = "3s"
[media]
bind = "127.0.0.1"
[recording]
dir = "{}"
{extra}
[http]
bind = "127.0.0.1:0"
"#,
        dir.display()
    )
}

fn person(i: usize, stints: &[(f64, Option<f64>, bool)], talk: &[(f64, f64)]) -> SpeakerPlan {
    SpeakerPlan {
        display_name: ["Tutor", "Student", "Latecomer", "Guest"][i % 4].to_string(),
        voice: VoiceSpec::Tone(default_tone_hz(i)),
        stats_id: format!("browser-{i}"),
        stints: stints
            .iter()
            .enumerate()
            .map(|(k, (join, leave, knock))| Stint {
                endpoint: format!("{:08x}", 0xb000_0000u32 + (i as u32) * 256 + k as u32),
                join_at: secs(*join),
                leave_at: leave.map(secs),
                knock: *knock,
            })
            .collect(),
        talk: talk.iter().map(|(a, b)| window(*a, *b)).collect(),
        identity: None,
        hidden_from_recorder: false,
    }
}

/// Check one finalized recording against the outcome.
fn verify(
    flac: &std::path::Path,
    sc: &sidecar::Sidecar,
    outcome: &ConferenceOutcome,
    jitape_log: &str,
) {
    support::flac_test(flac);
    let report = check_recording(flac, sc, outcome).unwrap();
    assert!(report.ok(), "{report}\n--- jitape ---\n{jitape_log}");
}

/// The scripted 3-minute lesson: a refresh, a lobby knock and admission in a password room,
/// everyone gone for 60 s, a bridge move, an ICE failure, and a Prosody restart.
fn lesson(room: &str) -> ConferencePlan {
    let mut plan = ConferencePlan::empty(room, 180.0);
    plan.invite_at = None; // the Prosody module tells jitape
    plan.speakers = vec![
        // The tutor: away from 55 s to 115 s.
        person(
            0,
            &[(0.0, Some(55.0), false), (115.0, None, false)],
            &[
                (3.0, 8.0),
                (44.0, 49.0),
                (118.0, 123.0),
                (135.0, 140.0),
                (172.0, 176.0),
            ],
        ),
        // A student who refreshes the page at 20 s (back at 22 s under a new endpoint id).
        person(
            1,
            &[(0.5, Some(20.0), false), (22.0, Some(55.0), false)],
            &[(9.0, 14.0), (24.0, 28.0)],
        ),
        // A latecomer who knocks at the lobby (members-only from 30 s) and is admitted.
        person(
            2,
            &[(35.0, Some(55.0), true), (115.0, None, false)],
            &[(37.0, 42.0), (124.0, 129.0), (160.0, 163.0)],
        ),
    ];
    plan.disruptions = vec![
        (secs(0.0), Disruption::Password(Some("letmein".into()))),
        (secs(30.0), Disruption::MembersOnly(true)),
        (secs(132.0), Disruption::MoveBridge),
        (secs(143.0), Disruption::FailBridge),
    ];
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_minute_lesson_with_every_blip_is_one_flac() {
    support::logs();
    let prosody = Arc::new(Mutex::new(start_prosody()));
    let port = prosody.lock().unwrap().component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(port, &rec_dir, ""),
        tmp.path(),
    );
    let world = sim_world(port).await;

    let room = format!("lesson@{MUC}");
    let started = Instant::now();
    // Prosody restarts at 166 s into the lesson (the test drives the real process).
    let p = Arc::clone(&prosody);
    let restart = tokio::spawn(async move {
        tokio::time::sleep_until((started + secs(166.0)).into()).await;
        tokio::task::spawn_blocking(move || p.lock().unwrap().restart())
            .await
            .unwrap();
    });
    let outcome = world.run(lesson(&room)).await.expect("lesson played");
    restart.await.unwrap();
    let found = wait_for_final(&rec_dir, &room, secs(20.0)).await;
    jitape.terminate(secs(15.0));
    world.close().await;
    let log = jitape.log();
    let (flac, sc_path) = found.unwrap_or_else(|| panic!("no final recording\n{log}"));

    assert_eq!(
        support::files_with_suffix(&rec_dir, ".flac"),
        vec![flac.clone()],
        "exactly one FLAC"
    );
    let sc = sidecar::read(&sc_path).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"));
    verify(&flac, &sc, &outcome, &log);
    // The latecomer's knock was refused while the room was members-only...
    let knock = outcome
        .probe_replies
        .iter()
        .find(|r| r.0 == "knock Latecomer");
    assert_eq!(
        knock.map(|k| k.2.as_deref()),
        Some(Some("registration-required")),
        "{:?}",
        outcome.probe_replies
    );
    // ...and jitape was never refused or split: joined at the start and after the restart.
    assert!(
        outcome.recorder_joins.len() >= 2,
        "{:?}",
        outcome.recorder_joins
    );
    assert!(
        outcome.sessions >= 5,
        "initial, idle re-invite, move, ICE restart, after Prosody restart: {}",
        outcome.sessions
    );
    assert!(
        sc.gaps.iter().any(|g| g.kind == GapKind::XmppReconnect),
        "the Prosody restart is noted: {:?}\n--- jitape ---\n{log}",
        sc.gaps
    );
    let tutor = sc
        .participants
        .iter()
        .find(|p| p.display_name.as_deref() == Some("Tutor"))
        .unwrap();
    assert!(tutor.presence.len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_joined_promptly_at_start_and_while_running() {
    support::logs();
    let prosody = start_prosody();
    let port = prosody.component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let world = Arc::new(sim_world(port).await);

    // A room created and filled while jitape is down.
    let mut before = ConferencePlan::empty(&format!("early@{MUC}"), 14.0);
    before.invite_at = None;
    before.speakers = vec![
        person(0, &[(0.0, None, false)], &[(6.0, 9.0)]),
        person(2, &[(0.0, None, false)], &[(10.0, 12.0)]),
    ];
    // A room whose first human waits alone while jitape runs, and whose second (the one
    // that makes Jicofo start the conference on the bridge) comes at 6 s.
    let mut during = ConferencePlan::empty(&format!("later@{MUC}"), 14.0);
    during.invite_at = None;
    during.speakers = vec![
        person(1, &[(4.0, None, false)], &[(8.0, 11.0)]),
        person(3, &[(6.0, None, false)], &[(11.5, 12.5)]),
    ];

    let w = Arc::clone(&world);
    let early = tokio::spawn(async move { w.run(before).await });
    tokio::time::sleep(secs(2.0)).await;
    let w = Arc::clone(&world);
    let later = tokio::spawn(async move { w.run(during).await });
    tokio::time::sleep(secs(1.0)).await;
    let jitape_started = Instant::now();
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(port, &rec_dir, ""),
        tmp.path(),
    );
    let early = early.await.unwrap().unwrap();
    let later = later.await.unwrap().unwrap();
    let a = wait_for_final(&rec_dir, &format!("early@{MUC}"), secs(20.0)).await;
    let b = wait_for_final(&rec_dir, &format!("later@{MUC}"), secs(20.0)).await;
    jitape.terminate(secs(15.0));
    let log = jitape.log();

    let joined_early = early.epoch + early.recorder_joined.expect("recorded the early room");
    let delay = joined_early.saturating_duration_since(jitape_started);
    assert!(
        delay < secs(2.0),
        "joined {delay:?} after jitape started\n{log}"
    );
    let second = later.epoch + later.plan.speakers[1].stints[0].join_at;
    let joined_later = later.epoch + later.recorder_joined.expect("recorded the later room");
    let delay = joined_later.saturating_duration_since(second);
    assert!(
        delay < secs(1.0),
        "joined {delay:?} after the second person\n{log}"
    );
    assert!(
        joined_later > second,
        "not while the first waited alone (jitape would have put them on the bridge)"
    );
    for (found, outcome) in [(a, &early), (b, &later)] {
        let (flac, sc) = found.unwrap_or_else(|| panic!("no final recording\n{log}"));
        verify(&flac, &sidecar::read(&sc).unwrap(), outcome, &log);
    }
}

/// The lateness window of the kill -9 test, in seconds (the default, spelled out).
const LATE_WINDOW_S: f64 = 5.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_conference_then_restart_continues_the_one_flac() {
    support::logs();
    let prosody = start_prosody();
    let port = prosody.component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let late = format!("late_window = \"{LATE_WINDOW_S}s\"");
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(port, &rec_dir, &late),
        tmp.path(),
    );
    let world = sim_world(port).await;

    let room = format!("crash@{MUC}");
    let mut plan = ConferencePlan::empty(&room, 36.0);
    plan.invite_at = None;
    plan.speakers = vec![
        person(0, &[(0.0, None, false)], &[(2.0, 7.0), (22.0, 27.0)]),
        person(1, &[(0.0, None, false)], &[(8.0, 12.0), (28.0, 32.0)]),
    ];
    let started = Instant::now();
    let run = world.run(plan);
    let crash = async {
        tokio::time::sleep_until((started + secs(14.0)).into()).await;
        jitape.kill9();
        let partials = support::files_with_suffix(&rec_dir, ".partial");
        let owners = support::files_with_suffix(&rec_dir, ".owner");
        tokio::time::sleep_until((started + secs(17.0)).into()).await;
        jitape.start();
        (partials, owners)
    };
    let (outcome, (partials, owners)) = tokio::join!(run, crash);
    // One instance: no owner record beside the files (and no lease holds up the restart:
    // the downtime is bounded below).
    assert!(owners.is_empty(), "{owners:?}");
    let outcome = outcome.expect("conference played");
    assert!(
        partials
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".flac.partial")),
        "a .partial was left: {partials:?}"
    );
    let found = wait_for_final(&rec_dir, &room, secs(20.0)).await;
    jitape.terminate(secs(15.0));
    world.close().await;
    let log = jitape.log();
    let (flac, sc_path) = found.unwrap_or_else(|| panic!("no final recording\n{log}"));
    assert_eq!(
        support::files_with_suffix(&rec_dir, ".flac"),
        vec![flac.clone()],
        "one FLAC for the whole conference"
    );

    let sc = sidecar::read(&sc_path).unwrap();
    let restart = sc.gaps.iter().find(|g| g.kind == GapKind::JitapeRestart);
    let restart =
        restart.unwrap_or_else(|| panic!("the sidecar lists the interruption: {:?}", sc.gaps));
    let downtime = (restart.end.sample - restart.start.sample) as f64 / f64::from(sc.sample_rate);
    // jitape was down for 3 s; what it had received but not yet written when it was killed is
    // lost with the process: at most the lateness window (held back for late packets) plus one
    // render period and the encoder's block.
    let held = LATE_WINDOW_S + 0.5;
    assert!(
        (2.8..3.0 + held).contains(&downtime),
        "downtime {downtime} s (3 s down + at most {held} s held in memory)"
    );
    // Everything outside the interruption exactly as sent; inside it (bounded just above),
    // silence: the audio there was in the killed process's memory or never reached it.
    support::flac_test(&flac);
    let secs_of = |s: u64| s as f64 / f64::from(sc.sample_rate);
    let gap = (secs_of(restart.start.sample), secs_of(restart.end.sample));
    let expected = Expected::from_outcome(&outcome, &sc)
        .unwrap()
        .without(&[gap]);
    let report = analyse(
        &decode_flac(&flac).unwrap(),
        &expected,
        &Tolerances::default(),
    );
    assert!(report.ok(), "{report}\n--- jitape ---\n{log}");
}

/// How long jitape keeps one person company in the churning rooms (`rooms.lone_hold`, 20 s
/// by default): longer than the tutor's 3 s refreshes, so those never make jitape step out;
/// shorter than the student's stretch alone at the end, so jitape steps out before the end.
const CHURN_LONE_HOLD_S: f64 = 6.0;

/// A room that churns for about a minute and a half: the tutor leaves and comes back under a
/// new endpoint id six times (jitape keeps them company for each 3 s absence), everyone leaves
/// at once (jitape steps out, the room closes) and comes back to a new room, Jicofo moves and
/// replaces sessions, jitape is kicked once, and the student is left alone at the end (jitape
/// steps out after the lone hold; the room is destroyed while it is out).
///
/// Room `i`'s disruptions and end come `0.15 × i` s later than room 0's, so that the twenty
/// rooms do not all set up sessions in the same instant (they do at the start and on the
/// return, as a real deployment would after a restart).
fn churning_room(i: usize) -> ConferencePlan {
    let stagger = i as f64 * 0.15;
    let mut plan = ConferencePlan::empty(&format!("churn{i:02}@{MUC}"), 96.0 + stagger);
    plan.invite_at = None;
    plan.idle_timeout = secs(10.0);
    let tutor_stints = [
        (0.0, 10.0),
        (13.0, 30.0),
        (33.0, 44.0),
        (47.0, 50.0),
        (54.0, 65.0),
        (68.0, 78.0),
        (81.0, 87.0),
    ];
    let stints: Vec<(f64, Option<f64>, bool)> = tutor_stints
        .iter()
        .map(|(join, leave)| (*join, Some(*leave), false))
        .collect();
    plan.speakers = vec![
        person(
            0,
            &stints,
            &[(5.0, 9.0), (25.0, 29.0), (60.0, 64.0), (82.0, 86.0)],
        ),
        // Leaves with the tutor at 50 s: nobody is left until both return at 54 s.
        person(
            1,
            &[(2.0, Some(50.0), false), (54.0, None, false)],
            &[(12.0, 15.0), (40.0, 43.0), (67.0, 71.0)],
        ),
    ];
    // Disruptions stay clear of the talk windows: a kick, say, drops jitape's bridge endpoint
    // and the rejoin takes a moment, so speech at that instant would be lost — correctly.
    // Every room's disruption falls at least 3 s after the last speech before it and at least
    // 4 s before the next (the rejoin after a kick waits 1 s).
    plan.disruptions = vec![
        (secs(18.0 + stagger), Disruption::MoveBridge),
        (secs(33.0 + stagger), Disruption::ReplaceTransport),
        (secs(74.0 + stagger), Disruption::KickRecorder),
    ];
    plan
}

/// What every churning room went through, so that its plan provably still holds every kind
/// of churn: jitape joined at the start, after everyone came back and after the kick; it left
/// when everyone left, when kicked, and after the lone hold at the end (never for the tutor's
/// refreshes), the last time before the room's end; the room closed once; every session
/// change reached jitape (start, moved, replaced, back, after the kick); and the sidecar lists
/// the time out of the room and the kick.
fn churned_as_planned(o: &ConferenceOutcome, sc: &sidecar::Sidecar) {
    let room = &o.plan.room;
    assert_eq!(o.room_closed.len(), 1, "{room} closed: {:?}", o.room_closed);
    assert_eq!(o.recorder_joins.len(), 3, "{room}: {:?}", o.recorder_joins);
    assert_eq!(
        o.recorder_leaves.len(),
        3,
        "{room}: {:?}",
        o.recorder_leaves
    );
    let alone_from = o.plan.speakers[0].stints.last().and_then(|s| s.leave_at);
    let last_leave = o.recorder_leaves[2];
    assert!(
        alone_from.is_some_and(|a| last_leave >= a + secs(CHURN_LONE_HOLD_S))
            && last_leave < o.plan.end_at,
        "{room}: stepped out at {last_leave:?}, the student alone from {alone_from:?}"
    );
    assert!(o.sessions >= 5, "{room}: {} sessions", o.sessions);
    for kind in [GapKind::Away, GapKind::XmppReconnect] {
        assert!(
            sc.gaps.iter().any(|g| g.kind == kind),
            "{room}: no {kind:?} gap in {:?}",
            sc.gaps
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_churning_rooms_leave_no_threads_or_descriptors_behind() {
    support::logs();
    let prosody = start_prosody();
    let port = prosody.component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let lone_hold = format!("[rooms]\nlone_hold = \"{CHURN_LONE_HOLD_S}s\"");
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(port, &rec_dir, &lone_hold),
        tmp.path(),
    );
    let world = Arc::new(sim_world(port).await);
    tokio::time::sleep(secs(2.0)).await;
    let pid = jitape.pid().unwrap();
    // Idle blocking threads exit after 3 s: counts 4 s apart that agree are the baseline.
    let (threads0, fds0) =
        idle_counts(pid, secs(4.0), secs(30.0)).unwrap_or_else(|e| panic!("{e}\n{}", jitape.log()));
    let names0 = thread_names(pid);

    let mut runs = Vec::new();
    for i in 0..20 {
        let w = Arc::clone(&world);
        runs.push(tokio::spawn(async move { w.run(churning_room(i)).await }));
    }
    let mut peak = (0, 0);
    let mut outcomes = Vec::new();
    for r in runs {
        let (t, f) = threads_and_fds(pid).unwrap_or_else(|e| panic!("{e}\n{}", jitape.log()));
        peak = (peak.0.max(t), peak.1.max(f));
        outcomes.push(r.await.unwrap().expect("room played"));
    }
    for o in &outcomes {
        let found = wait_for_final(&rec_dir, &o.plan.room, secs(30.0)).await;
        let (flac, sc) =
            found.unwrap_or_else(|| panic!("no recording of {}\n{}", o.plan.room, jitape.log()));
        let sc = sidecar::read(&sc).unwrap();
        verify(&flac, &sc, o, "");
        churned_as_planned(o, &sc);
    }
    assert_eq!(support::files_with_suffix(&rec_dir, ".flac").len(), 20);
    // Everything a conference owned is released with it: back to exactly the idle counts.
    let deadline = Instant::now() + secs(15.0);
    let sample = || threads_and_fds(pid).unwrap_or_else(|e| panic!("{e}\n{}", jitape.log()));
    let mut now = sample();
    while now != (threads0, fds0) && Instant::now() < deadline {
        tokio::time::sleep(secs(0.5)).await;
        now = sample();
    }
    eprintln!(
        "threads {threads0} → peak {} → {}; fds {fds0} → peak {} → {}",
        peak.0, now.0, peak.1, now.1
    );
    assert_eq!(
        now.0,
        threads0,
        "threads back to the idle baseline: {:?} then, {:?} now",
        names0,
        thread_names(pid)
    );
    assert_eq!(now.1, fds0, "descriptors back to the idle baseline");
    jitape.terminate(secs(15.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prosody_restart_mid_conference_continues_the_file() {
    support::logs();
    let prosody = Arc::new(Mutex::new(start_prosody()));
    let port = prosody.lock().unwrap().component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(port, &rec_dir, ""),
        tmp.path(),
    );
    let world = sim_world(port).await;
    let room = format!("restart@{MUC}");
    let mut plan = ConferencePlan::empty(&room, 26.0);
    plan.invite_at = None;
    plan.speakers = vec![
        person(0, &[(0.0, None, false)], &[(2.0, 6.0), (18.0, 22.0)]),
        person(1, &[(0.0, None, false)], &[(7.0, 9.0)]),
    ];
    let started = Instant::now();
    let p = Arc::clone(&prosody);
    let restart = tokio::spawn(async move {
        tokio::time::sleep_until((started + secs(11.0)).into()).await;
        tokio::task::spawn_blocking(move || p.lock().unwrap().restart())
            .await
            .unwrap();
    });
    let outcome = world.run(plan).await.expect("conference played");
    restart.await.unwrap();
    let found = wait_for_final(&rec_dir, &room, secs(20.0)).await;
    jitape.terminate(secs(15.0));
    world.close().await;
    let log = jitape.log();
    let (flac, sc_path) = found.unwrap_or_else(|| panic!("no final recording\n{log}"));
    assert_eq!(
        support::files_with_suffix(&rec_dir, ".flac"),
        vec![flac.clone()],
        "one FLAC\n{log}"
    );
    let sc = sidecar::read(&sc_path).unwrap();
    verify(&flac, &sc, &outcome, &log);
    // Prosody restores the room with its occupants, so the focus may also see jitape's stale
    // occupant come back and be cleared before jitape's real rejoin.
    assert!(
        outcome.recorder_joins.len() >= 2,
        "rejoined after the restart\n{log}"
    );
    assert!(
        sc.gaps.iter().any(|g| g.kind == GapKind::XmppReconnect),
        "the restart is noted: {:?}\n--- jitape ---\n{log}",
        sc.gaps,
    );
}

#[test]
fn thread_and_descriptor_counts_of_a_process_that_is_gone_are_an_error() {
    let mut running = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    let (threads, fds) = threads_and_fds(running.id()).expect("counts of a running process");
    assert!(
        threads >= 1 && fds >= 3,
        "{threads} threads, {fds} descriptors"
    );
    let _ = running.kill();
    // Exited but not yet reaped: a zombie has no threads or descriptors worth comparing.
    std::thread::sleep(Duration::from_millis(200));
    let zombie = threads_and_fds(running.id());
    assert!(zombie.is_err(), "{zombie:?}");
    running.wait().unwrap();
    let gone = threads_and_fds(running.id());
    assert!(gone.is_err(), "{gone:?}");
}
