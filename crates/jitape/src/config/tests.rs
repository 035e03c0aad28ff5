use super::*;

const MINIMAL: &str = r#"
[xmpp]
domain = "jitape.meet.jitsi"
secret = "s3cret"
muc_domains = ["muc.meet.jitsi"]
"#;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn minimal_file_gets_documented_defaults() {
    let c = load(MINIMAL, no_env()).unwrap();
    assert_eq!(c.xmpp.host, "127.0.0.1");
    assert_eq!(c.xmpp.port, 5347);
    assert_eq!(c.xmpp.domain, "jitape.meet.jitsi");
    assert_eq!(c.xmpp.secret.expose(), "s3cret");
    assert_eq!(c.recording.sample_rate.hz(), 48000);
    assert_eq!(c.recording.late_window.get(), Duration::from_secs(5));
    assert_eq!(c.media.bind, None);
    assert_eq!(c.xmpp.ping_interval, Duration::from_secs(20));
}

#[test]
fn shipped_example_file_is_valid_and_documents_every_key() {
    let text = include_str!("../../../../config/jitape.toml");
    let c = load(text, no_env()).unwrap();
    assert_eq!(c.xmpp.muc_domains, vec!["muc.meet.jitsi".to_string()]);
    let table: toml::Table = text.parse().unwrap();
    for (section, key, _, default) in KEYS {
        let documented = table
            .get(*section)
            .and_then(|s| s.get(*key))
            .unwrap_or_else(|| panic!("config/jitape.toml lacks {section}.{key}"));
        if let Some(default) = default {
            let default = parse_toml_value(default).unwrap();
            // The example may fill in required values, but documented defaults must match.
            assert_eq!(
                documented, &default,
                "{section}.{key}: file differs from default"
            );
        }
    }
}

#[test]
fn missing_required_keys_are_named() {
    let e = load(
        "[xmpp]\ndomain = \"r.example\"\nmuc_domains=[\"m\"]",
        no_env(),
    )
    .unwrap_err();
    assert_eq!(e, ConfigError::Missing("xmpp.secret".into()));
    let e = load("", no_env()).unwrap_err();
    assert!(matches!(e, ConfigError::Missing(k) if k.starts_with("xmpp.")));
}

#[test]
fn unknown_keys_and_sections_are_named() {
    let e = load(&format!("{MINIMAL}\nsecrte = 1\n"), no_env()).unwrap_err();
    assert_eq!(e, ConfigError::UnknownKey("xmpp.secrte".into()));
    let e = load(&format!("{MINIMAL}\n[recordings]\ndir = \"x\"\n"), no_env()).unwrap_err();
    assert_eq!(e, ConfigError::UnknownKey("recordings.dir".into()));
    let e = load(&format!("top = 1\n{MINIMAL}"), no_env()).unwrap_err();
    assert_eq!(e, ConfigError::UnknownKey("top".into()));
}

#[test]
fn wrong_types_and_values_name_the_key() {
    let cases = [
        (
            "[recording]\nsample_rate = \"fast\"",
            "recording.sample_rate",
        ),
        ("[recording]\nsample_rate = 44100", "recording.sample_rate"),
        ("[xmpp]\nport = 70000", "xmpp.port"),
        ("[media]\nbind = \"not-an-ip\"", "media.bind"),
        ("[media]\nbind = \"0.0.0.0\"", "media.bind"),
        ("[media]\nadvertise = [\"1.2.3.4\", 5]", "media.advertise"),
        (
            "[recording]\nlate_window = \"fortnight\"",
            "recording.late_window",
        ),
        ("[xmpp]\nnick_prefix = \"rec-order\"", "xmpp.nick_prefix"),
    ];
    for (extra, key) in cases {
        // Merge the extra section into MINIMAL's [xmpp] or add a new section.
        let text = if let Some(rest) = extra.strip_prefix("[xmpp]\n") {
            format!("{MINIMAL}{rest}\n")
        } else {
            format!("{MINIMAL}\n{extra}\n")
        };
        match load(&text, no_env()) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "for {extra:?}"),
            other => panic!("{extra:?}: expected Invalid({key}), got {other:?}"),
        }
    }
}

#[test]
fn syntax_errors_are_reported() {
    assert!(matches!(
        load("[xmpp\n", no_env()),
        Err(ConfigError::Syntax(_))
    ));
}

#[test]
fn environment_overrides_every_kind() {
    let c = load(
        MINIMAL,
        env(&[
            ("JITAPE_XMPP_SECRET", "from-env"),
            ("JITAPE_XMPP_PORT", "15347"),
            ("JITAPE_XMPP_MUC_DOMAINS", "muc.a, breakout.a"),
            ("JITAPE_RECORDING_PLAYOUT_DELAY", "300ms"),
            ("JITAPE_MEDIA_BIND", "10.0.0.5"),
            ("JITAPE_LOG", "debug"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(c.xmpp.secret.expose(), "from-env");
    assert_eq!(c.xmpp.port, 15347);
    assert_eq!(c.xmpp.muc_domains, vec!["muc.a", "breakout.a"]);
    assert_eq!(
        c.recording.late_window.get(),
        Duration::from_millis(300),
        "the old name (playout_delay) still works"
    );
    assert_eq!(c.media.bind, Some("10.0.0.5".parse().unwrap()));
}

#[test]
fn environment_can_supply_required_keys() {
    let c = load(
        "",
        env(&[
            ("JITAPE_XMPP_DOMAIN", "rec.example"),
            ("JITAPE_XMPP_SECRET", "x"),
            ("JITAPE_XMPP_MUC_DOMAINS", "muc.example"),
        ]),
    )
    .unwrap();
    assert_eq!(c.xmpp.domain, "rec.example");
}

#[test]
fn bad_environment_is_named() {
    let e = load(MINIMAL, env(&[("JITAPE_XMPP_SECRT", "x")])).unwrap_err();
    assert_eq!(
        e,
        ConfigError::UnknownEnv {
            var: "JITAPE_XMPP_SECRT".into()
        }
    );
    let e = load(MINIMAL, env(&[("JITAPE_XMPP_PORT", "many")])).unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { key, .. } if key == "xmpp.port"));
}

#[test]
fn secret_never_shows_in_debug() {
    let c = load(MINIMAL, no_env()).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
    assert!(dbg.contains("***"));
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(6 * 3600));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    for bad in ["", "s", "-1s", "1y", "1e400s", "nan"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn room_filters_glob_over_the_room_jid() {
    let rooms = RoomsConfig {
        include: vec!["*".into()],
        exclude: vec![
            "test-*@*".into(),
            "*@lobby.*".into(),
            "hr??@muc.example".into(),
        ],
        min_participants: 2,
        lone_hold: Duration::from_secs(20),
    };
    assert!(rooms.records("lesson@muc.example"));
    assert!(!rooms.records("test-1@muc.example"));
    assert!(!rooms.records("x@lobby.muc.example"));
    assert!(!rooms.records("hr42@muc.example"));
    assert!(rooms.records("hr421@muc.example"));
    let only = RoomsConfig {
        include: vec!["class-*@muc.example".into()],
        exclude: vec![],
        min_participants: 2,
        lone_hold: Duration::from_secs(20),
    };
    assert!(only.records("Class-7B@MUC.example"));
    assert!(!only.records("staff@muc.example"));
    assert!(
        glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY") && glob("**", "") && !glob("?", "")
    );
}

#[test]
fn lifecycle_durations_have_defaults_and_bounds() {
    let c = load(MINIMAL, no_env()).unwrap();
    assert_eq!(c.recording.empty_grace, Duration::from_secs(300));
    assert_eq!(c.recording.max_duration, Duration::from_secs(6 * 3600));
    let e = load(
        &format!("{MINIMAL}\n[recording]\nmax_duration = \"10s\"\n"),
        no_env(),
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { key, .. } if key == "recording.max_duration"));
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
    assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
    assert_eq!(parse_size("64k").unwrap(), 64_000);
    assert_eq!(parse_size("123").unwrap(), 123);
    for bad in ["", "MB", "1PB", "-5MB", "1e30GB"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
}

#[test]
fn http_needs_a_token_beyond_loopback_and_never_prints_it() {
    let c = load(MINIMAL, no_env()).unwrap();
    assert_eq!(c.http.bind, Some("127.0.0.1:8091".parse().unwrap()));
    assert_eq!(c.http.token, None);
    let e = load(
        &format!("{MINIMAL}\n[http]\nbind = \"0.0.0.0:8091\"\n"),
        no_env(),
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { key, .. } if key == "http.token"));
    let c = load(
        &format!("{MINIMAL}\n[http]\nbind = \"0.0.0.0:8091\"\ntoken = \"t0ps3cr3t\"\n"),
        no_env(),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("t0ps3cr3t"));
    let c = load(&format!("{MINIMAL}\n[http]\nbind = \"off\"\n"), no_env()).unwrap();
    assert_eq!(c.http.bind, None);
}

#[test]
fn secrets_set_by_the_file_are_named() {
    assert_eq!(
        super::secrets_in("[xmpp]\nsecret = \"s\"\n[http]\ntoken = \"t\"\n"),
        ["xmpp.secret", "http.token"]
    );
    assert!(super::secrets_in("[xmpp]\ndomain = \"r.example\"\n").is_empty());
    assert!(super::secrets_in("not toml [").is_empty());
}

#[test]
fn writer_and_roster_bounds_have_defaults_and_are_validated() {
    let c = load(MINIMAL, no_env()).unwrap();
    assert_eq!(c.recording.writer_threads, 2);
    assert_eq!(c.recording.write_backlog, Duration::from_secs(180));
    assert_eq!(c.recording.write_backlog_total, 256 << 20);
    assert_eq!(c.limits.max_participants, 1000);
    assert_eq!(c.limits.max_presences, 100);
    for (extra, key) in [
        (
            "[recording]\nwriter_threads = 0",
            "recording.writer_threads",
        ),
        (
            "[recording]\nwrite_backlog = \"1s\"",
            "recording.write_backlog",
        ),
        (
            "[recording]\nwrite_backlog_total = \"1MiB\"",
            "recording.write_backlog_total",
        ),
        (
            "[recording]\nwrite_backlog_total = \"lots\"",
            "recording.write_backlog_total",
        ),
        ("[limits]\nmax_participants = 1", "limits.max_participants"),
        ("[limits]\nmax_presences = 0", "limits.max_presences"),
    ] {
        match load(&format!("{MINIMAL}\n{extra}\n"), no_env()) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "for {extra:?}"),
            other => panic!("{extra:?}: expected Invalid({key}), got {other:?}"),
        }
    }
    let c = load(
        MINIMAL,
        env(&[
            ("JITAPE_RECORDING_WRITER_THREADS", "4"),
            ("JITAPE_RECORDING_WRITE_BACKLOG", "30s"),
            ("JITAPE_LIMITS_MAX_PARTICIPANTS", "50"),
        ]),
    )
    .unwrap();
    assert_eq!(c.recording.writer_threads, 4);
    assert_eq!(c.recording.write_backlog, Duration::from_secs(30));
    assert_eq!(c.limits.max_participants, 50);
}

#[test]
fn the_effective_configuration_is_toml_with_every_key_and_no_secret() {
    let text = "[xmpp]\ndomain = \"r.example\"\nsecret = \"hunter2\"\nmuc_domains = [\"m.example\"]\n[recording]\nempty_grace = \"10m\"\n";
    let env = || {
        vec![
            ("JITAPE_HTTP_TOKEN".to_string(), "t0ken".to_string()),
            ("JITAPE_ROOMS_MIN_PARTICIPANTS".to_string(), "3".to_string()),
        ]
    };
    let out = super::effective_toml(text, env()).expect("valid");
    assert!(!out.contains("hunter2") && !out.contains("t0ken"), "{out}");
    let table: toml::Table = out.parse().expect("the output is TOML");
    for (section, key, _, _) in KEYS {
        assert!(table[*section].get(*key).is_some(), "{section}.{key}");
    }
    assert_eq!(table["xmpp"]["secret"].as_str(), Some("<redacted>"));
    assert_eq!(table["http"]["token"].as_str(), Some("<redacted>"));
    // From the environment, the file and the defaults.
    assert_eq!(table["rooms"]["min_participants"].as_integer(), Some(3));
    assert_eq!(table["recording"]["empty_grace"].as_str(), Some("10m"));
    assert_eq!(table["xmpp"]["port"].as_integer(), Some(5347));
    // With the secrets put back it is the same configuration.
    let back = out
        .replace("secret = \"<redacted>\"", "secret = \"hunter2\"")
        .replace("token = \"<redacted>\"", "token = \"t0ken\"");
    assert_eq!(
        load(&back, Vec::new()).expect("loads"),
        load(text, env()).expect("loads")
    );
    // An unset token is shown as it is; a broken file is the same error as for `load`.
    let plain = super::effective_toml(text, Vec::new()).expect("valid");
    assert!(plain.contains("token = \"\"\n"), "{plain}");
    assert_eq!(
        super::effective_toml("[xmpp]\nport = \"five\"\n", Vec::new()).unwrap_err(),
        load("[xmpp]\nport = \"five\"\n", Vec::new()).unwrap_err()
    );
}

#[test]
fn the_instance_name_defaults_to_the_domain_and_is_a_plain_token() {
    let c = load(MINIMAL, no_env()).unwrap();
    assert_eq!(c.xmpp.instance, "jitape.meet.jitsi");
    let named = load(MINIMAL, env(&[("JITAPE_XMPP_INSTANCE", "jitape-2")])).unwrap();
    assert_eq!(named.xmpp.instance, "jitape-2");
    for bad in ["a b", "x\"y", "a{b}", &"n".repeat(65)] {
        let e = load(MINIMAL, env(&[("JITAPE_XMPP_INSTANCE", bad)])).unwrap_err();
        assert!(e.to_string().contains("xmpp.instance"), "{bad}: {e}");
    }
}
