//! Tenant rooms (`https://host/<tenant>/<room>`) against a real Prosody with
//! `tests/prosody_module/mod_test_domain_mapper.lua`, which rewrites addresses the way
//! jitsi-meet's `mod_muc_domain_mapper` does, with the same hooks and therefore the same limits
//! (docs/protocol.md, "Tenant rooms"). First the module's behaviour as a component and a
//! browser (c2s) see it; then `jitape run` recording a tenant room, named in either spelling.

use jitape_sim::harness as support;

use jitape_sim::harness::components as harness;

use std::time::Duration;

use harness::{Comp, FOCUS, NS_COMPONENT, NS_MUC, RECORDER, has_status, start_prosody, xml};
use jitape::sink::sidecar;
use jitape_sim::analyze::check_recording;
use jitape_sim::plan::ConferencePlan;
use minidom::Element;
use support::process::{JitapeProcess, wait_for_final};
use support::prosody::{MUC, Prosody, sim_world};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TENANT: &str = "acme";

/// Prosody with the mapper (base `localhost`, prefix `conference`: the MUC is
/// `conference.localhost`, a tenant's virtual MUC domain `conference.<tenant>.localhost`) on
/// the MUC, with or without jitape's module.
fn tenant_prosody(jitape_module: bool) -> Prosody {
    let modules = if jitape_module {
        r#""jitape", "test_domain_mapper""#
    } else {
        r#""test_domain_mapper""#
    };
    let prosody = start_prosody(
        &format!("  modules_enabled = {{ {modules} }}\n  jitape_component = \"{RECORDER}\"\n"),
        concat!(
            "muc_mapper_domain_base = \"localhost\"\nmuc_mapper_domain_prefix = \"conference\"\n",
            // The browser's login (SASL ANONYMOUS on the VirtualHost, resource binding).
            "modules_enabled = { \"disco\", \"ping\", \"saslauth\" }\n",
        ),
    );
    harness::wait_for_log(&prosody, "test domain mapper");
    prosody
}

fn internal(node: &str) -> String {
    format!("[{TENANT}]{node}@{MUC}")
}

fn virtual_form(node: &str) -> String {
    format!("{node}@conference.{TENANT}.localhost")
}

fn is_presence_from(e: &Element, from: &str) -> bool {
    e.name() == "presence" && e.attr("from") == Some(from)
}

/// A browser's connection, reduced to what the test needs: anonymous login, resource bind,
/// raw stanzas out, and the text received.
struct C2s {
    tcp: TcpStream,
    seen: String,
}

impl C2s {
    async fn connect(port: u16) -> C2s {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut c = C2s {
            tcp,
            seen: String::new(),
        };
        let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
        c.send(header).await;
        c.wait_for("</stream:features>").await;
        c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
            .await;
        c.wait_for("<success").await;
        c.seen.clear();
        c.send(header).await;
        c.wait_for("</stream:features>").await;
        c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>browser</resource></bind></iq>").await;
        c.wait_for("</iq>").await;
        c.seen.clear();
        c
    }

    async fn send(&mut self, s: &str) {
        self.tcp.write_all(s.as_bytes()).await.unwrap();
    }

    /// Read until the received text contains `needle`; returns everything received so far.
    async fn wait_for(&mut self, needle: &str) -> String {
        let mut buf = [0u8; 8192];
        let deadline = tokio::time::Instant::now() + harness::WAIT;
        while !self.seen.contains(needle) {
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("c2s: no {needle:?}; received:\n{}", self.seen))
                .unwrap();
            assert!(n > 0, "c2s stream closed; received:\n{}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        self.seen.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_mapper_rewrites_like_the_mapper_and_has_its_limits() {
    support::logs();
    let prosody = tenant_prosody(true);
    let mut rec = Comp::recorder(&prosody).await;
    let mut sim = Comp::sim(&prosody).await;
    let room = internal("lesson");
    let virt = virtual_form("lesson");

    // A browser names the room in the virtual form: its `to` is rewritten (pre-presence), the
    // room exists in the internal form, and what the browser gets back is virtual again.
    let mut browser = C2s::connect(prosody.c2s_port).await;
    browser
        .send(&format!(
            "<presence to='{virt}/browser'><x xmlns='{NS_MUC}'/></presence>"
        ))
        .await;
    let seen = browser.wait_for("code='110'").await;
    assert!(seen.contains(&format!("from='{virt}/browser'")), "{seen}");
    assert!(!seen.contains(&format!("[{TENANT}]")), "{seen}");
    let created = rec.next_event().await;
    assert_eq!(
        (created.kind.as_str(), created.room.as_str()),
        ("room-created", room.as_str())
    );

    // Components address the internal form; what the MUC routes to them arrives virtual.
    sim.send(xml(&format!(
        r#"<presence xmlns="{NS_COMPONENT}" from="{FOCUS}" to="{room}/focus"><x xmlns="{NS_MUC}"/></presence>"#
    )))
    .await;
    let own = format!("{virt}/focus");
    sim.expect("the focus's self-presence, virtual", |e| {
        is_presence_from(e, &own) && has_status(e, "110")
    })
    .await;
    let me = "rec@recorder.localhost/r1";
    rec.send(xml(&format!(
        r#"<presence xmlns="{NS_COMPONENT}" from="{me}" to="{room}/jitape1"><x xmlns="{NS_MUC}"/></presence>"#
    )))
    .await;
    let own = format!("{virt}/jitape1");
    rec.expect("the recorder's self-presence, virtual", |e| {
        is_presence_from(e, &own) && has_status(e, "110") && e.attr("type").is_none()
    })
    .await;
    let focus_virtual = format!("{virt}/focus");
    rec.expect("the focus's presence, virtual", |e| {
        is_presence_from(e, &focus_virtual)
    })
    .await;

    // Nothing rewrites what a component sends: a presence to the virtual form bounces.
    rec.send(xml(&format!(
        r#"<presence xmlns="{NS_COMPONENT}" from="{me}" to="{virt}/jitape1"/>"#
    )))
    .await;
    let bounce = rec
        .expect("the bounce of a presence to the virtual form", |e| {
            is_presence_from(e, &own) && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(
        harness::error_condition(&bounce).as_deref(),
        Some("not-allowed")
    );
    assert!(
        String::from(&bounce).contains("Communication with remote domains is not enabled"),
        "{}",
        String::from(&bounce)
    );

    // An IQ from the focus (relayed by the MUC) arrives from the virtual occupant JID. A
    // result sent back to that `from` is dropped without a word; to the internal form it
    // reaches the focus.
    sim.send(xml(&format!(
        r#"<iq xmlns="{NS_COMPONENT}" type="get" id="ping-1" from="{FOCUS}" to="{room}/jitape1"><ping xmlns="urn:xmpp:ping"/></iq>"#
    )))
    .await;
    let ping = rec
        .expect("the focus's ping, virtual", |e| {
            e.name() == "iq" && e.attr("from") == Some(focus_virtual.as_str())
        })
        .await;
    let id = ping.attr("id").unwrap_or_default().to_string();
    let result = |to: &str| {
        xml(&format!(
            r#"<iq xmlns="{NS_COMPONENT}" type="result" id="{id}" from="{me}" to="{to}"/>"#
        ))
    };
    rec.send(result(&focus_virtual)).await;
    let answer_to_ping = |e: &Element| e.name() == "iq" && e.attr("id") == Some("ping-1");
    sim.expect_none(
        "an answer to the ping",
        Duration::from_secs(2),
        answer_to_ping,
    )
    .await;
    rec.expect_none("a bounce of the result", Duration::from_millis(200), |e| {
        e.name() == "iq" && e.attr("id") == Some(id.as_str())
    })
    .await;
    rec.send(result(&format!("{room}/focus"))).await;
    let answer = sim.expect("the answer to the ping", answer_to_ping).await;
    assert_eq!(answer.attr("type"), Some("result"));
    // Replies the MUC sends itself keep the internal form: a second join under a taken nick.
    rec.send(xml(&format!(
        r#"<presence xmlns="{NS_COMPONENT}" from="rec@recorder.localhost/r2" to="{room}/focus"><x xmlns="{NS_MUC}"/></presence>"#
    )))
    .await;
    let refused = rec
        .expect("the conflict for a taken nick", |e| {
            e.name() == "presence" && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(refused.attr("from"), Some(format!("{room}/focus").as_str()));
    assert_eq!(
        harness::error_condition(&refused).as_deref(),
        Some("conflict")
    );
    assert!(
        rec.downs.is_empty() && sim.downs.is_empty(),
        "{:?} {:?}",
        rec.downs,
        sim.downs
    );
    rec.close().await;
    sim.close().await;
}

/// `jitape run` on the Prosody, with the admin API on `http`.
fn jitape_toml(port: u16, http: u16, dir: &std::path::Path) -> String {
    format!(
        r#"
[xmpp]
host = "127.0.0.1"
port = {port}
domain = "{RECORDER}"
secret = "rec-secret"
muc_domains = ["{MUC}"]
reconnect_min = "200ms"
reconnect_max = "2s"
[media]
bind = "127.0.0.1"
[recording]
dir = "{}"
[http]
bind = "127.0.0.1:{http}"
"#,
        dir.display()
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A direct invitation from the focus naming `room`, sent after `after`.
fn invite_later(world: &jitape_sim::world::World, room: String, after: Duration) {
    let out = world.outbound();
    let focus = format!("focus@{}/focus", world.settings().domain);
    let recorder = world.settings().recorder_domain.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let x = xml(&format!(r#"<x xmlns="jabber:x:conference" jid="{room}"/>"#));
        let mut m = xml(&format!(
            r#"<message xmlns="{NS_COMPONENT}" from="{focus}" to="{recorder}"/>"#
        ));
        m.append_child(x);
        let _ = out.send(m).await;
    });
}

/// GET /conferences after `after`, while the conference runs.
fn conferences_later(http: u16, after: Duration) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let mut s = TcpStream::connect(("127.0.0.1", http)).await.unwrap();
        s.write_all(b"GET /conferences HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut body))
            .await
            .expect("an answer in time")
            .unwrap();
        body
    })
}

/// Play the demo conference in `room` (internal form) with jitape running; returns what the
/// recording check needs and jitape's log.
struct Played {
    outcome: jitape_sim::world::ConferenceOutcome,
    flac: std::path::PathBuf,
    sidecar: sidecar::Sidecar,
    log: String,
    conferences: String,
    _dir: tempfile::TempDir,
}

async fn play(prosody: &Prosody, room: &str, invitation: Option<String>) -> Played {
    let tmp = tempfile::tempdir().unwrap();
    let rec_dir = tmp.path().join("recordings");
    let http = free_port();
    let mut jitape = JitapeProcess::spawn(
        env!("CARGO_BIN_EXE_jitape"),
        &jitape_toml(prosody.component_port, http, &rec_dir),
        tmp.path(),
    );
    let world = sim_world(prosody.component_port).await;
    let mut plan = ConferencePlan::demo(room);
    plan.invite_at = None;
    if let Some(jid) = invitation {
        invite_later(&world, jid, Duration::from_secs(1));
    }
    let listing = conferences_later(http, Duration::from_secs(6));
    let outcome = world.run(plan).await.expect("conference played");
    let found = wait_for_final(&rec_dir, room, Duration::from_secs(20)).await;
    let status = jitape.terminate(Duration::from_secs(15));
    world.close().await;
    let log = jitape.log();
    let (flac, sc_path) = found.unwrap_or_else(|| {
        panic!(
            "no finalized recording\n--- jitape ---\n{log}\n--- prosody ---\n{}",
            prosody.log()
        )
    });
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    assert_eq!(
        support::files_with_suffix(&rec_dir, ".flac"),
        vec![flac.clone()],
        "one recording\n{log}"
    );
    assert!(support::files_with_suffix(&rec_dir, ".partial").is_empty());
    support::flac_test(&flac);
    let sidecar = sidecar::read(&sc_path).unwrap();
    let conferences = listing.await.unwrap();
    Played {
        outcome,
        flac,
        sidecar,
        log,
        conferences,
        _dir: tmp,
    }
}

fn check(p: &Played, room: &str, name: &str) {
    let log = &p.log;
    let report = check_recording(&p.flac, &p.sidecar, &p.outcome).unwrap();
    assert!(report.ok(), "{report}\n{log}");
    // Our self-presence was recognised (no rejoin), and the focus got our disco#info result
    // and our session-accept (one accepted session).
    assert_eq!(p.outcome.recorder_joins.len(), 1, "{log}");
    assert_eq!(p.outcome.sessions, 1, "{log}");
    for bad in ["join refused", "rejoining"] {
        assert!(!log.contains(bad), "{bad:?} in the log:\n{log}");
    }
    assert_eq!(p.sidecar.room, room);
    assert_eq!(p.sidecar.tenant.as_deref(), Some(TENANT));
    assert_eq!(p.sidecar.room_name, name);
    let body = p.conferences.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let list: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("/conferences: {e}: {}", p.conferences));
    let c = &list[0];
    assert_eq!(
        (&c["room"], &c["tenant"], &c["room_name"]),
        (
            &serde_json::json!(room),
            &serde_json::json!(TENANT),
            &serde_json::json!(name)
        ),
        "{list}"
    );
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

/// mod_jitape reports the room in the internal form, the focus also invites jitape with the
/// virtual one: one conference, one recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_room_is_recorded_once_whichever_spelling_names_it() {
    support::logs();
    let prosody = tenant_prosody(true);
    let room = internal("caf%c3%a9");
    let played = play(&prosody, &room, Some(virtual_form("caf%c3%a9"))).await;
    check(&played, &room, "café");
}

/// Without jitape's module, an invitation naming the virtual form is all jitape learns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_naming_the_virtual_form_records_the_room() {
    support::logs();
    let prosody = tenant_prosody(false);
    let room = internal("weeklysync");
    let played = play(&prosody, &room, Some(virtual_form("WeeklySync"))).await;
    check(&played, &room, "weeklysync");
}
