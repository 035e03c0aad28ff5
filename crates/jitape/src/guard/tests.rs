//! Unit tests of `guard`.

use super::*;

#[test]
fn readiness_names_every_reason() {
    let ok = Observed {
        free_bytes: 5_000_000_000,
        writable: true,
        xmpp_connected: true,
    };
    assert!(readiness(ok, 1 << 30).ready);
    let bad = Observed {
        free_bytes: 10_000_000,
        writable: false,
        xmpp_connected: false,
    };
    let r = readiness(bad, 1 << 30);
    assert!(!r.ready && !r.disk_above_floor);
    assert_eq!(r.reasons.len(), 3, "{:?}", r.reasons);
}

#[test]
fn retention_expires_only_old_final_files() {
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let f = |p: &str, age: Duration| FileAge {
        path: PathBuf::from(p),
        modified: now - age,
    };
    let files = vec![
        f("r/a.flac", day * 10),
        f("r/a.json", day * 10),
        f("r/a.stem.x.flac", day * 10),
        f("r/b.flac.partial", day * 10),
        f("r/c.flac", day),
        f("r/notes.txt", day * 10),
    ];
    let gone = expired(&files, now, day * 7);
    assert_eq!(
        gone,
        vec![
            PathBuf::from("r/a.flac"),
            PathBuf::from("r/a.json"),
            PathBuf::from("r/a.stem.x.flac")
        ]
    );
}

#[test]
fn free_space_and_writability_are_measured() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(free_bytes(tmp.path()).unwrap() > 0);
    assert!(writable(tmp.path()));
    assert!(!writable(&tmp.path().join("missing")));
}
