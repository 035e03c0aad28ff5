//! Two `jitape run` processes share the rooms of one real Prosody (Debian's package) through
//! mod_jitape's `jitape_components`, and one recording directory: each conference is recorded
//! by the instance the module assigns it to and by no other; when that instance is killed
//! (`kill -9`) mid-conference, the other one joins after the lease and continues the killed
//! instance's file, the stretch between listed as a `jitape-takeover` gap naming both.

use jitape_sim::harness as support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use jitape::sink::{GapKind, sidecar};
use jitape_sim::analyze::{Expected, Tolerances, analyse, decode_flac};
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
/// `recording.late_window`: what a killed instance held back for late packets dies with it.
const LATE_WINDOW_S: f64 = 1.0;

fn instance(n: usize) -> String {
    format!("jitape-{n}.{REC}")
}

fn owner(room: &str) -> usize {
    let w = |n: usize| (rendezvous_weight(room, &instance(n)), instance(n));
    if w(1) > w(2) { 1 } else { 2 }
}

/// Prosody with both instances; `extra`: further options of the MUC component.
fn prosody() -> Prosody {
    prosody_with("")
}

fn prosody_with(extra: &str) -> Prosody {
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
            "  modules_enabled = {{ \"jitape\" }}\n  jitape_components = {{ \"{}\", \"{}\" }}\n  jitape_lease = {LEASE}\n{extra}",
            instance(1),
            instance(2)
        ),
        global_extra: format!("plugin_paths = {{ \"{plugins}\" }}\n"),
    })
}

/// Instance `n`, logging under `dir/instance-n`, recording into the shared `dir/recordings`.
fn jitape(prosody: &Prosody, n: usize, dir: &Path) -> JitapeProcess {
    jitape_via(prosody.component_port, n, dir, "")
}

/// Instance `n` reaching Prosody on `port`, with `xmpp_extra` in its `[xmpp]` section.
fn jitape_via(port: u16, n: usize, dir: &Path, xmpp_extra: &str) -> JitapeProcess {
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
{xmpp_extra}
[media]
bind = "127.0.0.1"
[recording]
dir = "{rec}"
late_window = "{LATE_WINDOW_S}s"
[http]
bind = "127.0.0.1:0"
"#,
        domain = instance(n),
        rec = recordings(dir).display(),
    );
    JitapeProcess::spawn(env!("CARGO_BIN_EXE_jitape"), &toml, &log_dir)
}

/// The recording directory both instances share.
fn recordings(dir: &Path) -> std::path::PathBuf {
    dir.join("recordings")
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
    // The rooms end a second apart. Two rooms of one instance that end 12 ms apart had the
    // second one's end read 25-35 ms late (while the first one's media session closed), with
    // or without a takeover: noted in issue 14's note, not what this test is about.
    let (kept_outcome, moved_outcome, ()) = tokio::join!(
        world.run(plan(&kept, 17.0)),
        world.run(plan(&moved, 16.0)),
        killer
    );
    let kept_outcome = kept_outcome.expect("conference played");
    let moved_outcome = moved_outcome.expect("conference played");
    let rec = recordings(tmp.path());
    let kept_final = wait_for_final(&rec, &kept, Duration::from_secs(20)).await;
    let moved_final = wait_for_final(&rec, &moved, Duration::from_secs(20)).await;
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
    let room_dir = |room: &str| rec.join(jitape::sink::room_dir_name(room));
    // Once the rooms have ended, nothing is left unfinished and no owner record remains.
    for room in [&kept, &moved] {
        for suffix in [".partial", ".owner"] {
            let left = support::files_with_suffix(&room_dir(room), suffix);
            assert!(left.is_empty(), "{room}: {left:?} left\n{}", logs());
        }
    }

    // `kept`: recorded once, by its owner, whole.
    let (flac, sc) = kept_final.unwrap_or_else(|| panic!("kept not recorded\n{}", logs()));
    assert_eq!(
        support::files_with_suffix(&room_dir(&kept), ".flac"),
        vec![flac.clone()]
    );
    support::flac_test(&flac);
    let sc = sidecar::read(&sc).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"));
    assert!(sc.gaps.is_empty(), "{:?}", sc.gaps);
    let report = jitape_sim::analyze::check_recording(&flac, &sc, &kept_outcome).unwrap();
    assert!(report.ok(), "{report}\n{}", logs());
    assert_eq!(
        kept_outcome.recorder_joins.len(),
        1,
        "{:?}",
        kept_outcome.recorder_joins
    );

    // `moved`: instance 1 recorded it until it was killed; then, not before the lease,
    // instance 2 joined and continued the same file to the end.
    let joins = &moved_outcome.recorder_joins;
    assert_eq!(joins.len(), 2, "recorder joins {joins:?}\n{}", logs());
    let rejoin = joins[1].as_secs_f64();
    assert!(
        (KILL_AT + LEASE..KILL_AT + LEASE + 5.0).contains(&rejoin),
        "instance 2 joined at {rejoin:.1} s (killed at {KILL_AT} s, lease {LEASE} s)"
    );
    let (flac, sc) = moved_final.unwrap_or_else(|| panic!("moved not taken over\n{}", logs()));
    assert_eq!(
        support::files_with_suffix(&room_dir(&moved), ".flac"),
        vec![flac.clone()],
        "one FLAC for the whole conference\n{}",
        logs()
    );
    support::flac_test(&flac);
    let sc = sidecar::read(&sc).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"));
    let seconds = sc.total_samples as f64 / f64::from(sc.sample_rate);
    let first_join = joins[0].as_secs_f64();
    assert!(
        (seconds - (16.0 - first_join)).abs() < 1.0,
        "the file holds {seconds:.2} s of a conference instance 1 joined at {first_join:.2} s of 16 s"
    );
    let [gap] = sc.gaps.as_slice() else {
        panic!("one gap expected: {:?}\n{}", sc.gaps, logs());
    };
    assert_eq!(gap.kind, GapKind::JitapeTakeover);
    assert_eq!(gap.previous_instance.as_deref(), Some(instance(1).as_str()));
    assert_eq!(gap.next_instance.as_deref(), Some(instance(2).as_str()));
    let secs_of = |s: u64| s as f64 / f64::from(sc.sample_rate);
    let (from, to) = (secs_of(gap.start.sample), secs_of(gap.end.sample));
    // Nobody recorded for at least the lease; the killed process took what it held in memory
    // (the lateness window, a render and the encoder's block) with it; instance 2 joined
    // within 5 s of the lease.
    let held = LATE_WINDOW_S + 0.5;
    assert!(
        to - from >= LEASE && to - from < LEASE + 5.0 + held,
        "the gap is {from:.2}..{to:.2} s of the file"
    );
    let killed = KILL_AT - first_join;
    assert!(
        from <= killed && from > killed - held,
        "the gap starts at {from:.2} s of the file, instance 1 was killed at {killed:.2} s"
    );
    // Outside the gap, everything exactly as spoken.
    let expected = Expected::from_outcome(&moved_outcome, &sc)
        .unwrap()
        .without(&[(from, to)]);
    let report = analyse(
        &decode_flac(&flac).unwrap(),
        &expected,
        &Tolerances::default(),
    );
    assert!(report.ok(), "{report}\n{}", logs());
}

/// A TCP relay to Prosody that can be cut silently: once cut, it forwards nothing either
/// way and closes nothing (no FIN, no RST), as a network partition looks from both ends;
/// connections made while it is cut are held open and never forwarded.
struct CutProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    async fn start(target: u16) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cut);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(relay(cr, sw, Arc::clone(&flag)));
                tokio::spawn(relay(sr, cw, Arc::clone(&flag)));
            }
        });
        CutProxy { port, cut, task }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until the proxy is cut or `from` ends; then holds both open.
async fn relay(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, cut: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        if cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Silent: neither end hears that the other is gone (until the test's runtime ends).
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop((from, to));
}

/// When the proxy between instance 1 and Prosody is cut, seconds into the conference.
const CUT_AT: f64 = 6.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_cut_off_from_prosody_stops_writing_before_the_next_owner_continues_its_file() {
    support::logs();
    // Prosody pings each instance every second and closes one that has not answered within
    // one: it sees the partition within about 2 s, and moves the room the lease later.
    let prosody = prosody_with("  jitape_ping_interval = 1\n  jitape_ping_timeout = 1\n");
    let proxy = CutProxy::start(prosody.component_port).await;
    let tmp = tempfile::tempdir().unwrap();
    // Instance 1 reaches Prosody through the proxy and notices the partition much later than
    // Prosody does (its own ping: every 5 s, 4 s to answer): it keeps renewing its owner
    // record for a while after the room has moved, so the new owner must wait for the record.
    let mut first = jitape_via(
        proxy.port,
        1,
        tmp.path(),
        "ping_interval = \"5s\"\nping_timeout = \"4s\"",
    );
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

    let room = room_owned_by("cut", 1);
    let cutter = async {
        tokio::time::sleep(Duration::from_secs_f64(CUT_AT)).await;
        proxy.cut();
    };
    let (outcome, ()) = tokio::join!(world.run(plan(&room, 24.0)), cutter);
    let outcome = outcome.expect("conference played");
    let rec = recordings(tmp.path());
    let found = wait_for_final(&rec, &room, Duration::from_secs(20)).await;
    let status = second.terminate(Duration::from_secs(15));
    first.terminate(Duration::from_secs(15));
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
    let room_dir = rec.join(jitape::sink::room_dir_name(&room));
    for suffix in [".partial", ".owner"] {
        let left = support::files_with_suffix(&room_dir, suffix);
        assert!(left.is_empty(), "{left:?} left\n{}", logs());
    }
    let (flac, sc) = found.unwrap_or_else(|| panic!("no final recording\n{}", logs()));
    assert_eq!(
        support::files_with_suffix(&room_dir, ".flac"),
        vec![flac.clone()],
        "one FLAC for the whole conference\n{}",
        logs()
    );
    // Two writers on one file would leave frames of one inside the other's: the file would
    // fail to decode, or the audio would be misplaced.
    support::flac_test(&flac);
    let sc = sidecar::read(&sc).unwrap();
    assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"));
    let [gap] = sc.gaps.as_slice() else {
        panic!("one gap expected: {:?}\n{}", sc.gaps, logs());
    };
    assert_eq!(gap.kind, GapKind::JitapeTakeover);
    assert_eq!(gap.previous_instance.as_deref(), Some(instance(1).as_str()));
    assert_eq!(gap.next_instance.as_deref(), Some(instance(2).as_str()));
    let secs_of = |s: u64| s as f64 / f64::from(sc.sample_rate);
    let (from, to) = (secs_of(gap.start.sample), secs_of(gap.end.sample));
    let first_join = outcome.recorder_joins[0].as_secs_f64();
    let cut = CUT_AT - first_join;
    // Instance 1 went on recording through the partition (its media never stopped) until the
    // room moved, at least the lease after the cut (Prosody needs a ping to notice); the gap
    // starts there (the analysis below checks every spurt before it). Instance 2 wrote
    // nothing before instance 1's record ran out: instance 1 renewed it until its link timed
    // out, at least 4 s after the cut, so the gap lasts at least to that plus the lease.
    let rejoin = outcome.recorder_joins[1].as_secs_f64() - first_join;
    assert!(
        from >= cut + LEASE && from <= rejoin,
        "the gap starts at {from:.2} s of the file; the partition began at {cut:.2} s, \
         instance 2 joined at {rejoin:.2} s"
    );
    assert!(
        to >= cut + 4.0 + LEASE,
        "instance 2 continued at {to:.2} s of the file, before instance 1's record (renewed \
         until at least {:.2} s) ran out",
        cut + 4.0
    );
    let expected = Expected::from_outcome(&outcome, &sc)
        .unwrap()
        .without(&[(from, to)]);
    let report = analyse(
        &decode_flac(&flac).unwrap(),
        &expected,
        &Tolerances::default(),
    );
    assert!(report.ok(), "{report}\n{}", logs());
    // Instance 1 stopped writing when its record ran out; instance 2 found the record still
    // running when the room reached it, and waited for it.
    assert!(
        first.log().contains("stopped writing this recording"),
        "instance 1 was not fenced\n{}",
        logs()
    );
    assert!(
        second
            .log()
            .contains("continuing it once its lease is over"),
        "instance 2 did not wait for instance 1's record\n{}",
        logs()
    );
}
