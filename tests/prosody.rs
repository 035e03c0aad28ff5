//! Against a real Prosody (Debian's package, started by the test on its own ports): jitape
//! runs as a separate `jitape run` process, the simulated focus, participants and bridge
//! connect to Prosody as another component, and the recording is checked like the
//! loopback ones.

use jitape_sim::harness as support;

use std::time::Duration;

use jitape::sink::sidecar;
use jitape_sim::analyze::check_recording;
use jitape_sim::plan::ConferencePlan;
use jitape_sim::world::{World, WorldSettings};
use support::process::{JitapeProcess, wait_for_final};
use support::prosody::{ComponentDecl, MUC, Prosody, ProsodySpec, RECORDER, SIM, sim_world};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_conference_through_real_prosody_and_jitape_run() {
    support::logs();
    let prosody = Prosody::start(&spec());
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(prosody.component_port, &rec_dir),
        tmp.path(),
    );
    let world = sim_world(prosody.component_port).await;

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
    let report = check_recording(&flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}\n--- jitape ---\n{}", jitape.log());
    assert_eq!(outcome.sessions, 1);
}

/// Prosody set up exactly as `config/prosody/` documents it: the component snippet included
/// verbatim, the module enabled on the MUC as the README says; jitape on the shipped
/// `config/jitape.toml`, only host, port, directories and addresses overridden by
/// environment variables.
fn documented_prosody(with_module: bool) -> Prosody {
    let root = env!("CARGO_MANIFEST_DIR");
    let module = if with_module {
        "  modules_enabled = {\n      \"jitape\";\n  }\n  jitape_component = \"jitape.meet.jitsi\"\n"
    } else {
        ""
    };
    Prosody::start(&ProsodySpec {
        components: vec![ComponentDecl {
            domain: SIM.into(),
            secret: "sim-secret".into(),
        }],
        muc_domains: vec!["muc.meet.jitsi".into()],
        muc_extra: module.into(),
        global_extra: format!(
            "plugin_paths = {{ \"{root}/config/prosody\" }}\nInclude \"{root}/config/prosody/jitape.cfg.lua\"\n"
        ),
    })
}

fn shipped_jitape(port: u16, dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_jitape"));
    c.env("JITAPE_XMPP_HOST", "127.0.0.1")
        .env("JITAPE_XMPP_PORT", port.to_string())
        .env("JITAPE_MEDIA_BIND", "127.0.0.1")
        .env("JITAPE_RECORDING_DIR", dir)
        .env("JITAPE_HTTP_BIND", "127.0.0.1:0")
        .env(
            "JITAPE_LOG",
            "info,webrtc=error,rtc=error,rtc_ice=error,rtc_dtls=error",
        )
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config/jitape.toml"));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_prosody_setup_records_a_conference() {
    support::logs();
    let prosody = documented_prosody(true);
    let port = prosody.component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    // check-config --live approves the deployment before anything runs.
    let check = shipped_jitape(port, &rec, &["check-config", "--live"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        text.contains("muc.meet.jitsi: mod_jitape answers"),
        "{text}"
    );

    let log = tmp.path().join("jitape.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = shipped_jitape(port, &rec, &["run"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let world = World::connect(WorldSettings {
        host: "127.0.0.1".into(),
        port,
        domain: SIM.into(),
        secret: "sim-secret".into(),
        muc_domain: "muc.meet.jitsi".into(),
        recorder_domain: "jitape.meet.jitsi".into(),
    })
    .await
    .unwrap();
    let room = "documented@muc.meet.jitsi".to_string();
    let mut plan = ConferencePlan::demo(&room);
    plan.invite_at = None; // discovered through the module, as deployed
    let outcome = world.run(plan).await.unwrap();
    let found = wait_for_final(&rec, &room, Duration::from_secs(20)).await;
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let status = child.wait().unwrap();
    world.close().await;
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let (flac, sc) = found.unwrap_or_else(|| panic!("no recording\n{log}"));
    assert!(status.success(), "{log}");
    support::flac_test(&flac);
    let sc = sidecar::read(&sc).unwrap();
    let report = check_recording(&flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}\n{log}");
}

#[test]
fn check_config_live_names_what_is_missing() {
    let prosody = documented_prosody(false);
    let tmp = tempfile::tempdir().unwrap();
    let out = shipped_jitape(
        prosody.component_port,
        tmp.path(),
        &["check-config", "--live"],
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("handshake accepted"), "{text}");
    assert!(
        text.contains("muc.meet.jitsi: mod_jitape does not answer"),
        "{text}"
    );
    assert!(text.contains("modules_enabled"), "the fix is named: {text}");
    // A wrong secret: the handshake is refused, and the report says so.
    let out = shipped_jitape(
        prosody.component_port,
        tmp.path(),
        &["check-config", "--live"],
    )
    .env("JITAPE_XMPP_SECRET", "wrong")
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("not-authorized"), "{text}");
}
