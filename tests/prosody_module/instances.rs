//! Several jitape instances on one Prosody (`jitape_components` in mod_jitape): each room's
//! events reach exactly one live instance, the one rendezvous hashing picks; an instance that
//! connects later takes only new rooms; a disconnected owner's rooms move after the lease and
//! not before, and not at all when it reconnects in time; a refused second connection for an
//! instance changes nothing. Raw components (jitape's own link) play the instances.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jitape::config::Secret;
use jitape::xmpp::link::{self, LinkSettings};
use jitape_sim::harness as support;
use support::components::{
    Comp, Event, FOCUS, MUC, SIM, plugin_paths, rendezvous_weight as weight,
};
use support::prosody::{ComponentDecl, Prosody, ProsodySpec};

/// `jitape_lease` in these tests, seconds.
const LEASE: u64 = 3;
/// Long enough for every event of a burst of joins to arrive.
const SETTLE: Duration = Duration::from_millis(1500);

fn instance(n: usize) -> String {
    format!("jitape-{n}.localhost")
}

fn secret(n: usize) -> String {
    format!("secret-{n}")
}

/// Prosody declaring four instances (and the sim), the module told about all four.
fn start() -> Prosody {
    start_with(4, LEASE, "")
}

/// Prosody declaring `count` instances (and the sim), the module told about them, with a
/// lease of `lease` seconds and `extra` in the MUC's configuration.
fn start_with(count: usize, lease: u64, extra: &str) -> Prosody {
    let mut components: Vec<ComponentDecl> = (1..=count)
        .map(|n| ComponentDecl {
            domain: instance(n),
            secret: secret(n),
        })
        .collect();
    components.push(ComponentDecl {
        domain: SIM.into(),
        secret: "sim-secret".into(),
    });
    let list = (1..=count)
        .map(|n| format!("\"{}\"", instance(n)))
        .collect::<Vec<_>>()
        .join(", ");
    Prosody::start(&ProsodySpec {
        components,
        muc_domains: vec![MUC.into()],
        muc_extra: format!(
            "  modules_enabled = {{ \"jitape\", \"test_meeting_id\" }}\n  jitape_components = {{ {list} }}\n  jitape_lease = {lease}\n{extra}"
        ),
        global_extra: plugin_paths(),
    })
}

async fn connect(prosody: &Prosody, n: usize) -> Comp {
    Comp::connect(prosody.component_port, &instance(n), &secret(n)).await
}

/// The instance (number) rendezvous hashing picks for `room` among `live`.
fn owner(room: &str, live: &[usize]) -> usize {
    *live
        .iter()
        .max_by_key(|n| (weight(room, &instance(**n)), instance(**n)))
        .expect("some instance is live")
}

fn room(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}@{MUC}")
}

/// Twelve rooms, each with the focus and one participant.
async fn open_rooms(sim: &mut Comp, prefix: &str) -> Vec<String> {
    let mut rooms = Vec::new();
    for i in 0..12 {
        let r = room(prefix, i);
        sim.join(FOCUS, &r, "focus", None, "").await.unwrap();
        sim.join(&format!("p1@{SIM}/x"), &r, "p1", None, "")
            .await
            .unwrap();
        rooms.push(r);
    }
    rooms
}

/// Per room, the event kinds (and occupant nicks) each instance received.
type Seen = BTreeMap<String, BTreeMap<usize, Vec<String>>>;

fn record(seen: &mut Seen, n: usize, events: Vec<Event>) {
    for ev in events {
        let what = match &ev.occupant {
            Some(o) => format!("{} {}", ev.kind, o.nick),
            None => ev.kind.clone(),
        };
        assert_eq!(ev.to, instance(n), "{ev:?}");
        seen.entry(ev.room.clone())
            .or_default()
            .entry(n)
            .or_default()
            .push(what);
    }
}

/// What every instance received within `within` (one window for all of them).
async fn collect(comps: &mut [(usize, Comp)], within: Duration) -> Seen {
    let deadline = std::time::Instant::now() + within;
    let mut seen = Seen::new();
    for (n, comp) in comps.iter_mut() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        record(&mut seen, *n, comp.events_within(left).await);
    }
    seen
}

/// Every room reached exactly its expected owner, with exactly `kinds`.
fn assert_owned(seen: &Seen, expected: &BTreeMap<String, usize>, kinds: &[&str]) {
    // Occupants of an announced room come in Prosody's table order.
    let normal = |k: &Vec<String>| {
        let mut k = k.clone();
        if k.len() > 1 {
            k[1..].sort();
        }
        k
    };
    let got: BTreeMap<&String, Vec<(usize, Vec<String>)>> = seen
        .iter()
        .map(|(r, by)| (r, by.iter().map(|(n, k)| (*n, normal(k))).collect()))
        .collect();
    let want: BTreeMap<&String, Vec<(usize, Vec<String>)>> = expected
        .iter()
        .map(|(r, n)| (r, vec![(*n, kinds.iter().map(|k| k.to_string()).collect())]))
        .collect();
    assert_eq!(got, want);
}

/// The rooms the instance's catch-up query lists.
async fn listed(comp: &mut Comp, n: usize) -> BTreeSet<String> {
    let answer = comp
        .query_rooms(&format!("rec@{}/catchup", instance(n)))
        .await;
    assert_eq!(
        answer.attr("type"),
        Some("result"),
        "{}",
        String::from(&answer)
    );
    answer
        .get_child("rooms", support::components::NS)
        .expect("<rooms/>")
        .children()
        .filter(|c| c.name() == "room")
        .map(|r| r.attr("jid").unwrap_or_default().to_string())
        .collect()
}

/// The lease and the rooms owned by other instances, as the instance's catch-up lists them.
async fn elsewhere(comp: &mut Comp, n: usize) -> (Option<String>, BTreeSet<String>) {
    let answer = comp
        .query_rooms(&format!("rec@{}/catchup", instance(n)))
        .await;
    let rooms = answer
        .get_child("rooms", support::components::NS)
        .expect("<rooms/>");
    let others = rooms
        .children()
        .filter(|c| c.name() == "elsewhere")
        .map(|r| {
            let owner = r.attr("owner").unwrap_or_default();
            assert_ne!(owner, instance(n), "{}", String::from(r));
            r.attr("jid").unwrap_or_default().to_string()
        })
        .collect();
    (rooms.attr("lease").map(str::to_string), others)
}

fn rooms_of(expected: &BTreeMap<String, usize>, n: usize) -> BTreeSet<String> {
    expected
        .iter()
        .filter(|(_, o)| **o == n)
        .map(|(r, _)| r.clone())
        .collect()
}

const CREATED: &[&str] = &[
    "room-created",
    "occupant-joined focus",
    "occupant-joined p1",
];

/// Three instances, twelve rooms spread over them.
async fn three_with_rooms(
    prosody: &Prosody,
) -> (Vec<(usize, Comp)>, Comp, BTreeMap<String, usize>) {
    let mut comps = Vec::new();
    for n in 1..=3 {
        comps.push((n, connect(prosody, n).await));
    }
    let mut sim = Comp::sim(prosody).await;
    let rooms = open_rooms(&mut sim, "lesson").await;
    let expected: BTreeMap<String, usize> = rooms
        .iter()
        .map(|r| (r.clone(), owner(r, &[1, 2, 3])))
        .collect();
    let seen = collect(&mut comps, SETTLE).await;
    assert_owned(&seen, &expected, CREATED);
    for n in 1..=3 {
        assert!(
            !rooms_of(&expected, n).is_empty(),
            "instance {n} got no room: {expected:?}"
        );
    }
    (comps, sim, expected)
}

#[test]
fn weights_match_the_module_vectors() {
    // Computed with Prosody 0.12's util.hashes (docs/architecture.md, research notes).
    assert_eq!(
        weight("r@conference.localhost", "jitape-1.localhost"),
        3329411288279614
    );
    assert_eq!(weight("room@conference.x", "jitape-1.x"), 1687970869698606);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_room_reaches_exactly_one_of_three_instances() {
    support::logs();
    let prosody = start();
    let (mut comps, sim, expected) = three_with_rooms(&prosody).await;
    // The catch-up answer, too, lists each instance's own rooms only.
    for (n, comp) in comps.iter_mut() {
        assert_eq!(
            listed(comp, *n).await,
            rooms_of(&expected, *n),
            "instance {n}"
        );
    }
    for (_, comp) in comps {
        assert!(comp.downs.is_empty(), "{:?}", comp.downs);
        comp.close().await;
    }
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_instance_moves_no_room_and_gets_new_ones() {
    support::logs();
    let prosody = start();
    let (mut comps, mut sim, expected) = three_with_rooms(&prosody).await;
    // The test means something only if some running room would hash to the newcomer.
    assert!(expected.keys().any(|r| owner(r, &[1, 2, 3, 4]) == 4));
    comps.push((4, connect(&prosody, 4).await));

    for r in expected.keys() {
        sim.join(&format!("p2@{SIM}/x"), r, "p2", None, "")
            .await
            .unwrap();
    }
    let seen = collect(&mut comps, SETTLE).await;
    assert_owned(&seen, &expected, &["occupant-joined p2"]);

    let later = open_rooms(&mut sim, "later").await;
    let expected_later: BTreeMap<String, usize> = later
        .iter()
        .map(|r| (r.clone(), owner(r, &[1, 2, 3, 4])))
        .collect();
    assert!(
        !rooms_of(&expected_later, 4).is_empty(),
        "{expected_later:?}"
    );
    let seen = collect(&mut comps, SETTLE).await;
    assert_owned(&seen, &expected_later, CREATED);
    let (_, newcomer) = comps.last_mut().expect("instance 4");
    assert_eq!(listed(newcomer, 4).await, rooms_of(&expected_later, 4));
    for (_, comp) in comps {
        comp.close().await;
    }
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_gone_past_the_lease_hands_its_rooms_to_the_others() {
    support::logs();
    let prosody = start();
    let (mut comps, mut sim, expected) = three_with_rooms(&prosody).await;
    let gone = rooms_of(&expected, 1);
    // Instance 1 records its rooms (it is an occupant under the nick "recorder") ...
    let (_, first) = &mut comps[0];
    for r in &gone {
        first
            .join(&format!("rec@{}/r", instance(1)), r, "recorder", None, "")
            .await
            .unwrap();
    }
    first.events_within(SETTLE).await;
    // ... and its connection closes.
    let (_, first) = comps.remove(0);
    first.close().await;

    // Nothing moves before the lease runs out.
    let early = collect(&mut comps, Duration::from_secs(LEASE - 1)).await;
    assert!(early.is_empty(), "{early:?}");
    // Then each of its rooms is announced, like a new room with its occupants, to the
    // instance with the next-highest weight; instance 1's own occupant is gone from it.
    let moved: BTreeMap<String, usize> = gone
        .iter()
        .map(|r| (r.clone(), owner(r, &[2, 3])))
        .collect();
    let seen = collect(&mut comps, Duration::from_secs(3)).await;
    assert_owned(&seen, &moved, CREATED);
    // The new owner joins under the same nick (no ghost holds it) and hears the rooms.
    for (r, n) in &moved {
        let (_, comp) = comps.iter_mut().find(|(m, _)| m == n).expect("owner");
        comp.join(&format!("rec@{}/r", instance(*n)), r, "recorder", None, "")
            .await
            .unwrap_or_else(|e| panic!("instance {n} cannot join {r} as recorder: {e}"));
    }
    for r in expected.keys() {
        sim.join(&format!("p2@{SIM}/x"), r, "p2", None, "")
            .await
            .unwrap();
    }
    let mut now: BTreeMap<String, usize> = expected.clone();
    now.extend(moved.clone());
    let seen = collect(&mut comps, SETTLE).await;
    let recorder_joined: BTreeMap<String, usize> = moved.clone();
    for (r, by) in &seen {
        let n = now[r];
        let mut want = vec!["occupant-joined p2".to_string()];
        if recorder_joined.contains_key(r) {
            want.insert(0, "occupant-joined recorder".into());
        }
        assert_eq!(by.iter().collect::<Vec<_>>(), vec![(&n, &want)], "{r}");
    }
    assert_eq!(seen.len(), expected.len());
    for (n, comp) in comps.iter_mut() {
        assert_eq!(listed(comp, *n).await, rooms_of(&now, *n), "instance {n}");
        // Every other room is listed as another instance's, with the lease.
        let all: BTreeSet<String> = now.keys().cloned().collect();
        let theirs = &all - &rooms_of(&now, *n);
        assert_eq!(
            elsewhere(comp, *n).await,
            (Some(LEASE.to_string()), theirs),
            "instance {n}"
        );
    }
    // Instance 1, back after the lease, learns that its rooms are another's now.
    let mut back = connect(&prosody, 1).await;
    assert!(listed(&mut back, 1).await.is_empty());
    let (lease, theirs) = elsewhere(&mut back, 1).await;
    assert_eq!(lease, Some(LEASE.to_string()));
    assert!(gone.is_subset(&theirs), "{gone:?} not in {theirs:?}");
    back.close().await;
    for (_, comp) in comps {
        comp.close().await;
    }
    sim.close().await;
}

/// `jitape check-config --live` run as instance `n` (its own connection makes `n` live).
fn check_config_as(port: u16, n: usize, dir: &std::path::Path) -> String {
    let config = dir.join(format!("jitape-{n}.toml"));
    std::fs::write(
        &config,
        format!(
            "[xmpp]\nhost = \"127.0.0.1\"\nport = {}\ndomain = \"{}\"\nsecret = \"{}\"\nmuc_domains = [\"{MUC}\"]\n[media]\nbind = \"127.0.0.1\"\n[recording]\ndir = \"{}\"\n[http]\nbind = \"127.0.0.1:0\"\n",
            port,
            instance(n),
            secret(n),
            dir.join("rec").display()
        ),
    )
    .expect("config written");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jitape"))
        .args(["check-config", "--live", "--config"])
        .arg(&config)
        .env("NO_COLOR", "1")
        .output()
        .expect("jitape runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `check-config --live` lists every configured instance as the module sees it: live, away
/// with its lease running (its rooms wait for it), or down, with the rooms each owns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_live_lists_the_instances_as_prosody_sees_them() {
    support::logs();
    // Five instances, a lease long enough that instance 1 is still away during the check.
    let prosody = start_with(5, 120, "");
    let (mut comps, sim, expected) = three_with_rooms(&prosody).await;
    let (_, first) = comps.remove(0);
    first.close().await;
    tokio::time::sleep(SETTLE).await;
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().to_path_buf();
    let port = prosody.component_port;
    let text = tokio::task::spawn_blocking(move || check_config_as(port, 4, &dir))
        .await
        .expect("the check ran");
    let rooms = |n: usize| rooms_of(&expected, n).len();
    let line = format!(
        "{MUC}: 3 of 5 jitape instances live: {} (away, lease running, {} rooms), {} (live, {} rooms), {} (live, {} rooms), {} (live, this one, 0 rooms), {} (down, 0 rooms)",
        instance(1),
        rooms(1),
        instance(2),
        rooms(2),
        instance(3),
        rooms(3),
        instance(4),
        instance(5)
    );
    assert!(text.contains(&line), "wanted: {line}\n{text}");
    for (_, comp) in comps {
        comp.close().await;
    }
    sim.close().await;
}

fn is_ping(el: &minidom::Element) -> bool {
    el.name() == "iq"
        && el.attr("type") == Some("get")
        && el.get_child("ping", "urn:xmpp:ping").is_some()
}

/// An instance whose connection is open but that answers nothing (a machine gone without
/// closing its socket looks like this to Prosody until TCP gives up) is disconnected by the
/// module's ping, so its lease starts; an instance that answers keeps its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_answers_no_ping_is_disconnected_and_one_that_answers_is_not() {
    support::logs();
    let prosody = start_with(
        2,
        120,
        "  jitape_ping_interval = 1\n  jitape_ping_timeout = 1\n",
    );
    let mut silent = connect(&prosody, 1).await;
    let mut answering = connect(&prosody, 2).await;
    // Four pings answered by instance 2 (one a second); meanwhile instance 1 answers none.
    for _ in 0..4 {
        let ping = answering.expect("a ping from the module", is_ping).await;
        assert_eq!(ping.attr("from"), Some(MUC));
        answering
            .send(support::components::xml(&format!(
                "<iq xmlns='jabber:component:accept' type='result' from='{}' to='{MUC}' id='{}'/>",
                instance(2),
                ping.attr("id").unwrap_or_default()
            )))
            .await;
    }
    silent
        .expect_none("nothing", Duration::from_millis(200), |_| false)
        .await;
    answering
        .expect_none("nothing", Duration::from_millis(200), |_| false)
        .await;
    assert!(
        !silent.downs.is_empty(),
        "the silent instance kept its connection:\n{}",
        prosody.log()
    );
    assert!(answering.downs.is_empty(), "{:?}", answering.downs);
    let log = prosody.log();
    assert!(
        log.contains(&format!(
            "jitape instance {} did not answer a ping within 1s",
            instance(1)
        )),
        "{log}"
    );
    assert!(!log.contains(&format!("jitape instance {} did not answer", instance(2))));
    silent.close().await;
    answering.close().await;
}

/// Keeps nothing moving for longer than the lease, then shows instance 1 still gets its
/// rooms' events and lists them.
async fn assert_first_keeps_its_rooms(
    comps: &mut [(usize, Comp)],
    sim: &mut Comp,
    expected: &BTreeMap<String, usize>,
) {
    let quiet = collect(comps, Duration::from_secs(LEASE + 2)).await;
    assert!(quiet.is_empty(), "{quiet:?}");
    for r in expected.keys() {
        sim.join(&format!("p2@{SIM}/x"), r, "p2", None, "")
            .await
            .unwrap();
    }
    let seen = collect(comps, SETTLE).await;
    assert_owned(&seen, expected, &["occupant-joined p2"]);
    let (n, first) = &mut comps[0];
    assert_eq!(listed(first, *n).await, rooms_of(expected, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_back_within_the_lease_keeps_its_rooms() {
    support::logs();
    let prosody = start();
    let (mut comps, mut sim, expected) = three_with_rooms(&prosody).await;
    let (_, first) = comps.remove(0);
    first.close().await;
    comps.insert(0, (1, connect(&prosody, 1).await));
    assert_first_keeps_its_rooms(&mut comps, &mut sim, &expected).await;
    for (_, comp) in comps {
        comp.close().await;
    }
    sim.close().await;
}

/// The lease of the restart tests: long enough for Prosody's restart and both reconnections
/// to fit in it on a busy machine.
const RESTART_LEASE: u64 = 6;

/// Two instances own twelve rooms; Prosody stops (saving every room, occupants included) and
/// starts again; instance 2 and the simulation reconnect and the simulation touches every
/// room, which restores it. Returns Prosody, instance 2, the simulation and the owners.
async fn restarted_with_instance_two_back(
    prefix: &str,
) -> (Prosody, Comp, Comp, BTreeMap<String, usize>) {
    let mut prosody = start_with(2, RESTART_LEASE, "");
    let mut comps = Vec::new();
    for n in 1..=2 {
        comps.push((n, connect(&prosody, n).await));
    }
    let mut sim = Comp::sim(&prosody).await;
    let rooms = open_rooms(&mut sim, prefix).await;
    let expected: BTreeMap<String, usize> = rooms
        .iter()
        .map(|r| (r.clone(), owner(r, &[1, 2])))
        .collect();
    let seen = collect(&mut comps, SETTLE).await;
    assert_owned(&seen, &expected, CREATED);
    // Stopped while everyone is connected, as a restart does: the rooms are saved whole.
    let mut prosody = tokio::task::spawn_blocking(move || {
        prosody.stop();
        prosody
    })
    .await
    .unwrap();
    drop((comps, sim));
    let prosody = tokio::task::spawn_blocking(move || {
        prosody.restart();
        prosody
    })
    .await
    .unwrap();
    let second = connect(&prosody, 2).await;
    let mut sim = Comp::sim(&prosody).await;
    for r in &rooms {
        sim.join(FOCUS, r, "focus", None, "").await.ok();
    }
    (prosody, second, sim, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_prosody_restart_the_rooms_wait_a_lease_for_their_owners() {
    support::logs();
    let (prosody, second, sim, expected) = restarted_with_instance_two_back("kept").await;
    // Instance 2 is back first: it hears about its own rooms only. Instance 1's rooms are
    // not handed to it; they wait for instance 1, listed to instance 2 as another's.
    let mut comps = vec![(2, second)];
    let seen = collect(&mut comps, SETTLE).await;
    let mine: BTreeSet<&String> = seen.keys().collect();
    assert_eq!(
        mine,
        rooms_of(&expected, 2).iter().collect::<BTreeSet<_>>(),
        "{seen:?}"
    );
    let (_, second) = &mut comps[0];
    assert_eq!(listed(second, 2).await, rooms_of(&expected, 2));
    assert_eq!(
        elsewhere(second, 2).await,
        (Some(RESTART_LEASE.to_string()), rooms_of(&expected, 1))
    );
    // Instance 1, back within the lease, has its rooms, and nothing moves after the lease.
    let mut first = connect(&prosody, 1).await;
    assert_eq!(listed(&mut first, 1).await, rooms_of(&expected, 1));
    comps.insert(0, (1, first));
    let quiet = collect(&mut comps, Duration::from_secs(RESTART_LEASE + 1)).await;
    assert!(
        quiet.is_empty(),
        "nothing moves once both are back: {quiet:?}"
    );
    for (_, comp) in comps {
        comp.close().await;
    }
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_prosody_restart_an_owner_that_stays_away_loses_its_rooms_after_the_lease() {
    support::logs();
    let (_prosody, second, sim, expected) = restarted_with_instance_two_back("moved").await;
    let mut comps = vec![(2, second)];
    collect(&mut comps, SETTLE).await;
    assert_eq!(listed(&mut comps[0].1, 2).await, rooms_of(&expected, 2));
    // Instance 1 never comes back: when the lease after Prosody's start is over, its rooms
    // are announced to instance 2 like new rooms.
    let seen = collect(&mut comps, Duration::from_secs(RESTART_LEASE + 1)).await;
    let moved: BTreeMap<String, usize> =
        rooms_of(&expected, 1).into_iter().map(|r| (r, 2)).collect();
    assert_owned(&seen, &moved, CREATED);
    assert_eq!(
        listed(&mut comps[0].1, 2).await,
        expected.keys().cloned().collect::<BTreeSet<_>>()
    );
    for (_, comp) in comps {
        comp.close().await;
    }
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_second_connection_does_not_mark_the_instance_down() {
    support::logs();
    let prosody = start();
    let (mut comps, mut sim, expected) = three_with_rooms(&prosody).await;
    let settings = LinkSettings {
        host: "127.0.0.1".into(),
        port: prosody.component_port,
        domain: instance(1),
        secret: Secret::new(secret(1)),
        ping_target: MUC.into(),
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(5),
        reconnect_min: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(1),
        limits: Default::default(),
    };
    let refused = link::connect(&settings).await.err().map(|e| e.to_string());
    assert!(
        refused.as_deref().is_some_and(|e| e.contains("conflict")),
        "second connection for {}: {refused:?}",
        instance(1)
    );
    assert_first_keeps_its_rooms(&mut comps, &mut sim, &expected).await;
    for (_, comp) in comps {
        assert!(comp.downs.is_empty(), "{:?}", comp.downs);
        comp.close().await;
    }
    sim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_instance_list_or_lease_is_reported() {
    support::logs();
    let global = "Component \"wrong1.localhost\" \"muc\"\n  modules_enabled = { \"jitape\" }\n  jitape_components = { \"jitape-1.localhost\", \"localhost\" }\n\
        Component \"wrong2.localhost\" \"muc\"\n  modules_enabled = { \"jitape\" }\n  jitape_components = { \"jitape-1.localhost\" }\n  jitape_component = \"jitape-1.localhost\"\n\
        Component \"wrong3.localhost\" \"muc\"\n  modules_enabled = { \"jitape\" }\n  jitape_components = { \"jitape-1.localhost\" }\n  jitape_lease = -1\n\
        Component \"jitape-1.localhost\"\n  component_secret = \"s\"\n";
    let prosody = support::components::start_prosody(
        &format!(
            "  modules_enabled = {{ \"jitape\" }}\n  jitape_components = {{ \"jitape-1.localhost\", \"{SIM}\" }}\n"
        ),
        global,
    );
    support::components::wait_for_errors(
        &prosody,
        &[
            &[
                "wrong1.localhost",
                "jitape_components = \"localhost\" is a VirtualHost",
            ],
            &[
                "wrong2.localhost",
                "both jitape_component and jitape_components are set",
            ],
            &["wrong3.localhost", "jitape_lease = -1"],
        ],
    );
    // The correctly configured MUC complains about nothing (its info line may come later).
    let log = support::components::wait_for_log(&prosody, "lease 10s");
    assert!(
        !support::components::error_lines(&log)
            .iter()
            .any(|l| l.contains(&format!("{MUC}:jitape"))),
        "{log}"
    );
}
