//! Tests of the sidecar: the golden example of schema `jitape.sidecar/1`, round trips, time
//! conversion, atomic writes and rejection of foreign or broken documents.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").to_utc()
}

/// The golden example: what a finished two-person lesson looks like.
fn example() -> Sidecar {
    let start = t("2026-11-21T19:35:09.250Z");
    let mut sc = Sidecar::new(
        "[school]lesson-42@conference.meet.jitsi",
        "_school_lesson-42@conference.meet.jitsi~nacxfba4rkfvfh6n3pvw",
        "20261121T193509Z.flac",
        48_000,
        start,
    );
    sc.recorder = "jitape 0.1.0".into();
    sc.meeting_id = Some("8f4e1c2a-5d3b-4c1e-9a7f-2b6d0e1f3a4c".into());
    let alice = sc.participant_mut("p1");
    alice.nicks = vec!["a1b2c3d4".into()];
    alice.endpoint_ids = vec!["a1b2c3d4".into()];
    alice.display_name = Some("Alice".into());
    alice.identity = Identity {
        id: Some("user-17".into()),
        email: Some("alice@example.org".into()),
        name: Some("Alice Liddell".into()),
        extra: [(
            "avatar".to_string(),
            "https://example.org/a.png".to_string(),
        )]
        .into(),
    };
    alice.stem = Some("20261121T193509Z.stem.p1.flac".into());
    let (join, end) = (sc.at_sample(0), sc.at_sample(48_000 * 600));
    let speech = [(48_000u64, 240_000u64), (480_000, 1_200_000)];
    let segments: Vec<Segment> = speech
        .iter()
        .map(|&(a, b)| Segment {
            start: sc.at_sample(a),
            end: sc.at_sample(b),
        })
        .collect();
    let alice = sc.participant_mut("p1");
    alice.presence = vec![Presence { join, leave: None }]; // still present at the end
    alice.speaking = segments;
    // Alice's short second stay, and a participant with `hidden-from-recorder`: only the flag.
    let stay = Presence {
        join: sc.at_sample(24_000_000),
        leave: Some(sc.at_sample(24_096_000)),
    };
    sc.participant_mut("p1").presence.push(stay);
    sc.participant_mut("p2").hidden_from_recorder = true;
    sc.add_gap(
        4_800_000,
        5_040_000,
        GapKind::JitapeRestart,
        Some("jitape restarted; 5 s of silence".into()),
    );
    sc.finish(end.sample, "room-destroyed");
    sc
}

const GOLDEN: &str = include_str!("../testdata/sidecar-v1.json");

#[test]
fn golden_example_is_stable() {
    let json = serde_json::to_string_pretty(&example()).expect("json") + "\n";
    assert_eq!(
        json, GOLDEN,
        "schema output changed: update the golden file and the docs"
    );
    let parsed: Sidecar = serde_json::from_str(GOLDEN).expect("parse golden");
    assert_eq!(parsed, example());
}

#[test]
fn time_points_carry_utc_and_sample_offset() {
    let start = t("2026-11-21T19:35:09.250Z");
    let p = TimePoint::at_sample(start, 48_000, 72_000);
    assert_eq!(p.utc, t("2026-11-21T19:35:10.750Z"));
    assert_eq!(p.sample, 72_000);
    assert_eq!(
        TimePoint::at_sample(start, 16_000, 1),
        TimePoint {
            utc: start,
            sample: 1
        }
    );
    let q = TimePoint::at_utc(start, 24_000, t("2026-11-21T19:36:09.250Z"));
    assert_eq!(q.sample, 60 * 24_000);
    assert_eq!(
        TimePoint::at_utc(start, 24_000, t("2026-11-21T19:00:00Z")).sample,
        0
    );
    let json = serde_json::to_string(&p).expect("json");
    assert_eq!(json, r#"{"utc":"2026-11-21T19:35:10.750Z","sample":72000}"#);
}

/// Found by the `sidecar` fuzz target: a start centuries after `utc` overflowed the
/// nanosecond difference, which was then taken as +292 years (and resuming padded them).
#[test]
fn time_points_of_far_apart_instants_do_not_overflow() {
    let start = t("2426-11-21T19:35:09Z");
    assert_eq!(
        TimePoint::at_utc(start, 48_000, t("2026-11-21T19:35:09Z")).sample,
        0
    );
    let long_ago = t("1726-11-21T19:35:09Z");
    let later = TimePoint::at_utc(long_ago, 1_000, t("2026-11-21T19:35:09Z"));
    let secs = (t("2026-11-21T19:35:09Z") - long_ago).num_seconds() as u64;
    assert_eq!(later.sample, secs * 1_000);
}

#[test]
fn finish_closes_open_presences_at_the_end() {
    let sc = example();
    assert_eq!(sc.status, Status::Final);
    let end = sc.end.expect("end");
    assert_eq!(sc.participants[0].presence[0].leave, Some(end));
    assert_eq!(
        sc.participants[0].presence[1].leave.map(|l| l.sample),
        Some(24_096_000)
    );
    assert!(sc.participants[1].presence.is_empty() && sc.participants[1].hidden_from_recorder);
    assert_eq!(sc.duration(), std::time::Duration::from_secs(600));
}

#[test]
fn write_atomic_round_trips_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.json.partial");
    let mut sc = example();
    sc.status = Status::Recording;
    sc.end = None;
    write_atomic(&path, &sc).expect("write");
    sc.total_samples = 12;
    write_atomic(&path, &sc).expect("rewrite");
    assert_eq!(read(&path).expect("read"), sc);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["x.json.partial"]);

    let final_path = dir.path().join("x.json");
    write_final(&final_path, &example()).expect("final");
    assert!(!path.exists());
    assert_eq!(read(&final_path).expect("read"), example());
}

#[test]
fn foreign_or_broken_documents_are_rejected_with_the_right_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("s.json");
    std::fs::write(&p, "{ not json").expect("write");
    assert_eq!(
        read(&p).err().map(|e| e.fault()),
        Some(crate::sink::Fault::Corrupt)
    );
    std::fs::write(&p, r#"{"schema":"other/2"}"#).expect("write");
    assert_eq!(
        read(&p).err().map(|e| e.fault()),
        Some(crate::sink::Fault::Unsupported)
    );
    std::fs::write(&p, r#"{"schema":"jitape.sidecar/1","room":3}"#).expect("write");
    assert_eq!(
        read(&p).err().map(|e| e.fault()),
        Some(crate::sink::Fault::Corrupt)
    );
    let missing = dir.path().join("none.json");
    assert_eq!(
        read(&missing).err().map(|e| e.fault()),
        Some(crate::sink::Fault::Io)
    );
}

#[test]
fn unknown_gap_kinds_and_missing_optional_lists_are_tolerated() {
    let mut v: serde_json::Value = serde_json::from_str(GOLDEN).expect("golden");
    v["gaps"][0]["kind"] = "solar-flare".into();
    v["schema"] = "jitape.sidecar/1.1".into();
    v.as_object_mut().expect("object").remove("participants");
    let sc: Sidecar = serde_json::from_value(v).expect("parse");
    assert_eq!(sc.gaps[0].kind, GapKind::Other);
    assert!(sc.participants.is_empty());
}

#[test]
fn tenant_and_room_name_are_the_urls_and_older_files_get_them_on_read() {
    let sc = example();
    assert_eq!(
        (sc.tenant.as_deref(), sc.room_name.as_str()),
        (Some("school"), "lesson-42")
    );
    let plain = Sidecar::new(
        "caf%c3%a9@conference.meet.jitsi",
        "x",
        "f.flac",
        48_000,
        t("2026-11-21T19:35:09Z"),
    );
    assert_eq!((plain.tenant, plain.room_name.as_str()), (None, "café"));
    // A file written before the names existed.
    let mut v: serde_json::Value = serde_json::from_str(GOLDEN).expect("golden");
    let obj = v.as_object_mut().expect("object");
    obj.remove("tenant");
    obj.remove("room_name");
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("old.json");
    std::fs::write(&p, serde_json::to_vec(&v).expect("json")).expect("write");
    assert_eq!(read(&p).expect("read"), example());
}
