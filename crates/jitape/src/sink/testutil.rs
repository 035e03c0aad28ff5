//! Test helpers of the file stage: synthetic audio, independent verification (`flac -t`,
//! claxon), a small tmpfs for real disk-full tests, and a small ext4 that can be frozen
//! (`fsfreeze`) for real stalled-disk tests.
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

/// A 64 MiB ext4 on a loop device, mounted on a fresh directory (needs root and e2fsprogs).
/// [`Self::freeze`] makes every write, fsync and create on it block, as a stalled disk does
/// (`fsfreeze`, util-linux); a watchdog thread thaws it after [`FREEZE_AT_MOST`] whatever the
/// test does (a thread blocked on a frozen filesystem cannot even be killed, so a test whose
/// code blocks must fail, not hang); drop thaws and unmounts it.
pub struct FreezableFs {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    /// Bumped at every freeze and thaw: a watchdog thaws only the freeze it was made for.
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The longest a [`FreezableFs`] stays frozen.
pub const FREEZE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(20);

impl FreezableFs {
    pub fn mount() -> FreezableFs {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("fs.img");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(64 << 20))
            .expect("image");
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img)
            .status()
            .expect("mkfs.ext4 (e2fsprogs)");
        assert!(made.success(), "mkfs.ext4");
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).expect("mkdir");
        let status = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a loop ext4 failed (needs root)");
        FreezableFs {
            _dir: dir,
            path,
            generation: Default::default(),
        }
    }

    /// From now on every write to the filesystem blocks (the writer's thread with it).
    pub fn freeze(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        let ok = Command::new("fsfreeze")
            .arg("-f")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "fsfreeze -f");
        let mine = self.generation.fetch_add(1, SeqCst) + 1;
        let (generation, path) = (std::sync::Arc::clone(&self.generation), self.path.clone());
        std::thread::spawn(move || {
            std::thread::sleep(FREEZE_AT_MOST);
            if generation.load(SeqCst) == mine {
                let _ = Command::new("fsfreeze")
                    .arg("-u")
                    .arg(&path)
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        });
    }

    pub fn is_frozen(&self) -> bool {
        self.generation.load(std::sync::atomic::Ordering::SeqCst) % 2 == 1
    }

    /// Writes go through again (the blocked ones complete).
    pub fn thaw(&mut self) {
        if self.is_frozen() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = Command::new("fsfreeze").arg("-u").arg(&self.path).status();
        }
    }
}

impl Drop for FreezableFs {
    fn drop(&mut self) {
        self.thaw();
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
