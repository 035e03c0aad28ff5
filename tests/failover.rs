//! Two `jitape run` processes share the rooms of one real Prosody (Debian's package) through
//! mod_jitape's `jitape_components`: each conference is recorded by the instance the module
//! assigns it to and by no other; when that instance is killed (`kill -9`) mid-conference, the
//! other one joins after the lease and records the rest. (It starts a new recording: continuing
//! the killed instance's `.partial` is not built yet; issue 14.)

use jitape_sim::harness as support;

use std::path::Path;
use std::time::{Duration, Instant};

use jitape::sink::sidecar;
use jitape_sim::plan::{ConferencePlan, SpeakerPlan, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;
use jitape_sim::world::{World, WorldSettings};
use support::components::rendezvous_weight;
use support::process::{JitapeProcess, wait_for_final};
use support::prosody::{ComponentDecl, MUC, Prosody, ProsodySpec, SIM};

/// The instances are subdomains of this one, so the simulated focus knows them as jitape.
const REC: &str = "rec.localhost";
/// `jitape_lease`, seconds.
const LEASE: f64 = 2.0;
/// When instance 1 is killed, seconds into the conference.
const KILL_AT: f64 = 6.0;

fn instance(n: usize) -> String {
    format!("jitape-{n}.{REC}")
}

fn owner(room: &str) -> usize {
    let w = |n: usize| (rendezvous_weight(room, &instance(n)), instance(n));
    if w(1) > w(2) { 1 } else { 2 }
}

fn prosody() -> Prosody {
    let plugins = concat!(env!("CARGO_MANIFEST_DIR"), "/config/prosody");
    let mut components: Vec<ComponentDecl> = (1..=2)
        .map(|n| ComponentDecl {
            domain: instance(n),
            secret: format!("secret-{n}"),
        })
        .collect();
    components.push(ComponentDecl {
        domain: SIM.into(),
        secret: "sim-secret".into(),
    });
    Prosody::start(&ProsodySpec {
        components,
        muc_domains: vec![MUC.into()],
        muc_extra: format!(
            "  modules_enabled = {{ \"jitape\" }}\n  jitape_components = {{ \"{}\", \"{}\" }}\n  jitape_lease = {LEASE}\n",
            instance(1),
            instance(2)
        ),
        global_extra: format!("plugin_paths = {{ \"{plugins}\" }}\n"),
    })
}

fn jitape(prosody: &Prosody, n: usize, dir: &Path) -> JitapeProcess {
    let log_dir = dir.join(format!("instance-{n}"));
    std::fs::create_dir_all(&log_dir).unwrap();
    let toml = format!(
        r#"
[xmpp]
host = "127.0.0.1"
port = {port}
domain = "{domain}"
secret = "secret-{n}"
muc_domains = ["{MUC}"]
reconnect_min = "200ms"
reconnect_max = "2s"
[media]
bind = "127.0.0.1"
[recording]
dir = "{rec}"
[http]
bind = "127.0.0.1:0"
"#,
        port = prosody.component_port,
        domain = instance(n),
        rec = log_dir.join("recordings").display(),
    );
    JitapeProcess::spawn(env!("CARGO_BIN_EXE_jitape"), &toml, &log_dir)
}

fn recordings(dir: &Path, n: usize) -> std::path::PathBuf {
    dir.join(format!("instance-{n}")).join("recordings")
}

/// Two people talking in turns for `end` seconds; the room is found through the module
/// (no invitation).
fn plan(room: &str, end: f64) -> ConferencePlan {
    let speaker = |i: usize, name: &str, talk| {
        let endpoint = format!("{:08x}", 0x5eed_0000u32 + i as u32);
        let voice = VoiceSpec::Tone(default_tone_hz(i));
        SpeakerPlan::simple(&endpoint, name, voice, Duration::ZERO, None, talk)
    };
    let mut talk_a = Vec::new();
    let mut talk_b = Vec::new();
    let mut t = 1.0;
    while t + 2.0 < end {
        talk_a.push(window(t, t + 1.0));
        talk_b.push(window(t + 1.2, t + 2.0));
        t += 2.5;
    }
    ConferencePlan {
        speakers: vec![speaker(0, "Ann", talk_a), speaker(1, "Ben", talk_b)],
        invite_at: None,
        ..ConferencePlan::empty(room, end)
    }
}

/// The first room name `name{i}` owned by instance `n`.
fn room_owned_by(name: &str, n: usize) -> String {
    (0..)
        .map(|i| format!("{name}{i}@{MUC}"))
        .find(|r| owner(r) == n)
        .expect("some room hashes to each instance")
}

fn wait_for_log(prosody: &Prosody, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !prosody.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in prosody's log:\n{}",
            prosody.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_conference_is_recorded_by_its_owner_and_a_killed_owners_room_by_the_other() {
    support::logs();
    let prosody = prosody();
    let tmp = tempfile::tempdir().unwrap();
    let mut first = jitape(&prosody, 1, tmp.path());
    let mut second = jitape(&prosody, 2, tmp.path());
    for n in 1..=2 {
        wait_for_log(
            &prosody,
            &format!("jitape instance {} connected", instance(n)),
        );
    }
    let world = World::connect(WorldSettings {
        host: "127.0.0.1".into(),
        port: prosody.component_port,
        domain: SIM.into(),
        secret: "sim-secret".into(),
        muc_domain: MUC.into(),
        recorder_domain: REC.into(),
    })
    .await
    .expect("simulation connects to prosody");

    // `kept` belongs to instance 2 from start to end; `moved` to instance 1, which dies.
    let kept = room_owned_by("kept", 2);
    let moved = room_owned_by("moved", 1);
    let killer = async {
        tokio::time::sleep(Duration::from_secs_f64(KILL_AT)).await;
        first.kill9();
    };
    let (kept_outcome, moved_outcome, ()) = tokio::join!(
        world.run(plan(&kept, 16.0)),
        world.run(plan(&moved, 16.0)),
        killer
    );
    let kept_outcome = kept_outcome.expect("conference played");
    let moved_outcome = moved_outcome.expect("conference played");
    let kept_final =
        wait_for_final(&recordings(tmp.path(), 2), &kept, Duration::from_secs(20)).await;
    let moved_final =
        wait_for_final(&recordings(tmp.path(), 2), &moved, Duration::from_secs(20)).await;
    let status = second.terminate(Duration::from_secs(15));
    world.close().await;
    let logs = || {
        format!(
            "--- instance 1 ---\n{}\n--- instance 2 ---\n{}\n--- prosody ---\n{}",
            first.log(),
            second.log(),
            prosody.log()
        )
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        logs()
    );

    // `kept`: recorded once, by its owner, whole.
    let (flac, sc) = kept_final.unwrap_or_else(|| panic!("kept not recorded\n{}", logs()));
    support::flac_test(&flac);
    let sc = sidecar::read(&sc).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"));
    let report = jitape_sim::analyze::check_recording(&flac, &sc, &kept_outcome).unwrap();
    assert!(report.ok(), "{report}\n{}", logs());
    let room_dir =
        |n: usize, room: &str| recordings(tmp.path(), n).join(jitape::sink::room_dir_name(room));
    assert!(!room_dir(1, &kept).exists(), "instance 1 recorded {kept}");
    assert_eq!(
        kept_outcome.recorder_joins.len(),
        1,
        "{:?}",
        kept_outcome.recorder_joins
    );

    // `moved`: instance 1 recorded it until it was killed (its `.partial` stays: continuing
    // it is not built) ...
    assert_eq!(
        support::files_with_suffix(&room_dir(1, &moved), ".flac.partial").len(),
        1,
        "{}",
        logs()
    );
    // ... then, not before the lease, instance 2 joined and recorded the rest to the end.
    let joins = &moved_outcome.recorder_joins;
    assert_eq!(joins.len(), 2, "recorder joins {joins:?}\n{}", logs());
    let rejoin = joins[1].as_secs_f64();
    assert!(
        (KILL_AT + LEASE..KILL_AT + LEASE + 5.0).contains(&rejoin),
        "instance 2 joined at {rejoin:.1} s (killed at {KILL_AT} s, lease {LEASE} s)"
    );
    let (flac, sc) = moved_final.unwrap_or_else(|| panic!("moved not taken over\n{}", logs()));
    support::flac_test(&flac);
    let sc = sidecar::read(&sc).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"));
    let seconds = sc.total_samples as f64 / f64::from(sc.sample_rate);
    assert!(
        seconds > 3.0 && seconds < 16.0 - KILL_AT - LEASE + 1.0,
        "instance 2 recorded {seconds:.1} s of {moved}"
    );
}
