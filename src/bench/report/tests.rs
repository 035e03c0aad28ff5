//! Unit tests of `report`.

use super::*;
use std::time::Instant;

fn sample(t: f64, active: usize, cpu_ms: u64, rss_kib: u64) -> Sample {
    Sample {
        t,
        active,
        jitape: ProcSample {
            at: Instant::now(),
            cpu: Duration::from_millis(cpu_ms),
            rss_kib,
            peak_rss_kib: rss_kib,
            threads: 7,
            fds: 20 + active as u64,
        },
        sim_cpu: Duration::ZERO,
    }
}

#[test]
fn the_steady_window_is_where_all_ran_minus_warmup_and_tail() {
    // ramp to 4 over 4 s, all four for 40 s, then down
    let mut s = Vec::new();
    for t in 0..60 {
        let active = if t < 4 {
            t
        } else if t < 44 {
            4
        } else {
            0
        };
        s.push(sample(
            t as f64,
            active,
            t as u64 * 100,
            10_240 + active as u64 * 1024,
        ));
    }
    let (a, b, inside) = steady_window(&s, 4).expect("window");
    assert_eq!((a.t, b.t), (14.0, 40.0));
    assert!(inside.iter().all(|x| x.active == 4));
    assert!(steady_window(&s[..6], 4).is_none(), "too short");
    assert!(steady_window(&s, 5).is_none(), "never all");
}

#[test]
fn cost_divides_by_conferences_and_conference_hours() {
    let mut samples = Vec::new();
    for t in 0..100 {
        // 2 conferences from 0 to 90 s; CPU 20 % of a core
        let active = if t < 90 { 2 } else { 0 };
        samples.push(sample(
            t as f64,
            active,
            t * 200,
            12_288 + active as u64 * 2048,
        ));
    }
    let idle = sample(0.0, 0, 0, 10_240).jitape;
    let end = sample(100.0, 0, 20_000, 14_336).jitape;
    let conf = |secs: f64| ConferenceFigures {
        wall_seconds: secs,
        packets_sent: 100,
        packets_received: 98,
        verdict: Verdict {
            file_seconds: secs,
            ..Verdict::default()
        },
        ..ConferenceFigures::default()
    };
    let d = RunData {
        idle,
        samples,
        end,
        after: end,
        sim_cpu_run: Duration::ZERO,
        run_wall: Duration::from_secs(100),
        conferences: vec![conf(90.0), conf(90.0)],
        log: LogScan::default(),
        exit: "ok".into(),
        contention: None,
        health: Default::default(),
    };
    let c = cost(&d, 2);
    assert!((c.steady_cpu_percent.unwrap() - 20.0).abs() < 0.01);
    assert!((c.steady_cpu_percent_per_conference.unwrap() - 10.0).abs() < 0.01);
    // 20 CPU s over 180 conference-seconds = 0.05 h
    assert!((c.cpu_seconds_per_conference_hour - 400.0).abs() < 0.01);
    assert!((c.realtime_factor - 9.0).abs() < 0.01);
    assert!((c.rss_per_conference_mib.unwrap() - 3.0).abs() < 0.01);
    assert_eq!((c.fds_idle, c.fds_max), (20, 22));
    let mut d = d;
    d.log.totals.insert(
        "a".into(),
        super::super::logscan::AudioTotals {
            packets: 196,
            ..Default::default()
        },
    );
    assert_eq!(packets(&d).missing, 4);
}

#[test]
fn renegotiations_near_the_largest_source_count_are_reported_apart() {
    use super::super::logscan::Renegotiation;
    let log = LogScan {
        renegotiations: (1..=500)
            .map(|m| Renegotiation {
                m_lines: m,
                took_us: m * 20,
            })
            .collect(),
        ..LogScan::default()
    };
    let r = renegotiations(&log);
    assert_eq!((r.count, r.max_m_lines, r.at_max_count), (500, 500, 51));
    assert!((r.max_ms - 10.0).abs() < 1e-9);
    assert!(r.at_max_mean_ms > 9.0 && r.at_max_mean_ms < 10.0);
}
