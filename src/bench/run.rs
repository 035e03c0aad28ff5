//! One benchmark run, start to finish: the simulated deployment in this process, jitape as
//! its own process, the conferences played over a ramp while `/proc/<jitape>` is sampled
//! every second, then the files waited for, jitape stopped (SIGTERM), its log read and every
//! recording verified.
//!
//! In: validated [`BenchOptions`]. Out: the [`BenchReport`]. Progress goes to stderr.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::logscan::{self, LogScan};
use super::process::{JitapeProcess, config_text};
use super::report::{self, BenchReport, ConferenceFigures, RunData, Sample};
use super::scenario;
use super::verify::{self, Verdict};
use super::{BenchError, BenchOptions, procfs};
use jitape_sim::loopback::{
    self, MUC_DOMAIN, RECORDER_DOMAIN, RECORDER_SECRET, SIM_DOMAIN, SIM_SECRET,
};
use jitape_sim::plan::ConferencePlan;
use jitape_sim::router::SimServer;
use jitape_sim::world::{ConferenceOutcome, World, WorldSettings};

/// jitape settles this long after connecting before the idle figures are taken, and after the
/// run before the "after" figures (long enough for the memory trimmer to look twice).
const SETTLE: Duration =
    Duration::from_secs(3).saturating_add(jitape::memory::CHECK_EVERY.saturating_mul(2));
const PROGRESS_EVERY: f64 = 30.0;

fn sim_error(e: impl std::fmt::Display) -> BenchError {
    BenchError::Sim(e.to_string())
}

/// The plans of this run.
fn plans(opts: &BenchOptions) -> Vec<ConferencePlan> {
    match &opts.large {
        Some(shape) => vec![scenario::large_conference(0, shape, opts.seed)],
        None => (0..opts.conferences)
            .map(|i| scenario::conference(i, opts.speakers, opts.duration, opts.seed))
            .collect(),
    }
}

/// The work directory, and whether it is a temporary one.
fn work_dir(opts: &BenchOptions) -> Result<(PathBuf, bool), BenchError> {
    let (dir, temp) = match &opts.out {
        Some(d) => (d.clone(), false),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!("jitape-bench-{}-{nanos:08x}", std::process::id());
            (std::env::temp_dir().join(name), true)
        }
    };
    let recordings = dir.join("recordings");
    std::fs::create_dir_all(&recordings).map_err(|e| BenchError::io("create", &recordings, e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| BenchError::io("resolve", &dir, e))?;
    Ok((dir, temp))
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The deployment jitape connects to.
struct Deployment {
    server: SimServer,
    world: Arc<World>,
    jitape: JitapeProcess,
}

async fn deploy(opts: &BenchOptions, work: &Path) -> Result<Deployment, BenchError> {
    let server = SimServer::start(loopback::server_config())
        .await
        .map_err(sim_error)?;
    let port = server.component_addr().port();
    let config = config_text(
        port,
        &work.join("recordings"),
        RECORDER_DOMAIN,
        RECORDER_SECRET,
        MUC_DOMAIN,
        opts.sample_rate,
    );
    let mut jitape = JitapeProcess::spawn(&opts.jitape, work, &config)?;
    let attached = server.wait_for(|s| s.components.iter().any(|c| c == RECORDER_DOMAIN));
    if tokio::time::timeout(Duration::from_secs(20), attached)
        .await
        .is_err()
        || !jitape.alive()
    {
        let tail: String = jitape
            .log_text()
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n");
        return Err(BenchError::Jitape(format!(
            "did not connect within 20 s; its log ends:\n{tail}"
        )));
    }
    let world = World::connect(WorldSettings {
        host: "127.0.0.1".into(),
        port,
        domain: SIM_DOMAIN.into(),
        secret: SIM_SECRET.into(),
        muc_domain: MUC_DOMAIN.into(),
        recorder_domain: RECORDER_DOMAIN.into(),
    })
    .await
    .map_err(sim_error)?;
    Ok(Deployment {
        server,
        world: Arc::new(world),
        jitape,
    })
}

/// Samples jitape every second until told to stop (or it is gone).
async fn sample_loop(
    pid: u32,
    t0: Instant,
    active: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_print: Option<Sample> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let Some(jitape) = procfs::sample(pid) else {
            break;
        };
        let s = Sample {
            t: t0.elapsed().as_secs_f64(),
            active: active.load(Ordering::Relaxed),
            jitape,
            sim_cpu: procfs::own_cpu(),
        };
        match last_print {
            Some(p) if s.t - p.t < PROGRESS_EVERY => {}
            _ => {
                let pct = |a: Duration, b: Duration| {
                    last_print.map_or(0.0, |p| {
                        (a.saturating_sub(b)).as_secs_f64() / (s.t - p.t) * 100.0
                    })
                };
                eprintln!(
                    "  t={:>5.0}s conferences={:<4} jitape cpu={:>5.1}% rss={:>6.1} MiB threads={} fds={} | sim cpu={:.1}%",
                    s.t,
                    s.active,
                    pct(
                        s.jitape.cpu,
                        last_print.map_or(s.jitape.cpu, |p| p.jitape.cpu)
                    ),
                    s.jitape.rss_kib as f64 / 1024.0,
                    s.jitape.threads,
                    s.jitape.fds,
                    pct(s.sim_cpu, last_print.map_or(s.sim_cpu, |p| p.sim_cpu)),
                );
                last_print = Some(s);
            }
        }
        out.push(s);
    }
    out
}

type Played = (String, Result<ConferenceOutcome, String>);

/// Plays every plan, starting them evenly over `ramp`.
async fn play_all(
    world: Arc<World>,
    plans: Vec<ConferencePlan>,
    ramp: Duration,
    active: Arc<AtomicUsize>,
) -> Vec<Played> {
    let n = plans.len().max(1);
    let start = tokio::time::Instant::now();
    let mut set = JoinSet::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let at = start + ramp.mul_f64(i as f64 / n as f64);
        let world = Arc::clone(&world);
        let active = Arc::clone(&active);
        set.spawn(async move {
            tokio::time::sleep_until(at).await;
            let room = plan.room.to_lowercase();
            active.fetch_add(1, Ordering::Relaxed);
            let played = world.run(plan).await.map_err(|e| e.to_string());
            active.fetch_sub(1, Ordering::Relaxed);
            (i, room, played)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok(x) => out.push(x),
            Err(e) => out.push((usize::MAX, String::new(), Err(e.to_string()))),
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, room, r)| (room, r)).collect()
}

/// Waits until every room's recording is final (or `limit` passes).
async fn wait_for_files(dir: &Path, rooms: &[String], limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if rooms
            .iter()
            .all(|r| verify::find_room_files(dir, r).is_ok())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Verifies every recording, on all CPUs (jitape is stopped by then).
async fn verify_all(dir: PathBuf, played: &[Played], analyse: bool) -> Vec<Verdict> {
    let jobs: Vec<(usize, ConferenceOutcome)> = played
        .iter()
        .enumerate()
        .filter_map(|(i, (_, r))| r.as_ref().ok().map(|o| (i, o.clone())))
        .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let done = tokio::task::spawn_blocking(move || {
        let next = AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some((i, outcome)) = jobs.get(k) else {
                            break;
                        };
                        let v = verify::verify(&dir, outcome, analyse);
                        results
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((*i, v));
                    }
                });
            }
        });
        results.into_inner().unwrap_or_else(|p| p.into_inner())
    })
    .await
    .unwrap_or_default();
    let mut out: Vec<Verdict> = played
        .iter()
        .map(|(room, r)| Verdict {
            room: room.clone(),
            problems: r
                .as_ref()
                .err()
                .map(|e| vec![format!("simulation: {e}")])
                .unwrap_or_default(),
            ..Verdict::default()
        })
        .collect();
    for (i, v) in done {
        if let Some(slot) = out.get_mut(i) {
            *slot = v;
        }
    }
    out
}

fn figures(played: &[Played], verdicts: Vec<Verdict>, log: &LogScan) -> Vec<ConferenceFigures> {
    played
        .iter()
        .zip(verdicts)
        .map(|((room, r), mut verdict)| {
            verdict.refused = verdict.flac.is_none() && log.refused.contains(&room.to_lowercase());
            let (sent, skipped, wall) = r.as_ref().map_or((0, 0, 0.0), |o| {
                (
                    o.sent.iter().map(|l| l.packets()).sum(),
                    o.sent.iter().map(|l| l.skipped_ticks).sum(),
                    o.plan.end_at.as_secs_f64(),
                )
            });
            let totals = log.totals.get(room).cloned().unwrap_or_default();
            let sim_max_late_ms = r.as_ref().map_or(0.0, max_lateness_ms);
            ConferenceFigures {
                room: room.clone(),
                wall_seconds: wall,
                packets_sent: sent,
                packets_received: totals.packets,
                lost: totals.lost,
                late: totals.late,
                sim_skipped_ticks: skipped,
                sim_max_late_ms,
                verdict,
            }
        })
        .collect()
}

/// How late the simulated bridge handed each talk spurt's first packet to its stack, at most.
fn max_lateness_ms(o: &ConferenceOutcome) -> f64 {
    o.sent
        .iter()
        .filter_map(|log| Some((log.epoch?, log)))
        .flat_map(|(epoch, log)| {
            log.speakers
                .iter()
                .flat_map(|s| &s.windows)
                .filter_map(move |w| w.lateness(epoch))
        })
        .map(|late| late.as_secs_f64() * 1000.0)
        .fold(0.0, f64::max)
}

pub(super) async fn run(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    let started_utc = chrono::Utc::now().to_rfc3339();
    let load_before = load_average();
    let (work, temp) = work_dir(opts)?;
    let recordings = work.join("recordings");
    let plans = plans(opts);
    let rooms: Vec<String> = plans.iter().map(|p| p.room.to_lowercase()).collect();
    let longest = plans.iter().map(|p| p.end_at).max().unwrap_or_default();
    eprintln!(
        "jitape bench: {} conference(s), {:.0} s each; work dir {}",
        plans.len(),
        longest.as_secs_f64(),
        work.display()
    );
    let Deployment {
        server,
        world,
        mut jitape,
    } = deploy(opts, &work).await?;
    let pid = jitape.pid();
    tokio::time::sleep(SETTLE).await;
    let idle = procfs::sample(pid).ok_or_else(|| BenchError::Jitape("exited at start".into()))?;
    eprintln!(
        "  idle: rss={:.1} MiB threads={} fds={}",
        idle.rss_kib as f64 / 1024.0,
        idle.threads,
        idle.fds
    );

    let contention = if opts.contention {
        Some(
            super::contention::Contention::start(&work)
                .map_err(|e| BenchError::io("start the contention in", &work, e))?,
        )
    } else {
        None
    };
    let t0 = Instant::now();
    let sim_cpu0 = procfs::own_cpu();
    let active = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let http = super::health::address_in_log(&jitape.log_text())
        .ok_or_else(|| BenchError::Jitape("no HTTP address in its log".into()))?;
    let health = tokio::spawn(super::health::watch(http, stop_rx.clone()));
    let sampler = tokio::spawn(sample_loop(pid, t0, Arc::clone(&active), stop_rx));
    let played = play_all(Arc::clone(&world), plans, opts.ramp(), active).await;
    wait_for_files(&recordings, &rooms, Duration::from_secs(60)).await;
    let contention = contention.map(super::contention::Contention::stop);
    let end = procfs::sample(pid);
    let sim_cpu_run = procfs::own_cpu().saturating_sub(sim_cpu0);
    let run_wall = t0.elapsed();
    tokio::time::sleep(SETTLE).await;
    let after = procfs::sample(pid);
    let _ = stop_tx.send(true);
    let samples = sampler.await.unwrap_or_default();
    let health = health.await.unwrap_or_default();
    let exit = match jitape.terminate(Duration::from_secs(30)).await {
        Some(s) if s.success() => "ok".to_string(),
        Some(s) => format!("failed: {s}"),
        None => "did not stop within 30 s of SIGTERM".to_string(),
    };
    if let Ok(world) = Arc::try_unwrap(world) {
        world.close().await;
    }
    server.shutdown().await;
    let (Some(end), Some(after)) = (end, after) else {
        return Err(BenchError::Jitape(format!(
            "exited during the run; see {}",
            jitape.log.display()
        )));
    };

    eprintln!("  verifying {} recording(s)...", played.len());
    let log = logscan::scan(&jitape.log_text());
    let verdicts = verify_all(recordings.clone(), &played, opts.analyse).await;
    let conferences = figures(&played, verdicts, &log);
    let data = RunData {
        idle,
        samples,
        end,
        after,
        sim_cpu_run,
        run_wall,
        conferences,
        log,
        exit,
        contention,
        health,
    };
    let report = assemble(opts, &data, started_utc, load_before);
    if temp && report.verification.all_ok {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("  recordings and log kept in {}", work.display());
    }
    Ok(report)
}

fn assemble(
    opts: &BenchOptions,
    d: &RunData,
    started_utc: String,
    load_before: f64,
) -> BenchReport {
    let (cpus, cpu_model, mem_kib) = procfs::machine();
    let m = d.conferences.len();
    let verified = d.conferences.iter().filter(|c| c.verdict.ok()).count();
    let refused = d.conferences.iter().filter(|c| c.verdict.refused).count();
    BenchReport {
        schema: "jitape.bench/1",
        started_utc,
        jitape_binary: opts.jitape.display().to_string(),
        machine: report::Machine {
            cpus,
            cpu_model,
            mem_mib: mem_kib / 1024,
            load_before,
        },
        options: report::Options {
            conferences: m,
            speakers: if opts.large.is_some() {
                0
            } else {
                opts.speakers
            },
            duration_s: opts
                .large
                .as_ref()
                .map_or(opts.duration, |l| l.duration)
                .as_secs_f64(),
            ramp_s: opts.ramp().as_secs_f64(),
            large: opts.large.as_ref().map(|l| report::LargeOptions {
                participants: l.participants,
                unmuted: l.unmuted,
                join_over_s: l.join_over.as_secs_f64(),
            }),
            seed: opts.seed,
            sample_rate: opts.sample_rate,
        },
        jitape: report::cost(d, m),
        packets: report::packets(d),
        renegotiation: report::renegotiations(&d.log),
        sim: report::SimFigures {
            cpu_percent: d.sim_cpu_run.as_secs_f64() / d.run_wall.as_secs_f64().max(1e-9) * 100.0,
            skipped_ticks: d.conferences.iter().map(|c| c.sim_skipped_ticks).sum(),
            max_late_ms: d
                .conferences
                .iter()
                .map(|c| c.sim_max_late_ms)
                .fold(0.0, f64::max),
        },
        verification: report::Verification {
            files: m,
            verified,
            shed: d
                .conferences
                .iter()
                .filter(|c| c.verdict.ok() && c.verdict.shed)
                .count(),
            refused,
            all_ok: verified + refused == m && verified > 0,
            exact_where_sent_on_time: d
                .conferences
                .iter()
                .filter(|c| !c.verdict.ok() && c.verdict.exact_where_sent_on_time == Some(true))
                .count(),
            sent_late_windows: d
                .conferences
                .iter()
                .map(|c| c.verdict.sent_late_windows)
                .sum(),
            sent_late_share: {
                let (late, all) = d.conferences.iter().fold((0.0, 0.0), |(l, a), c| {
                    (l + c.verdict.sent_late_s, a + c.verdict.file_seconds)
                });
                if all > 0.0 { late / all } else { 0.0 }
            },
        },
        log_warnings: d.log.warnings,
        log_errors: d.log.errors,
        log_first_problems: d.log.first_problems.clone(),
        contention: d.contention.clone(),
        health: d.health.clone(),
        conferences: d.conferences.clone(),
        series: report::series(&d.samples),
    }
}
