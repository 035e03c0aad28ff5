//! jitape's membership changes nothing for the people in a conference — against a real
//! Prosody with jitape's module, jitape running as `jitape run`, the simulated focus
//! behaving like Jicofo (it leaves a room with no member left, and Prosody then destroys
//! it; see docs/protocol.md "Who counts occupants").
//!
//! - one person alone is not joined (Jicofo would not have them on a bridge; jitape joining
//!   would put them there, as it counts as a member);
//! - when everyone else leaves, jitape leaves at once: the room closes as it would without
//!   it, and when people come back (to a new room) within the grace, the recording continues
//!   in the same file with the stretch listed as an `away` gap;
//! - one person left alone keeps jitape's company only for `lone_hold`.

use jitape_sim::harness as support;

use std::time::Duration;

use jitape::sink::sidecar::{self, GapKind, Sidecar};
use jitape_sim::analyze::check_recording;
use jitape_sim::plan::{ConferencePlan, SpeakerPlan, Stint, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;
use jitape_sim::world::ConferenceOutcome;
use support::process::{JitapeProcess, wait_for_final};
use support::prosody::{self, MUC, Prosody, RECORDER, SIM, sim_world};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn jitape_toml(port: u16, dir: &std::path::Path) -> String {
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
[media]
bind = "127.0.0.1"
[recording]
dir = "{}"
empty_grace = "20s"
[rooms]
min_participants = 2
lone_hold = "4s"
[http]
bind = "127.0.0.1:0"
"#,
        dir.display()
    )
}

fn person(i: usize, stints: &[(f64, Option<f64>)], talk: &[(f64, f64)]) -> SpeakerPlan {
    SpeakerPlan {
        display_name: ["Tutor", "Student"][i % 2].to_string(),
        voice: VoiceSpec::Tone(default_tone_hz(i)),
        stats_id: format!("browser-{i}"),
        stints: stints
            .iter()
            .enumerate()
            .map(|(k, (join, leave))| Stint {
                endpoint: format!("{:08x}", 0xc000_0000u32 + (i as u32) * 256 + k as u32),
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

/// Plays `plan` into a fresh Prosody + module and `jitape run`; returns the outcome, the
/// one final recording and jitape's log.
async fn play(
    plan: ConferencePlan,
) -> (
    ConferenceOutcome,
    std::path::PathBuf,
    Sidecar,
    String,
    tempfile::TempDir,
) {
    support::logs();
    let prosody = Prosody::start(&prosody::with_module(
        MUC,
        RECORDER,
        "rec-secret",
        SIM,
        "sim-secret",
    ));
    let port = prosody.component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(port, &rec_dir),
        tmp.path(),
    );
    let world = sim_world(port).await;
    let room = plan.room.clone();
    let outcome = world.run(plan).await.expect("conference played");
    let found = wait_for_final(&rec_dir, &room, secs(35.0)).await;
    jitape.terminate(secs(15.0));
    world.close().await;
    let log = jitape.log();
    let (flac, sc_path) = found.unwrap_or_else(|| panic!("no final recording\n{log}"));
    assert_eq!(
        support::files_with_suffix(&rec_dir, ".flac"),
        vec![flac.clone()],
        "exactly one FLAC\n{log}"
    );
    support::flac_test(&flac);
    let sc = sidecar::read(&sc_path).unwrap();
    (outcome, flac, sc, log, tmp)
}

fn within(t: Duration, a: f64, b: f64) -> bool {
    (secs(a)..=secs(b)).contains(&t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitape_is_in_the_room_only_while_jicofo_runs_it_and_an_emptied_room_closes() {
    let room = format!("closing@{MUC}");
    let mut plan = ConferencePlan::empty(&room, 46.0);
    plan.invite_at = None; // the module tells jitape
    plan.speakers = vec![
        // The tutor waits alone (and talks to nobody) until the student arrives at 6 s.
        person(
            0,
            &[(0.0, Some(18.0)), (30.0, Some(43.0))],
            &[(1.0, 4.0), (8.0, 11.0), (33.0, 36.0)],
        ),
        person(
            1,
            &[(6.0, Some(18.0)), (30.5, Some(43.0))],
            &[(12.0, 15.0), (37.0, 40.0)],
        ),
    ];
    let (outcome, flac, sc, log, _tmp) = play(plan).await;

    let joined = outcome.recorder_joins.clone();
    assert!(
        joined.len() == 2 && within(joined[0], 6.0, 7.5) && within(joined[1], 30.5, 32.5),
        "joined with the second person, twice: {joined:?}\n{log}"
    );
    let leaves = outcome.recorder_leaves.clone();
    assert!(
        leaves.len() == 2 && within(leaves[0], 18.0, 19.5) && within(leaves[1], 43.0, 44.5),
        "left as soon as nobody else was in: {leaves:?}\n{log}"
    );
    // Without jitape in it, the focus left the emptied room and Prosody destroyed it.
    let closed = &outcome.room_closed;
    assert!(
        closed.len() == 2 && within(closed[0], 18.0, 20.0) && within(closed[1], 43.0, 45.0),
        "the room closed as it would without jitape: {closed:?}\n{log}"
    );
    let away: Vec<(f64, f64)> = sc
        .gaps
        .iter()
        .filter(|g| g.kind == GapKind::Away)
        .map(|g| {
            let s = |x: u64| x as f64 / f64::from(sc.sample_rate);
            (s(g.start.sample), s(g.end.sample))
        })
        .collect();
    assert_eq!(away.len(), 1, "{:?}", sc.gaps);
    assert_eq!(sc.end_reason.as_deref(), Some("empty"), "{log}");
    // Nobody came back after 43 s: the recording ends when the empty grace does, counted
    // from the moment jitape saw the last person leave. That moment is in the sidecar (the
    // last leave); the simulation only brackets it: after the person left (43 s) and before
    // jitape's own leave reached the room (on a busy machine tens of milliseconds later).
    let rate = f64::from(sc.sample_rate);
    let started = {
        let epoch: chrono::DateTime<chrono::Utc> = outcome.wall_epoch.into();
        (sc.start.utc - epoch).num_microseconds().unwrap() as f64 / 1e6
    };
    let last_leave = sc
        .participants
        .iter()
        .flat_map(|p| p.presence.iter().filter_map(|s| s.leave.as_ref()))
        .map(|t| started + t.sample as f64 / rate)
        .fold(f64::MIN, f64::max);
    assert!(
        (43.0 - 0.005..=leaves[1].as_secs_f64() + 0.005).contains(&last_leave),
        "the last leave at {last_leave:.3} s lies between the person leaving (43 s) and \
         jitape leaving ({:.3} s)\n{log}",
        leaves[1].as_secs_f64()
    );
    let mut outcome = outcome;
    outcome.plan.end_at = secs(last_leave + 20.0);
    let report = check_recording(&flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_left_alone_keeps_jitapes_company_only_for_the_lone_hold() {
    let room = format!("alone@{MUC}");
    let mut plan = ConferencePlan::empty(&room, 34.0);
    plan.invite_at = None;
    plan.speakers = vec![
        person(0, &[(0.0, None)], &[(2.0, 5.0), (14.0, 17.0), (27.0, 30.0)]),
        person(
            1,
            &[(0.0, Some(8.0)), (22.0, None)],
            &[(5.5, 7.5), (24.0, 26.0)],
        ),
    ];
    let (outcome, flac, sc, log, _tmp) = play(plan).await;

    let leaves = &outcome.recorder_leaves;
    assert!(
        !leaves.is_empty() && within(leaves[0], 12.0, 13.5),
        "left 4 s after being alone with the tutor: {leaves:?}\n{log}"
    );
    assert!(
        outcome.recorder_joins.len() == 2 && within(outcome.recorder_joins[1], 22.0, 23.5),
        "back with the student: {:?}\n{log}",
        outcome.recorder_joins
    );
    assert!(outcome.room_closed.is_empty(), "{:?}", outcome.room_closed);
    // The tutor never left: one presence interval through jitape's absence.
    let tutor = sc
        .participants
        .iter()
        .find(|p| p.display_name.as_deref() == Some("Tutor"))
        .unwrap();
    assert_eq!(tutor.presence.len(), 1, "{:?}", tutor.presence);
    let student = sc
        .participants
        .iter()
        .find(|p| p.display_name.as_deref() == Some("Student"))
        .unwrap();
    assert_eq!(student.presence.len(), 2, "{:?}", student.presence);
    let report = check_recording(&flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}\n{log}");
}
