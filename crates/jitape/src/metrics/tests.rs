//! Unit tests of `metrics`.

use super::*;

/// The samples the README, the docs, the integration tests, the bench health check and the
/// product's comments name: each must stay, with this name and these labels.
const RELIED_ON: &[&str] = &[
    "jitape_bytes_written_total",
    "jitape_conferences_active",
    "jitape_conferences_shed_total",
    "jitape_conferences_started_total",
    "jitape_disk_free_bytes",
    "jitape_intake_delay_ms",
    "jitape_limit_hits_total{limit=\"conferences\"}",
    "jitape_limit_hits_total{limit=\"sources\"}",
    "jitape_limit_hits_total{limit=\"iq_rate\"}",
    "jitape_limit_hits_total{limit=\"stanza_size\"}",
    "jitape_limit_hits_total{limit=\"participants\"}",
    "jitape_limit_hits_total{limit=\"presences\"}",
    "jitape_load_level",
    "jitape_media_failures_total{reason=\"offer-refused\"}",
    "jitape_media_failures_total{reason=\"no-packets\"}",
    "jitape_packets_received_total",
    "jitape_participants",
    "jitape_recordings_fenced_total",
    "jitape_recordings_refused_total",
    "jitape_recordings_taken_over_total",
    "jitape_recordings_write_behind",
    "jitape_stanzas_dropped_total",
    "jitape_stanzas_rejected_total",
    "jitape_write_backlog_bytes",
    "jitape_write_backlog_seconds",
    "jitape_write_dropped_seconds_total",
    "jitape_write_stalls_total",
    "jitape_xmpp_connected",
    "jitape_xmpp_reconnects_total",
];

/// A few atomics set, to read back.
fn busy() -> Metrics {
    let m = Metrics::default();
    m.conferences_started.add(3);
    m.conferences_active.set(2);
    m.participants.add(-1);
    m.limit_iq_rate.add(2);
    m.media_no_packets.inc();
    m.disk_free_bytes.set(123_456_789_012);
    m.write_dropped_micros.add(2_500_000);
    m.write_backlog_micros.add(-1_500);
    m
}

#[test]
fn the_samples_read_as_before() {
    let text = busy().render();
    for line in [
        "# HELP jitape_conferences_started Recordings started.\n\
         # TYPE jitape_conferences_started counter\n\
         jitape_conferences_started_total 3\n",
        "jitape_conferences_active 2\n",
        "jitape_participants -1\n",
        "# TYPE jitape_limit_hits counter\n",
        "jitape_limit_hits_total{limit=\"iq_rate\"} 2\n",
        "jitape_limit_hits_total{limit=\"conferences\"} 0\n",
        "jitape_media_failures_total{reason=\"no-packets\"} 1\n",
        "jitape_media_failures_total{reason=\"accept-refused\"} 0\n",
        "jitape_disk_free_bytes 123456789012\n",
        // Microseconds shown in seconds, in the shortest form; the unit is declared.
        "# UNIT jitape_write_dropped_seconds seconds\njitape_write_dropped_seconds_total 2.5\n",
        "# UNIT jitape_write_backlog_seconds seconds\njitape_write_backlog_seconds -0.0015\n",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    let idle = Metrics::default().render();
    assert!(
        idle.contains("jitape_write_backlog_seconds 0.0\n"),
        "{idle}"
    );
}

#[test]
fn the_names_the_docs_and_tests_use_are_all_there() {
    let text = Metrics::default().render();
    for name in RELIED_ON {
        let line = text
            .lines()
            .find(|l| l.strip_prefix(name).is_some_and(|v| v.starts_with(' ')));
        assert!(line.is_some(), "no {name} in\n{text}");
    }
}

/// Every family is declared once, HELP then TYPE (then UNIT, if it has one), before its
/// samples; counters' samples end in `_total`, no family's name does; `# EOF` ends it.
#[test]
fn every_family_has_help_and_type_and_counters_end_in_total() {
    let text = busy().render();
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let mut declared = std::collections::HashSet::new();
    let mut family = ("", "");
    let mut counters = 0;
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.is_empty() && !help.ends_with(".."), "{l}");
            let (kind_name, kind) = lines[i + 1]
                .strip_prefix("# TYPE ")
                .and_then(|t| t.split_once(' '))
                .unwrap_or_else(|| panic!("no TYPE after {l}"));
            assert_eq!(kind_name, name);
            assert!(["counter", "gauge"].contains(&kind), "{kind}");
            assert!(declared.insert(name), "{name} declared twice");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!name.ends_with("_total"), "{name}");
            family = (name, kind);
        } else if let Some(rest) = l.strip_prefix("# UNIT ") {
            let (name, unit) = rest.split_once(' ').unwrap();
            assert_eq!(name, family.0);
            assert!(name.ends_with(&format!("_{unit}")), "{l}");
        } else if l.starts_with("# TYPE ") {
            assert!(lines[i - 1].starts_with("# HELP "), "{l}");
        } else if *l == "# EOF" {
            assert_eq!(i, lines.len() - 1);
        } else {
            let sample = l.split(['{', ' ']).next().unwrap();
            let (name, kind) = family;
            match kind {
                "counter" => {
                    assert_eq!(sample, format!("{name}_total"), "{l}");
                    counters += 1;
                }
                _ => assert_eq!(sample, name, "{l}"),
            }
        }
    }
    assert_eq!(declared.len(), FAMILIES.len());
    assert!(counters > 20, "{counters}");
}

#[test]
fn an_independent_parser_reads_every_sample_back() {
    let text = busy().render();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("a valid exposition");
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(scrape.samples.len(), samples, "a line was skipped");
    assert_eq!(scrape.docs.len(), FAMILIES.len());
    let value = |name: &str, label: Option<(&str, &str)>| {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {label:?}"));
        match s.value {
            // The parser types a sample by its name, so counters (`…_total`, declared
            // without it) come back untyped.
            prometheus_parse::Value::Untyped(v) if name.ends_with("_total") => v,
            prometheus_parse::Value::Gauge(v) if !name.ends_with("_total") => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(value("jitape_conferences_started_total", None), 3.0);
    assert_eq!(value("jitape_conferences_finished_total", None), 0.0);
    assert_eq!(value("jitape_conferences_active", None), 2.0);
    assert_eq!(value("jitape_participants", None), -1.0);
    assert_eq!(value("jitape_disk_free_bytes", None), 123_456_789_012.0);
    let limit = |l| value("jitape_limit_hits_total", Some(("limit", l)));
    assert_eq!(limit("iq_rate"), 2.0);
    assert_eq!(limit("presences"), 0.0);
    let media = |r| value("jitape_media_failures_total", Some(("reason", r)));
    assert_eq!(media("no-packets"), 1.0);
    assert_eq!(media("ice-dtls-failed"), 0.0);
    assert_eq!(value("jitape_write_dropped_seconds_total", None), 2.5);
    assert_eq!(value("jitape_write_backlog_seconds", None), -0.0015);
}

#[test]
fn the_instance_is_named_once_set() {
    let m = Metrics::default();
    assert!(!m.render().contains("jitape_instance"));
    m.instance.set("jitape-2.meet.example".into()).unwrap();
    let text = m.render();
    assert!(
        text.contains("# TYPE jitape_instance info\njitape_instance_info{instance=\"jitape-2.meet.example\"} 1\n"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}
