//! Three `jitape run` instances share twelve conferences; a fourth one that connects while
//! they run takes none of them over and records the rooms created after it came.

use std::collections::BTreeMap;

use super::*;

/// A recording's final FLAC and sidecar.
type Final = (std::path::PathBuf, std::path::PathBuf);

/// The four instances.
const INSTANCES: usize = 4;
/// When instance 4 starts, seconds into the first conferences.
const FOURTH_AT: f64 = 3.0;
/// When the later rooms start (instance 4 is connected by then: the test waits for it).
const LATER_AT: f64 = 7.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_record_twelve_conferences_once_each_and_a_fourth_gets_only_new_rooms() {
    support::logs();
    let prosody = prosody_with(INSTANCES, "");
    let tmp = tempfile::tempdir().unwrap();
    // Each instance records into a directory of its own here, so that the files say which
    // instance recorded what.
    let base = |n: usize| tmp.path().join(format!("base-{n}"));
    let mut instances: BTreeMap<usize, JitapeProcess> = (1..=3)
        .map(|n| (n, jitape(&prosody, n, &base(n))))
        .collect();
    for n in 1..=3 {
        wait_for_log(
            &prosody,
            &format!("jitape instance {} connected", instance(n)),
        );
    }
    let world = World::connect(WorldSettings {
        host: "127.0.0.1".into(),
        port: prosody.component_port,
        domain: SIM.into(),
        secret: "sim-secret".into(),
        muc_domain: MUC.into(),
        recorder_domain: REC.into(),
    })
    .await
    .expect("simulation connects to prosody");

    let first: Vec<String> = (0..12).map(|i| format!("lesson{i}@{MUC}")).collect();
    let first_owner: BTreeMap<&String, usize> = first
        .iter()
        .map(|r| (r, owner_among(r, &[1, 2, 3])))
        .collect();
    for n in 1..=3 {
        assert!(
            first_owner.values().any(|o| *o == n),
            "no room for instance {n}: {first_owner:?}"
        );
    }
    // Rooms created once instance 4 is live: two that hash to it, one to another instance.
    let to_fourth: Vec<String> = (0..)
        .map(|i| format!("later{i}@{MUC}"))
        .filter(|r| owner_among(r, &[1, 2, 3, 4]) == 4)
        .take(2)
        .collect();
    let elsewhere = (0..)
        .map(|i| format!("other{i}@{MUC}"))
        .find(|r| owner_among(r, &[1, 2, 3, 4]) != 4)
        .expect("a room for instances 1-3");
    let later: Vec<String> = to_fourth.iter().cloned().chain([elsewhere]).collect();

    let world = std::sync::Arc::new(world);
    let spawn_runs = |rooms: &[String], end: f64| -> Vec<_> {
        rooms
            .iter()
            .map(|r| {
                let (w, plan) = (std::sync::Arc::clone(&world), plan(r, end));
                tokio::spawn(async move { w.run(plan).await })
            })
            .collect()
    };
    let first_runs = spawn_runs(&first, 14.0);
    tokio::time::sleep(Duration::from_secs_f64(FOURTH_AT)).await;
    instances.insert(4, jitape(&prosody, 4, &base(4)));
    let connected = format!("jitape instance {} connected", instance(4));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !prosody.log().contains(&connected) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(LATER_AT - FOURTH_AT)).await;
    let later_runs = spawn_runs(&later, 7.0);
    let mut outcomes = Vec::new();
    for run in first_runs.into_iter().chain(later_runs) {
        outcomes.push(
            run.await
                .expect("conference task")
                .expect("conference played"),
        );
    }

    // Every room's final files, wherever they are (a room nobody recorded is waited for a
    // bounded time).
    for room in first.iter().chain(&later) {
        for n in 1..=INSTANCES {
            let wait = if n == INSTANCES { 10.0 } else { 0.1 };
            if wait_for_final(&recordings(&base(n)), room, Duration::from_secs_f64(wait))
                .await
                .is_some()
            {
                break;
            }
        }
    }
    let mut statuses = Vec::new();
    for (n, p) in instances.iter_mut() {
        statuses.push((*n, p.terminate(Duration::from_secs(15))));
    }
    std::sync::Arc::into_inner(world)
        .expect("every conference is done")
        .close()
        .await;
    let logs = || {
        let mut out = String::new();
        for (n, p) in &instances {
            out += &format!("--- instance {n} ---\n{}\n", p.log());
        }
        out + &format!("--- prosody ---\n{}", prosody.log())
    };
    for (n, status) in &statuses {
        assert!(
            status.is_some_and(|s| s.success()),
            "instance {n}: {status:?}\n{}",
            logs()
        );
    }

    // Who recorded what, once every instance has stopped: a room's final files in each
    // instance's directory; nothing left unfinished anywhere.
    let mut found: BTreeMap<String, Vec<(usize, Final)>> = BTreeMap::new();
    for n in 1..=INSTANCES {
        let dir = recordings(&base(n));
        let left = support::files_with_suffix(&dir, ".partial");
        assert!(left.is_empty(), "instance {n} left {left:?}\n{}", logs());
        for room in first.iter().chain(&later) {
            let room_dir = dir.join(jitape::sink::room_dir_name(room));
            for flac in support::files_with_suffix(&room_dir, ".flac") {
                let sc = flac.with_extension("json");
                found.entry(room.clone()).or_default().push((n, (flac, sc)));
            }
        }
    }
    for (room, outcome) in first.iter().chain(&later).zip(outcomes) {
        let want = if first.contains(room) {
            first_owner[room]
        } else {
            owner_among(room, &[1, 2, 3, 4])
        };
        let by = found.get(room).map(Vec::as_slice).unwrap_or_default();
        // Exactly once, by the instance the module chose; never moved (one recorder join).
        let recorders: Vec<usize> = by.iter().map(|(n, _)| *n).collect();
        assert_eq!(recorders, [want], "{room}\n{}", logs());
        assert_eq!(
            outcome.recorder_joins.len(),
            1,
            "{room}: {:?}",
            outcome.recorder_joins
        );
        let (flac, sc) = &by[0].1;
        support::flac_test(flac);
        let sc = sidecar::read(sc).unwrap();
        assert_eq!(sc.end_reason.as_deref(), Some("room-destroyed"), "{room}");
        assert!(sc.gaps.is_empty(), "{room}: {:?}", sc.gaps);
        let report = jitape_sim::analyze::check_recording(flac, &sc, &outcome).unwrap();
        assert!(report.ok(), "{room}: {report}\n{}", logs());
    }
    // Instance 4 came while the first twelve ran: it has none of them, and the new rooms
    // that hash to it.
    let of_fourth: Vec<&String> = found
        .iter()
        .filter(|(_, by)| by.iter().any(|(n, _)| *n == 4))
        .map(|(r, _)| r)
        .collect();
    assert_eq!(of_fourth, to_fourth.iter().collect::<Vec<_>>());
}
