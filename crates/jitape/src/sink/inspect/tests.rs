//! Tests of `inspect`: a good recording, a partial one, and each kind of problem it must name.

use chrono::DateTime;

use super::*;
use crate::sink::flac::{FlacWriter, partial_path};
use crate::sink::sidecar::{Segment, write_atomic};
use crate::sink::testutil::speech_like;

/// A finished 2-second recording at 16 kHz with its sidecar; returns (flac, sidecar).
fn recording(dir: &Path, finalize: bool) -> (PathBuf, Sidecar) {
    let flac = dir.join("20261121T193509Z.flac");
    let start = DateTime::parse_from_rfc3339("2026-11-21T19:35:09Z")
        .expect("time")
        .to_utc();
    let mut sc = Sidecar::new(
        "lesson@muc",
        "lesson@muc",
        "20261121T193509Z.flac",
        16_000,
        start,
    );
    let seg = Segment {
        start: sc.at_sample(8_000),
        end: sc.at_sample(24_000),
    };
    let p = sc.participant_mut("p1");
    p.display_name = Some("Alice".into());
    p.speaking.push(seg);
    let mut w = FlacWriter::create(&flac, 16_000).expect("create");
    let mut audio = vec![0i16; 8_000];
    audio.extend(speech_like(16_000, 16_000, 31));
    audio.extend(vec![0i16; 8_000]);
    w.write(&audio).expect("write");
    if finalize {
        w.finalize().expect("finalize");
        sc.finish(32_000, "room-destroyed");
        write_atomic(&sidecar_path_for(&flac), &sc).expect("sidecar");
        (flac, sc)
    } else {
        w.sync().expect("sync");
        drop(w);
        sc.total_samples = 28_672;
        write_atomic(&sidecar_path_for(&partial_path(&flac)), &sc).expect("sidecar");
        (partial_path(&flac), sc)
    }
}

#[test]
fn a_good_recording_passes_and_is_summarized() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (flac, _) = recording(dir.path(), true);
    let rep = inspect(&flac).expect("inspect");
    assert!(rep.is_ok(), "{rep}");
    assert_eq!(
        (rep.decoded_samples, rep.streaminfo_samples),
        (32_000, 32_000)
    );
    assert_eq!(rep.md5, Md5Check::Match);
    assert_eq!(rep.duration(), Duration::from_secs(2));
    assert!(rep.nonsilent_samples > 10_000 && rep.nonsilent_samples <= 16_000);
    let text = rep.to_string();
    for needle in [
        "16000 Hz mono 16-bit, 0:00:02.000",
        "room:    lesson@muc",
        "name:    lesson\n",
        "Alice: present 0:00:00.000, spoke 0:00:01.000 in 1 segment(s)",
        "verdict: OK",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
}

#[test]
fn a_partial_recording_is_readable_with_its_partial_sidecar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (partial, _) = recording(dir.path(), false);
    let rep = inspect(&partial).expect("inspect");
    assert!(rep.is_ok(), "{rep}");
    assert!(rep.partial);
    assert_eq!(rep.md5, Md5Check::NotSet);
    assert_eq!(rep.decoded_samples, 7 * 4096); // whole frames; the rest was still buffered
    assert!(
        rep.sidecar_path
            .to_string_lossy()
            .ends_with(".json.partial")
    );
}

#[test]
fn problems_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (flac, mut sc) = recording(dir.path(), true);
    sc.total_samples = 31_000;
    sc.sample_rate = 48_000;
    write_atomic(&sidecar_path_for(&flac), &sc).expect("sidecar");
    let mut bytes = std::fs::read(&flac).expect("read");
    bytes[30] ^= 0xFF; // MD5 in STREAMINFO
    bytes.extend_from_slice(&[0xFF, 0xF8, 0x00]); // a torn frame after the end
    std::fs::write(&flac, &bytes).expect("write");
    let rep = inspect(&flac).expect("inspect");
    let all = rep.problems.join("\n");
    for needle in [
        "3 bytes after the last valid frame",
        "MD5",
        "sidecar sample rate 48000",
        "sidecar says 31000 samples, the file holds 32000",
    ] {
        assert!(all.contains(needle), "{needle:?} missing in:\n{all}");
    }
    assert!(rep.to_string().contains("verdict: 4 problem(s)"));

    std::fs::remove_file(sidecar_path_for(&flac)).expect("rm");
    let rep = inspect(&flac).expect("inspect");
    assert!(
        rep.problems.iter().any(|p| p.starts_with("sidecar: read")),
        "{rep}"
    );
}

#[test]
fn a_file_that_is_not_flac_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("x.flac");
    std::fs::write(&p, b"hello").expect("write");
    assert!(inspect(&p).is_err());
    assert!(inspect(&dir.path().join("missing.flac")).is_err());
}

#[test]
fn sidecar_paths() {
    assert_eq!(
        sidecar_path_for(Path::new("/r/a.flac")),
        Path::new("/r/a.json")
    );
    assert_eq!(
        sidecar_path_for(Path::new("/r/a.flac.partial")),
        Path::new("/r/a.json.partial")
    );
}

#[test]
fn a_tenant_room_is_named_as_in_its_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (flac, mut sc) = recording(dir.path(), true);
    sc = Sidecar {
        room: "[acme]caf%c3%a9@muc".into(),
        ..sc
    };
    let fresh = Sidecar::new(&sc.room, "d", &sc.file, 16_000, sc.start.utc);
    (sc.tenant, sc.room_name) = (fresh.tenant, fresh.room_name);
    write_atomic(&sidecar_path_for(&flac), &sc).expect("sidecar");
    let text = inspect(&flac).expect("inspect").to_string();
    for needle in [
        "room:    [acme]caf%c3%a9@muc",
        "name:    café (tenant acme)",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
}
