use super::html::{clock, esc, seg, size};
use super::{list, live, recording};
use crate::conference::snapshot::{ConferenceSnapshot, ParticipantSnapshot, SourceSnapshot};
use crate::sink::catalog::Listing;
use crate::sink::sidecar::{GapKind, Presence, Segment, Sidecar, TimePoint};
use crate::types::Ssrc;
use chrono::{TimeZone, Utc};

const RATE: u32 = 48_000;

fn at(sc: &Sidecar, secs: f64) -> TimePoint {
    sc.at_sample((secs * f64::from(RATE)) as u64)
}

/// A finished 60 s recording: Alice speaks at 10–20 s and 40–45 s, Bob <script> at 25–30 s,
/// one hidden participant, a media gap at 50–52 s.
fn recorded() -> (Listing, Sidecar) {
    let start = Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap();
    let mut sc = Sidecar::new("[acme]lesson@muc.example", "x", "x.flac", RATE, start);
    for (key, name, spoke) in [
        ("a", "Alice", vec![(10.0, 20.0), (40.0, 45.0)]),
        ("b", "Bob <script>", vec![(25.0, 30.0)]),
    ] {
        let join = at(&sc, 1.0);
        let speaking: Vec<Segment> = spoke
            .iter()
            .map(|&(a, b)| Segment {
                start: at(&sc, a),
                end: at(&sc, b),
            })
            .collect();
        let p = sc.participant_mut(key);
        p.display_name = Some(name.into());
        p.presence = vec![Presence { join, leave: None }];
        p.speaking = speaking;
        p.stem = Some(format!("20261206T100000Z.stem.{key}.flac"));
    }
    sc.participant_mut("hidden-3").hidden_from_recorder = true;
    sc.add_gap(
        50 * u64::from(RATE),
        52 * u64::from(RATE),
        GapKind::MediaSession,
        Some("bridge moved".into()),
    );
    sc.finish(60 * u64::from(RATE), "room destroyed");
    let listing = Listing {
        room_dir: "_acme_lesson@muc.example~abc".into(),
        name: "20261206T100000Z".into(),
        flac_bytes: 1_234_567,
        sidecar: Ok(sc.clone()),
    };
    (listing, sc)
}

#[test]
fn text_is_escaped_and_names_are_encoded() {
    assert_eq!(
        esc("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
    assert_eq!(seg("a@b.c~d_e-1"), "a%40b.c~d_e-1");
    assert_eq!(seg("../x y"), "..%2Fx%20y");
    assert_eq!(clock(59.6), "0:59");
    assert_eq!(clock(3725.0), "1:02:05");
    assert_eq!(size(999), "999 B");
    assert_eq!(size(1_234_567), "1.2 MB");
}

#[test]
fn the_recording_page_draws_every_speaking_segment_where_it_was_spoken() {
    let (listing, sc) = recorded();
    let page = recording::render(&listing, &sc);
    // The timeline: each segment at its share of the 60 s, playing from its start.
    assert!(
        page.contains("data-t=\"10.000\" style=\"left:16.667%;width:16.667%\""),
        "{page}"
    );
    assert!(page.contains("data-t=\"25.000\" style=\"left:41.667%;width:8.333%\""));
    assert!(page.contains("data-t=\"40.000\" style=\"left:66.667%;width:8.333%\""));
    // The gap, on every lane, with its reason.
    assert_eq!(page.matches("class=\"gap\" style=\"left:83.333%;width:3.333%\" title=\"media-session: bridge moved\"").count(), 2);
    // Who spoke when, in time order; names escaped.
    let order: Vec<&str> = page
        .split("data-speaker=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(order, ["Alice", "Bob &lt;script&gt;", "Alice"]);
    assert!(!page.contains("<script>Bob") && !page.contains("Bob <script>"));
    // The player, the downloads, the hidden participant only counted.
    assert!(page.contains("<audio id=\"player\" controls preload=\"metadata\" src=\"/recordings/_acme_lesson%40muc.example~abc/20261206T100000Z/audio.flac\">"));
    assert!(page.contains("/stems/20261206T100000Z.stem.a.flac"));
    assert!(page.contains("/sidecar.json"));
    assert!(page.contains("1 participant(s) asked not to be recorded"));
    assert!(page.contains("acme/lesson"));
    assert!(page.contains("1 gap (0:02)"));
}

#[test]
fn the_list_says_whether_a_recording_is_complete() {
    let (listing, mut sc) = recorded();
    let page = list::render(std::slice::from_ref(&listing), &Default::default());
    assert!(page.contains("1 gap (0:02)</span><br><small>media-session: bridge moved</small>"));
    assert!(page.contains("Alice, Bob &lt;script&gt;"));
    assert!(page.contains("href=\"/recordings/_acme_lesson%40muc.example~abc/20261206T100000Z\">2026-12-06 10:00:00</a>"));
    sc.gaps.clear();
    let whole = Listing {
        sidecar: Ok(sc),
        ..listing.clone()
    };
    assert!(list::status(&whole).contains("complete"));
    let broken = Listing {
        sidecar: Err("corrupt".into()),
        ..listing
    };
    assert!(list::status(&broken).contains("sidecar unreadable"));
}

fn conference(room: &str) -> ConferenceSnapshot {
    ConferenceSnapshot {
        room: room.into(),
        tenant: None,
        room_name: room.split('@').next().unwrap().into(),
        meeting_id: None,
        joined: true,
        start: Some("2026-12-06T10:00:00.000Z".into()),
        file: None,
        file_bytes: 2_000,
        seconds_recorded: 61.0,
        humans: Some(2),
        participants: vec![
            ParticipantSnapshot {
                key: "a".into(),
                nick: "a1".into(),
                display_name: Some("Alice".into()),
                present: true,
                speaking: true,
            },
            ParticipantSnapshot {
                key: "b".into(),
                nick: "b1".into(),
                display_name: None,
                present: true,
                speaking: false,
            },
            ParticipantSnapshot {
                key: "c".into(),
                nick: "gone".into(),
                display_name: None,
                present: false,
                speaking: false,
            },
        ],
        session: Some("s".into()),
        media_state: Some("Connected".into()),
        away: false,
        deaf_ms: None,
        deaf_why: None,
        media_problem: None,
        write_failures: 0,
        write_backlog_ms: 0,
        sources: vec![SourceSnapshot {
            ssrc: Ssrc(1),
            owner: "a".into(),
            last_packet_ms: Some(120),
        }],
    }
}

#[test]
fn the_live_rows_show_who_speaks_now_and_every_warning() {
    let calm = conference("b@muc.example");
    let mut troubled = conference("a@muc.example");
    troubled.deaf_ms = Some(65_000);
    troubled.deaf_why = Some("ice failed".into());
    troubled.write_failures = 3;
    troubled.sources[0].last_packet_ms = Some(65_000);
    let rows = live::rows(&[calm, troubled]);
    // Sorted by room.
    assert!(rows.find("a@muc.example").unwrap() < rows.find("b@muc.example").unwrap());
    assert_eq!(
        rows.matches("<span class=\"speaking\" title=\"speaking now\">Alice</span>")
            .count(),
        2
    );
    assert_eq!(rows.matches("<span class=\"person\">b1</span>").count(), 2);
    assert!(!rows.contains("gone"), "someone who left is not present");
    assert!(rows.contains("deaf for 1:05: ice failed"));
    assert!(rows.contains("the disk refused 3 write(s)"));
    assert!(rows.contains("<span class=\"warn\">1:05</span>"));
    assert!(rows.contains("0.1 s"));
    assert!(live::rows(&[]).contains("Nothing is being recorded."));
}

mod served {
    use crate::http::tests::{TOKEN, authed, send, state};
    use crate::sink::sidecar::{self, Sidecar};
    use axum::body::Body;
    use axum::http::Request;
    use chrono::{TimeZone, Utc};

    /// A state whose recording directory holds one finished recording of `a@muc.example`
    /// (its "FLAC" is 1000 known bytes); the URL of its page.
    fn with_recording(dir: &std::path::Path) -> (crate::http::HttpState, String) {
        let start = Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap();
        let paths = crate::sink::recording_paths(dir, "a@muc.example", start);
        paths.create_dir().unwrap();
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&paths.flac, bytes).unwrap();
        let mut sc = Sidecar::new("a@muc.example", &paths.room_dir, "x.flac", 48_000, start);
        sc.finish(48_000, "room destroyed");
        sidecar::write_final(&paths.sidecar, &sc).unwrap();
        let mut state = state(Some(TOKEN));
        state.recordings = dir.to_path_buf();
        (state, format!("/recordings/a%40muc.example/{}", paths.name))
    }

    fn ranged(path: &str, range: &str) -> Request<Body> {
        Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("range", range)
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn pages_and_files_are_served_behind_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let (state, page) = with_recording(dir.path());
        let root = send(&state, authed("GET", "/")).await;
        assert_eq!((root.status, root.header("location")), (303, Some("/live")));
        let live = send(&state, authed("GET", "/live")).await;
        assert_eq!(live.status, 200);
        assert_eq!(
            live.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(live.body.contains("Nothing is being recorded."));
        let list = send(&state, authed("GET", "/recordings?room=A&date=2026-12-06")).await;
        assert!(
            list.body.contains(&format!("href=\"{page}\"")),
            "{}",
            list.body
        );
        let other_day = send(&state, authed("GET", "/recordings?date=2026-12-07")).await;
        assert!(!other_day.body.contains(&page));
        assert_eq!(
            send(&state, authed("GET", "/recordings?date=06.12.2026"))
                .await
                .status,
            400
        );
        let one = send(&state, authed("GET", &page)).await;
        assert_eq!(one.status, 200);
        assert!(one.body.contains(&format!("src=\"{page}/audio.flac\"")));

        let whole = send(&state, authed("GET", &format!("{page}/audio.flac"))).await;
        assert_eq!(whole.status, 200);
        assert_eq!(whole.header("content-type"), Some("audio/flac"));
        assert_eq!(whole.header("accept-ranges"), Some("bytes"));
        assert_eq!(whole.header("cache-control"), Some("private, no-cache"));
        let part = send(
            &state,
            ranged(&format!("{page}/audio.flac"), "bytes=100-109"),
        )
        .await;
        assert_eq!(part.status, 206);
        assert_eq!(part.header("content-range"), Some("bytes 100-109/1000"));
        let expected: String = (100..110u32).map(|i| char::from((i % 251) as u8)).collect();
        assert_eq!(part.body, expected);
        assert_eq!(state.metrics.http_file_whole.get(), 1);
        assert_eq!(state.metrics.http_file_ranges.get(), 1);
        let sc = send(&state, authed("GET", &format!("{page}/sidecar.json"))).await;
        assert_eq!(sc.status, 200);
        assert!(
            sc.body.contains("\"room\": \"a@muc.example\""),
            "{}",
            sc.body
        );

        for path in [
            "/",
            "/live",
            "/live/rows",
            "/recordings",
            &page,
            &format!("{page}/audio.flac"),
        ] {
            let bare = Request::builder().uri(path).body(Body::empty()).unwrap();
            assert_eq!(send(&state, bare).await.status, 401, "{path}");
        }
    }

    #[tokio::test]
    async fn nothing_but_the_recordings_own_files_is_reachable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        let (mut state, page) = with_recording(&root);
        state.recordings = root.clone();
        std::fs::write(dir.path().join("secret.txt"), "SECRET").unwrap();
        for path in [
            format!("{page}/../../../secret.txt"),
            format!("{page}/stems/..%2f..%2f..%2fsecret.txt"),
            "/recordings/..%2f/x/audio.flac".to_string(),
            "/recordings/%2e%2e/%2e%2e/audio.flac".to_string(),
            format!("{page}%2f..%2f..%2f..%2fsecret.txt/audio.flac"),
            format!("{page}/stems/secret.txt"),
            format!("{page}/other.flac"),
            format!("{page}.flac"),
            "/recordings/a%40muc.example/not-a-name".to_string(),
        ] {
            let got = send(&state, authed("GET", &path)).await;
            assert!(matches!(got.status, 400 | 404), "{path}: {}", got.status);
            assert!(!got.body.contains("SECRET"), "{path}");
        }
    }
}
