//! Tests of the writer pool and the conference-side backlog: a frozen filesystem (a real
//! stalled disk: `fsfreeze` on a loop-mounted ext4, so these need root) never delays the
//! side that hands audio over, the backlog drains with every sample in place, its bounds
//! turn audio into counted silence and never into a shorter file, and a conference that
//! panics still gets its files finalized.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::metrics::Metrics;
use crate::sink::sidecar;
use crate::sink::testutil::{FreezableFs, decode_all, flac_test, speech_like};

const RATE: u32 = 48_000;
/// 100 ms, as the conference renders.
const BLOCK: usize = 4_800;

fn pool(threads: usize, backlog: Duration, total: usize, metrics: &Arc<Metrics>) -> WriterPool {
    let settings = WriterSettings {
        threads,
        backlog,
        backlog_total: total,
    };
    WriterPool::start(settings, Arc::clone(metrics)).expect("writer threads")
}

fn open(dir: &Path, room: &str) -> (OpenFiles, Sidecar) {
    let room = crate::room::RoomJid::parse(room).expect("a room JID");
    let files = OpenFiles::create(
        dir,
        &room,
        crate::types::SampleRate::OPUS,
        chrono::Utc::now(),
        None,
    )
    .expect("open");
    let sc = files.sidecar.clone();
    (files, sc)
}

fn block(audio: &[i16], i: usize) -> AudioBlock {
    AudioBlock {
        start: (i * BLOCK) as u64,
        mix: Pcm::from_samples(audio[i * BLOCK..(i + 1) * BLOCK].to_vec()),
        stems: Vec::new(),
    }
}

/// Waits (a bounded time) until the writer has served everything `w` handed over.
async fn settled(w: &mut RecordingWriter) {
    let until = Instant::now() + Duration::from_secs(10);
    while w.samples_waiting() > 0 && Instant::now() < until {
        w.pump();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.samples_waiting(), 0, "the writer did not catch up");
}

fn partial_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

#[tokio::test]
async fn a_frozen_disk_never_delays_the_conference_side_and_the_backlog_drains_exactly() {
    let mut fs = FreezableFs::mount();
    let metrics = Arc::new(Metrics::default());
    let pool = pool(1, Duration::from_secs(5), 256 << 20, &metrics);
    let (files, sc) = open(&fs.path, "frozen@muc.example");
    let paths = files.paths.clone();
    let mut w = pool.adopt(files);
    let audio = speech_like(50 * BLOCK, RATE, 7);

    for i in 0..10 {
        assert_eq!(w.audio(block(&audio, i)), None);
    }
    settled(&mut w).await;
    let before = partial_len(&paths.flac_partial);
    fs.freeze();
    // Three seconds of audio at the conference's pace while every write blocks.
    let mut slowest = Duration::ZERO;
    for i in 10..40 {
        let t = Instant::now();
        assert_eq!(w.audio(block(&audio, i)), None, "nothing dropped");
        if i % 10 == 0 {
            w.sidecar(sc.clone());
            w.sync();
        }
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The disk really was stalled: nothing reached the file, the audio is waiting.
    let waited = w.samples_waiting();
    let during = partial_len(&paths.flac_partial);
    let behind = metrics.recordings_write_behind.get();
    let stalls = metrics.write_stalls.get();
    let backlog_bytes = metrics.write_backlog_bytes.get();
    fs.thaw();
    assert!(
        slowest < Duration::from_millis(20),
        "handing audio over took {slowest:?} while the disk was frozen"
    );
    assert_eq!(during, before, "the file grew while the disk was frozen");
    assert!(waited >= 29 * BLOCK as u64, "only {waited} samples waited");
    assert_eq!(
        behind, 1,
        "a recording 3 s behind (threshold 2.5 s) is counted"
    );
    assert!(stalls >= 1);
    assert!(backlog_bytes >= 29 * BLOCK as i64 * 2, "{backlog_bytes}");

    for i in 40..50 {
        assert_eq!(w.audio(block(&audio, i)), None);
    }
    let done = w.finish(sc, "stopped").await.expect("finalized");
    flac_test(&done.flac).expect("flac -t");
    assert_eq!(decode_all(&done.flac), audio, "every sample, in place");
    let back = sidecar::read(&done.sidecar).expect("sidecar");
    assert_eq!(back.total_samples, audio.len() as u64);
    assert!(back.gaps.is_empty(), "{:?}", back.gaps);
    assert_eq!(metrics.write_dropped_micros.get(), 0);
    assert_eq!(metrics.write_backlog_bytes.get(), 0);
    assert_eq!(metrics.write_backlog_micros.get(), 0);
    assert_eq!(metrics.recordings_write_behind.get(), 0);
    let written = metrics.bytes_written.get();
    assert!(
        written > 0 && written <= partial_len(&done.flac),
        "{written}"
    );
}

#[tokio::test]
async fn beyond_its_bounds_the_backlog_turns_audio_into_counted_silence_never_a_shorter_file() {
    let mut fs = FreezableFs::mount();
    let metrics = Arc::new(Metrics::default());
    // One recording may hold 1 s; all together 15 blocks' worth of PCM.
    let pool = pool(1, Duration::from_secs(1), 15 * BLOCK * 2, &metrics);
    let (fa, sa) = open(&fs.path, "a@muc.example");
    let (fb, sb) = open(&fs.path, "b@muc.example");
    let (mut a, mut b) = (pool.adopt(fa), pool.adopt(fb));
    let audio = speech_like(30 * BLOCK, RATE, 11);
    fs.freeze();
    let mut dropped_a = Vec::new();
    for i in 0..30 {
        dropped_a.extend(a.audio(block(&audio, i)));
    }
    // The per-recording bound: the first second waits, the rest is silence.
    let span = |from: usize, to: usize| (from * BLOCK) as u64..(to * BLOCK) as u64;
    assert_eq!(dropped_a.first(), Some(&span(10, 11)));
    assert_eq!(dropped_a.len(), 20);
    assert!(dropped_a.windows(2).all(|w| w[0].end == w[1].start));
    // The process-wide bound: a's 10 blocks leave room for 5 of b's.
    let mut dropped_b = Vec::new();
    for i in 0..8 {
        dropped_b.extend(b.audio(block(&audio, i)));
    }
    assert_eq!(dropped_b, vec![span(5, 6), span(6, 7), span(7, 8)]);
    let dropped_us = metrics.write_dropped_micros.get();
    fs.thaw();
    assert_eq!(dropped_us, 23 * 100_000, "23 blocks of 100 ms dropped");

    let done = a.finish(sa, "stopped").await.expect("a finalized");
    let got = decode_all(&done.flac);
    assert_eq!(
        got.len(),
        audio.len(),
        "the file keeps the timeline's length"
    );
    assert_eq!(got[..10 * BLOCK], audio[..10 * BLOCK]);
    assert!(got[10 * BLOCK..].iter().all(|&s| s == 0));
    flac_test(&done.flac).expect("flac -t");
    let done = b.finish(sb, "stopped").await.expect("b finalized");
    let got = decode_all(&done.flac);
    assert_eq!(got.len(), 8 * BLOCK);
    assert_eq!(got[..5 * BLOCK], audio[..5 * BLOCK]);
    assert!(got[5 * BLOCK..].iter().all(|&s| s == 0));
    assert_eq!(metrics.write_backlog_bytes.get(), 0);
}

#[tokio::test]
async fn silence_waiting_for_the_disk_costs_no_memory_and_no_drop() {
    let mut fs = FreezableFs::mount();
    let metrics = Arc::new(Metrics::default());
    let pool = pool(1, Duration::from_secs(1), 16 << 20, &metrics);
    let (files, sc) = open(&fs.path, "quiet@muc.example");
    let mut w = pool.adopt(files);
    fs.freeze();
    for i in 0..300 {
        let quiet = AudioBlock {
            start: (i * BLOCK) as u64,
            mix: Pcm::from_samples(vec![0; BLOCK]),
            stems: vec![("alice".into(), Pcm::from_samples(vec![0; BLOCK]))],
        };
        assert_eq!(w.audio(quiet), None);
    }
    let bytes = metrics.write_backlog_bytes.get();
    fs.thaw();
    assert_eq!(bytes, 0);
    let done = w.finish(sc, "stopped").await.expect("finalized");
    assert_eq!(decode_all(&done.flac).len(), 300 * BLOCK);
    assert_eq!(decode_all(&done.stems[0]).len(), 300 * BLOCK);
}

#[tokio::test]
async fn stems_start_where_their_participant_does_and_end_with_the_mix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let metrics = Arc::new(Metrics::default());
    let pool = pool(2, Duration::from_secs(60), 64 << 20, &metrics);
    let (files, sc) = open(tmp.path(), "stems@muc.example");
    let mut w = pool.adopt(files);
    let audio = speech_like(6 * BLOCK, RATE, 3);
    for i in 0..6 {
        let mut b = block(&audio, i);
        if (2..4).contains(&i) {
            b.stems = vec![(
                "id:alice".into(),
                Pcm::Samples(audio[i * BLOCK..(i + 1) * BLOCK].to_vec()),
            )];
        }
        w.audio(b);
    }
    let done = w.finish(sc, "stopped").await.expect("finalized");
    assert_eq!(done.stems.len(), 1);
    let stem = decode_all(&done.stems[0]);
    assert_eq!(stem.len(), audio.len());
    assert!(stem[..2 * BLOCK].iter().all(|&s| s == 0));
    assert_eq!(stem[2 * BLOCK..4 * BLOCK], audio[2 * BLOCK..4 * BLOCK]);
    assert!(stem[4 * BLOCK..].iter().all(|&s| s == 0));
    let back = sidecar::read(&done.sidecar).expect("sidecar");
    let alice = back.participants.iter().find(|p| p.key == "id:alice");
    assert!(alice.and_then(|p| p.stem.as_ref()).is_some(), "{back:?}");
}

#[tokio::test]
async fn a_conference_that_panics_has_its_files_finalized_and_one_dropped_leaves_them_partial() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let metrics = Arc::new(Metrics::default());
    let pool = Arc::new(pool(1, Duration::from_secs(60), 64 << 20, &metrics));
    let audio = speech_like(3 * BLOCK, RATE, 5);

    let (files, sc) = open(tmp.path(), "panics@muc.example");
    let paths = files.paths.clone();
    let mut w = pool.adopt(files);
    let a = audio.clone();
    let task = tokio::spawn(async move {
        for i in 0..3 {
            w.audio(block(&a, i));
        }
        w.sidecar(sc);
        tokio::task::yield_now().await;
        panic!("a bug in the conference task");
    });
    assert!(task.await.expect_err("it panicked").is_panic());

    let (files, sc) = open(tmp.path(), "dropped@muc.example");
    let dropped = files.paths.clone();
    let mut w = pool.adopt(files);
    w.audio(block(&audio, 0));
    drop(w);
    // The same thread serves both, in order: once this probe is answered, both are done.
    let (files, probe_sc) = open(tmp.path(), "probe@muc.example");
    let mut probe = pool.adopt(files);
    probe.probe(probe_sc.clone()).await.expect("probe");
    probe.finish(probe_sc, "stopped").await.expect("finalized");
    drop(sc);

    let back = sidecar::read(&paths.sidecar).expect("the panicked recording's final sidecar");
    assert_eq!(back.end_reason.as_deref(), Some("internal-error"));
    assert_eq!(back.total_samples, audio.len() as u64);
    assert_eq!(decode_all(&paths.flac), audio);
    assert!(!paths.flac_partial.exists() && !paths.sidecar_partial.exists());

    assert!(dropped.flac_partial.exists() && !dropped.flac.exists());
    let unfinished = crate::sink::find_unfinished(tmp.path()).expect("scan");
    let u = unfinished
        .iter()
        .find(|u| u.paths == dropped)
        .expect("left for startup recovery");
    let done = crate::sink::finalize_unfinished(u, "interrupted").expect("recovered");
    // Whole frames only: the 100 ms handed over fill one 4096-sample frame.
    assert_eq!(decode_all(&done.flac), audio[..4096]);
    assert_eq!(metrics.write_backlog_bytes.get(), 0);
}

#[tokio::test]
async fn a_recording_whose_owner_record_runs_out_gets_not_one_byte_more() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let metrics = Arc::new(Metrics::default());
    let pool = pool(1, Duration::from_secs(60), 64 << 20, &metrics);
    let audio = speech_like(60 * BLOCK, RATE, 9);
    let lease = crate::sink::owner::Lease(Duration::from_secs(2));
    let own = crate::sink::owner::Ownership {
        instance: "jitape-1".into(),
        lease,
    };
    let room = crate::room::RoomJid::parse("fenced@muc.example").expect("a room JID");
    let files = OpenFiles::create(
        tmp.path(),
        &room,
        crate::types::SampleRate::OPUS,
        chrono::Utc::now(),
        Some(&own),
    )
    .expect("open");
    let (paths, sc) = (files.paths.clone(), files.sidecar.clone());
    let claimed = crate::sink::owner::read(&paths)
        .expect("read")
        .expect("the record is written when the recording opens");
    assert_eq!(claimed.instance, "jitape-1");
    let mut w = pool.adopt(files);

    // Renewed every 100 ms for 3 s, longer than the lease: the writer goes on writing.
    let mut i = 0;
    let renewing = Instant::now();
    while renewing.elapsed() < Duration::from_secs(3) {
        w.audio(block(&audio, i));
        w.renew();
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settled(&mut w).await;
    assert!(!w.fenced(), "fenced while renewed");
    let renewed = crate::sink::owner::read(&paths)
        .expect("read")
        .expect("record");
    assert!(renewed.renewed > claimed.renewed + chrono::Duration::seconds(2));
    let written = partial_len(&paths.flac_partial);
    assert!(written > 0);

    // No renewal (the link is down): past `renewed + lease - margin` nothing more is written.
    let fence = lease.write_by(renewed.renewed);
    let until_fence = (fence - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until_fence + Duration::from_millis(300)).await;
    for _ in 0..10 {
        w.audio(block(&audio, i));
        i += 1;
    }
    settled(&mut w).await;
    assert!(w.fenced());
    assert_eq!(metrics.recordings_fenced.get(), 1);
    // A late renewal does not bring it back.
    w.renew();
    settled(&mut w).await;
    assert_eq!(
        crate::sink::owner::read(&paths).expect("read"),
        Some(renewed.clone())
    );
    let err = w.finish(sc, "room-destroyed").await.expect_err("fenced");
    assert!(err.to_string().contains("fenced"), "{err}");
    assert_eq!(partial_len(&paths.flac_partial), written);
    assert!(
        !paths.flac.exists(),
        "a fenced recording is never finalized"
    );
    // Everything written before the fence is a repairable recording for the next owner.
    let unfinished =
        crate::sink::find_unfinished_of(tmp.path(), "fenced@muc.example").expect("scan");
    assert_eq!(unfinished.len(), 1);
    let (mix, report) = crate::sink::FlacWriter::resume(&paths.flac_partial, RATE).expect("resume");
    assert_eq!(report.bytes_cut, 0);
    assert!(mix.samples_written() >= 2 * RATE as u64);
}

/// A steady flow of blocks is served in rounds a `GATHER` apart: the writer thread waits for
/// a command (and has to be woken by its sender) only when the flow pauses for a round, not
/// once per block. Every wait after the first needs such a pause, so however slowly this
/// machine runs the test, the waits stay within its duration over `GATHER`; a thread that
/// waited whenever its queue was empty (served each block within the 5 ms between two) waited
/// for nearly every one of the 100 blocks.
#[tokio::test]
async fn a_steady_flow_of_blocks_wakes_the_writer_in_rounds_not_per_block() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let metrics = Arc::new(Metrics::default());
    let pool = pool(1, Duration::from_secs(180), 256 << 20, &metrics);
    let (files, sc) = open(dir.path(), "steady@muc.example");
    let mut w = pool.adopt(files);
    let audio = speech_like(100 * BLOCK, RATE, 11);
    let started = Instant::now();
    for i in 0..100 {
        assert_eq!(w.audio(block(&audio, i)), None);
        std::thread::sleep(Duration::from_millis(5));
        w.pump();
    }
    settled(&mut w).await;
    let elapsed = started.elapsed();
    let waits = pool.shared.idle_waits.load(Relaxed);
    let rounds = (elapsed.as_millis() / GATHER.as_millis()) as u64;
    assert!(
        waits <= 1 + rounds,
        "{waits} waits for 100 blocks in {elapsed:?}: the writer was woken per block"
    );
    let done = w.finish(sc, "stopped").await.expect("finalized");
    assert_eq!(decode_all(&done.flac), audio);
}
