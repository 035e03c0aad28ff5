//! Unit tests of `metrics`.

use super::*;

#[test]
fn renders_every_metric_with_help_and_type() {
    let m = Metrics::default();
    m.conferences_started.add(3);
    m.conferences_active.set(2);
    m.participants.add(-1);
    let text = m.render();
    assert!(text.contains(
        "# TYPE jitape_conferences_started_total counter\njitape_conferences_started_total 3\n"
    ));
    assert!(text.contains("jitape_conferences_active 2\n"));
    assert!(text.contains("jitape_participants -1\n"));
    m.limit_iq_rate.add(2);
    let text = m.render();
    assert!(text.contains("jitape_limit_hits_total{limit=\"iq_rate\"} 2\n"));
    assert!(text.contains("jitape_limit_hits_total{limit=\"conferences\"} 0\n"));
    assert_eq!(text.matches("# TYPE jitape_limit_hits_total").count(), 1);
    m.write_dropped_micros.add(2_500_000);
    m.write_backlog_micros.add(-1_500);
    let text = m.render();
    assert!(text.contains("jitape_write_dropped_seconds_total 2.500000\n"));
    assert!(text.contains("jitape_write_backlog_seconds -0.001500\n"));
    // Every family is declared once, before its samples.
    let mut declared = std::collections::HashSet::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            assert!(
                declared.insert(rest.split(' ').next().unwrap().to_string()),
                "{l}"
            );
        } else if !l.starts_with('#') {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(declared.contains(name), "{l}");
        }
    }
    // Names follow the Prometheus rules; counters end in _total.
    for l in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let parts: Vec<_> = l.split(' ').collect();
        assert!(parts[2].chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        assert_eq!(parts[3] == "counter", parts[2].ends_with("_total"), "{l}");
    }
}
