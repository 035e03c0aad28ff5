//! Running jitape as a service: health, readiness and Prometheus metrics, the admin API,
//! the token, SIGTERM mid-conference, a full disk, and the compose overlay for docker-jitsi-meet.

use jitape_sim::harness as support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jitape::sink::sidecar;
use jitape_sim::loopback::{self, Loopback, MUC_DOMAIN};
use jitape_sim::plan::{ConferencePlan, SpeakerPlan, VoiceSpec, window};
use jitape_sim::router::{SimServer, SimServerConfig};
use jitape_sim::voice::default_tone_hz;
use jitape_sim::world::{World, WorldSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// One HTTP request (a minimal client: the server closes after each answer).
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: jitape\r\n{auth}Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(secs(10.0), s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn two_speakers(room: &str, end: f64) -> ConferencePlan {
    let mut plan = ConferencePlan::empty(room, end);
    plan.speakers = (0..2)
        .map(|i| {
            SpeakerPlan::simple(
                &format!("{:08x}", 0xf000_0000u32 + i as u32),
                &format!("Speaker{i}"),
                VoiceSpec::Tone(default_tone_hz(i)),
                Duration::ZERO,
                None,
                vec![window(1.0 + 3.0 * i as f64, 3.0 + 3.0 * i as f64)],
            )
        })
        .collect();
    plan
}

async fn until<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut f: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(secs(0.2)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_the_admin_api() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    let addr = lb.app.as_ref().unwrap().http_addr.expect("http enabled");
    assert_eq!(http(addr, "GET", "/health", None).await.0, 200);
    assert!(
        until(secs(6.0), || async {
            http(addr, "GET", "/ready", None).await.0 == 200
        })
        .await,
        "ready once connected"
    );
    let (_, ready) = http(addr, "GET", "/ready", None).await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["xmpp_connected"], true);
    assert_eq!(ready["recording_dir_writable"], true);

    // A room jitape was never told about: recorded because an operator asks for it.
    let room = format!("adhoc@{MUC_DOMAIN}");
    let mut plan = two_speakers(&room, 14.0);
    plan.invite_at = None;
    let api = async {
        tokio::time::sleep(secs(1.0)).await;
        let (status, body) = http(addr, "POST", &format!("/conferences/{room}"), None).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(
            http(addr, "POST", &format!("/conferences/{room}"), None)
                .await
                .0,
            200,
            "already recording"
        );
        assert_eq!(
            http(addr, "POST", "/conferences/x@elsewhere.example", None)
                .await
                .0,
            400
        );
        assert_eq!(
            http(
                addr,
                "DELETE",
                &format!("/conferences/nobody@{MUC_DOMAIN}"),
                None
            )
            .await
            .0,
            404
        );
        tokio::time::sleep(secs(4.5)).await;
        let (status, list) = http(addr, "GET", "/conferences", None).await;
        assert_eq!(status, 200);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        let c = &list[0];
        assert_eq!(c["room"], room.as_str());
        // Which instance records it (xmpp.instance, by default the component domain).
        assert_eq!(c["instance"], loopback::RECORDER_DOMAIN);
        assert_eq!(c["joined"], true);
        assert_eq!(c["humans"], 2);
        assert!(c["file"].as_str().unwrap().ends_with(".flac.partial"));
        assert!(c["file_bytes"].as_u64().unwrap() > 0);
        let sources = c["sources"].as_array().unwrap();
        assert_eq!(sources.len(), 2, "{c}");
        assert!(
            sources
                .iter()
                .any(|s| s["last_packet_ms"].as_u64().is_some_and(|ms| ms < 1000)),
            "{c}"
        );
        // Metrics, parsed with a Prometheus text-format parser.
        let (status, text) = http(addr, "GET", "/metrics", None).await;
        assert_eq!(status, 200);
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("valid exposition");
        let value = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => f64::NAN,
                })
        };
        assert_eq!(value("jitape_conferences_active"), Some(1.0));
        let info = scrape
            .samples
            .iter()
            .find(|s| s.metric == "jitape_instance_info")
            .expect("jitape_instance_info");
        assert_eq!(info.labels.get("instance"), Some(loopback::RECORDER_DOMAIN));
        assert_eq!(value("jitape_xmpp_connected"), Some(1.0));
        assert_eq!(value("jitape_participants"), Some(2.0));
        assert!(value("jitape_disk_free_bytes").unwrap() > 0.0);
        // Stop it before the conference ends.
        assert_eq!(
            http(addr, "DELETE", &format!("/conferences/{room}"), None)
                .await
                .0,
            202
        );
    };
    let (outcome, ()) = tokio::join!(lb.world.run(plan), api);
    outcome.unwrap();
    let files = lb.wait_finalized(&room, secs(10.0)).await.unwrap();
    support::flac_test(&files.flac);
    let sc = sidecar::read(&files.sidecar).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("stopped"));
    let metrics = lb.app.as_ref().unwrap().metrics();
    assert_eq!(metrics.conferences_finished.get(), 1);
    assert!(metrics.packets_received.get() > 100);
    assert_eq!(metrics.conferences_active.get(), 0);
    lb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_is_required_for_every_endpoint() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let lb = Loopback::start_with(
        dir.path(),
        48_000,
        "[http]\nbind = \"127.0.0.1:0\"\ntoken = \"t0k3n\"",
    )
    .await
    .unwrap();
    let addr = lb.app.as_ref().unwrap().http_addr.unwrap();
    for path in ["/health", "/ready", "/metrics", "/conferences"] {
        assert_eq!(http(addr, "GET", path, None).await.0, 401, "{path}");
        assert_eq!(
            http(addr, "GET", path, Some("wrong")).await.0,
            401,
            "{path}"
        );
    }
    assert_eq!(http(addr, "GET", "/health", Some("t0k3n")).await.0, 200);
    lb.stop().await;
}

/// The loopback XMPP server and simulation in this process, jitape as `jitape run`.
async fn server_and_world() -> (SimServer, World) {
    let server = SimServer::start(SimServerConfig {
        components: vec![
            (
                loopback::RECORDER_DOMAIN.into(),
                loopback::RECORDER_SECRET.into(),
            ),
            (loopback::SIM_DOMAIN.into(), loopback::SIM_SECRET.into()),
        ],
        muc_domains: vec![MUC_DOMAIN.into()],
        ..SimServerConfig::default()
    })
    .await
    .unwrap();
    let world = World::connect(WorldSettings {
        host: "127.0.0.1".into(),
        port: server.component_addr().port(),
        domain: loopback::SIM_DOMAIN.into(),
        secret: loopback::SIM_SECRET.into(),
        muc_domain: MUC_DOMAIN.into(),
        recorder_domain: loopback::RECORDER_DOMAIN.into(),
    })
    .await
    .unwrap();
    (server, world)
}

fn jitape_toml(port: u16, dir: &Path, extra: &str) -> String {
    format!(
        "[xmpp]\nhost = \"127.0.0.1\"\nport = {port}\ndomain = \"{}\"\nsecret = \"{}\"\nmuc_domains = [\"{MUC_DOMAIN}\"]\n[media]\nbind = \"127.0.0.1\"\n[recording]\ndir = \"{}\"\n{extra}\n[http]\nbind = \"127.0.0.1:0\"\n",
        loopback::RECORDER_DOMAIN,
        loopback::RECORDER_SECRET,
        dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_conference_leaves_a_finalized_flac() {
    support::logs();
    let (server, world) = server_and_world().await;
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let mut jitape = support::process::JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(server.component_addr().port(), &rec, ""),
        tmp.path(),
    );
    let room = format!("drain@{MUC_DOMAIN}");
    let plan = two_speakers(&room, 12.0);
    let term = async {
        tokio::time::sleep(secs(6.5)).await;
        let started = Instant::now();
        let status = jitape.terminate(secs(20.0));
        (status, started.elapsed())
    };
    let (outcome, (status, took)) = tokio::join!(world.run(plan), term);
    let outcome = outcome.unwrap();
    let log = jitape.log();
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit: {status:?}\n{log}"
    );
    assert!(took < secs(10.0), "drained in {took:?}");
    let flacs = support::files_with_suffix(&rec, ".flac");
    assert_eq!(flacs.len(), 1, "{log}");
    assert!(
        support::files_with_suffix(&rec, ".partial").is_empty(),
        "nothing left partial"
    );
    support::flac_test(&flacs[0]);
    let sc = sidecar::read(&flacs[0].with_extension("json")).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("shutdown"));
    // The first speaker's whole window (1-3 s) and the start of the second's are in it.
    let d = jitape_sim::analyze::decode_flac(&flacs[0]).unwrap();
    assert!(d.duration() > secs(5.5), "{:?}", d.duration());
    assert_eq!(
        jitape_sim::analyze::tone_intervals(&d, default_tone_hz(0)).len(),
        1
    );
    assert!(outcome.recorder_joins.len() == 1);
    world.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_corrupts_nothing_and_recording_resumes_when_space_returns() {
    support::logs();
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount (the test suite runs as root)");
    assert!(mounted.success(), "mounting a small tmpfs needs root");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let rec = mnt.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let mut lb = Loopback::start_with(&rec, 48_000, "disk_floor = \"8MB\"")
        .await
        .unwrap();
    let addr = lb.app.as_ref().unwrap().http_addr.unwrap();
    let metrics = lb.app.as_ref().unwrap().metrics();
    assert!(
        until(secs(6.0), || async {
            http(addr, "GET", "/ready", None).await.0 == 200
        })
        .await
    );

    let room_a = format!("open@{MUC_DOMAIN}");
    let room_b = format!("late@{MUC_DOMAIN}");
    let mut a = two_speakers(&room_a, 22.0);
    a.speakers[0].talk = vec![window(1.0, 21.0)];
    let mut b = two_speakers(&room_b, 16.0);
    b.invite_at = Some(secs(1.0));
    let filler = mnt.join("filler");
    let world = &lb.world;
    let disk = async {
        tokio::time::sleep(secs(3.0)).await;
        // Down to about 2 MB free: below the floor.
        let free = jitape::guard::free_bytes(&mnt).unwrap();
        std::fs::write(&filler, vec![0u8; (free - 2_000_000) as usize]).unwrap();
        assert!(
            until(secs(6.0), || async {
                http(addr, "GET", "/ready", None).await.0 == 503
            })
            .await,
            "not ready below the floor"
        );
        let (_, body) = http(addr, "GET", "/ready", None).await;
        assert!(body.contains("below the floor"), "{body}");
        // A conference that starts now is not recorded...
        let b = world.run(b);
        let full = async {
            // ...and then the disk fills completely under the open recording.
            let mut more = std::fs::OpenOptions::new()
                .append(true)
                .open(&filler)
                .unwrap();
            let _ = std::io::Write::write_all(&mut more, &vec![0u8; 4_000_000]);
            tokio::time::sleep(secs(4.0)).await;
            assert!(metrics.recordings_refused.get() >= 1);
            assert!(
                !rec.join(jitape::sink::room_dir_name(&room_b)).exists(),
                "no recording below the floor"
            );
            std::fs::remove_file(&filler).unwrap();
        };
        let (b, ()) = tokio::join!(b, full);
        b
    };
    let (a, b) = tokio::join!(lb.world.run(a), disk);
    let (a, b) = (a.unwrap(), b.unwrap());
    let fa = lb.wait_finalized(&room_a, secs(10.0)).await.unwrap();
    let fb = lb
        .wait_finalized(&room_b, secs(10.0))
        .await
        .expect("recorded once space returned");
    lb.stop().await;
    for (outcome, files) in [(&a, &fa), (&b, &fb)] {
        support::flac_test(&files.flac);
        let sc = sidecar::read(&files.sidecar).unwrap();
        let d = jitape_sim::analyze::decode_flac(&files.flac).unwrap();
        let wall = (sc.end.unwrap().utc - sc.start.utc).num_milliseconds() as f64 / 1000.0;
        assert!(
            (d.duration().as_secs_f64() - wall).abs() < 0.1,
            "{}: duration {:?} vs wall {wall}",
            outcome.plan.room,
            d.duration()
        );
    }
    // The open recording held its audio through the full disk: the tone is unbroken.
    let sc = sidecar::read(&fa.sidecar).unwrap();
    let report = jitape_sim::analyze::check_recording(&fa.flac, &sc, &a).unwrap();
    assert!(report.ok(), "{report}");
}

/// The compose CLI on this machine: `docker compose` (v2 plugin) or `docker-compose` (v1).
fn compose() -> Vec<String> {
    let v2 = Command::new("docker").args(["compose", "version"]).output();
    if v2.is_ok_and(|o| o.status.success()) {
        return vec!["docker".into(), "compose".into()];
    }
    vec!["docker-compose".into()]
}

/// A stand-in for docker-jitsi-meet's `docker-compose.yml`, reduced to what `jitape.yml`
/// refers to: the `prosody` service with its alias on `meet.jitsi`, and the `meet.jitsi`
/// network declared without a `name:`, so compose names it `<project>_meet.jitsi`
/// (docker-jitsi-meet@2e6b31d8 `docker-compose.yml` l.1 `services:`, l.355-358, l.528-530).
const DJM_COMPOSE: &str = "services:\n    prosody:\n        image: ghcr.io/jitsi/prosody:stable-11146-2\n        networks:\n            meet.jitsi:\n                aliases:\n                    - ${XMPP_SERVER:-xmpp.meet.jitsi}\nnetworks:\n    meet.jitsi:\n";

/// `jitape.yml` is an overlay used from the docker-jitsi-meet directory, like upstream's
/// `jibri.yml`: merged with the stack's compose file and `.env`, it lands on the stack's own
/// network whatever the project is called, derives the breakout MUC from `XMPP_DOMAIN` and
/// refuses to start without its secret.
#[test]
fn docker_compose_accepts_the_file_with_a_docker_jitsi_meet_env() {
    let tmp = tempfile::tempdir().unwrap();
    let djm = tmp.path();
    std::fs::write(djm.join("docker-compose.yml"), DJM_COMPOSE).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let overlay = std::fs::read_to_string(format!("{root}/jitape.yml")).unwrap();
    assert!(
        !overlay.lines().any(|l| l.starts_with("version:")),
        "compose files have no `version:` key any more (docker-jitsi-meet's have none)"
    );
    std::fs::write(djm.join("jitape.yml"), &overlay).unwrap();
    let cmd = compose();
    let run = |project: &str| {
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .current_dir(djm)
            .args(["-p", project])
            .args(["-f", "docker-compose.yml", "-f", "jitape.yml", "config"])
            .output()
            .expect("the compose CLI is installed (scripts/test installs docker-compose)")
    };
    // docker-jitsi-meet's .env, with jitape's lines added, read from the project directory.
    std::fs::write(
        djm.join(".env"),
        "CONFIG=/srv/jitsi-meet-cfg\nJITAPE_HTTP_TOKEN=t0k3n\nXMPP_DOMAIN=meet.example.org\nXMPP_AUTH_DOMAIN=auth.meet.example.org\nXMPP_MUC_DOMAIN=muc.meet.example.org\nXMPP_INTERNAL_MUC_DOMAIN=internal-muc.meet.example.org\nXMPP_SERVER=xmpp.meet.jitsi\nJVB_ADVERTISE_IPS=192.0.2.10\nTZ=UTC\nJITAPE_SECRET=s3cr3t\n",
    )
    .unwrap();
    for project in ["jitsi-docker-jitsi-meet-738058b", "meet"] {
        let out = run(project);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}\n{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        for expected in [
            "JITAPE_XMPP_MUC_DOMAINS: muc.meet.example.org,breakout.meet.example.org",
            "JITAPE_XMPP_SECRET: s3cr3t",
            "JITAPE_XMPP_HOST: xmpp.meet.jitsi",
            "JITAPE_XMPP_DOMAIN: jitape.meet.jitsi",
            "JITAPE_XMPP_SERVICE_DOMAINS: hidden.meet.jitsi",
            "/srv/jitsi-meet-cfg/jitape/recordings:/recordings",
        ] {
            assert!(text.contains(expected), "`{expected}` in:\n{text}");
        }
        // On the stack's own network, not an external one named by guesswork.
        assert!(!text.contains("external"), "{text}");
        let jitape = text
            .split("\n  jitape:")
            .nth(1)
            .expect("the jitape service");
        let jitape = jitape.split("\n  prosody:").next().unwrap_or(jitape);
        assert!(jitape.contains("meet.jitsi"), "{jitape}");
        // Compose v2 prints the network's full name; v1 does not print it at all.
        if text.contains("name: ") {
            assert!(
                text.contains(&format!("name: {project}_meet.jitsi")),
                "{text}"
            );
        }
    }
    // Without the secret the file refuses to start, naming the variable.
    std::fs::write(
        djm.join(".env"),
        "CONFIG=/srv/jitsi-meet-cfg\nJITAPE_HTTP_TOKEN=t\n",
    )
    .unwrap();
    let out = run("meet");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JITAPE_SECRET"));
}
