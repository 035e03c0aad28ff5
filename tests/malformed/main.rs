//! Hostile input, table-driven: every row is a stanza jitape may receive from a room, a
//! participant, the focus or the server, with the outcome it must have — a specific IQ error,
//! a result, or nothing at all — and the state the conference must be in afterwards (still
//! joined, still in its session, and a following valid source-add still accepted).
//!
//! The pure core is driven directly: `router::classify` (the router's decision) and the
//! conference `Machine`, through the same harness and invariants as the `machine` and
//! `stanza` fuzz targets (`jitape_sim::fuzz::room`: never an error to a presence or message, every
//! IQ request answered exactly once, everything sent stays in the room). The XMPP link is
//! tested against a fake server on 127.0.0.1 (tests/malformed/link.rs), and a whole loopback
//! conference takes a burst of hostile Jingle from the focus and hostile traffic from a
//! participant while it records. The stream splitter's fuzz property (`jitape_sim::fuzz::wire`) runs
//! here too, on its seeds and on generated input.

mod e2e;
mod hostile;
mod link;
use jitape_sim::fuzz::room;
mod router;
use jitape_sim::harness as support;
mod table;
use jitape_sim::fuzz::wire as wire_fuzz;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use jitape::conference::machine::{Action, Input, RoomView};
use jitape::router::classify::{Route, classify};
use jitape::xmpp::stanza::error_condition;
use minidom::Element;

use room::{FOCUS, HUMANS, NICK, Room, presence, self_presence};
use table::{After, Case, Reply, STATES, State};

/// A machine in `state` (see [`State`]).
fn machine_in(state: State) -> Room {
    match state {
        State::Joining => {
            let mut r = Room::fresh();
            r.feed(Input::RoomStatus(RoomView {
                alive: true,
                occupancy: None,
                meeting_id: None,
            }));
            r.feed(Input::LinkUp);
            r
        }
        State::Joined | State::Starting => {
            let mut r = machine_in(State::Joining);
            for nick in [FOCUS, HUMANS[0], HUMANS[1]] {
                r.stanza(presence(nick, None, "", ""));
            }
            r.stanza(self_presence(NICK));
            if state == State::Starting {
                let init = jitape::jingle::session_initiate(
                    hostile::SID,
                    room::FOCUS_REAL,
                    &room::offer(),
                    &[room::source(1, HUMANS[0])],
                    &room::bridge_session(false),
                    false,
                );
                r.stanza(room::iq_from(FOCUS, "init", init));
            }
            r
        }
        State::Active => Room::in_session(),
        State::RestartRequested => {
            let mut r = Room::in_session();
            r.feed(Input::MediaFailed {
                sid: hostile::SID.into(),
                reason: "ice".into(),
                silent: false,
            });
            assert!(r.m.restart_pending(), "harness: restart requested");
            r
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    joined: bool,
    sid: Option<String>,
    restart: bool,
    humans: Option<usize>,
}

fn snapshot(r: &Room) -> Snapshot {
    Snapshot {
        joined: r.m.is_joined(),
        sid: r.m.session_sid().map(str::to_string),
        restart: r.m.restart_pending(),
        humans: r.m.humans(),
    }
}

fn sent(actions: &[Action]) -> Vec<&Element> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Runs one row; `Err` says what was wrong.
fn run_case(c: &Case) -> Result<(), String> {
    let stanza = (c.stanza)();
    match classify(&room::router_settings(), &stanza) {
        Route::Conference(r) if r == room::ROOM => {}
        other => return Err(format!("routed to {other:?}, not to the room")),
    }
    let (id, from) = (
        stanza.attr("id").unwrap_or_default().to_string(),
        stanza.attr("from").map(str::to_string),
    );
    let mut r = machine_in(c.state);
    let before = snapshot(&r);
    let actions = r.stanza(stanza);
    let out = sent(&actions);
    match c.reply {
        Reply::Nothing if !out.is_empty() => return Err(format!("sent {out:?}")),
        Reply::Nothing => {}
        Reply::Result | Reply::Error(_) => {
            let [reply] = out[..] else {
                return Err(format!("expected one reply, sent {out:?}"));
            };
            let want = match c.reply {
                Reply::Error(cond) => ("error", Some(cond.to_string())),
                _ => ("result", None),
            };
            let got = (
                reply.attr("type").unwrap_or_default(),
                error_condition(reply),
            );
            if (got.0, got.1.clone()) != (want.0, want.1.clone()) {
                return Err(format!("replied {got:?}, expected {want:?}"));
            }
            if reply.attr("id") != Some(id.as_str()) || reply.attr("to") != from.as_deref() {
                return Err(format!("reply not addressed to the request: {reply:?}"));
            }
        }
    }
    let after = snapshot(&r);
    let expected = match c.after {
        After::Unchanged => before.clone(),
        After::OneMoreHuman => Snapshot {
            humans: before.humans.map(|h| h + 1),
            ..before.clone()
        },
        After::Session(sid) => Snapshot {
            sid: Some(sid.to_string()),
            ..before.clone()
        },
    };
    if after != expected {
        return Err(format!("state {after:?}, expected {expected:?}"));
    }
    if !matches!(c.after, After::Session(_)) {
        let disturbed = actions.iter().any(|a| {
            matches!(
                a,
                Action::StopMedia | Action::StartMedia { .. } | Action::End(_)
            )
        });
        if disturbed {
            return Err(format!("the session was disturbed: {actions:?}"));
        }
    }
    r.assert_session_works();
    Ok(())
}

/// Every row of the table plus each unexpected action in each state.
fn all_cases() -> Vec<Case> {
    let mut all = table::cases();
    for state in STATES {
        for action in table::UNEXPECTED_ACTIONS {
            all.push(Case {
                name: action,
                category: "unexpected action",
                state,
                stanza: match action {
                    "session-accept" => || hostile::unexpected("session-accept", hostile::SID),
                    "transport-accept" => || hostile::unexpected("transport-accept", hostile::SID),
                    "content-add" => || hostile::unexpected("content-add", hostile::SID),
                    "content-modify" => || hostile::unexpected("content-modify", hostile::SID),
                    "description-info" => || hostile::unexpected("description-info", hostile::SID),
                    _ => || hostile::unexpected("transport-reject", hostile::SID),
                },
                reply: Reply::Error("feature-not-implemented"),
                after: After::Unchanged,
            });
        }
    }
    all
}

#[test]
fn every_hostile_stanza_gets_its_answer_and_the_conference_carries_on() {
    let cases = all_cases();
    let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for c in &cases {
        *per_category.entry(c.category).or_default() += 1;
        let result =
            catch_unwind(AssertUnwindSafe(|| run_case(c))).unwrap_or_else(|p| Err(panic_text(&p)));
        if let Err(e) = result {
            let e: String = e.chars().take(400).collect();
            failures.push(format!("[{}] {} ({:?}): {e}", c.category, c.name, c.state));
        }
    }
    println!(
        "{} hostile stanzas to the conference: {per_category:?}",
        cases.len()
    );
    assert!(cases.len() >= 40);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

#[test]
fn the_router_drops_or_answers_hostile_stanzas_as_it_must() {
    let cases = router::cases();
    let mut failures = Vec::new();
    for c in &cases {
        let stanza = (c.stanza)();
        let route = classify(&room::router_settings(), &stanza);
        if !router::matches(&route, &c.expect) {
            failures.push(format!(
                "[{}] {}: {route:?}, expected {:?}",
                c.category, c.name, c.expect
            ));
        }
    }
    println!("{} hostile stanzas to the router", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// An event from the MUC service `muc.meet.jitsi` naming `lesson@evil.example` would make the
// router join a room outside `xmpp.muc_domains` (a federated Prosody would route that join
// to evil.example). Invitations refuse exactly this too.
#[test]
fn a_module_event_about_a_room_of_another_domain_is_dropped() {
    let ev = router::module(
        r#"<event xmlns="urn:jitape:prosody:1" type="occupant-joined" room="lesson@evil.example"><occupant nick="a1b2c3d4"/></event>"#,
    );
    let route = classify(&room::router_settings(), &ev);
    assert!(matches!(route, Route::Drop(_)), "{route:?}");
}

/// `util::admit` is the limiter behind `util::log_limited`: a flood of one kind of
/// complaint gives at most 5 warnings per minute, then one summary with the count.
#[test]
fn a_flood_of_one_malformed_kind_is_logged_at_most_five_times_a_minute() {
    let t0 = Instant::now();
    let mut window = (t0, 0);
    let mut logged_per_minute: BTreeMap<u64, u32> = BTreeMap::new();
    let mut suppressed = Vec::new();
    // 1,000 malformed stanzas a second for 3 minutes (and a few more after a pause).
    let times = (0..180_000u64)
        .map(Duration::from_millis)
        .chain([600_000, 600_001].map(Duration::from_millis));
    for t in times {
        let (log, summary) = jitape::util::admit(&mut window, t0 + t);
        if log {
            *logged_per_minute.entry(t.as_secs() / 60).or_default() += 1;
        }
        suppressed.extend(summary);
    }
    assert_eq!(
        logged_per_minute.values().copied().collect::<Vec<_>>(),
        [5, 5, 5, 2],
        "{logged_per_minute:?}"
    );
    assert_eq!(suppressed, [60_000 - 5, 60_000 - 5, 60_000 - 5]);
}

/// The same through the machine and the real `util::log_limited`: a flood of malformed Jingle
/// is refused every time, but warned about at most 5 times (captured on this thread).
#[test]
fn a_flood_of_malformed_jingle_is_refused_every_time_but_warned_about_rarely() {
    let warnings = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = std::sync::Arc::clone(&warnings);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || Capture(std::sync::Arc::clone(&sink)))
        .finish();
    let mut r = Room::in_session();
    let mut refused = 0;
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..200 {
            let a = r.stanza(hostile::source_add_ssrc(hostile::SID, &format!("{i}x")));
            refused += sent(&a)
                .iter()
                .filter(|e| error_condition(e).as_deref() == Some("bad-request"))
                .count();
        }
    });
    assert_eq!(refused, 200);
    let text = String::from_utf8_lossy(&warnings.lock().expect("lock")).to_string();
    let lines = text
        .lines()
        .filter(|l| l.contains("refusing Jingle"))
        .count();
    assert!(
        lines <= 5,
        "{lines} warnings for 200 malformed stanzas:\n{text}"
    );
    r.assert_session_works();
}

struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A 400 KB presence of short attributes and text passes the link (rxml splits long text).
#[tokio::test]
async fn a_large_stanza_passes_the_link() {
    let mut big = String::from(
        "<presence xmlns='jabber:component:accept' from='room@muc.example/x' to='rec.example'>",
    );
    for i in 0..4_000 {
        big.push_str(&format!(
            "<feature var='urn:x:{i}'>{}</feature>",
            "t".repeat(80)
        ));
    }
    big.push_str("</presence>");
    let out = link::send_through_link(big.into_bytes(), Duration::from_secs(20)).await;
    assert!(out.marker && out.downs.is_empty(), "{out:?}");
    assert!(
        out.delivered
            .iter()
            .any(|(n, len)| n == "presence" && *len > 400_000)
    );
}

/// A stanza carries when the link read it off the socket, not when the router got round to
/// it: the conference takes that as the moment it happened (a room's end ends the file then).
#[tokio::test]
async fn a_stanza_keeps_the_moment_it_was_read_however_long_the_router_takes() {
    let wait = Duration::from_secs(1);
    let out = link::send_through_slow_reader(Vec::new(), Duration::from_secs(20), wait).await;
    let (Some(written), Some(at)) = (out.written, out.marker_at) else {
        panic!("{out:?}");
    };
    let after = at.saturating_duration_since(written);
    assert!(
        after < wait / 2,
        "read {after:?} after the server wrote it; the router took it {wait:?} after"
    );
}

/// The link reads on a thread of its own: a runtime whose every worker is busy (150 rooms
/// ending at once) does not delay the moment a stanza is stamped as arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_runtime_does_not_delay_when_a_stanza_is_stamped() {
    let block = Duration::from_secs(2);
    let (written, stamped) = link::stamp_while_the_runtime_is_blocked(block).await;
    let after = stamped.saturating_duration_since(written);
    assert!(
        after < block / 4,
        "stamped {after:?} after the server wrote it, with the runtime blocked for {block:?}"
    );
}

// FAILS until the link tolerates long attributes: rxml's `max_token_length` (8192 bytes,
// `rxml::parser::Options::default()`, which tokio-xmpp 6 uses unchangeably in
// `xmlstream/common.rs` `RawXmlStream::new`) makes the whole stream fail with
// "restricted xml: long name or reference" on any attribute value over 8 KiB, and
// `xmpp/link.rs` reconnects: one participant's presence drops jitape from every room.
#[tokio::test]
async fn an_attribute_over_8_kib_does_not_drop_the_link() {
    let out =
        link::send_through_link(link::long_attribute(9 * 1024), Duration::from_secs(20)).await;
    assert!(out.downs.is_empty(), "the link went down: {:?}", out.downs);
    assert!(out.marker, "the stanza after it never arrived: {out:?}");
}

// FAILS until the link bounds the nesting depth of stanzas: dropping (and cloning) a
// minidom::Element recurses once per level, and a 280 KB presence of 40,000 nested elements
// (well inside Prosody's 512 KiB component stanza limit) overflows a 2 MiB tokio worker
// stack, which aborts the whole process. Run in a child process so the abort is a failure
// here, not the end of the test binary.
#[test]
fn a_deeply_nested_stanza_does_not_crash_the_process() {
    const CHILD: &str = "JITAPE_MALFORMED_DEEP_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let out = rt.block_on(async {
            let task = tokio::spawn(link::send_through_link(
                link::nested(40_000),
                Duration::from_secs(20),
            ));
            task.await.expect("link task")
        });
        assert!(out.marker, "{out:?}");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let child = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_deeply_nested_stanza_does_not_crash_the_process",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    assert!(
        child.status.success(),
        "the child died ({:?}): {}",
        child.status,
        String::from_utf8_lossy(&child.stderr)
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

/// A whole conference over the loopback deployment: at 3 s the focus sends jitape a burst
/// of malformed Jingle (`Disruption::MalformedJingle`, the table in `crates/jitape-sim/src/focus.rs`) and a
/// hostile participant joins and sends its own garbage. Every focus probe gets its IQ error,
/// jitape is never kicked and never rejoins, the session is never disturbed, and the
/// recording still matches the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_traffic_mid_conference_leaves_the_recording_intact() {
    use jitape::sink::sidecar;
    use jitape_sim::analyze::check_recording;
    use jitape_sim::loopback::{Loopback, MUC_DOMAIN};
    use jitape_sim::plan::{ConferencePlan, Disruption};

    support::logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lb = Loopback::start(dir.path(), 48_000).await.expect("loopback");
    let room = format!("hostile@{MUC_DOMAIN}");
    let mut plan = ConferencePlan::demo(&room);
    plan.disruptions = vec![(Duration::from_secs(3), Disruption::MalformedJingle)];
    let (outcome, sent) = tokio::join!(
        lb.world.run(plan),
        e2e::mallory(&lb.server, lb.world.outbound(), &room)
    );
    let outcome = outcome.expect("conference");
    let files = lb
        .wait_finalized(&room, Duration::from_secs(20))
        .await
        .expect("finalized");
    lb.stop().await;

    let replies: Vec<_> = outcome
        .probe_replies
        .iter()
        .map(|(label, kind, cond)| (label.as_str(), kind.as_str(), cond.as_deref()))
        .collect();
    let e = |label, cond| (label, "error", Some(cond));
    assert_eq!(
        replies,
        [
            e("session-initiate without transport", "bad-request"),
            e("unknown action", "feature-not-implemented"),
            e("source-add with a bad SSRC", "bad-request"),
            e("source-add with SSRC 0", "bad-request"),
            e("source-add with an SSRC above 2^32", "bad-request"),
            e("source-add with 3,000 sources", "policy-violation"),
            e("source-add whose JSON is not JSON", "bad-request"),
            e("source-add for an unknown session", "item-not-found"),
            e("source-remove for an unknown session", "item-not-found"),
            e(
                "transport-replace with a candidate port above 65535",
                "bad-request"
            ),
            e("transport-info with a negative port", "bad-request"),
            e("session-initiate without Opus", "feature-not-implemented"),
            e("session-accept from the focus", "feature-not-implemented"),
            e("Jingle without a sid", "bad-request"),
            e("Jingle in a foreign namespace", "service-unavailable"),
        ]
    );
    assert!(sent >= 10, "the hostile participant sent {sent} stanzas");
    assert_eq!(outcome.sessions, 1, "the session was never disturbed");
    assert_eq!(outcome.recorder_joins.len(), 1, "jitape was never kicked");
    support::flac_test(&files.flac);
    let sc = sidecar::read(&files.sidecar).expect("sidecar");
    assert!(sc.gaps.is_empty(), "no interruption: {:?}", sc.gaps);
    let report = check_recording(&files.flac, &sc, &outcome).expect("analysis");
    assert!(report.ok(), "{report}");
    assert_eq!(support::files_with_suffix(dir.path(), ".flac").len(), 1);
}

/// The `wire` fuzz target's property (`jitape_sim::fuzz::wire`) on its committed seeds and on
/// seeded random input: raw bytes over the lexer's alphabet and generated streams, each fed
/// whole, byte by byte and in chunks of the input's choosing.
#[test]
fn the_stream_splitter_keeps_its_fuzz_properties() {
    use rand::{Rng, SeedableRng};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/wire");
    let mut seeds: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("the wire seeds")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "{seeds:?}");
    for s in &seeds {
        wire_fuzz::run(&std::fs::read(s).unwrap());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    const ALPHABET: &[u8] = b"<>/!-?[]CDAT'\"= x\n";
    const HEADER: &[u8] = b"<stream:stream xmlns='jabber:component:accept'>";
    for i in 0..4000 {
        let mut input: Vec<u8> = (0..12).map(|_| rng.random()).collect();
        let len = rng.random_range(0..600);
        if i % 2 == 0 {
            input[0] &= 0xfe;
            if rng.random_bool(0.7) {
                input.truncate(4 + usize::from(input[3] % 8) + 1);
                input.extend_from_slice(HEADER);
            }
            input.extend((0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]));
        } else {
            input[0] |= 1;
            input.extend((0..len).map(|_| rng.random::<u8>()));
        }
        wire_fuzz::run(&input);
    }
}
