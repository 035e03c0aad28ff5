//! What the scenario tests (`tests/` of the `jitape` command) share: a real Prosody on
//! loopback ports (`prosody`), `jitape run` as its own process (`process`), test logging,
//! Debian's `flac -t` as the independent verifier, and finding a recording's files; with the
//! `browser` feature, a headless Chromium driven over WebDriver (`browser`).

#[cfg(feature = "browser")]
pub mod browser;
pub mod components;
pub mod process;
pub mod prosody;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Log to the test's captured output (RUST_LOG-style filter in JITAPE_LOG).
pub fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JITAPE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,webrtc=error,rtc=error,rtc_ice=error,rtc_dtls=error",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// `flac -t` (Debian's reference decoder) accepts the file.
pub fn flac_test(path: &Path) {
    let out = Command::new("flac")
        .args(["-t", "-w", "-s"])
        .arg(path)
        .output()
        .expect("the flac tool is installed (apt-get install flac)");
    assert!(
        out.status.success(),
        "flac -t rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `dir` (recursively) whose name ends with `suffix`.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_with_suffix(&p, suffix));
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    out.sort();
    out
}
