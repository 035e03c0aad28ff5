//! An instance cut off from Prosody (a silent network partition) while its media goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::*;

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
    let prosody = prosody_with(2, "  jitape_ping_interval = 1\n  jitape_ping_timeout = 1\n");
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
