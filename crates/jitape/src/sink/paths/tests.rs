//! Tests of safe names: a hostile table, stability, and properties over generated names.

use std::collections::HashMap;
use std::path::Component;

use super::*;

fn check_safe(name: &str, input: &str) {
    assert!(!name.is_empty(), "{input:?}");
    assert!(name != "." && name != "..", "{input:?} -> {name:?}");
    assert!(!name.starts_with('.'), "{input:?} -> {name:?}");
    assert!(!name.contains(['/', '\\', '\0']), "{input:?} -> {name:?}");
    assert!(
        name.bytes().all(|b| b.is_ascii_graphic()),
        "{input:?} -> {name:?}"
    );
    assert!(
        name.len() <= MAX_READABLE + 1 + HASH_CHARS,
        "{input:?} -> {name:?}"
    );
    let base = name.split(['.', '~']).next().unwrap_or("");
    assert!(
        !RESERVED.contains(&base) || name.contains('~'),
        "{input:?} -> {name:?}"
    );
}

#[test]
fn ordinary_room_names_stay_readable_and_unchanged() {
    for room in [
        "lesson-42@conference.meet.jitsi",
        "weekly_sync@muc.example.org",
        "a@b",
    ] {
        assert_eq!(room_dir_name(room), room);
    }
}

#[test]
fn hostile_room_names_map_to_safe_distinct_names() {
    let long = "x".repeat(5000);
    let hostile = [
        "[tenant]room@conference.meet.jitsi",
        "Room@conference.meet.jitsi",
        "../../etc/passwd",
        "..",
        ".",
        "",
        ".hidden@muc",
        "...@muc",
        "a/b@muc",
        "a\\b@muc",
        "nul\0byte@muc",
        "tab\there@muc",
        "new\nline@muc",
        "CON",
        "con",
        "con.txt",
        "LPT1@muc",
        "réunion@conférence",
        "会议@muc",
        "emoji🎉@muc",
        "a b c@muc",
        "~tilde@muc",
        long.as_str(),
        "%2e%2e%2f@muc",
    ];
    let mut seen = HashMap::new();
    for room in hostile {
        let name = room_dir_name(room);
        check_safe(&name, room);
        assert_ne!(name, room, "{room:?} should have been changed");
        assert!(name.contains('~'), "{room:?} -> {name:?} lacks the hash");
        if let Some(other) = seen.insert(name.clone(), room) {
            panic!("{room:?} and {other:?} both map to {name:?}");
        }
    }
    assert_eq!(
        room_dir_name("[tenant]room@conference.meet.jitsi")
            .split('~')
            .next(),
        Some("_tenant_room@conference.meet.jitsi")
    );
}

#[test]
fn names_are_stable_across_versions() {
    // Changing these breaks the directory of every existing room: do not, or migrate. The
    // hashes were checked with Python: base64.b32encode(sha1(name)).lower()[:20].
    assert_eq!(room_dir_name("Room@muc"), "room@muc~p7kckvfaxtapprgdowq6");
    assert_eq!(room_dir_name(""), "room~3i42h3s6nnfq2msvx7xz");
    assert_eq!(room_dir_name("../x"), "_._x~olsnahoy55b5q5hvq7ts");
}

/// A deterministic generator of nasty strings.
fn generated(n: usize) -> Vec<String> {
    const PIECES: [&str; 20] = [
        "a", "B", ".", "..", "/", "\\", "\0", "@", "_", "-", "~", " ", "é", "会", "[", "]", "con",
        "\n", "%", "0",
    ];
    let mut x = 0x9E37_79B9u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = (x % 12) as usize;
            let mut s = String::new();
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                s.push_str(PIECES[(y >> 16) as usize % PIECES.len()]);
            }
            if x.is_multiple_of(97) {
                s.push_str(&"z".repeat(200));
            }
            s
        })
        .collect()
}

#[test]
fn generated_names_are_safe_injective_and_stay_inside_the_root() {
    let root = Path::new("/srv/recordings");
    let start = DateTime::parse_from_rfc3339("2026-11-21T19:35:09Z")
        .expect("time")
        .to_utc();
    let mut seen: HashMap<String, String> = HashMap::new();
    for input in generated(50_000) {
        let name = room_dir_name(&input);
        check_safe(&name, &input);
        if let Some(other) = seen.insert(name.clone(), input.clone()) {
            assert_eq!(other, input, "collision on {name:?}");
        }
        let paths = recording_paths(root, &input, start);
        for p in [
            &paths.flac,
            &paths.flac_partial,
            &paths.sidecar,
            &paths.stem(&input),
        ] {
            let rel = p.strip_prefix(root).expect("inside the root");
            assert!(
                rel.components().all(|c| matches!(c, Component::Normal(_))),
                "{p:?}"
            );
            assert_eq!(rel.components().count(), 2, "{p:?}");
        }
    }
    assert!(
        seen.len() > 10_000,
        "the generator should produce many distinct inputs"
    );
}

#[test]
fn recording_file_names() {
    let start = DateTime::parse_from_rfc3339("2026-11-21T19:35:09.999Z")
        .expect("time")
        .to_utc();
    let p = recording_paths(Path::new("/rec"), "lesson@muc", start);
    assert_eq!(p.dir, Path::new("/rec/lesson@muc"));
    assert_eq!(p.flac, Path::new("/rec/lesson@muc/20261121T193509Z.flac"));
    assert_eq!(
        p.flac_partial,
        Path::new("/rec/lesson@muc/20261121T193509Z.flac.partial")
    );
    assert_eq!(
        p.sidecar,
        Path::new("/rec/lesson@muc/20261121T193509Z.json")
    );
    assert_eq!(
        p.sidecar_partial,
        Path::new("/rec/lesson@muc/20261121T193509Z.json.partial")
    );
    assert_eq!(
        p.stem("ep1"),
        Path::new("/rec/lesson@muc/20261121T193509Z.stem.ep1.flac")
    );
    let hostile = p.stem("../x").to_string_lossy().into_owned();
    assert!(
        hostile.starts_with("/rec/lesson@muc/20261121T193509Z.stem._._x~"),
        "{hostile}"
    );
}

#[test]
fn unused_paths_and_unfinished_recordings_are_found() {
    let root = tempfile::tempdir().expect("tempdir");
    let start = DateTime::parse_from_rfc3339("2026-11-21T19:35:09Z")
        .expect("time")
        .to_utc();
    let first = unused_recording_paths(root.path(), "lesson@muc", start).expect("paths");
    first.create_dir().expect("dir");
    std::fs::write(&first.flac_partial, b"x").expect("write");
    std::fs::write(&first.sidecar_partial, b"x").expect("write");
    std::fs::write(first.stem_partial("alice"), b"x").expect("write");
    let second = unused_recording_paths(root.path(), "lesson@muc", start).expect("paths");
    assert_eq!(second.name, "20261121T193509Z-2");
    std::fs::write(&second.flac, b"done").expect("write");
    std::fs::write(second.stem_partial("bob"), b"x").expect("write");
    std::fs::write(root.path().join("stray-file"), b"x").expect("write");

    let found = find_unfinished(root.path()).expect("find");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].paths, first);
    assert!(found[0].has_flac && found[0].has_sidecar);
    assert_eq!(found[0].stems, vec![first.stem_partial("alice")]);
    assert_eq!(found[1].paths, second);
    assert!(!found[1].has_flac && !found[1].has_sidecar);
    assert_eq!(found[1].stems, vec![second.stem_partial("bob")]);
    assert!(
        find_unfinished(&root.path().join("missing"))
            .expect("none")
            .is_empty()
    );
}
