use super::*;
use chrono::{TimeZone, Utc};
use std::os::unix::fs::symlink;

/// A finished recording of `room` started at `stamp` (`YYYYMMDDTHHMMSSZ`), with a sidecar.
fn finished(root: &Path, room: &str, stamp: &str) -> RecordingPaths {
    let start = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").unwrap();
    let start = Utc.from_utc_datetime(&start);
    let paths = super::super::recording_paths(root, room, start);
    paths.create_dir().unwrap();
    fs::write(&paths.flac, b"fLaC not really").unwrap();
    let mut sc = Sidecar::new(room, &paths.room_dir, "x.flac", 48_000, start);
    sc.finish(48_000, "room destroyed");
    sidecar::write_final(&paths.sidecar, &sc).unwrap();
    paths
}

fn all() -> Filter {
    Filter {
        limit: 100,
        ..Filter::default()
    }
}

#[test]
fn lists_finished_recordings_newest_first_and_filters_by_room_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    finished(root, "lesson@muc.example", "20261201T100000Z");
    finished(root, "[acme]standup@muc.example", "20261202T090000Z");
    let late = finished(root, "lesson@muc.example", "20261202T110000Z");
    // Being written: not listed.
    fs::write(late.dir.join("20261203T080000Z.flac.partial"), b"x").unwrap();

    let names: Vec<String> = list(root, &all())
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(
        names,
        ["20261202T110000Z", "20261202T090000Z", "20261201T100000Z"]
    );

    let room = |r: &str| Filter {
        room: Some(r.into()),
        ..all()
    };
    let by_room = list(root, &room("LESSON")).unwrap();
    assert_eq!(by_room.len(), 2);
    assert!(by_room.iter().all(|l| l.room_dir.starts_with("lesson@")));
    // The tenant as users see it in the URL.
    let by_tenant = list(root, &room("acme")).unwrap();
    assert_eq!(by_tenant.len(), 1);
    assert_eq!(by_tenant[0].sidecar.as_ref().unwrap().room_name, "standup");

    let day = Filter {
        date: NaiveDate::from_ymd_opt(2026, 12, 2),
        ..all()
    };
    assert_eq!(list(root, &day).unwrap().len(), 2);
    let one = Filter { limit: 1, ..all() };
    assert_eq!(list(root, &one).unwrap()[0].name, "20261202T110000Z");
    let first = &list(root, &all()).unwrap()[0];
    assert_eq!(first.started(), "2026-12-02 11:00:00");
    assert!(first.complete());
}

#[test]
fn a_recording_with_a_gap_or_without_a_readable_sidecar_is_not_complete() {
    let dir = tempfile::tempdir().unwrap();
    let p = finished(dir.path(), "a@muc.example", "20261201T100000Z");
    let mut sc = sidecar::read(&p.sidecar).unwrap();
    sc.add_gap(10, 20, sidecar::GapKind::MediaSession, None);
    sidecar::write_final(&p.sidecar, &sc).unwrap();
    assert!(!open(dir.path(), &p.room_dir, &p.name).unwrap().complete());
    fs::write(&p.sidecar, b"{ not json").unwrap();
    let l = open(dir.path(), &p.room_dir, &p.name).unwrap();
    assert!(!l.complete());
    assert!(l.sidecar.is_err());
}

#[test]
fn resolves_only_jitapes_own_files_under_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rec");
    let p = finished(&root, "a@muc.example", "20261201T100000Z");
    fs::write(p.stem("alice"), b"fLaC").unwrap();
    let stem = p
        .stem("alice")
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (rd, n) = (p.room_dir.as_str(), p.name.as_str());
    assert_eq!(resolve(&root, rd, n, &FileKind::Mix), Ok(p.flac.clone()));
    assert_eq!(
        resolve(&root, rd, n, &FileKind::Sidecar),
        Ok(p.sidecar.clone())
    );
    assert_eq!(
        resolve(&root, rd, n, &FileKind::Stem(stem.clone())),
        Ok(p.stem("alice"))
    );

    for (room_dir, name) in [
        ("..", n),
        ("../rec", n),
        (".", n),
        ("a/b", n),
        ("", n),
        (rd, ".."),
        (rd, "../../etc/passwd"),
        (rd, "20261201T100000Z/../x"),
        (rd, "20261201T100000Z-1234"),
        (rd, "2026120XT100000Z"),
        ("%2e%2e", n),
        (rd, "aéééééééé"),
        (rd, "20261201T10000éZ"),
    ] {
        assert_eq!(
            resolve(&root, room_dir, name, &FileKind::Mix),
            Err(Refusal::BadName),
            "{room_dir} {name}"
        );
    }
    for f in [
        "../x.flac",
        "20261201T100000Z.flac",
        "x.stem.alice.flac",
        "20261201T100000Z.stem..flac",
        "20261201T100000Z.stem.a/b.flac",
    ] {
        assert_eq!(
            resolve(&root, rd, n, &FileKind::Stem(f.into())),
            Err(Refusal::BadName),
            "{f}"
        );
    }
    assert_eq!(
        resolve(&root, rd, "20261201T100001Z", &FileKind::Mix),
        Err(Refusal::Missing)
    );
}

#[test]
fn links_planted_in_the_recording_directory_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rec");
    let outside = dir.path().join("outside");
    // A complete recording outside the root, reachable only through links.
    let secret = finished(&outside, "secret@muc.example", "20261201T100000Z");
    finished(&root, "a@muc.example", "20261201T100000Z");
    // A linked room directory.
    symlink(&secret.dir, root.join("linked@muc.example")).unwrap();
    // A linked file inside a real room directory.
    let real = root.join("b@muc.example");
    fs::create_dir_all(&real).unwrap();
    symlink(&secret.flac, real.join("20261201T100000Z.flac")).unwrap();
    symlink(&secret.sidecar, real.join("20261201T100000Z.json")).unwrap();

    for rd in ["linked@muc.example", "b@muc.example"] {
        for kind in [FileKind::Mix, FileKind::Sidecar] {
            assert_eq!(
                resolve(&root, rd, "20261201T100000Z", &kind),
                Err(Refusal::Missing),
                "{rd} {kind:?}"
            );
        }
    }
    let listed: Vec<String> = list(&root, &all())
        .unwrap()
        .into_iter()
        .map(|l| l.room_dir)
        .collect();
    assert_eq!(listed, ["a@muc.example"]);
}
