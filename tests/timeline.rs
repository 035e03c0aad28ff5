//! The audio timeline and the files, end to end over the loopback deployment: timing under a
//! bad network, silence-dropping between talk spurts, speaking segments, stems, other sample
//! rates, hidden participants and identities in the sidecar, and the finalize hook.

use jitape_sim::harness as support;

use std::time::{Duration, SystemTime};

use jitape::sink::{FinalizedFiles, sidecar};
use jitape_sim::analyze::{check_recording, check_stem, decode_flac, tone_intervals};
use jitape_sim::loopback::{Loopback, MUC_DOMAIN};
use jitape_sim::netem::NetemConfig;
use jitape_sim::plan::{ConferencePlan, SpeakerPlan, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;
use jitape_sim::world::ConferenceOutcome;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn speaker(i: usize, talk: &[(f64, f64)]) -> SpeakerPlan {
    SpeakerPlan::simple(
        &format!("{:08x}", 0xd000_0000u32 + i as u32),
        &format!("Speaker{i}"),
        VoiceSpec::Tone(default_tone_hz(i)),
        Duration::ZERO,
        None,
        talk.iter().map(|(a, b)| window(*a, *b)).collect(),
    )
}

async fn record(
    extra: &str,
    rate: u32,
    plan: ConferencePlan,
) -> (ConferenceOutcome, FinalizedFiles, tempfile::TempDir) {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Loopback::start_with(dir.path(), rate, extra).await.unwrap();
    let (outcome, files) = lb.play(plan).await.unwrap();
    lb.stop().await;
    support::flac_test(&files.flac);
    (outcome, files, dir)
}

fn check(outcome: &ConferenceOutcome, files: &FinalizedFiles) {
    let sc = sidecar::read(&files.sidecar).unwrap();
    let report = check_recording(&files.flac, &sc, outcome).unwrap();
    assert!(report.ok(), "{report}");
}

/// Seconds on the file's timeline of an instant of the plan.
fn file_time(sc: &sidecar::Sidecar, outcome: &ConferenceOutcome, at: Duration) -> f64 {
    let start: SystemTime = sc.start.utc.into();
    let epoch = outcome
        .wall_epoch
        .duration_since(start)
        .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64());
    epoch + at.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_keep_their_place_through_loss_reordering_jitter_and_duplicates() {
    let mut plan = ConferencePlan::empty(&format!("badnet@{MUC_DOMAIN}"), 17.0);
    plan.speakers = vec![
        speaker(0, &[(1.0, 5.0), (9.0, 12.0)]),
        speaker(1, &[(5.5, 8.5), (12.5, 15.5)]),
    ];
    let plan = plan.with_netem(NetemConfig {
        loss: 0.05,
        duplicate: 0.02,
        reorder: 0.02,
        reorder_delay: Duration::from_millis(30),
        jitter: Duration::from_millis(40),
        delay: Duration::ZERO,
        seed: 42,
    });
    let (outcome, files, _dir) = record("", 48_000, plan).await;
    // Every frame that arrived in its place (edges, no hole, level, pitch); the lost ones
    // concealed or silent, never for longer than the concealment limit.
    check(&outcome, &files);
}

/// The path falls 900 ms behind in the middle of a 12 s spurt and stays behind for longer
/// than jitape's 4 s clock window: every packet continues the one before it, so it is delay,
/// and the spurt keeps its place (before d77a737 it moved 900 ms, behind a 900 ms hole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_falls_behind_mid_spurt_and_stays_moves_nothing() {
    let mut plan = ConferencePlan::empty(&format!("behind@{MUC_DOMAIN}"), 19.0);
    plan.speakers = vec![speaker(0, &[(1.0, 13.0)]), speaker(1, &[(15.0, 17.0)])];
    let plan = plan.with_delay_step(4.0, 10.5, Duration::from_millis(900));
    let (outcome, files, _dir) = record("", 48_000, plan).await;
    check(&outcome, &files);
}

/// The path falls 0.9 s behind mid-spurt and stays behind across a pause: the spurt after
/// the pause arrives 0.9 s off the estimate, like a sender clock that moved, but at the delay
/// level of the packets just before the pause. It is placed where it was spoken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spurt_that_starts_while_the_path_stays_behind_is_placed_where_it_was_spoken() {
    let mut plan = ConferencePlan::empty(&format!("stays@{MUC_DOMAIN}"), 17.0);
    plan.speakers = vec![
        speaker(0, &[(1.0, 6.0), (6.8, 10.0)]),
        speaker(1, &[(13.0, 15.0)]),
    ];
    let plan = plan.with_delay_step(4.0, 7.5, Duration::from_millis(900));
    let (outcome, files, _dir) = record("", 48_000, plan).await;
    check(&outcome, &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_silence_between_spurts_never_shifts_the_next_one_and_segments_match() {
    let mut plan = ConferencePlan::empty(&format!("dtx@{MUC_DOMAIN}"), 22.0);
    // Pauses of 0.5 s to 5 s with nothing sent (the bridge drops silence; DTX).
    plan.speakers = vec![
        speaker(0, &[(1.0, 3.0), (3.5, 5.0), (10.0, 12.0), (13.0, 14.5)]),
        speaker(1, &[(5.5, 7.5), (15.0, 17.0), (19.5, 20.5)]),
    ];
    let (outcome, files, _dir) = record("", 48_000, plan).await;
    check(&outcome, &files);
    // Speaking segments in the sidecar match the talk windows within 100 ms.
    let sc = sidecar::read(&files.sidecar).unwrap();
    for (sp, windows) in outcome.plan.audible() {
        let p = sc
            .participants
            .iter()
            .find(|p| p.display_name.as_deref() == Some(sp.display_name.as_str()))
            .unwrap_or_else(|| panic!("{} in the sidecar", sp.display_name));
        let segments: Vec<(f64, f64)> = p
            .speaking
            .iter()
            .map(|s| {
                let rate = f64::from(sc.sample_rate);
                (s.start.sample as f64 / rate, s.end.sample as f64 / rate)
            })
            .collect();
        assert_eq!(
            segments.len(),
            windows.len(),
            "{}: {segments:?}",
            sp.display_name
        );
        for (seg, w) in segments.iter().zip(&windows) {
            let (a, b) = (
                file_time(&sc, &outcome, w.start),
                file_time(&sc, &outcome, w.end),
            );
            assert!(
                (seg.0 - a).abs() <= 0.1 && (seg.1 - b).abs() <= 0.1,
                "{}: segment {seg:?} vs window ({a:.3}, {b:.3})",
                sp.display_name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stems_hold_only_their_participant_and_match_the_mix_in_length() {
    let mut plan = ConferencePlan::empty(&format!("stems@{MUC_DOMAIN}"), 14.0);
    plan.speakers = vec![
        speaker(0, &[(1.0, 4.0), (8.0, 10.0)]),
        speaker(1, &[(3.0, 6.0)]),
    ];
    // The second speaker refreshes (new endpoint, same browser): their stem continues.
    plan.speakers[1].stints[0].leave_at = Some(secs(7.0));
    plan.speakers[1].stints.push(jitape_sim::plan::Stint {
        endpoint: "d00000ff".into(),
        join_at: secs(9.0),
        leave_at: None,
        knock: false,
    });
    plan.speakers[1].talk.push(window(10.5, 12.5));
    let (outcome, files, _dir) = record("stems = true", 48_000, plan).await;
    check(&outcome, &files);
    assert_eq!(
        files.stems.len(),
        2,
        "one stem per participant: {:?}",
        files.stems
    );
    let mix = decode_flac(&files.flac).unwrap();
    let sc = sidecar::read(&files.sidecar).unwrap();
    for (i, (sp, windows)) in outcome.plan.audible().into_iter().enumerate() {
        let p = sc
            .participants
            .iter()
            .find(|p| p.display_name.as_deref() == Some(sp.display_name.as_str()))
            .unwrap();
        let stem_name = p
            .stem
            .as_ref()
            .unwrap_or_else(|| panic!("{} has a stem", sp.display_name));
        let stem_path = files.flac.with_file_name(stem_name);
        support::flac_test(&stem_path);
        let stem = decode_flac(&stem_path).unwrap();
        assert_eq!(
            stem.samples.len(),
            mix.samples.len(),
            "stem and mix have equal length"
        );
        let own = tone_intervals(&stem, default_tone_hz(i));
        assert_eq!(own.len(), windows.len(), "{}: {own:?}", sp.display_name);
        // Their voice exactly as in the mix, and nobody else's.
        let report = check_stem(&stem_path, &sc, &outcome, &sp.display_name).unwrap();
        assert!(report.ok(), "{}'s stem: {report}", sp.display_name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcription_rates_16_and_24_khz() {
    for rate in [16_000, 24_000] {
        let mut plan = ConferencePlan::empty(&format!("rate{rate}@{MUC_DOMAIN}"), 8.0);
        plan.speakers = vec![speaker(0, &[(1.0, 3.0)]), speaker(1, &[(4.0, 6.0)])];
        let (outcome, files, _dir) = record("", rate, plan).await;
        let decoded = decode_flac(&files.flac).unwrap();
        assert_eq!(decoded.rate, rate);
        check(&outcome, &files);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_participants_are_not_recorded_and_identities_reach_the_sidecar() {
    let mut plan = ConferencePlan::empty(&format!("consent@{MUC_DOMAIN}"), 9.0);
    plan.speakers = vec![speaker(0, &[(1.0, 3.0)]), speaker(1, &[(2.0, 6.0)])];
    plan.speakers[0].identity = Some(("user-42".into(), "ada@example.org".into()));
    plan.speakers[1].identity = Some(("user-99".into(), "hidden@example.org".into()));
    plan.speakers[1].hidden_from_recorder = true;
    let (outcome, files, _dir) = record("", 48_000, plan).await;
    // The hidden speaker's tone must be nowhere in the file (the stray-tone check).
    check(&outcome, &files);
    let mix = decode_flac(&files.flac).unwrap();
    assert!(tone_intervals(&mix, default_tone_hz(1)).is_empty());
    let sc = sidecar::read(&files.sidecar).unwrap();
    let ada = sc
        .participants
        .iter()
        .find(|p| p.identity.id.as_deref() == Some("user-42"))
        .expect("identity kept");
    assert_eq!(ada.identity.email.as_deref(), Some("ada@example.org"));
    assert_eq!(ada.key, "id:user-42");
    let text = std::fs::read_to_string(&files.sidecar).unwrap();
    assert!(
        !text.contains("user-99")
            && !text.contains("hidden@example.org")
            && !text.contains("Speaker1"),
        "nothing personal about the hidden participant:\n{text}"
    );
    let hidden: Vec<_> = sc
        .participants
        .iter()
        .filter(|p| p.hidden_from_recorder)
        .collect();
    assert_eq!(hidden.len(), 1);
    assert!(hidden[0].presence.is_empty() && hidden[0].display_name.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_hook_is_killed_and_reported_and_the_next_conferences_hook_still_runs() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hook.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$JITAPE_ROOM\" in\n  hang*) touch \"$JITAPE_FLAC.started\"; sleep 30; touch \"$JITAPE_FLAC.done\" ;;\n  fail*) echo broken >&2; exit 3 ;;\n  *) echo \"$@\" > \"$JITAPE_FLAC.hooked\" ;;\nesac\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let extra = format!(
        "[hook]\ncommand = \"{}\"\ntimeout = \"4s\"\n",
        script.display()
    );
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let mut lb = Loopback::start_with(&rec, 48_000, &extra).await.unwrap();
    let metrics = lb.app.as_ref().unwrap().metrics();
    let short = |room: &str, end: f64| {
        let mut p = ConferencePlan::empty(&format!("{room}@{MUC_DOMAIN}"), end);
        p.speakers = vec![speaker(0, &[(1.0, 2.0)])];
        p
    };
    // The hanging hook starts first; the failing and the good one finish while it hangs.
    let (a, b, c) = tokio::join!(
        lb.world.run(short("hang", 4.0)),
        lb.world.run(short("fail", 5.0)),
        lb.world.run(short("good", 6.0)),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let fa = lb.wait_finalized(&a.plan.room, secs(15.0)).await.unwrap();
    let fb = lb.wait_finalized(&b.plan.room, secs(15.0)).await.unwrap();
    let fc = lb.wait_finalized(&c.plan.room, secs(15.0)).await.unwrap();
    let hooked = support::files_with_suffix(&rec, ".hooked");
    // Within 4 s the good hook has run although the hanging one has not been killed yet.
    let deadline = std::time::Instant::now() + secs(3.0);
    while !fc.flac.with_extension("flac.hooked").exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(secs(0.1)).await;
    }
    assert!(
        fc.flac.with_extension("flac.hooked").exists(),
        "the next conference's hook ran: {hooked:?}"
    );
    let args = std::fs::read_to_string(fc.flac.with_extension("flac.hooked")).unwrap();
    assert!(
        args.contains(&fc.flac.display().to_string())
            && args.contains(&fc.sidecar.display().to_string()),
        "paths as arguments: {args}"
    );
    assert!(
        fa.flac.with_extension("flac.started").exists(),
        "the hanging hook started"
    );
    // ...and is killed at its timeout: it never finishes.
    tokio::time::sleep(secs(6.0)).await;
    assert!(
        !fa.flac.with_extension("flac.done").exists(),
        "killed, not finished"
    );
    assert_eq!(metrics.hook_runs.get(), 3);
    assert_eq!(metrics.hook_timeouts.get(), 1);
    assert_eq!(metrics.hook_failures.get(), 2, "the timeout and the exit 3");
    lb.stop().await;
    let _ = fb;
}
