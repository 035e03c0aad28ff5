//! Tests of start-up recovery: a "kill -9" mid-recording, then continue or finalize.

use super::*;
use crate::sink::finalize_recording;
use crate::sink::paths::{RecordingPaths, find_unfinished, recording_paths};
use crate::sink::testutil::{decode_all, flac_test, speech_like};

const RATE: u32 = 16_000;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T19:35:09Z")
        .expect("time")
        .to_utc()
}

/// A recording of 3 s (mix + one stem) whose process died without finalizing; returns the
/// audio that reached the disk as whole frames.
fn crashed(root: &Path, with_sidecar: bool) -> (RecordingPaths, Vec<i16>) {
    let paths = recording_paths(root, "lesson@muc", start());
    paths.create_dir().expect("dir");
    let audio = speech_like(3 * RATE as usize, RATE, 41);
    let mut mix = FlacWriter::create(&paths.flac, RATE).expect("mix");
    let mut stem = FlacWriter::create(&paths.stem("p1"), RATE).expect("stem");
    mix.write(&audio).expect("write");
    stem.write(&audio[..RATE as usize]).expect("write");
    mix.sync().expect("sync");
    if with_sidecar {
        let mut sc = Sidecar::new(
            "lesson@muc",
            &paths.room_dir,
            "20261121T193509Z.flac",
            RATE,
            start(),
        );
        sc.participant_mut("p1").display_name = Some("Alice".into());
        sidecar::write_atomic(&paths.sidecar_partial, &sc).expect("sidecar");
    }
    drop((mix, stem)); // the crash: whole frames are on disk, the partial block is gone
    let on_disk = 3 * RATE as usize / 4096 * 4096;
    (paths, audio[..on_disk].to_vec())
}

#[test]
fn a_running_conference_continues_with_its_downtime_as_silence() {
    let root = tempfile::tempdir().expect("tempdir");
    let (paths, kept) = crashed(root.path(), true);
    let found = find_unfinished(root.path()).expect("find");
    assert_eq!(found.len(), 1);
    let now = start() + chrono::Duration::seconds(10);
    let mut r = resume_recording(&found[0], "lesson@muc", RATE, now, FlacSettings::default())
        .expect("resume");
    assert_eq!(r.gap, kept.len() as u64..10 * u64::from(RATE));
    assert_eq!(r.stems.len(), 1);
    assert_eq!(r.stems[0].1.samples_written(), 10 * u64::from(RATE));
    assert_eq!(r.sidecar.gaps.len(), 1);
    assert_eq!(r.sidecar.gaps[0].kind, GapKind::JitapeRestart);
    assert_eq!(r.sidecar.gaps[0].end.utc, now);
    assert_eq!(
        r.sidecar.participants[0].display_name.as_deref(),
        Some("Alice")
    );

    let more = speech_like(RATE as usize, RATE, 42);
    r.mix.write(&more).expect("write");
    r.stems[0].1.write(&more).expect("write");
    let done = finalize_recording(
        &paths,
        r.mix,
        vec![("p1".into(), r.stems.remove(0).1)],
        &mut r.sidecar,
        "room-destroyed",
    )
    .expect("finalize");
    flac_test(&done.flac).expect("flac -t");
    let mut expected = kept.clone();
    expected.resize(10 * RATE as usize, 0);
    expected.extend_from_slice(&more);
    assert_eq!(decode_all(&done.flac), expected);
    assert_eq!(
        decode_all(&done.stems[0]).len(),
        expected.len(),
        "stem and mix stay equal"
    );
    let sc = sidecar::read(&done.sidecar).expect("sidecar");
    assert_eq!(sc.total_samples, expected.len() as u64);
    assert_eq!(sc.gaps.len(), 1);
    assert!(find_unfinished(root.path()).expect("find").is_empty());
}

#[test]
fn a_conference_that_ended_while_down_is_finalized() {
    let root = tempfile::tempdir().expect("tempdir");
    let (paths, kept) = crashed(root.path(), true);
    let found = find_unfinished(root.path()).expect("find");
    let done = finalize_unfinished(&found[0], "interrupted").expect("finalize");
    flac_test(&done.flac).expect("flac -t");
    assert_eq!(decode_all(&paths.flac), kept);
    assert_eq!(done.stems, vec![paths.stem("p1")]);
    let sc = sidecar::read(&paths.sidecar).expect("sidecar");
    assert_eq!(sc.end_reason.as_deref(), Some("interrupted"));
    assert_eq!(sc.total_samples, kept.len() as u64);
    assert!(find_unfinished(root.path()).expect("find").is_empty());
}

#[test]
fn a_missing_sidecar_is_rebuilt_from_the_file_name() {
    let root = tempfile::tempdir().expect("tempdir");
    let (paths, kept) = crashed(root.path(), false);
    let found = find_unfinished(root.path()).expect("find");
    assert!(!found[0].has_sidecar);
    let done = finalize_unfinished(&found[0], "interrupted").expect("finalize");
    let sc = sidecar::read(&done.sidecar).expect("sidecar");
    assert_eq!(sc.start.utc, start());
    assert_eq!(sc.room, paths.room_dir);
    assert_eq!(sc.file, "20261121T193509Z.flac");
    assert_eq!(sc.total_samples, kept.len() as u64);
}

#[test]
fn resuming_at_another_sample_rate_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    crashed(root.path(), true);
    let found = find_unfinished(root.path()).expect("find");
    let err = resume_recording(
        &found[0],
        "lesson@muc",
        48_000,
        start(),
        FlacSettings::default(),
    )
    .expect_err("rate change");
    assert_eq!(err.fault(), crate::sink::Fault::Unsupported);
    assert_eq!(start_from_name("20261121T193509Z-2"), Some(start()));
    assert_eq!(start_from_name("garbage"), None);
}

/// Found by the `sidecar` fuzz target: a `.json.partial` whose start lay a year back made
/// the resume pad a year of silence (hours of CPU, gigabytes of disk).
#[test]
fn a_recording_older_than_the_resume_span_is_not_padded_but_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let (paths, kept) = crashed(root.path(), true);
    let before = std::fs::read(&paths.flac_partial).expect("partial");
    let found = find_unfinished(root.path()).expect("find");
    let now = start() + chrono::Duration::days(365);
    let err = resume_recording(&found[0], "lesson@muc", RATE, now, FlacSettings::default())
        .expect_err("a year of downtime");
    assert_eq!(err.fault(), crate::sink::Fault::Unsupported);
    assert_eq!(
        std::fs::read(&paths.flac_partial).expect("partial"),
        before,
        "the refused file is left as it was"
    );
    // What the caller does next: finalize it as it is, nothing lost.
    let done = finalize_unfinished(&found[0], "interrupted").expect("finalize");
    assert_eq!(decode_all(&done.flac), kept);
}

#[test]
fn a_takeover_lists_its_gap_with_both_instances() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_, kept) = crashed(root.path(), true);
    let found = find_unfinished(root.path()).expect("find");
    let now = start() + chrono::Duration::seconds(10);
    let how = Continuation::Takeover {
        previous: Some("jitape-1.rec".into()),
        next: "jitape-2.rec".into(),
        since: None,
    };
    let r = resume_recording_as(
        &found[0],
        "lesson@muc",
        RATE,
        now,
        FlacSettings::default(),
        &how,
    )
    .expect("resume");
    assert_eq!(r.gap, kept.len() as u64..10 * u64::from(RATE));
    let gap = &r.sidecar.gaps[0];
    assert_eq!(gap.kind, GapKind::JitapeTakeover);
    assert_eq!(gap.previous_instance.as_deref(), Some("jitape-1.rec"));
    assert_eq!(gap.next_instance.as_deref(), Some("jitape-2.rec"));
    assert!(
        gap.detail
            .as_deref()
            .is_some_and(|d| d.contains("jitape-1.rec") && d.contains("jitape-2.rec")),
        "{gap:?}"
    );
    // Written so, and read back the same (the kind and both names).
    let back = sidecar::read(&found[0].paths.sidecar_partial).expect("sidecar");
    assert_eq!(back.gaps, r.sidecar.gaps);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&found[0].paths.sidecar_partial).expect("json"))
            .expect("JSON");
    assert_eq!(json["gaps"][0]["kind"], "jitape-takeover");
    assert_eq!(json["gaps"][0]["previous_instance"], "jitape-1.rec");
    assert_eq!(json["gaps"][0]["next_instance"], "jitape-2.rec");
}

#[test]
fn a_takeover_gap_starts_when_the_room_moved_if_the_previous_owner_wrote_on_after_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_, kept) = crashed(root.path(), true);
    let found = find_unfinished(root.path()).expect("find");
    // The room moved 1 s into the recording; the previous owner, cut off, wrote on to 3 s.
    let moved = start() + chrono::Duration::seconds(1);
    let now = start() + chrono::Duration::seconds(10);
    let how = Continuation::Takeover {
        previous: Some("jitape-1.rec".into()),
        next: "jitape-2.rec".into(),
        since: Some(moved),
    };
    let r = resume_recording_as(
        &found[0],
        "lesson@muc",
        RATE,
        now,
        FlacSettings::default(),
        &how,
    )
    .expect("resume");
    // The files keep what was written; the gap says nobody heard the room from 1 s on.
    assert_eq!(r.gap, kept.len() as u64..10 * u64::from(RATE));
    assert_eq!(r.sidecar.gaps.len(), 1);
    assert_eq!(r.sidecar.gaps[0].start.sample, u64::from(RATE));
    assert_eq!(r.sidecar.gaps[0].start.utc, moved);
    assert_eq!(r.sidecar.gaps[0].end.utc, now);
}
