//! Unit tests of `logscan`.

use super::*;

const LOG: &str = "\
2026-11-21T21:05:23.146417Z DEBUG conference{room=lesson@conference.localhost}: jitape::conference::task: sources renegotiated sources=1 took=7.281µs
2026-11-21T21:05:23.599557Z DEBUG conference{room=lesson@conference.localhost}: jitape::media::session: sources renegotiated added=1 removed=0 m_lines=2 took_us=248
2026-11-21T21:05:30.000000Z  WARN conference{room=lesson@conference.localhost}: jitape::conference::task: source update failed error=x
2026-11-21T21:05:42.258195Z  INFO conference{room=Lesson@conference.localhost}: jitape::conference::recording: audio totals packets=1500 lost=2 concealed=3 late=1 unknown_ssrc=0 write_failures=0
2026-11-21T21:05:42.258195Z  INFO conference{room=other@conference.localhost}: jitape::conference::recording: audio totals packets=10 lost=0 concealed=0 late=0 unknown_ssrc=4 write_failures=0
2026-11-21T21:06:00.258195Z  INFO conference{room=lesson@conference.localhost}: jitape::conference::recording: audio totals packets=500 lost=0 concealed=0 late=0 unknown_ssrc=0 write_failures=0
";

#[test]
fn totals_are_summed_per_room_and_renegotiations_listed() {
    let s = scan(LOG);
    let lesson = &s.totals["lesson@conference.localhost"];
    assert_eq!(
        (lesson.packets, lesson.lost, lesson.concealed),
        (2000, 2, 3)
    );
    assert_eq!(s.totals["other@conference.localhost"].unknown_ssrc, 4);
    assert_eq!(
        s.renegotiations,
        vec![Renegotiation {
            m_lines: 2,
            took_us: 248
        }]
    );
    assert_eq!((s.warnings, s.errors), (1, 0));
    assert_eq!(s.first_problems.len(), 1);
}

#[test]
fn totals_without_a_room_go_to_the_next_finalized_room() {
    let log = "\
t  INFO jitape::conference::recording: audio totals packets=126 lost=1 concealed=0 late=0 unknown_ssrc=0 write_failures=0
t  INFO jitape::sink: recording finalized samples=708357 lost=0
t  INFO conference{room=bench000@conference.localhost}: jitape::conference::task: recording finalized flac=/x.flac reason=room-destroyed
t  INFO jitape::conference::recording: audio totals packets=521 lost=0 concealed=0 late=0 unknown_ssrc=0 write_failures=0
";
    let s = scan(log);
    assert_eq!(s.totals["bench000@conference.localhost"].packets, 126);
    assert_eq!(s.totals[""].packets, 521);
}

#[test]
fn fields_match_whole_keys_only() {
    let line = "x conference{room=a}: y: audio totals packets=5 lost=1 xlost=9";
    assert_eq!(field(line, "lost"), Some("1"));
    assert_eq!(field(line, "room"), Some("a"));
    assert_eq!(field(line, "nothing"), None);
    assert_eq!(number("k=notanumber", "k"), 0);
}

#[test]
fn refused_rooms_are_listed_by_name() {
    let log = "\
2026-12-06T22:02:51.540281Z  WARN jitape::router: not recording this room for now room=Lesson@conference.localhost reason=jitape is overloaded (see jitape_load_level)
2026-12-06T22:02:52.540281Z  WARN jitape::router: not recording this room for now room=other@conference.localhost reason=the recording filesystem is below its floor or not writable
2026-12-06T22:02:53.540281Z  INFO jitape::router: recording a room that was waiting room=lesson@conference.localhost
";
    let s = scan(log);
    assert_eq!(
        s.refused.iter().map(String::as_str).collect::<Vec<_>>(),
        ["lesson@conference.localhost", "other@conference.localhost"]
    );
    assert_eq!(s.warnings, 2);
}
