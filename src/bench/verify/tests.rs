//! Unit tests of `verify`.

use super::*;

#[test]
fn room_files_must_be_final_and_unique() {
    let root = tempfile::tempdir().expect("tempdir");
    let tmp = root.path();
    let room = "bench000@conference.localhost";
    let dir = tmp.join(sink::room_dir_name(room));
    std::fs::create_dir_all(&dir).expect("dir");
    assert!(find_room_files(tmp, room).is_err(), "empty");
    std::fs::write(dir.join("a.json"), "{}").expect("write");
    assert!(find_room_files(tmp, room).is_err(), "no flac");
    std::fs::write(dir.join("a.flac"), "x").expect("write");
    let found = find_room_files(tmp, room).expect("found");
    assert_eq!(found.flac, dir.join("a.flac"));
    std::fs::write(dir.join("b.flac.partial"), "x").expect("write");
    assert!(find_room_files(tmp, room).is_err(), "partial left");
    std::fs::remove_file(dir.join("b.flac.partial")).expect("rm");
    std::fs::write(dir.join("b.json"), "{}").expect("write");
    assert!(find_room_files(tmp, room).is_err(), "two recordings");
}
