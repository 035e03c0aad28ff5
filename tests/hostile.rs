//! A hostile occupant in a recorded conference, through a real Prosody: oversized and deeply
//! nested presences, an oversized IQ, an IQ flood, a 20 KiB attribute, 10,000 nicknames. jitape (a separate
//! `jitape run` process) must keep its link, answer what deserves an answer, count what it
//! refused, never log its secret, and record the conference as if nothing happened.

use jitape_sim::harness as support;

use std::time::{Duration, Instant};

use jitape::config::Secret;
use jitape::sink::sidecar;
use jitape::xmpp::link::{self, Inbound, LinkSettings};
use jitape::xmpp::wire::WireLimits;
use jitape_sim::analyze::check_recording;
use jitape_sim::plan::ConferencePlan;
use minidom::Element;
use support::process::{JitapeProcess, wait_for_final};
use support::prosody::{ComponentDecl, MUC, Prosody, ProsodySpec, RECORDER, SIM, sim_world};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MALLORY: &str = "mallory.localhost";
const SECRET: &str = "s3cret-0f-the-rec0rder-7b1e";
const NS_CLIENT: &str = "jabber:component:accept";

fn spec() -> ProsodySpec {
    let c = |domain: &str, secret: &str| ComponentDecl {
        domain: domain.into(),
        secret: secret.into(),
    };
    ProsodySpec {
        components: vec![
            c(RECORDER, SECRET),
            c(SIM, "sim-secret"),
            c(MALLORY, "mallory-secret"),
        ],
        muc_domains: vec![MUC.into()],
        muc_extra: String::new(),
        global_extra: String::new(),
    }
}

fn jitape_toml(port: u16, dir: &std::path::Path, limits: &str) -> String {
    format!(
        r#"
[xmpp]
host = "127.0.0.1"
port = {port}
domain = "{RECORDER}"
secret = "{SECRET}"
muc_domains = ["{MUC}"]
[media]
bind = "127.0.0.1"
[recording]
dir = "{}"
[http]
bind = "127.0.0.1:0"
[limits]
max_stanza_size = "128KiB"
iq_rate = 5
iq_burst = 10
{limits}
"#,
        dir.display()
    )
}

fn xml(s: &str) -> Element {
    jitape::xmpp::wire::parse_element(s.as_bytes(), 16 << 20).expect("test stanza parses")
}

/// Mallory's own component connection, speaking raw stanzas.
async fn mallory(port: u16) -> link::Stream {
    let settings = LinkSettings {
        host: "127.0.0.1".into(),
        port,
        domain: MALLORY.into(),
        secret: Secret::new("mallory-secret"),
        ping_target: MUC.into(),
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(10),
        reconnect_min: Duration::from_secs(1),
        reconnect_max: Duration::from_secs(1),
        limits: WireLimits {
            max_stanza: 8 << 20,
            ..WireLimits::default()
        },
    };
    link::connect(&settings).await.expect("mallory connects")
}

/// Read stanzas until `pred` accepts one (bounded).
async fn wait_for(
    s: &mut link::Stream,
    limit: Duration,
    mut pred: impl FnMut(&Element) -> bool,
) -> Option<Element> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Ok(Inbound::Stanza(el))) if pred(&el) => return Some(el),
            Ok(Ok(Inbound::Stanza(_) | Inbound::Dropped(_))) => {}
            _ => return None,
        }
    }
}

fn condition(el: &Element) -> Option<String> {
    jitape::xmpp::stanza::error_condition(el)
}

fn iq_to(to: &str, id: &str, payload: &str) -> Element {
    xml(&format!(
        "<iq xmlns='{NS_CLIENT}' type='get' id='{id}' from='m@{MALLORY}/x' to='{to}'>{payload}</iq>"
    ))
}

async fn metrics(addr: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: j\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf).to_string()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_occupant_costs_only_its_own_stanzas() {
    support::logs();
    let prosody = Prosody::start(&spec());
    let port = prosody.component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(port, &rec_dir, ""),
        tmp.path(),
    );
    let world = sim_world(port).await;
    let room = format!("lesson@{MUC}");
    let mut plan = ConferencePlan::demo(&room);
    plan.end_at = Duration::from_secs(30);
    let conference = tokio::spawn(async move {
        let outcome = world.run(plan).await;
        world.close().await;
        outcome
    });

    // Mallory joins once jitape is in the room.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut m = mallory(port).await;
    let me = format!("{room}/mallory");
    m.send(&xml(&format!(
        "<presence xmlns='{NS_CLIENT}' from='m@{MALLORY}/x' to='{me}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )))
    .await
    .unwrap();
    let recorder = wait_for(&mut m, Duration::from_secs(15), |el| {
        el.name() == "presence"
            && el
                .attr("from")
                .and_then(|f| f.split_once('/'))
                .is_some_and(|(_, nick)| nick.starts_with("jitape"))
    })
    .await
    .expect("jitape's presence reaches mallory");
    let jitape_occupant = recorder.attr("from").unwrap().to_string();
    let started = Instant::now();

    // 1. A presence with a 20 KiB attribute: fine XML, jitape must read it (a stock XML
    //    stream parser refuses attributes over 8 KiB and drops the whole link).
    let long = "L".repeat(20 * 1024);
    m.send(&xml(&format!(
        "<presence xmlns='{NS_CLIENT}' from='m@{MALLORY}/x' to='{me}'><status>hi</status><junk xmlns='urn:x' v='{long}'/></presence>"
    )))
    .await
    .unwrap();
    // 2. A 300 KiB presence (Prosody relays up to 512 KiB from a component, 256 KiB from a
    //    client), 3. one nested 200 deep: both skipped by jitape.
    let big = "B".repeat(300 * 1024);
    m.send(&xml(&format!(
        "<presence xmlns='{NS_CLIENT}' from='m@{MALLORY}/x' to='{me}'><junk xmlns='urn:x'>{big}</junk></presence>"
    )))
    .await
    .unwrap();
    let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    m.send(&xml(&format!(
        "<presence xmlns='{NS_CLIENT}' from='m@{MALLORY}/x' to='{me}'><junk xmlns='urn:x'>{deep}</junk></presence>"
    )))
    .await
    .unwrap();
    // 4. An oversized IQ to jitape's occupant: answered policy-violation, not left hanging.
    m.send(&iq_to(
        &jitape_occupant,
        "big",
        &format!("<q xmlns='urn:x'>{big}</q>"),
    ))
    .await
    .unwrap();
    let answer = wait_for(&mut m, Duration::from_secs(10), |el| {
        el.name() == "iq" && el.attr("id") == Some("big")
    })
    .await
    .unwrap_or_else(|| {
        let log = prosody.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "the oversized IQ is not answered\n{}\n{}",
            tail.join("\n"),
            jitape.log()
        )
    });
    assert_eq!(answer.attr("type"), Some("error"));
    assert_eq!(condition(&answer).as_deref(), Some("policy-violation"));

    // 5. An IQ flood: the burst (10) is answered normally, the rest resource-constraint.
    for i in 0..40 {
        m.send(&iq_to(
            &jitape_occupant,
            &format!("f{i}"),
            "<ping xmlns='urn:xmpp:ping'/>",
        ))
        .await
        .unwrap();
    }
    let mut limited = 0;
    let mut answered = 0;
    while answered < 40 {
        let Some(el) = wait_for(&mut m, Duration::from_secs(10), |el| {
            el.name() == "iq" && el.attr("id").is_some_and(|id| id.starts_with('f'))
        })
        .await
        else {
            break;
        };
        answered += 1;
        if condition(&el).as_deref() == Some("resource-constraint") {
            limited += 1;
        }
    }
    assert_eq!(answered, 40, "every flooded IQ is answered");
    assert!((20..=30).contains(&limited), "{limited} limited");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "before the room ends"
    );
    m.close().await;

    let outcome = conference.await.unwrap().expect("conference played");
    let found = wait_for_final(&rec_dir, &room, Duration::from_secs(20)).await;
    let log_now = jitape.log();
    let addr = log_now
        .lines()
        .find(|l| l.contains("http server listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .map(|a| a.trim().to_string())
        .expect("http address in the log");
    let text = metrics(&addr).await;
    let status = jitape.terminate(Duration::from_secs(15));
    let log = jitape.log();
    let (flac, sc_path) = found.unwrap_or_else(|| panic!("no recording\n{log}"));
    assert!(status.is_some_and(|s| s.success()), "{log}");

    // The link never went down, and what was refused is counted.
    assert_eq!(metric(&text, "jitape_xmpp_reconnects_total"), 0.0, "{log}");
    assert!(!log.contains("xmpp link down"), "{log}");
    assert!(
        metric(&text, "jitape_stanzas_dropped_total") >= 3.0,
        "{text}"
    );
    assert!(metric(&text, "jitape_limit_hits_total{limit=\"stanza_size\"}") >= 2.0);
    assert!(metric(&text, "jitape_limit_hits_total{limit=\"iq_rate\"}") >= 20.0);
    assert!(metric(&text, "jitape_stanzas_rejected_total") >= 21.0);
    // Said a few times a minute, not once per stanza.
    // (Suppressed repeats still go to the debug level this test logs at.)
    let warned = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("sends IQs faster than"))
        .count();
    assert!((1..=5).contains(&warned), "{warned} warnings\n{log}");
    // The secret never reaches the log.
    assert!(!log.contains(SECRET));

    // And the recording is exactly what the conference was.
    support::flac_test(&flac);
    let sc = sidecar::read(&sc_path).unwrap();
    let report = check_recording(&flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}\n{log}");
    assert!(
        sc.participants
            .iter()
            .any(|p| p.nicks.iter().any(|n| n == "mallory")),
        "mallory was present"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cycling_through_ten_thousand_nicknames_is_capped_and_counted() {
    support::logs();
    let prosody = Prosody::start(&spec());
    let port = prosody.component_port;
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let toml = jitape_toml(port, &rec_dir, "max_participants = 40\nmax_presences = 20");
    let mut jitape = JitapeProcess::spawn(env!("CARGO_BIN_EXE_jitape"), &toml, tmp.path());
    let world = sim_world(port).await;
    let room = format!("cycling@{MUC}");
    let mut plan = ConferencePlan::demo(&room);
    plan.end_at = Duration::from_secs(40);
    let conference = tokio::spawn(async move {
        let outcome = world.run(plan).await;
        world.close().await;
        outcome
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut m = mallory(port).await;
    let join = |nick: &str| {
        xml(&format!(
            "<presence xmlns='{NS_CLIENT}' from='m@{MALLORY}/x' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
    };
    m.send(&join("cyc0")).await.unwrap();
    wait_for(&mut m, Duration::from_secs(15), |el| {
        el.name() == "presence"
            && el
                .attr("from")
                .and_then(|f| f.split_once('/'))
                .is_some_and(|(_, nick)| nick.starts_with("jitape"))
    })
    .await
    .expect("jitape's presence reaches mallory");
    // 10,000 nickname changes (each an unavailable and a new occupant for everyone in the
    // room), paced over about 20 s, then gone.
    let started = Instant::now();
    for i in 1..10_000u32 {
        m.send(&join(&format!("cyc{i}"))).await.unwrap();
        if i % 50 == 0 {
            let due = started + Duration::from_millis(u64::from(i) * 2);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    m.send(&xml(&format!(
        "<presence xmlns='{NS_CLIENT}' type='unavailable' from='m@{MALLORY}/x' to='{room}/cyc9999'/>"
    )))
    .await
    .unwrap();
    let cycling = started.elapsed();
    m.close().await;

    let outcome = conference.await.unwrap().expect("conference played");
    let found = wait_for_final(&rec_dir, &room, Duration::from_secs(30)).await;
    let addr = jitape
        .log()
        .lines()
        .find(|l| l.contains("http server listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .map(|a| a.trim().to_string())
        .expect("http address in the log");
    let text = metrics(&addr).await;
    let status = jitape.terminate(Duration::from_secs(15));
    let log = jitape.log();
    let (flac, sc_path) = found.unwrap_or_else(|| panic!("no recording\n{log}"));
    assert!(status.is_some_and(|s| s.success()), "{log}");
    eprintln!("10,000 nicknames in {cycling:?}");

    // Counted: everyone past the 40th entry went to the overflow entry.
    let refused = metric(&text, "jitape_limit_hits_total{limit=\"participants\"}");
    assert!(refused >= 9_950.0, "{refused}\n{text}");
    assert!(metric(&text, "jitape_limit_hits_total{limit=\"presences\"}") > 0.0);
    // Bounded: at most 40 entries and the overflow one, each with at most 20 stays.
    let sc = sidecar::read(&sc_path).unwrap();
    assert!(sc.participants.len() <= 41, "{}", sc.participants.len());
    assert!(
        sc.participants
            .iter()
            .all(|p| p.presence.len() <= 20 && p.nicks.len() <= 20)
    );
    assert!(sc.participants.iter().any(|p| p.key == "overflow"));
    let size = std::fs::metadata(&sc_path).unwrap().len();
    assert!(size < 200_000, "sidecar of {size} bytes");
    // And the people who talked were recorded as if nothing happened.
    support::flac_test(&flac);
    let report = check_recording(&flac, &sc, &outcome).unwrap();
    assert!(report.ok(), "{report}\n{log}");
}
