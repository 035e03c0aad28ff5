//! Tests of the frame scanner on hand-made headers and garbage; files written by the writer
//! and by the reference encoder are covered in `repair_tests.rs`.

use super::*;

#[test]
fn crc_values_match_the_flac_definitions() {
    // CRC-8/SMBUS and CRC-16/UMTS (a.k.a. BUYPASS) check values over "123456789".
    assert_eq!(crc8(b"123456789"), 0xF4);
    assert_eq!(crc16(b"123456789"), 0xFEE8);
}

#[test]
fn header_errors_are_reported_not_panicked() {
    let good = StreamHeader::partial(48_000, 4096).to_bytes();
    for cut in 0..good.len() {
        let r = scan_reader(&good[..cut]);
        assert!(
            matches!(r, Err(ScanFail::Corrupt(_))),
            "cut at {cut}: {r:?}"
        );
    }
    let mut bad = good;
    bad[0] = b'X';
    assert!(matches!(scan_reader(&bad[..]), Err(ScanFail::Corrupt(_))));
    let mut stereo = good;
    stereo[20] |= 0x02; // channels - 1 = 1
    assert!(matches!(
        scan_reader(&stereo[..]),
        Err(ScanFail::Unsupported(_))
    ));
    let mut zero_rate = good;
    zero_rate[18..21].fill(0);
    zero_rate[20] = 0x0F & good[20];
    assert!(matches!(
        scan_reader(&zero_rate[..]),
        Err(ScanFail::Corrupt(_))
    ));
}

#[test]
fn header_only_file_has_no_frames() {
    let good = StreamHeader::partial(16_000, 4096).to_bytes();
    let rep = scan_reader(&good[..]).expect("scan");
    assert_eq!(rep.header.sample_rate, 16_000);
    assert_eq!((rep.frames, rep.samples, rep.torn_bytes()), (0, 0, 0));
    assert_eq!(rep.data_end, 42);
}

#[test]
fn garbage_after_header_is_torn_tail() {
    let mut data = StreamHeader::partial(48_000, 4096).to_bytes().to_vec();
    let mut x = 0x1234_5678u32;
    for _ in 0..5000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push(x as u8);
    }
    data[42] = 0xFF;
    data[43] = 0xF8;
    let rep = scan_reader(&data[..]).expect("scan");
    assert_eq!(rep.frames, 0);
    assert_eq!(rep.torn_bytes(), 5000);
    assert!(rep.stop.is_some());
}

#[test]
fn mutated_files_never_panic_and_accepted_frames_always_decode() {
    use crate::sink::flac::{FlacSettings, FlacWriter};
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FlacSettings {
        block_size: 512,
        ..FlacSettings::default()
    };
    let mut w = FlacWriter::create_with(&dir.path().join("x.flac"), 48_000, opts).expect("create");
    w.write(&crate::sink::testutil::speech_like(512 * 12, 48_000, 51))
        .expect("write");
    w.sync().expect("sync");
    let original = std::fs::read(w.path()).expect("read");
    let path = dir.path().join("m.flac.partial");
    let mut x = 0xDEAD_BEEFu32;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize
    };
    let mut accepted_frames = 0;
    for round in 0..1000 {
        let mut data = original.clone();
        for _ in 0..1 + next() % 4 {
            let at = next() % data.len();
            match next() % 3 {
                0 => data[at] ^= 1 << (next() % 8),
                1 => data[at] = next() as u8,
                _ => data.truncate(at.max(1)),
            }
        }
        let Ok(rep) = scan_reader(&data[..]) else {
            continue;
        };
        assert!(rep.data_end <= rep.file_len, "round {round}");
        assert_eq!(rep.file_len, data.len() as u64, "round {round}");
        std::fs::write(&path, &data).expect("write");
        let decoded = crate::sink::decode::decode_file(&path, Some(rep.frames))
            .unwrap_or_else(|e| panic!("round {round}: scanner accepted what claxon rejects: {e}"));
        assert_eq!(decoded.samples, rep.samples, "round {round}");
        accepted_frames += rep.frames;
    }
    assert!(accepted_frames > 0);
}
