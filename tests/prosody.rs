//! Against a real Prosody (Debian's package, started by the test on its own ports): jitape
//! runs as a separate `jitape run` process, the simulated focus, participants and bridge
//! connect to Prosody as another component, and the recording is checked like the
//! loopback ones.

mod support;

use std::time::Duration;

use jitape::sim::analyze::check_recording;
use jitape::sim::plan::ConferencePlan;
use jitape::sim::world::{World, WorldSettings};
use jitape::sink::sidecar;
use support::process::{JitapeProcess, wait_for_final};
use support::prosody::{ComponentDecl, Prosody, ProsodySpec};

const MUC: &str = "conference.localhost";
const RECORDER: &str = "recorder.localhost";
const SIM: &str = "sim.localhost";

fn spec() -> ProsodySpec {
    ProsodySpec {
        components: vec![
            ComponentDecl {
                domain: RECORDER.into(),
                secret: "rec-secret".into(),
            },
            ComponentDecl {
                domain: SIM.into(),
                secret: "sim-secret".into(),
            },
        ],
        muc_domains: vec![MUC.into()],
        muc_extra: String::new(),
        global_extra: String::new(),
    }
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
reconnect_max = "2s"
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

async fn world(port: u16) -> World {
    World::connect(WorldSettings {
        host: "127.0.0.1".into(),
        port,
        domain: SIM.into(),
        secret: "sim-secret".into(),
        muc_domain: MUC.into(),
        recorder_domain: RECORDER.into(),
    })
    .await
    .expect("simulation connects to prosody")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_conference_through_real_prosody_and_jitape_run() {
    support::logs();
    let prosody = Prosody::start(&spec());
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let mut jitape =
        JitapeProcess::spawn(&jitape_toml(prosody.component_port, &rec_dir), tmp.path());
    let world = world(prosody.component_port).await;

    let room = format!("weeklysync@{MUC}");
    let outcome = world
        .run(ConferencePlan::demo(&room))
        .await
        .expect("conference played");
    let found = wait_for_final(&rec_dir, &room, Duration::from_secs(20)).await;
    let status = jitape.terminate(Duration::from_secs(15));
    world.close().await;
    let (flac, sc_path) = found.unwrap_or_else(|| {
        panic!(
            "no finalized recording\n--- jitape ---\n{}\n--- prosody ---\n{}",
            jitape.log(),
            prosody.log()
        )
    });
    assert!(
        status.is_some_and(|s| s.success()),
        "jitape did not exit cleanly on SIGTERM: {status:?}\n{}",
        jitape.log()
    );

    assert_eq!(
        support::files_with_suffix(&rec_dir, ".flac"),
        vec![flac.clone()]
    );
    assert!(support::files_with_suffix(&rec_dir, ".partial").is_empty());
    support::flac_test(&flac);
    let sc = sidecar::read(&sc_path).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"));
    let report = check_recording(&flac, &sc, &outcome, Duration::from_millis(40)).unwrap();
    assert!(
        report.ok(Duration::from_millis(100)),
        "{report}\n--- jitape ---\n{}",
        jitape.log()
    );
    assert_eq!(outcome.sessions, 1);
}
