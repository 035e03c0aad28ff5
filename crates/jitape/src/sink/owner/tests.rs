//! Unit tests of `owner`: who may take an unfinished recording, and when.

use super::*;
use crate::sink::paths::recording_paths;

fn t(s: f64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
        .expect("time")
        .to_utc()
        + chrono::Duration::milliseconds((s * 1000.0) as i64)
}

const LEASE: Lease = Lease(Duration::from_secs(10));

fn record(instance: &str, renewed: f64) -> OwnerRecord {
    OwnerRecord {
        instance: instance.into(),
        renewed: t(renewed),
    }
}

#[test]
fn an_owner_stops_writing_a_margin_before_anyone_else_may_start() {
    assert_eq!(LEASE.margin(), Duration::from_millis(2000));
    assert_eq!(LEASE.write_by(t(0.0)), t(8.0));
    assert_eq!(LEASE.free_at(t(0.0)), t(10.0));
    assert!(LEASE.renew_every() < LEASE.margin());
    // A short lease keeps a quarter of itself as the margin.
    let short = Lease(Duration::from_secs(2));
    assert_eq!(short.write_by(t(0.0)), t(1.5));
    assert!(short.renew_every() <= Duration::from_millis(250));
}

#[test]
fn another_instances_recording_is_taken_only_once_its_lease_is_over() {
    let other = record("jitape-1", 0.0);
    assert_eq!(
        judge(Some(&other), None, "jitape-2", LEASE, t(9.9)),
        Claim::WaitUntil(t(10.0))
    );
    assert_eq!(
        judge(Some(&other), None, "jitape-2", LEASE, t(10.0)),
        Claim::Now {
            previous: Some("jitape-1".into())
        }
    );
    // The file's last change does not shorten a record's lease.
    assert_eq!(
        judge(Some(&other), Some(t(-60.0)), "jitape-2", LEASE, t(5.0)),
        Claim::WaitUntil(t(10.0))
    );
}

#[test]
fn our_own_record_is_ours_at_once_and_no_record_waits_for_the_files_last_change() {
    let mine = record("jitape-2", 0.0);
    assert_eq!(
        judge(Some(&mine), None, "jitape-2", LEASE, t(0.5)),
        Claim::Now { previous: None }
    );
    assert_eq!(
        judge(None, Some(t(3.0)), "jitape-2", LEASE, t(4.0)),
        Claim::WaitUntil(t(13.0))
    );
    assert_eq!(
        judge(None, Some(t(3.0)), "jitape-2", LEASE, t(13.0)),
        Claim::Now { previous: None }
    );
    assert_eq!(
        judge(None, None, "jitape-2", LEASE, t(0.0)),
        Claim::Now { previous: None }
    );
}

#[test]
fn a_record_is_written_read_back_and_an_unreadable_one_is_an_error() {
    let root = tempfile::tempdir().expect("tempdir");
    let paths = recording_paths(root.path(), "lesson@muc", t(0.0));
    paths.create_dir().expect("dir");
    assert_eq!(read(&paths).expect("no record"), None);
    let own = Ownership {
        instance: "jitape-1".into(),
        lease: LEASE,
    };
    let before = Utc::now();
    let renewed = own.claim(&paths).expect("claim");
    assert!(renewed >= before);
    assert_eq!(
        read(&paths).expect("read"),
        Some(OwnerRecord {
            instance: "jitape-1".into(),
            renewed
        })
    );
    std::fs::write(path(&paths), b"{\"instance\":").expect("torn");
    let err = read(&paths).expect_err("a torn record");
    assert!(err.to_string().contains("owner record"), "{err}");
    remove(&paths);
    assert!(!path(&paths).exists());
}

#[test]
fn a_torn_record_is_judged_by_the_age_of_the_files() {
    let root = tempfile::tempdir().expect("tempdir");
    let paths = recording_paths(root.path(), "lesson@muc", t(0.0));
    paths.create_dir().expect("dir");
    std::fs::write(&paths.flac_partial, b"fLaC").expect("mix");
    std::fs::write(path(&paths), b"").expect("a record a crash left empty");
    let (record, modified) = read_for_judging(&paths).expect("judged, not an error");
    assert_eq!(record, None);
    let modified = modified.expect("the files' age");
    assert!(
        (Utc::now() - modified).num_seconds().abs() < 60,
        "{modified}"
    );
    // Just written: whoever wrote it may still be writing for a lease.
    assert!(matches!(
        judge(
            record.as_ref(),
            Some(modified),
            "jitape-2",
            LEASE,
            Utc::now()
        ),
        Claim::WaitUntil(_)
    ));
}
