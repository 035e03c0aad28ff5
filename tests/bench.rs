//! `jitape bench` end to end, as a correctness check only (the figures are not judged here:
//! performance is measured by running the benchmark by hand, see README, Performance). Two
//! short conferences against a separate `jitape run` process: the command succeeds, writes a
//! well-formed JSON report, and every recording verified.

use std::process::Command;

#[test]
fn a_short_bench_run_verifies_every_recording_and_writes_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_jitape"))
        .args([
            "bench",
            "--conferences",
            "2",
            "--speakers",
            "2",
            "--duration",
            "15s",
            "--json",
        ])
        .arg(&json)
        .arg("--out")
        .arg(dir.path().join("work"))
        .output()
        .expect("jitape binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "jitape bench failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("files verified"), "{stdout}");

    let text = std::fs::read_to_string(&json).expect("the JSON report");
    let r: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(r["schema"], "jitape.bench/1");
    assert_eq!(r["options"]["conferences"], 2);
    assert_eq!(r["verification"]["files"], 2);
    assert_eq!(r["verification"]["verified"], 2);
    assert_eq!(r["verification"]["all_ok"], true);
    let conferences = r["conferences"].as_array().expect("conferences");
    assert_eq!(conferences.len(), 2);
    for c in conferences {
        assert_eq!(c["verdict"]["flac_test"], true, "{c}");
        assert_eq!(c["verdict"]["content"], true, "{c}");
        assert!(
            c["verdict"]["file_seconds"].as_f64().unwrap_or(0.0) > 14.0,
            "{c}"
        );
        assert!(c["packets_sent"].as_u64().unwrap_or(0) > 0, "{c}");
    }
    let sent = r["packets"]["sent"].as_u64().unwrap_or(0);
    let received = r["packets"]["received"].as_u64().unwrap_or(0);
    assert!(received > 0 && received <= sent, "{}", r["packets"]);
    assert_eq!(r["jitape"]["exit"], "ok");
    assert!(r["jitape"]["rss_idle_mib"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(r["jitape"]["threads_max"].as_u64().unwrap_or(0) > 0);
    assert!(!r["series"].as_array().expect("series").is_empty());
    // The recordings were kept where asked.
    assert!(dir.path().join("work/jitape.log").exists());
}
