//! The `flac_repair` and `sidecar` targets: hostile files where a crash left jitape's.
//!
//! In: fuzz bytes as a `.flac.partial` or as a sidecar (`.json.partial`). Out: nothing;
//! asserts that
//! - the scanner's report is self-consistent, and whatever `FlacWriter::resume` or
//!   `finalize_partial` accept ends as a FLAC that claxon decodes completely, with the sample
//!   count and MD5 its STREAMINFO states;
//! - a sidecar `read` accepts is written and read back unchanged after one normalising pass,
//!   its helpers never panic, and resuming a recording with it as the `.json.partial` (and a
//!   valid FLAC) works or fails cleanly, in bounded time.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use jitape::sink::flac::{FlacSettings, FlacWriter};
use jitape::sink::paths::{RecordingPaths, Unfinished};
use jitape::sink::scan::{ScanReport, scan_reader};
use jitape::sink::sidecar::{self, GapKind, Sidecar};
use jitape::sink::{finalize_partial, resume_recording};
use md5::{Digest, Md5};

/// One scratch directory per fuzzing process (in memory when `/dev/shm` exists).
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let made = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        made.unwrap_or_else(|e| panic!("scratch directory: {e}"))
    })
    .path()
}

fn fresh(name: &str, data: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    let _ = fs::remove_file(&p);
    let _ = fs::remove_file(p.with_extension(""));
    fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

fn check_report(rep: &ScanReport, len: usize) {
    assert_eq!(rep.file_len, len as u64, "file length");
    assert!(rep.header_len <= rep.data_end && rep.data_end <= rep.file_len);
    assert!(rep.last_frame_start <= rep.data_end);
    assert!(rep.min_frame_bytes <= rep.max_frame_bytes);
    let block = u64::from(rep.header.block_size);
    match rep.frames {
        0 => assert_eq!(rep.samples, 0),
        n => assert_eq!(
            rep.samples,
            (n - 1) * block + u64::from(rep.last_frame_samples),
            "only the last frame may be short"
        ),
    }
}

/// Decodes `path` with claxon: every frame, the stated count and MD5.
fn check_decodes(path: &Path, total: u64, md5: [u8; 16]) {
    let mut reader = claxon::FlacReader::open(path)
        .unwrap_or_else(|e| panic!("claxon refuses a finished file: {e}"));
    let info = reader.streaminfo();
    // FLAC reads a total of 0 as "unknown" (an empty recording).
    assert_eq!(
        info.samples,
        (total > 0).then_some(total),
        "STREAMINFO total"
    );
    assert_eq!(info.md5sum, md5, "STREAMINFO MD5");
    let mut digest = Md5::new();
    let mut count = 0u64;
    for s in reader.samples() {
        let s = s.unwrap_or_else(|e| panic!("claxon cannot decode a finished file: {e}"));
        digest.update((s as i16).to_le_bytes());
        count += 1;
    }
    assert_eq!(count, total, "decoded samples");
    if total > 0 {
        assert_eq!(<[u8; 16]>::from(digest.finalize()), md5, "decoded MD5");
    }
}

/// The `flac_repair` target.
pub fn flac_repair(data: &[u8]) {
    let scanned = scan_reader(data).ok();
    if let Some(rep) = &scanned {
        check_report(rep, data.len());
    }
    let rate = scanned.as_ref().map_or(48_000, |r| r.header.sample_rate);
    let partial = fresh("rec.flac.partial", data);
    if let Ok((mut w, report)) = FlacWriter::resume(&partial, rate) {
        let rep = scanned
            .as_ref()
            .expect("resume accepted what the scanner refused");
        assert!(report.frames_kept <= rep.frames && report.samples_kept <= rep.samples);
        assert_eq!(w.samples_written(), report.samples_kept);
        let tone: Vec<i16> = (0..300).map(|i| ((i * 37) % 2000) as i16 - 1000).collect();
        w.write(&tone).expect("write after resume");
        let done = w.finalize().expect("finalize after resume");
        assert_eq!(done.total_samples, report.samples_kept + 300);
        check_decodes(&done.path, done.total_samples, done.md5);
    }
    let partial = fresh("rec.flac.partial", data);
    if let Ok(done) = finalize_partial(&partial) {
        let rep = scanned
            .as_ref()
            .expect("finalize accepted what the scanner refused");
        assert!(done.total_samples <= rep.samples);
        check_decodes(&done.path, done.total_samples, done.md5);
    }
}

/// 20261121T193509Z + 3 s: the instant the fuzzed recordings are resumed at.
fn resume_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T19:35:12Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// Sample rate of the resumed recording: low, so that padding the longest downtime
/// `resume_recording` accepts (a day) stays well inside the fuzzer's per-input time limit.
const RESUME_RATE: u32 = 1_000;

/// A small valid `.flac.partial` at [`RESUME_RATE`] (made once, copied per input).
fn valid_partial() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = scratch().join("model.flac");
        let mut w = FlacWriter::create(&path, RESUME_RATE).expect("model writer");
        w.write(&[100i16; 5000]).expect("model write");
        w.flush().expect("model flush");
        let bytes = fs::read(w.path()).expect("model read");
        drop(w);
        bytes
    })
}

/// The `sidecar` target.
pub fn sidecar(data: &[u8]) {
    let _ = serde_json::from_slice::<Sidecar>(data);
    let path = fresh("side.json", data);
    let Ok(sc) = sidecar::read(&path) else {
        return;
    };
    let once = scratch().join("once.json");
    sidecar::write_atomic(&once, &sc).expect("write a sidecar that was read");
    let normal = sidecar::read(&once).expect("read back");
    sidecar::write_atomic(&once, &normal).expect("write again");
    assert_eq!(
        sidecar::read(&once).expect("read again"),
        normal,
        "not stable"
    );
    let mut sc = normal;
    let _ = (
        sc.duration(),
        sc.at_sample(sc.total_samples),
        sc.at_sample(u64::MAX),
    );
    sc.add_gap(0, u64::MAX, GapKind::Other, None);
    sc.participant_mut("fuzz").nicks.push("n".into());
    sc.finish(sc.total_samples, "fuzz");
    resume_with(data);
}

/// Resumes a recording whose `.json.partial` is the input.
fn resume_with(data: &[u8]) {
    let root = scratch().join("root");
    let paths = RecordingPaths::new(&root, "room", "20261121T193509Z");
    let _ = fs::remove_dir_all(&paths.dir);
    paths.create_dir().expect("room directory");
    fs::write(&paths.flac_partial, valid_partial()).expect("partial");
    fs::write(&paths.sidecar_partial, data).expect("sidecar partial");
    let u = Unfinished {
        paths: paths.clone(),
        has_flac: true,
        has_sidecar: true,
        stems: Vec::new(),
    };
    let opts = FlacSettings::default();
    if let Ok(r) = resume_recording(&u, "room@muc.example", RESUME_RATE, resume_now(), opts) {
        assert!(r.gap.start <= r.gap.end);
        let done = r.mix.finalize().expect("finalize a resumed recording");
        check_decodes(&done.path, done.total_samples, done.md5);
    }
}
