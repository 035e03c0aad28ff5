//! Tests of the FLAC writer: round trips verified by `flac -t` and claxon, crash-state files,
//! and a real disk-full (ENOSPC) on a tiny tmpfs.

use std::time::Instant;

use super::*;
use crate::sink::repair::scan;
use crate::sink::testutil::{TinyFs, decode_all, flac_test, flac_test_lenient, speech_like};

fn opts(block_size: u16) -> FlacSettings {
    FlacSettings {
        block_size,
        ..FlacSettings::default()
    }
}

/// Writes `audio` in uneven chunks, finalizes, and checks the file with both decoders.
fn round_trip(audio: &[i16], sample_rate: u32, block_size: u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.flac");
    let mut w = FlacWriter::create_with(&path, sample_rate, opts(block_size)).expect("create");
    assert_eq!(w.path(), partial_path(&path));
    let mut rest = audio;
    let mut step = 1usize;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(step.min(rest.len()));
        w.write(now).expect("write");
        rest = later;
        step = step * 7 % 5003 + 1;
    }
    assert_eq!(w.samples_written(), audio.len() as u64);
    let done = w.finalize().expect("finalize");
    assert_eq!(done.path, path);
    assert_eq!(done.total_samples, audio.len() as u64);
    assert_eq!(done.samples_lost, 0);
    assert!(!partial_path(&path).exists());
    let verdict = match audio.len() {
        0 => flac_test_lenient(&path), // total 0 means "unknown" in STREAMINFO
        _ => flac_test(&path),
    };
    verdict.unwrap_or_else(|e| panic!("flac -t, {} samples: {e}", audio.len()));
    assert_eq!(decode_all(&path), audio);
    let info = claxon::FlacReader::open(&path).expect("open").streaminfo();
    assert_eq!(
        info.samples,
        (!audio.is_empty()).then_some(audio.len() as u64)
    );
    assert_eq!(info.sample_rate, sample_rate);
    assert_eq!(info.md5sum, done.md5);
    let expected_md5: [u8; 16] = Md5::digest(
        audio
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .into();
    assert_eq!(done.md5, expected_md5);
}

#[test]
fn round_trip_at_every_supported_rate_and_awkward_lengths() {
    for rate in [48_000, 16_000, 24_000] {
        for len in [1usize, 100, 4095, 4096, 4097, 3 * 4096 + 17] {
            round_trip(
                &speech_like(len, rate, len as u32),
                rate,
                DEFAULT_BLOCK_SIZE,
            );
        }
    }
    round_trip(&speech_like(50_000, 44_100, 9), 44_100, 1152);
    round_trip(&speech_like(5000, 12_345, 9), 12_345, 256);
}

#[test]
fn empty_recording_is_a_valid_file() {
    round_trip(&[], 48_000, DEFAULT_BLOCK_SIZE);
}

#[test]
fn full_scale_and_silent_input_round_trip() {
    let mut audio = vec![0i16; 10_000];
    audio.extend((0..10_000).map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN }));
    audio.extend((0..10_000).map(|i| (i * 7919 % 65_536 - 32_768) as i16));
    round_trip(&audio, 48_000, DEFAULT_BLOCK_SIZE);
}

#[test]
fn a_flushed_partial_holds_whole_frames_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.flac");
    let audio = speech_like(3 * 4096 + 1000, 48_000, 1);
    let mut w = FlacWriter::create(&path, 48_000).expect("create");
    w.write(&audio).expect("write");
    w.sync().expect("sync");
    assert_eq!(w.samples_written(), audio.len() as u64);
    let rep = scan(w.path()).expect("scan");
    assert_eq!(
        (rep.frames, rep.samples, rep.torn_bytes()),
        (3, 3 * 4096, 0)
    );
    assert_eq!(rep.header.total_samples, 0);
    assert_eq!(rep.data_end, w.file_bytes());
    let decoded = decode_all(w.path());
    assert_eq!(decoded, audio[..3 * 4096]);
    flac_test_lenient(w.path()).expect("a .partial is a valid stream of unknown length");
}

#[test]
fn create_refuses_an_existing_partial_and_bad_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.flac");
    let w = FlacWriter::create(&path, 48_000).expect("create");
    let again = FlacWriter::create(&path, 48_000).expect_err("second create must fail");
    assert_eq!(
        again.io_error().map(|e| e.kind()),
        Some(std::io::ErrorKind::AlreadyExists)
    );
    drop(w);
    let zero = FlacWriter::create(&dir.path().join("y.flac"), 0).expect_err("rate 0");
    assert_eq!(zero.fault(), super::super::Fault::Unsupported);
    let tiny = FlacWriter::create_with(&dir.path().join("z.flac"), 48_000, opts(8));
    assert!(tiny.is_err());
    let missing = FlacWriter::create(&dir.path().join("no/such/dir/x.flac"), 48_000);
    assert_eq!(
        missing.err().map(|e| e.fault()),
        Some(super::super::Fault::Io)
    );
}

#[test]
fn partial_path_helpers() {
    assert_eq!(
        partial_path(Path::new("/a/b.flac")),
        Path::new("/a/b.flac.partial")
    );
    assert_eq!(
        final_path_of(Path::new("/a/b.flac.partial")),
        Some("/a/b.flac".into())
    );
    assert_eq!(final_path_of(Path::new("/a/b.flac")), None);
    assert_eq!(final_path_of(Path::new(".partial")), None);
}

/// Fills `fs` with a file until it is full, then returns the file's path.
fn fill(fs: &TinyFs) -> PathBuf {
    let filler = fs.path.join("filler");
    let mut f = File::create(&filler).expect("filler");
    let chunk = vec![0x55u8; 4096];
    loop {
        use std::io::Write as _;
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
    filler
}

/// The timeline with the lost ranges replaced by silence.
fn with_silence(audio: &[i16], lost: &[Range<u64>]) -> Vec<i16> {
    let mut expected = audio.to_vec();
    for r in lost {
        for s in &mut expected[r.start as usize..r.end as usize] {
            *s = 0;
        }
    }
    expected
}

#[test]
fn disk_full_keeps_the_file_valid_and_recording_continues_when_space_returns() {
    let fs = TinyFs::mount(4 << 20);
    let path = fs.path.join("x.flac");
    let opts = FlacSettings {
        block_size: 1024,
        max_pending_bytes: 48 << 10,
        flush_bytes: 2048,
    };
    let mut w = FlacWriter::create_with(&path, 48_000, opts).expect("create");
    let audio = speech_like(48_000 * 60, 48_000, 5);
    let filler = fill(&fs);
    let mut failures = 0;
    let chunks: Vec<&[i16]> = audio.chunks(960).collect();
    let (during, after) = chunks.split_at(chunks.len() / 2);
    for (i, chunk) in during.iter().enumerate() {
        if let Err(e) = w.write(chunk) {
            assert!(e.is_disk_full(), "{e}");
            failures += 1;
        }
        if i % 50 == 0 {
            // At every moment the file on disk is header + whole frames of the right audio.
            let rep = scan(w.path()).expect("scan while full");
            assert_eq!(rep.torn_bytes(), 0, "torn frame left after a failed write");
            let on_disk = decode_all(w.path());
            assert_eq!(on_disk, audio[..on_disk.len()]);
        }
    }
    assert!(failures > 0 && w.is_degraded());
    assert!(
        w.samples_lost() > 0,
        "the memory bound should have been reached"
    );
    std::fs::remove_file(&filler).expect("free space");
    w.flush().expect("space is back: pending frames go out");
    assert!(!w.is_degraded());
    for chunk in after {
        w.write(chunk).expect("write after recovery");
    }
    let lost = w.lost_ranges().to_vec();
    let done = w.finalize().expect("finalize");
    assert_eq!(
        done.total_samples,
        audio.len() as u64,
        "timeline keeps its length"
    );
    assert_eq!(
        done.samples_lost,
        lost.iter().map(|r| r.end - r.start).sum::<u64>()
    );
    flac_test(&path).expect("flac -t");
    assert_eq!(decode_all(&path), with_silence(&audio, &lost));
    println!(
        "disk-full test: {failures} failed writes, {} samples ({:.1} s) replaced by silence in {} range(s)",
        done.samples_lost,
        done.samples_lost as f64 / 48_000.0,
        lost.len()
    );
}

#[test]
fn finalize_on_a_full_disk_keeps_what_got_in_and_a_matching_streaminfo() {
    let fs = TinyFs::mount(512 << 10);
    let path = fs.path.join("x.flac");
    let opts = FlacSettings {
        block_size: 4096,
        max_pending_bytes: 8 << 20,
        flush_bytes: 4096,
    };
    let mut w = FlacWriter::create_with(&path, 48_000, opts).expect("create");
    let audio = speech_like(48_000 * 20, 48_000, 6);
    let (before, during) = audio.split_at(48_000 * 5);
    w.write(before).expect("write while there is space");
    w.flush().expect("flush while there is space");
    let _filler = fill(&fs);
    let mut failed = false;
    for chunk in during.chunks(4800) {
        failed |= w.write(chunk).is_err();
    }
    assert!(failed);
    let written = w.samples_written();
    let done = w.finalize().expect("finalize on a full disk");
    assert!(done.total_samples < written);
    assert!(done.total_samples >= before.len() as u64 - 4096);
    assert_eq!(done.total_samples + done.samples_lost, written);
    assert_eq!(done.lost_ranges, vec![done.total_samples..written]);
    flac_test(&path).expect("flac -t (STREAMINFO total and MD5 match the kept frames)");
    assert_eq!(decode_all(&path), audio[..done.total_samples as usize]);
}

/// Throughput and size, printed (not asserted): `cargo test --release measure -- --nocapture`.
#[test]
fn measure_encode_throughput_and_silence_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seconds = 60usize;
    let inputs = [
        ("speech-like", speech_like(48_000 * seconds, 48_000, 11)),
        ("silence", vec![0i16; 48_000 * seconds]),
    ];
    for (name, audio) in inputs {
        let path = dir.path().join(format!("{name}.flac"));
        let started = Instant::now();
        let mut w = FlacWriter::create(&path, 48_000).expect("create");
        for chunk in audio.chunks(960) {
            w.write(chunk).expect("write");
        }
        let done = w.finalize().expect("finalize");
        let took = started.elapsed().as_secs_f64();
        assert_eq!(decode_all(&path).len(), audio.len());
        // The same file as a crash leaves it: time the scan and the resume of a minute.
        let partial = partial_path(&path);
        std::fs::rename(&path, &partial).expect("un-rename");
        let t = Instant::now();
        let frames = scan(&partial).expect("scan").frames;
        let scan_took = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (w, _) = FlacWriter::resume(&partial, 48_000).expect("resume");
        let resume_took = t.elapsed().as_secs_f64();
        drop(w);
        println!(
            "{name}: scan of {frames} frames {:.0}x real time, resume (scan + claxon decode) {:.0}x",
            seconds as f64 / scan_took,
            seconds as f64 / resume_took
        );
        println!(
            "{name}: {seconds} s at 48 kHz encoded in {took:.3} s = {:.0}x real time, {} bytes ({:.0} bytes/minute)",
            seconds as f64 / took,
            done.bytes,
            done.bytes as f64 / (seconds as f64 / 60.0)
        );
    }
}
