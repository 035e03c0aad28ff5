//! Unit tests of `health`.

use super::*;

#[test]
fn reads_the_address_the_readiness_and_the_figures() {
    let log =
        "2026-12-06T08:00:00Z  INFO jitape::http: http server listening addr=127.0.0.1:4321\n";
    assert_eq!(address_in_log(log), Some("127.0.0.1:4321".parse().unwrap()));
    let mut h = Health::default();
    h.note_ready(Some((200, "{}".into())));
    h.note_ready(Some((
        503,
        r#"{"ready":false,"reasons":["jitape is overloaded"]}"#.into(),
    )));
    h.note_ready(None);
    assert_eq!((h.ready, h.not_ready, h.unreachable), (1, 1, 1));
    assert!(h.reasons.contains("jitape is overloaded"));
    let text = "# HELP x\njitape_load_level 2\njitape_load_level_other 7\njitape_conferences_shed_total 3\njitape_recordings_refused_total 5\n";
    h.note_metrics(text);
    h.note_metrics("jitape_load_level 1\njitape_conferences_shed_total 4\n");
    assert_eq!(h.max_load_level, 2.0);
    assert_eq!((h.conferences_shed, h.recordings_refused), (4.0, 5.0));
}
