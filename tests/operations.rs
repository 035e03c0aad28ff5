//! The operations files against what jitape really does: the systemd unit
//! (`config/jitape.service`: hardening, the recording directory, the stop timeout against the
//! drain, the command line, and `systemd-analyze verify`) and the Grafana dashboard
//! (`config/grafana/jitape.json`: every metric it queries is one jitape exports).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn jitape() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jitape"));
    c.env("NO_COLOR", "1").env_remove("JITAPE_CONFIG");
    c
}

// ------------------------------------------------------------------------------ the unit file

/// A systemd unit file as `(section, key, value)` assignments in file order. Comments (`#`,
/// `;`) and blank lines are skipped, a trailing backslash continues a line.
struct Unit(Vec<(String, String, String)>);

impl Unit {
    fn parse(text: &str) -> Unit {
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let line = std::mem::take(&mut pending) + line;
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not `key=value`: {line:?}"));
            assert!(!section.is_empty(), "{key} before any [section]");
            entries.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        }
        Unit(entries)
    }

    /// Every value assigned to `section.key`, in order.
    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The value in effect for a single-valued key (the last assignment).
    fn one(&self, section: &str, key: &str) -> &str {
        self.all(section, key)
            .last()
            .copied()
            .unwrap_or_else(|| panic!("[{section}] {key}= is missing"))
    }

    /// Every word of a list-valued key, over all its assignments.
    fn words(&self, section: &str, key: &str) -> Vec<&str> {
        self.all(section, key)
            .into_iter()
            .flat_map(str::split_whitespace)
            .collect()
    }
}

/// A systemd time span: "45", "45s", "1min 30s", "500ms".
fn systemd_span(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    for word in text.split_whitespace() {
        let split = word
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(word.len());
        let (n, unit) = word.split_at(split);
        let n: u64 = n.parse().unwrap_or_else(|_| panic!("time span {text:?}"));
        total += match unit {
            "" | "s" | "sec" => Duration::from_secs(n),
            "ms" | "msec" => Duration::from_millis(n),
            "m" | "min" => Duration::from_secs(60 * n),
            other => panic!("time unit {other:?} in {text:?}"),
        };
    }
    total
}

/// A configuration key's default as jitape ships it (`jitape::config::KEYS`).
fn config_default(section: &str, key: &str) -> toml::Value {
    let (_, _, _, default) = jitape::config::KEYS
        .iter()
        .find(|(s, k, _, _)| *s == section && *k == key)
        .unwrap_or_else(|| panic!("no config key {section}.{key}"));
    let text = default.unwrap_or_else(|| panic!("{section}.{key} has no default"));
    toml::from_str::<toml::Table>(&format!("v = {text}")).unwrap()["v"].clone()
}

fn unit() -> Unit {
    Unit::parse(&read("config/jitape.service"))
}

#[test]
fn the_unit_is_hardened() {
    let u = unit();
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("Restart", "on-failure"),
        ("User", "jitape"),
        ("Group", "jitape"),
    ] {
        assert_eq!(u.one("Service", key), value, "[Service] {key}=");
    }
    assert!(
        u.all("Service", "DynamicUser")
            .iter()
            .all(|v| *v == "no" || v.is_empty()),
        "a fixed user: recording directories elsewhere must keep their owner"
    );
    assert!(
        u.words("Service", "SystemCallFilter")
            .contains(&"@system-service"),
        "SystemCallFilter=@system-service"
    );
    let families: BTreeSet<&str> = u
        .words("Service", "RestrictAddressFamilies")
        .into_iter()
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"]),
        "TCP/UDP over IPv4 and IPv6, and AF_UNIX for the resolver: nothing else"
    );
    // Every assignment empty: systemd ORs non-empty ones together.
    let caps = u.all("Service", "CapabilityBoundingSet");
    assert!(
        !caps.is_empty() && caps.iter().all(|v| v.is_empty()),
        "CapabilityBoundingSet= (empty), got {caps:?}"
    );
    // No capability needed: every port jitape binds is unprivileged (media: ephemeral UDP).
    for config in [
        config_default("http", "bind").as_str().unwrap().to_owned(),
        read("config/jitape.toml").parse::<toml::Table>().unwrap()["http"]["bind"]
            .as_str()
            .unwrap()
            .to_owned(),
    ] {
        let addr: std::net::SocketAddr = config.parse().unwrap();
        assert!(
            addr.port() >= 1024,
            "http.bind {addr} would need CAP_NET_BIND_SERVICE"
        );
    }
    assert!(systemd_span(u.one("Service", "RestartSec")) >= Duration::from_secs(1));
    // A file descriptor per conference's socket, FLAC and sidecar, and more with stems.
    let max_conferences = config_default("limits", "max_conferences")
        .as_integer()
        .unwrap();
    let nofile: i64 = u
        .one("Service", "LimitNOFILE")
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        nofile >= 8 * max_conferences,
        "LimitNOFILE={nofile} for {max_conferences} conferences"
    );
}

#[test]
fn the_default_recording_directory_is_writable_and_created_for_the_user() {
    let u = unit();
    let dir = PathBuf::from(config_default("recording", "dir").as_str().unwrap());
    let dir = if dir.is_relative() {
        let cwd = Path::new(u.one("Service", "WorkingDirectory"));
        assert!(cwd.is_absolute(), "WorkingDirectory={}", cwd.display());
        cwd.join(dir)
    } else {
        dir
    };
    let writable: Vec<&Path> = u
        .words("Service", "ReadWritePaths")
        .into_iter()
        .map(|p| Path::new(p.trim_start_matches(['-', '+'])))
        .collect();
    assert!(
        writable.contains(&dir.as_path()),
        "ReadWritePaths={writable:?} lacks the default recording directory {}",
        dir.display()
    );
    // A ReadWritePaths= directory must exist when the service starts: StateDirectory=
    // creates it, owned by the service's user.
    let created: Vec<PathBuf> = u
        .words("Service", "StateDirectory")
        .into_iter()
        .map(|d| Path::new("/var/lib").join(d))
        .collect();
    assert!(
        created.contains(&dir),
        "StateDirectory= does not create {} (it creates {created:?})",
        dir.display()
    );
}

/// `ExecStart=`'s words after the binary.
fn exec_args(u: &Unit) -> Vec<String> {
    let exec = u.one("Service", "ExecStart");
    let mut words = exec.split_whitespace();
    let binary = words.next().unwrap();
    assert!(
        binary.starts_with('/') && binary.ends_with("/jitape"),
        "ExecStart runs {binary}"
    );
    words.map(str::to_owned).collect()
}

#[test]
fn exec_start_is_a_command_line_jitape_accepts() {
    let args = exec_args(&unit());
    assert_eq!(args.first().map(String::as_str), Some("run"), "{args:?}");
    assert!(
        args.iter().any(|a| a == "--config" || a == "-c"),
        "the configuration file is named: {args:?}"
    );
    // The parser runs before --help is acted on: an unknown subcommand, flag or bad value
    // fails here.
    let out = jitape().args(&args).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "jitape {} --help: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `--drain` the unit runs with: its own, else the command's default, which is checked
/// against `jitape::app::DEFAULT_DRAIN`.
fn unit_drain(args: &[String]) -> Duration {
    if let Some(i) = args.iter().position(|a| a == "--drain") {
        return jitape::config::parse_duration(&args[i + 1]).unwrap();
    }
    let help = jitape().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let line = help
        .lines()
        .find(|l| l.trim_start().starts_with("--drain"))
        .unwrap_or_else(|| panic!("no --drain in `jitape run --help`:\n{help}"));
    let default = line
        .split("[default: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no default in {line:?}"));
    let default = jitape::config::parse_duration(default).unwrap();
    assert_eq!(
        default,
        jitape::app::DEFAULT_DRAIN,
        "`jitape run --drain`'s default and jitape::app::DEFAULT_DRAIN disagree"
    );
    default
}

#[test]
fn the_stop_timeout_is_above_the_drain() {
    let u = unit();
    let drain = unit_drain(&exec_args(&u));
    let longest_stop = drain + jitape::app::LEAVE_GRACE + jitape::app::LINK_CLOSE;
    let timeout = systemd_span(u.one("Service", "TimeoutStopSec"));
    assert!(
        timeout > longest_stop + Duration::from_secs(5),
        "TimeoutStopSec={timeout:?}: a stop may take {longest_stop:?} (drain {drain:?}), and \
         systemd's SIGKILL would leave .partial files"
    );
    let signal = u.all("Service", "KillSignal");
    assert!(
        signal.iter().all(|s| *s == "SIGTERM" || *s == "TERM"),
        "jitape drains on SIGTERM: KillSignal={signal:?}"
    );
}

/// `systemd-analyze verify` on the unit, its ExecStart pointed at the built binary (verify
/// requires it to exist). `scripts/test` installs systemd-analyze (`scripts/ensure-packages
/// systemd`); without it this test fails rather than passing unchecked.
fn systemd_analyze_verify(unit_text: &str) -> (bool, String) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("jitape.service");
    std::fs::write(&path, unit_text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "systemd-analyze could not run ({e}): install it with \
                 `scripts/ensure-packages systemd` (scripts/test does)"
            )
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_without_a_warning() {
    let text = read("config/jitape.service");
    let u = Unit::parse(&text);
    let exec = u.one("Service", "ExecStart");
    let binary = exec.split_whitespace().next().unwrap();
    let text = text.replace(
        &format!("ExecStart={binary} "),
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_jitape")),
    );
    assert!(text.contains(env!("CARGO_BIN_EXE_jitape")));
    let (ok, said) = systemd_analyze_verify(&text);
    // verify exits 0 on an unknown key or a value it cannot parse (it ignores the line), so
    // anything it says is a failure.
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
    // And it does read the keys: a misspelt one is reported.
    let typo = text.replacen("\nProtectSystem=strict\n", "\nProtectSytem=strict\n", 1);
    assert_ne!(typo, text);
    let (_, said) = systemd_analyze_verify(&typo);
    assert!(
        said.contains("Unknown key"),
        "systemd-analyze verify:\n{said}"
    );
}

// ------------------------------------------------------------------------------ the dashboard

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("config/grafana/jitape.json")).expect("the dashboard is JSON")
}

/// Every panel, rows' nested panels included.
fn all_panels(dash: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> = dash["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = stack.pop() {
        if let Some(nested) = p["panels"].as_array() {
            stack.extend(nested);
        }
        out.push(p);
    }
    out
}

fn exprs(panel: &serde_json::Value) -> Vec<&str> {
    panel["targets"]
        .as_array()
        .map(|ts| ts.iter().filter_map(|t| t["expr"].as_str()).collect())
        .unwrap_or_default()
}

/// The `jitape_*` identifiers of a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        if word(bytes[i]) && (i == 0 || !word(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            if expr[start..].starts_with("jitape_") {
                names.insert(expr[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The sample names of jitape's Prometheus exposition (`GET /metrics`).
fn exported_samples() -> HashSet<String> {
    let text = jitape::metrics::Metrics::default().render();
    let names: HashSet<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let first = l.split_whitespace().next().unwrap();
            first.split('{').next().unwrap().to_owned()
        })
        .collect();
    assert!(names.len() > 20, "{text}");
    names
}

#[test]
fn the_dashboard_is_grafana_json() {
    let dash = dashboard();
    for key in ["title", "uid"] {
        assert!(
            dash[key].as_str().is_some_and(|s| !s.is_empty()),
            "dashboard {key}"
        );
    }
    assert!(
        dash["uid"].as_str().unwrap().len() <= 40,
        "Grafana uids are <= 40 chars"
    );
    assert!(
        dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion of Grafana 9+: {}",
        dash["schemaVersion"]
    );
    // The datasource is a template variable, so the file imports (UI or provisioning) into any
    // Grafana with a Prometheus.
    let vars = dash["templating"]["list"].as_array().unwrap();
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(ds["query"], "prometheus");
    let ds_ref = format!("${{{}}}", ds["name"].as_str().unwrap());
    let panels = all_panels(&dash);
    assert!(!panels.is_empty());
    let mut ids = HashSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {p}");
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel id twice: {title}"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(
            g["h"].as_u64().unwrap() > 0 && w > 0 && x + w <= 24,
            "{title}: {g}"
        );
        assert!(g["y"].is_u64(), "{title}: {g}");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], ds_ref.as_str(), "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        let refs: HashSet<&str> = targets
            .iter()
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), targets.len(), "{title}: refIds repeat");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], ds_ref.as_str(), "{title}");
        }
    }
}

#[test]
fn the_dashboard_queries_only_metrics_jitape_exports() {
    let dash = dashboard();
    let exported = exported_samples();
    let mut used = BTreeSet::new();
    for p in all_panels(&dash) {
        for expr in exprs(p) {
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "{}: {expr} names no jitape metric",
                p["title"]
            );
            // A counter is only meaningful as a rate or an increase.
            if names.iter().any(|n| n.ends_with("_total")) {
                assert!(
                    expr.contains("rate(") || expr.contains("increase("),
                    "{}: a raw counter in {expr}",
                    p["title"]
                );
            }
            used.extend(names);
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["definition"].as_str() {
            used.extend(metric_names(q));
        }
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics jitape does not export: {unknown:?}"
    );
    assert!(used.len() >= 20, "{used:?}");
}

#[test]
fn the_dashboard_has_a_panel_for_each_operational_question() {
    let dash = dashboard();
    let panels = all_panels(&dash);
    // (a word of the panel's title, the metrics that panel must query)
    let wanted: &[(&str, &[&str])] = &[
        ("conferences active", &["jitape_conferences_active"]),
        (
            "started",
            &[
                "jitape_conferences_started_total",
                "jitape_conferences_finished_total",
            ],
        ),
        ("participants", &["jitape_participants"]),
        ("packets received", &["jitape_packets_received_total"]),
        (
            "lost",
            &["jitape_packets_lost_total", "jitape_packets_late_total"],
        ),
        ("disk free", &["jitape_disk_free_bytes"]),
        (
            "hook",
            &["jitape_hook_runs_total", "jitape_hook_failures_total"],
        ),
        ("reconnect", &["jitape_xmpp_reconnects_total"]),
        ("xmpp connected", &["jitape_xmpp_connected"]),
        ("load level", &["jitape_load_level"]),
        ("disk low", &["jitape_disk_low"]),
        ("behind", &["jitape_recordings_write_behind"]),
        (
            "backlog",
            &["jitape_write_backlog_seconds", "jitape_write_backlog_bytes"],
        ),
    ];
    for (word, metrics) in wanted {
        let found = panels.iter().any(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_lowercase();
            let used: BTreeSet<String> = exprs(p).into_iter().flat_map(metric_names).collect();
            title.contains(word) && metrics.iter().all(|m| used.contains(*m))
        });
        assert!(
            found,
            "no panel titled with {word:?} that queries {metrics:?}"
        );
    }
}
