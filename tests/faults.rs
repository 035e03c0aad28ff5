//! Fault injection over the loopback deployment (issue 7, "fault tests"): loss bursts, a bridge
//! that vanishes, a focus that never answers, a recording filesystem that refuses writes, one
//! that stalls every write (frozen; issue 11), and a `.partial` cut at every byte of its last
//! frame. In each case jitape keeps running, the other
//! conferences it records at the same time are untouched, and every recording is continued or
//! finalized as a valid FLAC (`flac -t`, an independent decode, the sidecar agreeing).
//!
//! Every test prints one `FAULT-SUMMARY` line computed from the files and appends it to
//! `target/fault-summary.txt`: `samples_lost` is what the sidecar admits (disk-full and
//! disk-backlog gaps) plus
//! any shortfall of the decoded audio against the wall duration beyond 100 ms (or, for cut
//! files, the samples of the torn frame); `bytes_lost` is what was left unfinalized (`.partial`,
//! `.tmp`) plus, for cut files, the torn bytes repair dropped.
//! (Prosody killed and restarted is in `tests/lifecycle.rs`.)

use jitape_sim::harness as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jitape::sink::repair::scan;
use jitape::sink::sidecar::{self, GapKind, Sidecar};
use jitape::sink::{FinalizedFiles, room_dir_name};
use jitape_sim::analyze::{Decoded, Expected, Tolerances, analyse, decode_flac};
use jitape_sim::loopback::{Loopback, MUC_DOMAIN};
use jitape_sim::plan::{ConferencePlan, Disruption, SpeakerPlan, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;
use jitape_sim::world::ConferenceOutcome;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A conference in `room` ending at `end` s; speaker `i` talks in `talk[i]` (tone `i`).
fn plan(room: &str, base: u32, end: f64, talk: &[&[(f64, f64)]]) -> ConferencePlan {
    let mut p = ConferencePlan::empty(&format!("{room}@{MUC_DOMAIN}"), end);
    p.speakers = talk
        .iter()
        .enumerate()
        .map(|(i, t)| {
            SpeakerPlan::simple(
                &format!("{:08x}", base + i as u32),
                &format!("Speaker{i}"),
                VoiceSpec::Tone(default_tone_hz(i)),
                Duration::ZERO,
                None,
                t.iter().map(|(a, b)| window(*a, *b)).collect(),
            )
        })
        .collect();
    p
}

/// Seconds from the file's start to the plan's epoch.
fn offset(sc: &Sidecar, outcome: &ConferenceOutcome) -> f64 {
    let start: SystemTime = sc.start.utc.into();
    outcome
        .wall_epoch
        .duration_since(start)
        .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64())
}

/// One line of the fault summary.
struct Summary {
    case: &'static str,
    faults: String,
    files: usize,
    valid: usize,
    samples_lost: u64,
    bytes_lost: u64,
}

impl Summary {
    fn emit(&self) {
        let line = format!(
            "FAULT-SUMMARY {}: faults={} files={} valid={} samples_lost={} bytes_lost={}",
            self.case, self.faults, self.files, self.valid, self.samples_lost, self.bytes_lost
        );
        eprintln!("{line}");
        let path = match std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .or_else(|| option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from))
        {
            Some(tmp) => tmp.parent().unwrap_or(&tmp).join("fault-summary.txt"),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fault-summary.txt"),
        };
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("fault summary file");
        std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).unwrap();
    }
}

/// `flac -t` over many files at once: true when every one passes.
fn flac_t(paths: &[PathBuf]) -> bool {
    paths.chunks(300).all(|chunk| {
        Command::new("flac")
            .args(["-t", "-w", "-s"])
            .args(chunk)
            .status()
            .expect("the flac tool is installed (apt-get install flac)")
            .success()
    })
}

/// Bytes of files jitape left unfinished under `dir`.
fn leftover_bytes(dir: &Path) -> u64 {
    let mut left = support::files_with_suffix(dir, ".partial");
    left.extend(support::files_with_suffix(dir, ".tmp"));
    left.iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// A finalized recording checked on its own: valid (flac -t, decodes, the sidecar's total
/// equals the decoded length) and what of the wall duration it lost.
struct Checked {
    valid: bool,
    sc: Sidecar,
    decoded: Decoded,
    samples_lost: u64,
}

fn check_file(flac: &Path, json: &Path, wall: Option<f64>) -> Checked {
    let sc = sidecar::read(json).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    let decoded = decode_flac(flac).unwrap_or_else(|e| panic!("{e}"));
    let n = decoded.samples.len() as u64;
    let admitted: u64 = sc
        .gaps
        .iter()
        .filter(|g| matches!(g.kind, GapKind::DiskFull | GapKind::DiskBacklog))
        .map(|g| g.end.sample.saturating_sub(g.start.sample))
        .sum();
    let rate = f64::from(decoded.rate);
    let expected = wall.map_or(n, |w| (w * rate) as u64);
    let shortfall = expected.saturating_sub(n);
    let unadmitted = if shortfall as f64 > 0.1 * rate {
        shortfall
    } else {
        0
    };
    Checked {
        valid: flac_t(&[flac.to_path_buf()]) && sc.total_samples == n,
        samples_lost: admitted + unadmitted,
        sc,
        decoded,
    }
}

fn check_finalized(files: &FinalizedFiles, outcome: &ConferenceOutcome) -> Checked {
    let sc = sidecar::read(&files.sidecar).unwrap();
    let wall = offset(&sc, outcome) + outcome.plan.end_at.as_secs_f64();
    check_file(&files.flac, &files.sidecar, Some(wall))
}

/// The recording is exactly the conference: every frame that reached jitape in its place
/// (edges within 10 ms, no hole, level, pitch), every frame the emulated network dropped
/// concealed or silent, nothing else heard, and the file as long as the room (±20 ms).
fn assert_exact(c: &Checked, outcome: &ConferenceOutcome) {
    let expected = Expected::from_outcome(outcome, &c.sc).unwrap_or_else(|e| panic!("{e}"));
    let report = analyse(&c.decoded, &expected, &Tolerances::default());
    assert!(report.ok(), "{}: {report}", outcome.plan.room);
}

/// Media-session gaps of the sidecar, in plan seconds.
fn media_gaps(sc: &Sidecar, outcome: &ConferenceOutcome) -> Vec<(f64, f64)> {
    let rate = f64::from(sc.sample_rate);
    let off = offset(sc, outcome);
    sc.gaps
        .iter()
        .filter(|g| g.kind == GapKind::MediaSession)
        .map(|g| {
            (
                g.start.sample as f64 / rate - off,
                g.end.sample as f64 / rate - off,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_bursts_are_silence_in_place_and_the_other_conference_is_exact() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    // Speaker 0 of "bursty" talks through bursts of 100 % loss; speaker 1 only outside them.
    // A burst set 10 ms after a packet tick loses exactly the packets of
    // [at - 10 ms, at + len - 10 ms) (a packet leaves at the end of its 20 ms).
    let bursts = [(3.01, 0.06), (5.01, 0.3), (12.01, 1.0)];
    let talk0: &[(f64, f64)] = &[(2.0, 9.0), (11.5, 16.0)];
    let talk1: &[(f64, f64)] = &[(9.5, 11.0), (17.0, 19.0)];
    let mut a = plan("bursty", 0xe100_0000, 21.0, &[talk0, talk1]);
    for (at, len) in bursts {
        a = a.with_loss_burst(at, len);
    }
    let b = plan(
        "steady",
        0xe200_0000,
        21.0,
        &[&[(1.0, 4.0), (8.0, 12.0)], &[(4.5, 7.5), (13.0, 19.0)]],
    );
    let (oa, ob) = tokio::join!(lb.world.run(a), lb.world.run(b));
    let (oa, ob) = (oa.unwrap(), ob.unwrap());
    let fa = lb.wait_finalized(&oa.plan.room, secs(20.0)).await.unwrap();
    let fb = lb.wait_finalized(&ob.plan.room, secs(20.0)).await.unwrap();
    let metrics = lb.app.as_ref().unwrap().metrics();
    lb.stop().await;

    let sent: u64 = oa.sent.iter().chain(&ob.sent).map(|s| s.packets()).sum();
    let on_wire_lost = sent.saturating_sub(metrics.packets_received.get());
    let (ca, cb) = (check_finalized(&fa, &oa), check_finalized(&fb, &ob));
    Summary {
        case: "loss-bursts",
        faults: format!("100%-loss bursts of 60/300/1000 ms on one conference ({on_wire_lost} RTP packets lost on the wire)"),
        files: 2,
        valid: usize::from(ca.valid) + usize::from(cb.valid),
        samples_lost: ca.samples_lost + cb.samples_lost,
        bytes_lost: leftover_bytes(dir.path()),
    }
    .emit();
    assert!(ca.valid && cb.valid);
    assert_eq!(ca.samples_lost + cb.samples_lost, 0);
    // Exactly the packets inside the bursts (3 + 15 + 50) were lost, give or take one at an
    // edge on a loaded machine.
    assert!(
        (65..=71).contains(&on_wire_lost),
        "{on_wire_lost} lost of {sent}"
    );
    // The wire log agrees: speaker 0 lost the frames of [at - 10 ms, at + len - 10 ms), give
    // or take one at an edge (the simulation applies each change within a few ms).
    let lost: Vec<(u64, u64)> = oa
        .sent
        .iter()
        .filter_map(|log| log.speakers.iter().find(|s| s.endpoint == "e1000000"))
        .filter_map(|s| s.wire.as_ref())
        .flat_map(|w| w.lost.clone())
        .collect();
    let want = [(150, 152), (250, 264), (600, 649)];
    assert!(
        lost.len() == 3
            && lost
                .iter()
                .zip(want)
                .all(|(l, w)| l.0.abs_diff(w.0) <= 1 && l.1.abs_diff(w.1) <= 1),
        "lost frames {lost:?}, expected {want:?}"
    );
    // Both conferences are exact: in the bursty one, the 60 ms burst is concealed or silent,
    // the longer ones are concealed for at most 100 ms and silent after, in their place, and
    // every onset after a burst is on time.
    assert_exact(&cb, &ob);
    assert_exact(&ca, &oa);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_that_vanishes_is_silence_in_the_same_file_until_a_new_session() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    // The bridge dies at 5 s without a word; jitape declares ICE failed 5 + 10 s after the
    // last packet, asks for a new session, and hears the 27 s windows again.
    let mut a = plan(
        "vanish",
        0xe300_0000,
        34.0,
        &[&[(1.0, 4.0), (27.0, 31.0)], &[(4.2, 4.8), (31.5, 32.5)]],
    );
    a.disruptions = vec![(secs(5.0), Disruption::FailBridge)];
    let b = plan(
        "bystander",
        0xe400_0000,
        30.0,
        &[&[(2.0, 6.0), (14.0, 18.0)], &[(7.0, 12.0), (20.0, 27.0)]],
    );
    let (oa, ob) = tokio::join!(lb.world.run(a), lb.world.run(b));
    let (oa, ob) = (oa.unwrap(), ob.unwrap());
    let fa = lb.wait_finalized(&oa.plan.room, secs(20.0)).await.unwrap();
    let fb = lb.wait_finalized(&ob.plan.room, secs(20.0)).await.unwrap();
    lb.stop().await;
    let (ca, cb) = (check_finalized(&fa, &oa), check_finalized(&fb, &ob));
    Summary {
        case: "bridge-vanishes",
        faults: format!(
            "bridge dead at 5 s (no packets, no terminate); sessions {} and {}",
            oa.sessions, ob.sessions
        ),
        files: support::files_with_suffix(dir.path(), ".flac").len(),
        valid: usize::from(ca.valid) + usize::from(cb.valid),
        samples_lost: ca.samples_lost + cb.samples_lost,
        bytes_lost: leftover_bytes(dir.path()),
    }
    .emit();
    assert!(ca.valid && cb.valid);
    assert_eq!(
        support::files_with_suffix(dir.path(), ".flac"),
        {
            let mut v = vec![fa.flac.clone(), fb.flac.clone()];
            v.sort();
            v
        },
        "one file per conference"
    );
    assert_eq!(oa.sessions, 2, "a new session after the bridge died");
    assert_eq!(oa.recorder_joins.len(), 1, "jitape never left");
    assert_eq!(ob.sessions, 1, "the other conference saw nothing");
    // Same file, silence for the gap, every window in place, full length.
    assert_exact(&ca, &oa);
    assert_exact(&cb, &ob);
    assert_eq!(ca.sc.end_reason.as_deref(), Some("room-destroyed"));
    // The sidecar tells the deaf stretch from real silence.
    let gaps = media_gaps(&ca.sc, &oa);
    assert!(
        gaps.iter()
            .any(|(s, e)| *s >= 3.9 && *s <= 22.0 && *e > s + 1.0 && *e <= 27.0),
        "a media-session gap between the bridge's death and the new session: {:?}",
        ca.sc.gaps
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_focus_that_never_answers_leaves_a_full_length_recording_and_no_spin() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(dir.path(), 48_000).await.unwrap();
    // At 6 s the bridge vanishes and the focus ignores jitape from then on: no IQ results,
    // no new session, nothing. The room lives on until 40 s.
    let mut a = plan(
        "unanswered",
        0xe500_0000,
        40.0,
        &[&[(1.0, 3.0)], &[(3.5, 5.0)]],
    );
    a.disruptions = vec![
        (secs(6.0), Disruption::FocusSilent),
        (secs(6.0), Disruption::FailBridge),
    ];
    let b = plan(
        "next-door",
        0xe600_0000,
        32.0,
        &[&[(2.0, 6.0), (15.0, 19.0)], &[(8.0, 13.0), (22.0, 29.0)]],
    );
    let (oa, ob) = tokio::join!(lb.world.run(a), lb.world.run(b));
    let (oa, ob) = (oa.unwrap(), ob.unwrap());
    // Bounded: the destroyed room is finalized at once, nothing waits for the focus.
    let fa = lb.wait_finalized(&oa.plan.room, secs(10.0)).await.unwrap();
    let fb = lb.wait_finalized(&ob.plan.room, secs(20.0)).await.unwrap();
    // jitape is still fully alive: a conference after all this is recorded as usual.
    let c = plan("afterwards", 0xe700_0000, 7.0, &[&[(1.0, 4.0)]]);
    let (oc, fc) = lb.play(c).await.unwrap();
    lb.stop().await;
    let checked = [
        check_finalized(&fa, &oa),
        check_finalized(&fb, &ob),
        check_finalized(&fc, &oc),
    ];
    let ignored: Vec<&(String, String, Option<String>)> = oa
        .probe_replies
        .iter()
        .filter(|r| r.0.starts_with("ignored"))
        .collect();
    Summary {
        case: "focus-never-answers",
        faults: format!(
            "bridge dead and focus silent from 6 s to the end of a 40 s room ({} requests of jitape unanswered, {} joins)",
            ignored.len(),
            oa.recorder_joins.len()
        ),
        files: checked.len(),
        valid: checked.iter().filter(|c| c.valid).count(),
        samples_lost: checked.iter().map(|c| c.samples_lost).sum(),
        bytes_lost: leftover_bytes(dir.path()),
    }
    .emit();
    assert!(checked.iter().all(|c| c.valid));
    assert_eq!(checked.iter().map(|c| c.samples_lost).sum::<u64>(), 0);
    assert_exact(&checked[0], &oa);
    assert_eq!(checked[0].sc.end_reason.as_deref(), Some("room-destroyed"));
    assert_exact(&checked[1], &ob);
    assert_exact(&checked[2], &oc);
    assert_eq!(oa.sessions, 1);
    // jitape asked for a new session, then waited: no storm of requests or rejoins.
    assert!(
        ignored.iter().any(|r| r.0 == "ignored session-terminate"),
        "{ignored:?}"
    );
    assert!(ignored.len() <= 6, "jitape keeps asking: {ignored:?}");
    assert!(
        oa.recorder_joins.len() <= 4,
        "rejoins: {:?}",
        oa.recorder_joins
    );
    // The sidecar says jitape heard nothing from the failure to the end.
    let gaps = media_gaps(&checked[0].sc, &oa);
    assert!(
        gaps.iter()
            .any(|(s, e)| *s >= 4.9 && *s <= 22.0 && *e >= 39.5),
        "a media-session gap from the failure to the end: {:?}",
        checked[0].sc.gaps
    );
}

/// The disk guard's floor for the 64 MiB test filesystem (the default 1 GiB would, rightly,
/// start no recording on it).
const SMALL_FS_FLOOR: &str = "disk_floor = \"8MiB\"";

/// A filesystem mounted for one test (the suite runs as root, as `tests/service.rs` does); on
/// drop its immutable flags are cleared and it is lazily unmounted.
struct Mounted {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Mounted {
    fn new(kind: &str) -> Mounted {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnt");
        std::fs::create_dir_all(&dir).unwrap();
        let mut mount = Command::new("mount");
        if kind == "ext4" {
            let img = tmp.path().join("fs.img");
            // Small, so that making it costs little I/O (a 2 GiB one stalled the fsyncs of
            // tests running beside it); the tests lower the disk guard's floor to match.
            std::fs::File::create(&img)
                .unwrap()
                .set_len(64 << 20)
                .unwrap();
            let made = Command::new("mkfs.ext4")
                .arg("-q")
                .arg("-F")
                .arg(&img)
                .status();
            assert!(made.expect("mkfs.ext4 (e2fsprogs)").success());
            mount.arg("-o").arg("loop").arg(&img);
        } else {
            mount.args(["-t", "tmpfs", "-o", "size=1g", "tmpfs"]);
        }
        let mounted = mount
            .arg(&dir)
            .status()
            .expect("mount (the suite runs as root)");
        assert!(
            mounted.success(),
            "mounting a {kind} needs root (and a loop device)"
        );
        Mounted { dir, _tmp: tmp }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(&self.dir)
            .status();
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Makes everything under `dir` refuse (or accept again) every change. The kernel refuses
/// `mount -o remount,ro` while a file is open for writing (EBUSY, on tmpfs, ext4 and for a
/// read-only bind remount alike) and ext4's errors=remount-ro cannot be undone without an
/// unmount; an immutable ext4 file (`chattr +i`) refuses writes through descriptors already
/// open, and an immutable directory refuses creates and renames (EPERM): what a read-only
/// filesystem does to jitape, undone by `chattr -i`.
async fn refuse_writes(dir: &Path, on: bool) {
    let dir = dir.to_path_buf();
    let flag = if on { "+i" } else { "-i" };
    let done = tokio::task::spawn_blocking(move || {
        // A file renamed away while chattr walks the tree fails one pass: try again.
        for _ in 0..10 {
            let status = Command::new("chattr")
                .arg("-R")
                .arg(flag)
                .arg(&dir)
                .status();
            if status.is_ok_and(|s| s.success()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        false
    });
    assert!(done.await.unwrap(), "chattr -R {flag}");
}

/// Sizes of the `.flac.partial` files under `dir`.
fn partial_sizes(dir: &Path) -> Vec<(PathBuf, u64)> {
    support::files_with_suffix(dir, ".flac.partial")
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).map_or(0, |m| m.len());
            (p, len)
        })
        .collect()
}

fn two_rooms(tag: &str, base: u32, end: f64) -> (ConferencePlan, ConferencePlan) {
    let a = plan(
        &format!("{tag}-one"),
        base,
        end,
        &[
            &[(1.0, 4.0), (9.0, 12.0), (19.0, 23.0)],
            &[(4.5, 5.5), (13.0, 15.5)],
        ],
    );
    let b = plan(
        &format!("{tag}-two"),
        base + 0x100,
        end,
        &[
            &[(1.5, 3.5), (10.0, 13.0), (20.0, 24.0)],
            &[(4.0, 5.0), (7.0, 9.5), (14.0, 15.0)],
        ],
    );
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_dir_refusing_writes_for_ten_seconds_loses_nothing() {
    support::logs();
    let fs = Mounted::new("ext4");
    let rec = fs.dir.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let mut lb = Loopback::start_with(&rec, 48_000, SMALL_FS_FLOOR)
        .await
        .unwrap();
    let (a, b) = two_rooms("refused", 0xeb00_0000, 26.0);
    let started = Instant::now();
    let fault = async {
        tokio::time::sleep_until((started + secs(6.0)).into()).await;
        refuse_writes(&rec, true).await;
        tokio::time::sleep(secs(1.0)).await;
        let first = partial_sizes(&rec);
        let writable = jitape::guard::writable(&rec);
        tokio::time::sleep_until((started + secs(15.8)).into()).await;
        let last = partial_sizes(&rec);
        refuse_writes(&rec, false).await;
        (first, last, writable)
    };
    let (oa, ob, (first, last, writable)) = tokio::join!(lb.world.run(a), lb.world.run(b), fault);
    let (oa, ob) = (oa.unwrap(), ob.unwrap());
    let fa = lb.wait_finalized(&oa.plan.room, secs(20.0)).await.unwrap();
    let fb = lb.wait_finalized(&ob.plan.room, secs(20.0)).await.unwrap();
    lb.stop().await;
    let (ca, cb) = (check_finalized(&fa, &oa), check_finalized(&fb, &ob));
    Summary {
        case: "dir-refuses-writes",
        faults: "recording filesystem refusing every write from 6 s to 16 s of two 26 s rooms (chattr +i on ext4)".into(),
        files: 2,
        valid: usize::from(ca.valid) + usize::from(cb.valid),
        samples_lost: ca.samples_lost + cb.samples_lost,
        bytes_lost: leftover_bytes(&rec),
    }
    .emit();
    // The fault was real: no byte got into either file for ~9 s, and nothing could be created.
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first, last, "the files did not grow while refused");
    assert!(!writable);
    // Both recordings continued: complete, valid, every tone in place, nothing lost.
    assert!(ca.valid && cb.valid);
    assert_eq!(ca.samples_lost + cb.samples_lost, 0);
    assert_exact(&ca, &oa);
    assert_exact(&cb, &ob);
    assert_eq!(leftover_bytes(&rec), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dir_still_refusing_writes_when_the_rooms_end_is_finalized_once_it_accepts_them() {
    support::logs();
    let fs = Mounted::new("ext4");
    let rec = fs.dir.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let lb = Loopback::start_with(&rec, 48_000, SMALL_FS_FLOOR)
        .await
        .unwrap();
    let (a, b) = two_rooms("stuck", 0xec00_0000, 16.0);
    let started = Instant::now();
    // Refused from 6 s until 6 s after both rooms ended.
    let fault = async {
        tokio::time::sleep_until((started + secs(6.0)).into()).await;
        refuse_writes(&rec, true).await;
        tokio::time::sleep_until((started + secs(22.0)).into()).await;
        let stuck = support::files_with_suffix(&rec, ".flac.partial").len();
        refuse_writes(&rec, false).await;
        stuck
    };
    let (oa, ob, stuck) = tokio::join!(lb.world.run(a), lb.world.run(b), fault);
    let (oa, ob) = (oa.unwrap(), ob.unwrap());
    // Without a restart, within 30 s of the disk accepting writes again, both are final.
    let rooms = [&oa, &ob].map(|o| rec.join(room_dir_name(&o.plan.room)));
    let back = Instant::now();
    let finished = |d: &Path| {
        support::files_with_suffix(d, ".flac").len() == 1
            && support::files_with_suffix(d, ".json").len() == 1
            && support::files_with_suffix(d, ".partial").is_empty()
    };
    while !rooms.iter().all(|d| finished(d)) && back.elapsed() < secs(30.0) {
        tokio::time::sleep(secs(0.5)).await;
    }
    let waited = back.elapsed();
    let all_final = rooms.iter().all(|d| finished(d));
    let left = leftover_bytes(&rec);
    lb.stop().await;
    let checked: Vec<(Checked, &ConferenceOutcome)> = rooms
        .iter()
        .zip([&oa, &ob])
        .filter_map(|(d, o)| {
            let flac = support::files_with_suffix(d, ".flac").pop()?;
            let json = flac.with_extension("json");
            let sc = sidecar::read(&json).ok()?;
            let wall = offset(&sc, o) + o.plan.end_at.as_secs_f64();
            Some((check_file(&flac, &json, Some(wall)), o))
        })
        .collect();
    Summary {
        case: "dir-refuses-writes-at-the-end",
        faults: format!("recording filesystem refusing writes from 6 s until 6 s after two 16 s rooms ended; final files {waited:.1?} after it accepted writes again"),
        files: 2,
        valid: checked.iter().filter(|(c, _)| c.valid).count(),
        samples_lost: checked.iter().map(|(c, _)| c.samples_lost).sum(),
        bytes_lost: left,
    }
    .emit();
    assert_eq!(
        stuck, 2,
        "both recordings were still unfinished while refused"
    );
    assert!(
        all_final,
        "the .partial files were not finalized within 30 s of the disk coming back, without a restart: {:?}",
        support::files_with_suffix(&rec, "")
    );
    assert_eq!(checked.len(), 2);
    for (c, o) in &checked {
        assert!(c.valid && c.sc.end_reason.is_some(), "{}", o.plan.room);
        // Everything is there and in place: what came before the disk refused, and what
        // jitape held in memory until it took writes again.
        assert_exact(c, o);
    }
}

/// Freezes (or thaws) the filesystem mounted at `dir`: every write, fsync and create on it
/// blocks until thawed, as on a stalled disk (`fsfreeze`, util-linux).
fn freeze(dir: &Path, on: bool) -> bool {
    let flag = if on { "-f" } else { "-u" };
    // Thawing what is not frozen fails harmlessly; keep that quiet.
    Command::new("fsfreeze")
        .arg(flag)
        .arg(dir)
        .stderr(if on {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        })
        .status()
        .is_ok_and(|s| s.success())
}

/// Thaws the filesystem if the test ends (or fails) while it is frozen.
struct Thaw(PathBuf);

impl Drop for Thaw {
    fn drop(&mut self) {
        freeze(&self.0, false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_stalled_for_five_seconds_delays_no_packet_and_loses_nothing() {
    support::logs();
    let fs = Mounted::new("ext4");
    let _thaw = Thaw(fs.dir.clone());
    let rec = fs.dir.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let mut lb = Loopback::start_with(&rec, 48_000, SMALL_FS_FLOOR)
        .await
        .unwrap();
    let metrics = lb.app.as_ref().unwrap().metrics();
    let (a, b) = two_rooms("stalled", 0xee00_0000, 22.0);
    let started = Instant::now();
    // Frozen from 6 s to 11 s: every write and fsync of both recordings blocks for 5 s. Done
    // on a thread of its own: the thaw must not depend on the code under test (a thread
    // blocked on a frozen filesystem cannot even be killed).
    let (dir, m) = (fs.dir.clone(), Arc::clone(&metrics));
    let stall = std::thread::spawn(move || {
        let at = |s: f64| {
            std::thread::sleep((started + secs(s)).saturating_duration_since(Instant::now()))
        };
        at(6.0);
        let before = partial_sizes(&dir.join("rec"));
        let frozen = freeze(&dir, true);
        at(10.8);
        let waiting = m.write_backlog_micros.get() as f64 / 1e6;
        let during = partial_sizes(&dir.join("rec"));
        freeze(&dir, false);
        (frozen, before, during, waiting)
    });
    let (oa, ob) = tokio::join!(lb.world.run(a), lb.world.run(b));
    let (frozen, before, during, waiting) = tokio::task::spawn_blocking(move || stall.join())
        .await
        .unwrap()
        .unwrap();
    assert!(frozen, "fsfreeze -f");
    let (oa, ob) = (oa.unwrap(), ob.unwrap());
    let fa = lb.wait_finalized(&oa.plan.room, secs(20.0)).await.unwrap();
    let fb = lb.wait_finalized(&ob.plan.room, secs(20.0)).await.unwrap();
    let stalls = metrics.write_stalls.get();
    let dropped = metrics.write_dropped_micros.get();
    lb.stop().await;
    let (ca, cb) = (check_finalized(&fa, &oa), check_finalized(&fb, &ob));
    Summary {
        case: "disk-stalled",
        faults: format!("recording filesystem frozen (every write and fsync blocked) from 6 s to 11 s of two 22 s rooms; {waiting:.1} s of audio waited in memory"),
        files: 2,
        valid: usize::from(ca.valid) + usize::from(cb.valid),
        samples_lost: ca.samples_lost + cb.samples_lost,
        bytes_lost: leftover_bytes(&rec),
    }
    .emit();
    // The stall was real: the files did not grow, the audio waited for the writer.
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(
        during
            .iter()
            .zip(&before)
            .all(|(d, b)| d.1 <= b.1 + 64 * 1024),
        "the files grew while frozen: {before:?} → {during:?}"
    );
    assert!(waiting > 6.0, "only {waiting} s of audio waited");
    assert!(stalls >= 2, "{stalls} stalls");
    // Nothing was lost or shifted: every tone in place, full length, no gap.
    assert_eq!(dropped, 0);
    assert!(ca.valid && cb.valid);
    assert_eq!(ca.samples_lost + cb.samples_lost, 0);
    assert!(
        ca.sc.gaps.is_empty() && cb.sc.gaps.is_empty(),
        "{:?} {:?}",
        ca.sc.gaps,
        cb.sc.gaps
    );
    assert_exact(&ca, &oa);
    assert_exact(&cb, &ob);
    assert_eq!(leftover_bytes(&rec), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_cut_at_every_byte_of_its_last_frame_is_finalized_by_startup_recovery() {
    support::logs();
    // A real `.partial`: copied from a live 16 kHz recording while a tone plays.
    let src = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start(src.path(), 16_000).await.unwrap();
    // Copied once the lateness window (5 s) has let a few seconds of tone reach the file.
    let source = plan("source", 0xed00_0000, 12.0, &[&[(0.5, 12.0)]]);
    let copy = async {
        tokio::time::sleep(secs(9.5)).await;
        let live = support::files_with_suffix(src.path(), ".flac.partial")
            .pop()
            .expect("a live .partial");
        let json = PathBuf::from(
            live.to_string_lossy()
                .replace(".flac.partial", ".json.partial"),
        );
        (
            live.clone(),
            std::fs::read(&live).unwrap(),
            std::fs::read(&json).unwrap(),
        )
    };
    let (outcome, (live, bytes, json)) = tokio::join!(lb.world.run(source), copy);
    let outcome = outcome.unwrap();
    lb.wait_finalized(&outcome.plan.room, secs(20.0))
        .await
        .unwrap();
    lb.stop().await;
    let name = live
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".flac.partial", "");
    let base_path = src.path().join("base.flac.partial");
    std::fs::write(&base_path, &bytes).unwrap();
    let rep = scan(&base_path).unwrap();
    let (start, end) = (rep.last_frame_start, rep.data_end);
    let base = &bytes[..end as usize];
    std::fs::write(&base_path, base).unwrap();
    let all = decode_flac(&base_path).unwrap().samples;
    let block = usize::from(rep.header.block_size);
    assert!(
        rep.frames >= 4 && all.len() == rep.frames as usize * block,
        "{rep:?}"
    );
    assert!(end - start >= 200, "the last frame holds the tone: {rep:?}");
    let json_path = src.path().join("base.json.partial");
    std::fs::write(&json_path, &json).unwrap();
    let sc = sidecar::read(&json_path).unwrap();

    // One unfinished recording per cut, each of its own room; one jitape start repairs all.
    let fs = Mounted::new("tmpfs");
    let rec = fs.dir.join("rec");
    let cuts: Vec<u64> = (start..=end).collect();
    for &c in &cuts {
        let dir = rec.join(format!("cut{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.flac.partial")),
            &base[..c as usize],
        )
        .unwrap();
        let mut s = sc.clone();
        s.room = format!("cut{c}@{MUC_DOMAIN}");
        s.room_dir = format!("cut{c}");
        sidecar::write_atomic(&dir.join(format!("{name}.json.partial")), &s).unwrap();
    }
    let started = Instant::now();
    let lb = Loopback::start(&rec, 16_000).await.unwrap();
    let count = |suffix: &str| support::files_with_suffix(&rec, suffix).len();
    while (count(".json") < cuts.len() || count(".partial") > 0) && started.elapsed() < secs(120.0)
    {
        tokio::time::sleep(secs(0.5)).await;
    }
    let took = started.elapsed();
    lb.stop().await;

    let flacs: Vec<PathBuf> = cuts
        .iter()
        .map(|c| rec.join(format!("cut{c}")).join(format!("{name}.flac")))
        .collect();
    let tested: Vec<bool> = if flac_t(&flacs) {
        vec![true; flacs.len()]
    } else {
        flacs
            .iter()
            .map(|f| flac_t(std::slice::from_ref(f)))
            .collect()
    };
    let (mut valid, mut samples_lost, mut bytes_lost) = (0, 0u64, 0u64);
    let mut failures = Vec::new();
    for ((&c, flac), passed) in cuts.iter().zip(&flacs).zip(tested) {
        // Every whole frame before the cut; the torn one is gone.
        let keep = if c == end {
            all.len()
        } else {
            all.len() - block
        };
        let verdict = (|| -> Result<(), String> {
            let d = decode_flac(flac)?;
            let r = scan(flac).map_err(|e| e.to_string())?;
            let s = sidecar::read(&flac.with_extension("json")).map_err(|e| e.to_string())?;
            samples_lost += all.len().saturating_sub(d.samples.len()) as u64;
            bytes_lost += (c - rep.header_len).saturating_sub(r.data_end - r.header_len);
            if d.samples[..] != all[..keep] {
                return Err(format!("{} samples, not the first {keep}", d.samples.len()));
            }
            if s.total_samples != keep as u64 || s.end_reason.is_none() || !passed {
                return Err(format!(
                    "sidecar {} {:?}, flac -t {passed}",
                    s.total_samples, s.end_reason
                ));
            }
            Ok(())
        })();
        match verdict {
            Ok(()) => valid += 1,
            Err(e) => failures.push(format!("cut at {c}: {e}")),
        }
    }
    Summary {
        case: "truncated-partial",
        faults: format!(
            "a live .partial cut at each of the {} offsets {start}..={end} of its last frame; one jitape start recovered them in {took:.1?}",
            cuts.len()
        ),
        files: cuts.len(),
        valid,
        samples_lost,
        bytes_lost,
    }
    .emit();
    assert!(
        failures.is_empty(),
        "{} failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(valid, cuts.len());
}
