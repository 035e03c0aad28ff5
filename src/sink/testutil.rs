//! Test helpers of the file stage: synthetic audio, independent verification (`flac -t`,
//! claxon), and a small tmpfs for real disk-full tests.
//!
//! In: sizes, seeds, paths. Out: samples, verdicts, a mounted filesystem that unmounts on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Deterministic speech-like audio: a voiced harmonic tone with a wandering pitch, syllable
/// envelope at ~4 Hz, pauses, and a little noise.
pub fn speech_like(n: usize, sample_rate: u32, seed: u32) -> Vec<i16> {
    let mut rng = seed.wrapping_mul(2_654_435_761).max(1);
    let mut noise = move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        (rng as f64 / u32::MAX as f64) * 2.0 - 1.0
    };
    let rate = f64::from(sample_rate);
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate;
            let syllable = (t * 4.0 * std::f64::consts::TAU).sin().max(0.0);
            let phrase = if (t * 0.5).fract() < 0.8 { 1.0 } else { 0.0 };
            let pitch = 140.0 + 30.0 * (t * 0.7).sin();
            phase += pitch / rate;
            let voiced: f64 = (1..=8)
                .map(|h| (phase * f64::from(h) * std::f64::consts::TAU).sin() / f64::from(h))
                .sum();
            let v = 6000.0 * syllable * phrase * voiced + 150.0 * noise();
            v.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// `flac -t -s -w FILE`: the reference decoder's verdict, warnings (unset MD5 or length) fail.
pub fn flac_test(path: &Path) -> Result<(), String> {
    run_flac_test(path, true)
}

/// `flac -t -s FILE`: for streams of unknown length (a `.partial`, an empty recording).
pub fn flac_test_lenient(path: &Path) -> Result<(), String> {
    run_flac_test(path, false)
}

fn run_flac_test(path: &Path, strict: bool) -> Result<(), String> {
    let out = Command::new("flac")
        .args(["-t", "-s"])
        .args(strict.then_some("-w"))
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run flac: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Every sample of a mono 16-bit FLAC, decoded with claxon.
pub fn decode_all(path: &Path) -> Vec<i16> {
    let mut reader = claxon::FlacReader::open(path).expect("claxon open");
    reader
        .samples()
        .map(|s| s.expect("claxon sample") as i16)
        .collect()
}

/// A tmpfs of `bytes` mounted on a fresh directory, unmounted on drop (needs root).
pub struct TinyFs {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TinyFs {
    pub fn mount(bytes: usize) -> TinyFs {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).expect("mkdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed (the test needs root)"
        );
        TinyFs { _dir: dir, path }
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}
