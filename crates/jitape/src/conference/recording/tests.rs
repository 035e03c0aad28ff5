//! Tests of a recording on the conference side: rendering never waits for the disk (a real
//! stalled disk: `fsfreeze` on a loop-mounted ext4, needs root), audio beyond the backlog
//! bound is a `disk-backlog` gap in a full-length file, gaps reach the sidecar, and a roster
//! flooded with nicknames leaves a bounded sidecar.

use std::sync::Arc;

use super::*;
use crate::conference::roster::{Classifier, RosterLimits};
use crate::metrics::Metrics;
use crate::sink::testutil::{FreezableFs, decode_all, flac_test};
use crate::sink::{WriterSettings, sidecar::Status};
use crate::types::LateWindow;
use crate::xmpp::muc::OccupantPresence;

fn settings(dir: &std::path::Path) -> RecordingSettings {
    RecordingSettings {
        dir: dir.to_path_buf(),
        // Rendering follows arrival closely here, so what the frozen disk holds up is the
        // audio the test times (the default 5 s lateness window would push it past the end).
        audio: AudioSettings {
            late_window: LateWindow::try_from(Duration::from_millis(200)).expect("valid"),
            ..AudioSettings::default()
        },
    }
}

fn pool(backlog: Duration, metrics: &Arc<Metrics>) -> WriterPool {
    let settings = WriterSettings {
        threads: 1,
        backlog,
        ..WriterSettings::default()
    };
    WriterPool::start(settings, Arc::clone(metrics)).unwrap()
}

/// A 440 Hz tone as 20 ms Opus packets of `ssrc`, the k-th arriving at `t0 + (k+1)·20 ms`.
fn tone_packets(ssrc: u32, t0: Instant, seconds: u32) -> Vec<RtpPacket> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    (0..seconds * 50)
        .map(|k| {
            let pcm: Vec<i16> = (0..960)
                .map(|i| {
                    let t = f64::from(k * 960 + i) / 48_000.0;
                    (8000.0 * (std::f64::consts::TAU * 440.0 * t).sin()) as i16
                })
                .collect();
            RtpPacket {
                ssrc: crate::types::Ssrc(ssrc),
                sequence: k as u16,
                timestamp: k * 960,
                payload_type: 111,
                marker: k == 0,
                audio_level: None,
                voice: None,
                payload: enc.encode_vec(&pcm, 1500).unwrap(),
                arrival: t0 + Duration::from_millis(20 * u64::from(k + 1)),
            }
        })
        .collect()
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

#[tokio::test]
async fn rendering_never_waits_for_a_frozen_disk_and_audio_beyond_the_bound_is_a_gap() {
    let mut fs = FreezableFs::mount();
    let metrics = Arc::new(Metrics::default());
    // One second of audio may wait; the disk freezes for three.
    let pool = pool(Duration::from_secs(1), &metrics);
    let t0 = Instant::now();
    let mut rec = Recording::start(&settings(&fs.path), &pool, &room(), t0, Utc::now(), None)
        .expect("started");
    let roster = Roster::new(Classifier::default());
    rec.set_tracks(
        &[(crate::types::Ssrc(0xabc), TrackId(0))],
        Instant::now(),
        &roster,
    );
    let packets = tone_packets(0xabc, t0, 6);
    let mut next = 0;
    let mut slowest = Duration::ZERO;
    let mut tick = tokio::time::interval(RENDER_EVERY);
    let (freeze, thaw, end) = (
        Duration::from_secs(1),
        Duration::from_secs(4),
        Duration::from_millis(6100),
    );
    while t0.elapsed() < end {
        tick.tick().await;
        let now = Instant::now();
        if !fs.is_frozen() && now - t0 >= freeze && now - t0 < thaw {
            fs.freeze();
        } else if fs.is_frozen() && now - t0 >= thaw {
            fs.thaw();
        }
        while next < packets.len() && packets[next].arrival <= now {
            rec.push(&packets[next]);
            next += 1;
        }
        let took = Instant::now();
        rec.render(now);
        if now - t0 >= Duration::from_secs(2) && now - t0 < Duration::from_secs(3) {
            rec.checkpoint(&roster);
            rec.sync();
        }
        if fs.is_frozen() {
            slowest = slowest.max(took.elapsed());
        }
    }
    fs.thaw();
    assert!(
        slowest < Duration::from_millis(50),
        "a render took {slowest:?} while the disk was frozen"
    );
    rec.end(Instant::now(), &roster);
    rec.ready_to_finish(&roster)
        .await
        .expect("the disk takes it");
    let total = rec.samples();
    let files = rec.finish("stopped").await.expect("finalized");
    flac_test(&files.flac).expect("flac -t");
    let audio = decode_all(&files.flac);
    let sc = sidecar::read(&files.sidecar).unwrap();
    assert_eq!(sc.status, Status::Final);
    assert_eq!(
        audio.len() as u64,
        total,
        "the file has the timeline's length"
    );
    assert_eq!(sc.total_samples, total);
    // What waited longer than the bound is one disk-backlog gap, silent in the file; the
    // tone is there before and after it.
    let gaps: Vec<_> = sc
        .gaps
        .iter()
        .filter(|g| g.kind == GapKind::DiskBacklog)
        .collect();
    assert_eq!(gaps.len(), 1, "{:?}", sc.gaps);
    let (a, b) = (gaps[0].start.sample as usize, gaps[0].end.sample as usize);
    let secs = (b - a) as f64 / 48_000.0;
    assert!(
        (1.4..=2.6).contains(&secs),
        "gap of {secs} s: {:?}",
        gaps[0]
    );
    assert!(audio[a..b].iter().all(|&x| x == 0));
    assert!(rms(&audio[a - 9600..a]) > 1000.0, "the tone before the gap");
    assert!(
        rms(&audio[b + 4800..b + 24_000]) > 1000.0,
        "the tone after it"
    );
    let dropped = metrics.write_dropped_micros.get() as f64 / 1e6;
    assert!(
        (dropped - secs).abs() < 0.01,
        "{dropped} s counted, {secs} s gap"
    );
    assert!(metrics.write_stalls.get() >= 1);
    assert_eq!(metrics.write_backlog_bytes.get(), 0);
}

#[tokio::test]
async fn gaps_reach_the_final_sidecar() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let pool = pool(Duration::from_secs(60), &Arc::new(Metrics::default()));
    let mut rec =
        Recording::start(&settings(tmp.path()), &pool, &room(), t0, Utc::now(), None).unwrap();
    rec.render(t0 + Duration::from_secs(1));
    rec.add_gap(
        t0 + Duration::from_millis(300),
        t0 + Duration::from_millis(700),
        GapKind::XmppReconnect,
        "test".into(),
    );
    let roster = Roster::new(Classifier::default());
    rec.checkpoint(&roster);
    rec.end(t0 + Duration::from_secs(2), &roster);
    let files = rec.finish("stopped").await.unwrap();
    let sc = sidecar::read(&files.sidecar).unwrap();
    assert_eq!(sc.gaps.len(), 1, "{sc:?}");
    assert_eq!(sc.gaps[0].start.sample, 48_000 * 3 / 10);
}

#[tokio::test]
async fn a_client_cycling_through_ten_thousand_nicknames_leaves_a_bounded_sidecar() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let pool = pool(Duration::from_secs(60), &Arc::new(Metrics::default()));
    let mut rec =
        Recording::start(&settings(tmp.path()), &pool, &room(), t0, Utc::now(), None).unwrap();
    let limits = RosterLimits::default();
    let mut roster = Roster::with_limits(Classifier::default(), limits);
    for i in 0..10_000u64 {
        let at = t0 + Duration::from_millis(i);
        let mut p = OccupantPresence {
            nick: format!("cycler-{i:05}"),
            display_name: Some(format!("Cycler number {i}")),
            ..Default::default()
        };
        roster.apply(&p, at);
        p.unavailable = true;
        roster.apply(&p, at);
    }
    assert_eq!(roster.hits().participants, 10_000 - 1000);
    rec.checkpoint(&roster);
    rec.end(t0 + Duration::from_secs(11), &roster);
    rec.ready_to_finish(&roster).await.unwrap();
    let partial = std::fs::metadata(&rec.paths().sidecar_partial)
        .unwrap()
        .len();
    let files = rec.finish("stopped").await.unwrap();
    let sc = sidecar::read(&files.sidecar).unwrap();
    assert_eq!(sc.participants.len(), limits.max_participants + 1);
    let overflow = sc.participants.last().unwrap();
    assert_eq!(overflow.key, crate::conference::roster::OVERFLOW_KEY);
    assert!(overflow.presence.len() <= limits.max_presences);
    assert_eq!(overflow.display_name, None, "it names none of them");
    // A few hundred bytes per kept participant, whatever the client does.
    assert!(partial < 1_000_000, "{partial} bytes rewritten every 5 s");
}

fn room() -> RoomJid {
    RoomJid::parse("r@muc.example").expect("a room JID")
}
