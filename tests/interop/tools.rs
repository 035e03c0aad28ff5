//! The other media stacks of `tests/interop.rs`, found or built for a test: the aiortc bridge
//! (a script run by the virtualenv that `scripts/ensure-interop` installs) and the Bouncy
//! Castle bridge (Java sources compiled with javac into a temporary directory against Debian's
//! Bouncy Castle jars). A missing tool is a test failure that says how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

use jitape_sim::bridge::SentLog;
use jitape_sim::external::ExternalBridgeSpec;

const INSTALL: &str = "run scripts/ensure-interop (scripts/test does) to install it";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The aiortc bridge, run by the interop virtualenv's python.
pub fn aiortc_bridge() -> ExternalBridgeSpec {
    let venv = std::env::var_os("JITAPE_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("target/interop-venv"));
    let python = venv.join("bin/python");
    let probe = Command::new(&python)
        .args(["-c", "import aiortc, aioice; print(aiortc.__version__)"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "aiortc is not importable by {}: {}; {INSTALL}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("no interop python at {} ({e}); {INSTALL}", python.display()),
    }
    ExternalBridgeSpec {
        program: python,
        args: vec![
            manifest()
                .join("tests/interop/aiortc_bridge.py")
                .display()
                .to_string(),
        ],
        env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
    }
}

/// The Bouncy Castle bridge, compiled into `dir`, run with `bridge_args` (SRTP profiles in
/// preference order, `--unreachable-candidate`).
pub fn bc_bridge(dir: &Path, bridge_args: &[&str]) -> ExternalBridgeSpec {
    let jars: Vec<PathBuf> = ["bcprov", "bcutil", "bcpkix", "bctls"]
        .iter()
        .map(|j| PathBuf::from(format!("/usr/share/java/{j}.jar")))
        .collect();
    for jar in &jars {
        assert!(
            jar.exists(),
            "{} is missing (Debian libbcprov-java, libbcutil-java, libbcpkix-java, \
             libbctls-java); {INSTALL}",
            jar.display()
        );
    }
    let classpath = |first: &Path| {
        std::iter::once(first.to_path_buf())
            .chain(jars.iter().cloned())
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let sources: Vec<PathBuf> = std::fs::read_dir(manifest().join("tests/interop/java"))
        .expect("tests/interop/java")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "java"))
        .collect();
    let out = Command::new("javac")
        .arg("-d")
        .arg(dir)
        .arg("-cp")
        .arg(classpath(dir))
        .args(&sources)
        .output()
        .unwrap_or_else(|e| panic!("javac cannot run ({e}): default-jdk-headless; {INSTALL}"));
    assert!(
        out.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args = vec!["-cp".to_string(), classpath(dir), "BcBridge".to_string()];
    args.extend(bridge_args.iter().map(|p| p.to_string()));
    ExternalBridgeSpec {
        program: PathBuf::from("java"),
        args,
        env: vec![],
    }
}

/// The value an external bridge reported for `key` (the last one).
pub fn fact<'a>(log: &'a SentLog, key: &str) -> Option<&'a str> {
    log.facts
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A fact parsed as a number (0 when absent or not a number).
pub fn count(log: &SentLog, key: &str) -> u64 {
    fact(log, key).and_then(|v| v.parse().ok()).unwrap_or(0)
}
