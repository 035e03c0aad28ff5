//! Unit tests of this module.

use super::testutil::{decode_all, flac_test, speech_like};
use super::*;

#[test]
fn a_recording_ends_as_flac_json_and_stem_with_nothing_partial_left() {
    let root = tempfile::tempdir().expect("tempdir");
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-21T19:35:09.250Z")
        .expect("time")
        .to_utc();
    let paths = recording_paths(root.path(), "Room@conference.example", start);
    paths.create_dir().expect("dir");
    let mut mix = FlacWriter::create(&paths.flac, 16_000).expect("mix");
    let mut stem = FlacWriter::create(&paths.stem("alice"), 16_000).expect("stem");
    let audio = speech_like(40_000, 16_000, 3);
    mix.write(&audio).expect("write");
    stem.write(&audio).expect("write");
    let mut sc = Sidecar::new(
        "Room@conference.example",
        &paths.room_dir,
        "x.flac",
        16_000,
        start,
    );
    sc.file = paths
        .flac
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    sidecar::write_atomic(&paths.sidecar_partial, &sc).expect("partial sidecar");

    let done = finalize_recording(
        &paths,
        mix,
        vec![("alice".into(), stem)],
        &mut sc,
        "room-destroyed",
    )
    .expect("finalize");
    assert_eq!(done.flac, paths.flac);
    assert_eq!(done.stems, vec![paths.stem("alice")]);
    assert!(!paths.sidecar_partial.exists() && !paths.flac_partial.exists());
    flac_test(&paths.flac).expect("flac -t mix");
    flac_test(&paths.stem("alice")).expect("flac -t stem");
    assert_eq!(decode_all(&paths.flac), audio);
    let back = sidecar::read(&paths.sidecar).expect("sidecar");
    assert_eq!(back.total_samples, 40_000);
    assert_eq!(back.status, sidecar::Status::Final);
    assert_eq!(
        back.participants[0].stem.as_deref(),
        Some("20261121T193509Z.stem.alice.flac")
    );
    let report = inspect(&paths.flac).expect("inspect");
    assert!(report.is_ok(), "{report}");
}
