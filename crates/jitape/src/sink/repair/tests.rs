//! Tests of repair and resume: a `.partial` cut at every byte of its last frame, damaged
//! headers and frames, a crash in the middle of finalize, and files of the reference encoder.

use std::path::PathBuf;
use std::process::Command;

use super::*;
use crate::sink::Fault;
use crate::sink::flac::{DEFAULT_BLOCK_SIZE, partial_path};
use crate::sink::testutil::{decode_all, flac_test, flac_test_lenient, speech_like};

/// A `.partial` holding `audio` as whole frames of `block` samples (the rest stays unwritten,
/// as after a crash), and its bytes.
fn crashed_partial(dir: &Path, audio: &[i16], block: u16) -> (PathBuf, Vec<u8>) {
    let path = dir.join("src.flac");
    let opts = FlacSettings {
        block_size: block,
        ..FlacSettings::default()
    };
    let mut w = FlacWriter::create_with(&path, 48_000, opts).expect("create");
    w.write(audio).expect("write");
    w.sync().expect("sync");
    let partial = w.path().to_path_buf();
    drop(w); // a crash: no finalize
    let bytes = std::fs::read(&partial).expect("read");
    (partial, bytes)
}

fn write_cut(dir: &Path, bytes: &[u8], cut: usize) -> PathBuf {
    let p = dir.join("cut.flac.partial");
    std::fs::write(&p, &bytes[..cut]).expect("write cut");
    p
}

#[test]
fn finalize_partial_recovers_every_cut_inside_the_last_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let block = 256u16;
    let audio = speech_like(256 * 40 + 100, 48_000, 21);
    let (partial, bytes) = crashed_partial(dir.path(), &audio, block);
    let full = scan(&partial).expect("scan");
    assert_eq!((full.frames, full.torn_bytes()), (40, 0));
    let last_start = full.last_frame_start as usize;
    let mut cuts: Vec<usize> = (last_start..=bytes.len()).collect();
    let second_start = last_start - full.max_frame_bytes as usize; // inside earlier frames too
    cuts.extend([
        42,
        43,
        44,
        60,
        100,
        second_start,
        second_start + 7,
        bytes.len() / 2,
    ]);
    for cut in cuts {
        let p = write_cut(dir.path(), &bytes, cut);
        let rep = scan(&p).expect("scan");
        assert_eq!(
            rep.torn_bytes() > 0,
            cut != rep.data_end as usize,
            "cut {cut}"
        );
        let keep = rep.samples as usize;
        assert_eq!(keep % usize::from(block), 0);
        let done = finalize_partial(&p).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(done.total_samples as usize, keep, "cut {cut}");
        let final_path = dir.path().join("cut.flac");
        match keep {
            0 => flac_test_lenient(&final_path),
            _ => flac_test(&final_path),
        }
        .unwrap_or_else(|e| panic!("flac -t after cut {cut}: {e}"));
        assert_eq!(decode_all(&final_path), audio[..keep], "cut {cut}");
        std::fs::remove_file(&final_path).expect("cleanup");
    }
    // a cut exactly at the end of frame 39 keeps all 40 frames' worth minus the last
    let p = write_cut(dir.path(), &bytes, last_start);
    assert_eq!(scan(&p).expect("scan").frames, 39);
}

#[test]
fn resume_after_every_cut_in_the_last_frame_continues_the_same_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = speech_like(256 * 12, 48_000, 22);
    let more = speech_like(1000, 48_000, 23);
    let (partial, bytes) = crashed_partial(dir.path(), &audio, 256);
    let last_start = scan(&partial).expect("scan").last_frame_start as usize;
    for cut in (last_start..=bytes.len()).step_by(3) {
        let p = write_cut(dir.path(), &bytes, cut);
        let (mut w, report) = FlacWriter::resume(&p, 48_000).expect("resume");
        let kept = report.samples_kept as usize;
        assert_eq!(
            kept,
            if cut == bytes.len() {
                12 * 256
            } else {
                11 * 256
            },
            "cut {cut}"
        );
        assert_eq!(
            report.bytes_cut as usize,
            cut - scan(&p).expect("rescan").data_end as usize
        );
        assert_eq!(w.samples_written() as usize, kept);
        w.write(&more).expect("write");
        w.finalize().expect("finalize");
        let final_path = dir.path().join("cut.flac");
        flac_test(&final_path).unwrap_or_else(|e| panic!("flac -t after cut {cut}: {e}"));
        let mut expected = audio[..kept].to_vec();
        expected.extend_from_slice(&more);
        assert_eq!(decode_all(&final_path), expected, "cut {cut}");
        std::fs::remove_file(&final_path).expect("cleanup");
    }
}

#[test]
fn resume_after_a_finalize_that_crashed_before_its_rename() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.flac");
    let first = speech_like(3 * 4096 + 1234, 48_000, 24);
    let mut w = FlacWriter::create(&path, 48_000).expect("create");
    w.write(&first).expect("write");
    w.finalize().expect("finalize");
    // STREAMINFO patched, short last frame written, but the rename never happened:
    let partial = partial_path(&path);
    std::fs::rename(&path, &partial).expect("un-rename");

    let (mut w, report) = FlacWriter::resume(&partial, 48_000).expect("resume");
    assert!(report.header_was_final);
    assert_eq!(report.rebuffered_samples, 1234);
    assert_eq!(report.frames_kept, 3);
    assert_eq!(report.samples_kept, first.len() as u64);
    let second = speech_like(5000, 48_000, 25);
    w.write(&second).expect("write");
    let done = w.finalize().expect("finalize");
    assert_eq!(done.total_samples as usize, first.len() + second.len());
    flac_test(&path).expect("flac -t");
    let mut expected = first;
    expected.extend_from_slice(&second);
    assert_eq!(decode_all(&path), expected);
}

#[test]
fn finalize_partial_of_an_already_final_file_is_identical_in_audio() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.flac");
    let audio = speech_like(10_000, 16_000, 26);
    let mut w = FlacWriter::create(&path, 16_000).expect("create");
    w.write(&audio).expect("write");
    let first = w.finalize().expect("finalize");
    std::fs::rename(&path, partial_path(&path)).expect("un-rename");
    let again = finalize_partial(&partial_path(&path)).expect("finalize partial");
    assert_eq!(
        (again.total_samples, again.md5),
        (first.total_samples, first.md5)
    );
    flac_test(&path).expect("flac -t");
}

#[test]
fn damaged_headers_give_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = speech_like(5000, 48_000, 27);
    let (_, bytes) = crashed_partial(dir.path(), &audio, DEFAULT_BLOCK_SIZE);
    let cases: Vec<(&str, Vec<u8>, Fault)> = vec![
        ("empty", vec![], Fault::Corrupt),
        ("cut in STREAMINFO", bytes[..30].to_vec(), Fault::Corrupt),
        ("not FLAC", b"RIFF....WAVEfmt ".to_vec(), Fault::Corrupt),
        (
            "stereo",
            with_byte(&bytes, 20, bytes[20] | 0x02),
            Fault::Unsupported,
        ),
        (
            "24 bit",
            with_byte(&bytes, 21, (bytes[21] & 0x0F) | 0x70),
            Fault::Unsupported,
        ),
        (
            "first block not STREAMINFO",
            with_byte(&bytes, 4, 0x84),
            Fault::Corrupt,
        ),
    ];
    for (name, data, fault) in cases {
        let p = write_cut(dir.path(), &data, data.len());
        let err = FlacWriter::resume(&p, 48_000).expect_err(name);
        assert_eq!(err.fault(), fault, "{name}: {err}");
        assert_eq!(err.path(), p, "{name}");
        let err = finalize_partial(&p).expect_err(name);
        assert_eq!(err.fault(), fault, "{name}: {err}");
    }
    let p = write_cut(dir.path(), &bytes, bytes.len());
    let err = FlacWriter::resume(&p, 16_000).expect_err("rate mismatch");
    assert_eq!(err.fault(), Fault::Unsupported);
    let not_partial = dir.path().join("plain.flac");
    std::fs::write(&not_partial, &bytes).expect("write");
    assert_eq!(
        FlacWriter::resume(&not_partial, 48_000)
            .err()
            .map(|e| e.fault()),
        Some(Fault::Unsupported)
    );
}

fn with_byte(bytes: &[u8], at: usize, value: u8) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] = value;
    v
}

#[test]
fn a_flipped_bit_or_a_zero_filled_tail_ends_the_valid_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = speech_like(256 * 20, 48_000, 28);
    let (partial, bytes) = crashed_partial(dir.path(), &audio, 256);
    assert_eq!(scan(&partial).expect("scan").frames, 20);
    // Zeros after the frames (what a filesystem shows after a crash that lost the data pages).
    let mut zeros = bytes.clone();
    zeros.extend(std::iter::repeat_n(0u8, 3000));
    let p = write_cut(dir.path(), &zeros, zeros.len());
    let z = scan(&p).expect("scan");
    assert_eq!((z.frames, z.torn_bytes()), (20, 3000));
    // A flipped bit in the body of frame 10: frames 0..10 survive, CRC-16 catches it. The
    // encoder is deterministic, so frame 10 starts where a 10-frame file ends.
    let other = tempfile::tempdir().expect("tempdir");
    let at = crashed_partial(other.path(), &audio[..256 * 10], 256)
        .1
        .len();
    let mut flipped = bytes.clone();
    flipped[at + 20] ^= 0x10;
    let p = write_cut(dir.path(), &flipped, flipped.len());
    let f = scan(&p).expect("scan");
    assert_eq!(f.frames, 10, "{:?}", f.stop);
    let done = finalize_partial(&p).expect("finalize");
    assert_eq!(done.total_samples, 10 * 256);
    assert_eq!(decode_all(&dir.path().join("cut.flac")), audio[..10 * 256]);
}

#[test]
fn the_scanner_agrees_with_files_of_the_reference_encoder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = speech_like(48_000 * 3 + 77, 48_000, 29);
    let raw = dir.path().join("in.raw");
    let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).expect("raw");
    for level in ["-0", "-5", "-8"] {
        let out = dir.path().join(format!("ref{level}.flac"));
        let status = Command::new("flac")
            .args([
                "-s",
                "-f",
                level,
                "-b",
                "4096",
                "--force-raw-format",
                "--endian=little",
            ])
            .args([
                "--sign=signed",
                "--channels=1",
                "--bps=16",
                "--sample-rate=48000",
                "-o",
            ])
            .arg(&out)
            .arg(&raw)
            .status()
            .expect("run flac");
        assert!(status.success());
        let rep = scan(&out).expect("scan");
        assert_eq!(rep.samples, audio.len() as u64, "{level}: {:?}", rep.stop);
        assert_eq!(rep.torn_bytes(), 0, "{level}: {:?}", rep.stop);
        assert!(rep.short_last_frame());
        assert!(
            rep.header_len > 42,
            "the reference encoder adds metadata blocks"
        );
    }
}

/// Found by the `flac_repair` fuzz target: a `.partial` with a metadata block after
/// STREAMINFO (padding, or tags a tool added) was repaired into a file whose STREAMINFO
/// claimed to be the last block, so decoders looked for frames inside the padding.
#[test]
fn metadata_blocks_after_streaminfo_survive_repair_and_resume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = speech_like(256 * 6 + 50, 48_000, 5);
    let (_, bytes) = crashed_partial(dir.path(), &audio, 256);
    let mut padded = bytes[..42].to_vec();
    padded[4] = 0x00; // STREAMINFO is no longer the last metadata block
    padded.extend_from_slice(&[0x81, 0, 0, 16]); // last block: PADDING, 16 bytes
    padded.extend_from_slice(&[0; 16]);
    padded.extend_from_slice(&bytes[42..]);
    let kept = 256 * 6;

    let p = write_cut(dir.path(), &padded, padded.len());
    let done = finalize_partial(&p).expect("finalize");
    assert_eq!(done.total_samples, kept as u64);
    flac_test(&done.path).expect("flac -t after finalize");
    assert_eq!(decode_all(&done.path), audio[..kept]);

    let p = write_cut(dir.path(), &padded, padded.len() - 3);
    let (mut w, report) = FlacWriter::resume(&p, 48_000).expect("resume");
    assert_eq!(
        report.samples_kept,
        kept as u64 - 256,
        "the torn frame is cut"
    );
    let more = speech_like(300, 48_000, 6);
    w.write(&more).expect("write");
    let done = w.finalize().expect("finalize");
    flac_test(&done.path).expect("flac -t after resume");
    let mut expected = audio[..kept - 256].to_vec();
    expected.extend_from_slice(&more);
    assert_eq!(decode_all(&done.path), expected);
}
