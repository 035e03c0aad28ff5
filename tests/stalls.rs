//! jitape never loses audio to its own delays: the whole `jitape run` process is frozen
//! (SIGSTOP, then SIGCONT) for 0.3, 1 and 3 s while two conferences talk through a real
//! Prosody. The packets the bridge sent meanwhile wait in the kernel; they carry the time
//! the kernel received them, and the lateness window (5 s) still has room for them, so every
//! recording is exact: nothing lost, nothing moved, and no packet placed by when jitape read it.

use jitape_sim::harness as support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jitape::sink::sidecar;
use jitape_sim::analyze::check_recording;
use jitape_sim::plan::{ConferencePlan, SpeakerPlan, Stint, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;
use rustix::process::{Pid, Signal, kill_process};
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
[media]
bind = "127.0.0.1"
[recording]
dir = "{}"
[http]
bind = "127.0.0.1:0"
"#,
        dir.display()
    )
}

fn person(room: usize, i: usize, talk: &[(f64, f64)]) -> SpeakerPlan {
    SpeakerPlan {
        display_name: format!("P{room}{i}"),
        voice: VoiceSpec::Tone(default_tone_hz(i + 2 * room)),
        stats_id: format!("browser-{room}-{i}"),
        stints: vec![Stint {
            endpoint: format!("{:08x}", 0xd000_0000u32 + (room as u32) * 256 + i as u32),
            join_at: secs(0.0),
            leave_at: None,
            knock: false,
        }],
        talk: talk.iter().map(|(a, b)| window(*a, *b)).collect(),
        identity: None,
        hidden_from_recorder: false,
    }
}

/// Talk that runs through every freeze, with pauses in and around them.
fn conference(room: usize) -> ConferencePlan {
    let mut plan = ConferencePlan::empty(&format!("stall{room}@{MUC}"), 28.0);
    plan.invite_at = None;
    plan.speakers = vec![
        person(room, 0, &[(2.0, 7.5), (11.0, 13.0), (17.0, 22.5)]),
        person(room, 1, &[(8.0, 10.5), (13.5, 16.5), (23.0, 25.0)]),
    ];
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freezing_jitape_for_up_to_three_seconds_loses_and_moves_nothing() {
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
    let world = Arc::new(sim_world(port).await);
    let pid = Pid::from_raw(jitape.pid().expect("jitape runs") as i32).expect("a pid");

    let started = Instant::now();
    let runs: Vec<_> = (0..2)
        .map(|r| {
            let w = Arc::clone(&world);
            tokio::spawn(async move { w.run(conference(r)).await })
        })
        .collect();
    // Freezes: 0.3 s during speech at 5 s, 1 s across a turn change at 10.2 s, 3 s through
    // speech at 18 s.
    for (at, len) in [(5.0, 0.3), (10.2, 1.0), (18.0, 3.0)] {
        tokio::time::sleep_until((started + secs(at)).into()).await;
        kill_process(pid, Signal::STOP).expect("SIGSTOP");
        tokio::time::sleep(secs(len)).await;
        kill_process(pid, Signal::CONT).expect("SIGCONT");
    }
    let mut outcomes = Vec::new();
    for r in runs {
        outcomes.push(r.await.unwrap().expect("conference played"));
    }
    let mut found = Vec::new();
    for o in &outcomes {
        found.push(wait_for_final(&rec_dir, &o.plan.room, secs(30.0)).await);
    }
    jitape.terminate(secs(15.0));
    if let Ok(world) = Arc::try_unwrap(world) {
        world.close().await;
    }
    let log = jitape.log();
    for (o, f) in outcomes.iter().zip(found) {
        let (flac, sc) = f.unwrap_or_else(|| panic!("no recording of {}\n{log}", o.plan.room));
        support::flac_test(&flac);
        let sc = sidecar::read(&sc).unwrap();
        let report = check_recording(&flac, &sc, o).unwrap();
        assert!(report.ok(), "{}: {report}\n{log}", o.plan.room);
    }
    // Every recording's audio totals (logged at finalize) count no late packet.
    let late: Vec<&str> = log
        .split_whitespace()
        .filter(|w| w.starts_with("late="))
        .collect();
    assert_eq!(late.len(), 2, "{log}");
    assert!(late.iter().all(|w| *w == "late=0"), "{late:?}\n{log}");
    // Every packet was placed by when the kernel received it (logged when each media
    // session closes; also `jitape_packets_unstamped_total`), none by when jitape read it.
    let unstamped: Vec<&str> = log
        .split_whitespace()
        .filter(|w| w.starts_with("unstamped="))
        .collect();
    assert!(unstamped.len() >= 2, "{log}");
    assert!(
        unstamped.iter().all(|w| *w == "unstamped=0"),
        "{unstamped:?}\n{log}"
    );
}
