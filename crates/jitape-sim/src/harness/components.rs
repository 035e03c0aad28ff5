//! Test side of `config/prosody/mod_jitape.lua` (for `tests/prosody_module` and
//! `tests/tenants.rs`): a real Prosody with the module loaded, and
//! XEP-0114 components connected through jitape's own link (`jitape::xmpp::link`) that play
//! jitape (`recorder.localhost`) and the Jitsi world (`sim.localhost`: focus and participants).
//!
//! In: what the tests send (joins, leaves, room configuration, IQs). Out: the stanzas Prosody
//! delivers, consumed in arrival order with bounded waits.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jitape::config::Secret;
use jitape::xmpp::link::{self, LinkEvent, LinkSettings};
use minidom::Element;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::prosody::{ComponentDecl, Prosody, ProsodySpec};

pub const MUC: &str = "conference.localhost";
pub const RECORDER: &str = "recorder.localhost";
pub const SIM: &str = "sim.localhost";
pub const NS: &str = "urn:jitape:prosody:1";
pub const NS_COMPONENT: &str = "jabber:component:accept";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const FOCUS: &str = "focus@sim.localhost/focus";

/// mod_jitape's rendezvous weight of (room, instance): the first 52 bits of
/// SHA-256(room NUL instance) (`weight` in config/prosody/mod_jitape.lua;
/// tests/prosody_module/instances.rs checks it against the module on Prosody). The live
/// instance with the highest weight owns the room.
pub fn rendezvous_weight(room: &str, instance: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{room}\0{instance}").as_bytes());
    digest[..7]
        .iter()
        .fold(0u64, |w, b| (w << 8) | u64::from(*b))
        >> 4
}

/// How long any single expected stanza may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// `config/prosody` (the module) and `tests/prosody_module` (test-only modules).
pub fn plugin_paths() -> String {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    format!(
        "plugin_paths = {{ \"{}\", \"{}\" }}\n",
        root.join("config/prosody").display(),
        root.join("tests/prosody_module").display()
    )
}

/// Prosody with the recorder and sim components, one MUC carrying `muc_extra`.
pub fn start_prosody(muc_extra: &str, global_extra: &str) -> Prosody {
    Prosody::start(&ProsodySpec {
        components: vec![
            ComponentDecl {
                domain: RECORDER.into(),
                secret: "rec-secret".into(),
            },
            ComponentDecl {
                domain: SIM.into(),
                secret: "sim-secret".into(),
            },
        ],
        muc_domains: vec![MUC.into()],
        muc_extra: muc_extra.into(),
        global_extra: format!("{}{global_extra}", plugin_paths()),
    })
}

/// The module configured the way the README says.
pub fn start_with_module() -> Prosody {
    start_prosody(
        &format!(
            "  modules_enabled = {{ \"jitape\", \"test_meeting_id\" }}\n  jitape_component = \"{RECORDER}\"\n"
        ),
        "",
    )
}

/// One connected component.
pub struct Comp {
    pub domain: String,
    out: mpsc::Sender<Element>,
    events: mpsc::Receiver<LinkEvent>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    backlog: Vec<Element>,
    /// Every `Down` the link reported (a module stanza that breaks the reader shows up here).
    pub downs: Vec<String>,
}

impl Comp {
    pub async fn connect(port: u16, domain: &str, secret: &str) -> Comp {
        let settings = LinkSettings {
            host: "127.0.0.1".into(),
            port,
            domain: domain.into(),
            secret: Secret::new(secret),
            ping_target: MUC.into(),
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(1),
            limits: Default::default(),
        };
        let (out_tx, out_rx) = mpsc::channel(256);
        let (ev_tx, mut ev_rx) = mpsc::channel(1024);
        let (sd_tx, sd_rx) = watch::channel(false);
        let task = tokio::spawn(link::run(settings, out_rx, ev_tx, sd_rx));
        let up = tokio::time::timeout(WAIT, async {
            loop {
                match ev_rx.recv().await {
                    Some(LinkEvent::Up { .. }) => return true,
                    Some(_) => continue,
                    None => return false,
                }
            }
        })
        .await;
        assert_eq!(
            up,
            Ok(true),
            "component {domain} did not connect to prosody"
        );
        Comp {
            domain: domain.into(),
            out: out_tx,
            events: ev_rx,
            shutdown: sd_tx,
            task,
            backlog: Vec::new(),
            downs: Vec::new(),
        }
    }

    pub async fn recorder(prosody: &Prosody) -> Comp {
        Comp::connect(prosody.component_port, RECORDER, "rec-secret").await
    }

    pub async fn sim(prosody: &Prosody) -> Comp {
        Comp::connect(prosody.component_port, SIM, "sim-secret").await
    }

    pub async fn send(&self, el: Element) {
        self.out.send(el).await.expect("link task alive");
    }

    /// Wait for the next stanza (in arrival order) that `pred` accepts; others stay queued.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(LinkEvent::Stanza(el, _))) if pred(&el) => return el,
                Ok(Some(LinkEvent::Stanza(el, _))) => self.backlog.push(el),
                Ok(Some(LinkEvent::Down { reason })) => self.downs.push(reason),
                Ok(Some(LinkEvent::Up { .. })) | Ok(Some(LinkEvent::Dropped(_))) => {}
                Ok(None) => panic!("{}: link task ended while waiting for {what}", self.domain),
                Err(_) => panic!(
                    "{}: no {what} within {WAIT:?}; received meanwhile:\n{}",
                    self.domain,
                    self.backlog
                        .iter()
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    }

    /// Wait `within` and fail if a stanza that `pred` accepts arrives meanwhile; others stay
    /// queued.
    pub async fn expect_none(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Element) -> bool,
    ) {
        if let Some(el) = self.backlog.iter().find(|e| pred(e)) {
            panic!("{}: unexpected {what}: {}", self.domain, String::from(el));
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(LinkEvent::Stanza(el, _))) if pred(&el) => {
                    panic!("{}: unexpected {what}: {}", self.domain, String::from(&el))
                }
                Ok(Some(LinkEvent::Stanza(el, _))) => self.backlog.push(el),
                Ok(Some(LinkEvent::Down { reason })) => self.downs.push(reason),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// The module events already queued and those arriving within `within`, in order.
    pub async fn events_within(&mut self, within: Duration) -> Vec<Event> {
        self.expect_none("nothing", within, |_| false).await;
        let (events, rest): (Vec<Element>, Vec<Element>) = std::mem::take(&mut self.backlog)
            .into_iter()
            .partition(|e| e.name() == "message" && e.get_child("event", NS).is_some());
        self.backlog = rest;
        events.iter().map(Event::from_message).collect()
    }

    /// The next module event (message carrying `<event xmlns=urn:jitape:prosody:1>`), in order.
    pub async fn next_event(&mut self) -> Event {
        let msg = self
            .expect("jitape module event", |e| {
                e.name() == "message" && e.get_child("event", NS).is_some()
            })
            .await;
        Event::from_message(&msg)
    }

    /// Answer to an IQ we sent with `id`.
    pub async fn iq_answer(&mut self, id: &str) -> Element {
        self.expect(&format!("answer to iq {id}"), |e| {
            e.name() == "iq"
                && e.attr("id") == Some(id)
                && matches!(e.attr("type"), Some("result") | Some("error"))
        })
        .await
    }

    /// Join `room` as `from` with `nick`; `extra` is raw XML appended to the presence.
    /// Ok(self-presence) or Err(error condition).
    pub async fn join(
        &mut self,
        from: &str,
        room: &str,
        nick: &str,
        password: Option<&str>,
        extra: &str,
    ) -> Result<Element, String> {
        let pw = password
            .map(|p| format!("<password>{p}</password>"))
            .unwrap_or_default();
        let presence = xml(&format!(
            r#"<presence xmlns="{NS_COMPONENT}" from="{from}" to="{room}/{nick}"><x xmlns="{NS_MUC}">{pw}</x>{extra}</presence>"#
        ));
        self.join_with(presence).await
    }

    /// Send a join presence built by the caller; Ok(self-presence) or Err(error condition).
    pub async fn join_with(&mut self, presence: Element) -> Result<Element, String> {
        let from = presence.attr("from").unwrap_or_default().to_string();
        let occupant = presence.attr("to").unwrap_or_default().to_string();
        self.send(presence).await;
        let reply = self
            .expect(&format!("join result for {occupant}"), |e| {
                e.name() == "presence"
                    && e.attr("from") == Some(occupant.as_str())
                    && e.attr("to") == Some(from.as_str())
                    && (e.attr("type") == Some("error") || has_status(e, "110"))
            })
            .await;
        if reply.attr("type") == Some("error") {
            Err(error_condition(&reply).unwrap_or_else(|| "no condition".into()))
        } else {
            Ok(reply)
        }
    }

    /// Leave `room`; waits for our own unavailable presence.
    pub async fn leave(&mut self, from: &str, room: &str, nick: &str) {
        self.send(xml(&format!(
            r#"<presence xmlns="{NS_COMPONENT}" from="{from}" to="{room}/{nick}" type="unavailable"/>"#
        )))
        .await;
        let occupant = format!("{room}/{nick}");
        self.expect(&format!("unavailable self-presence of {occupant}"), |e| {
            e.name() == "presence"
                && e.attr("from") == Some(occupant.as_str())
                && e.attr("to") == Some(from)
                && e.attr("type") == Some("unavailable")
        })
        .await;
    }

    /// Submit a muc#owner configuration form (`fields`: var, value) as `from`; panics unless
    /// Prosody accepts it.
    pub async fn configure(&mut self, from: &str, room: &str, fields: &[(&str, &str)]) {
        let mut form = String::from(
            r#"<field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>"#,
        );
        for (var, value) in fields {
            form.push_str(&format!(
                r#"<field var="{var}"><value>{value}</value></field>"#
            ));
        }
        let id = format!("cfg-{}", rand::random::<u32>());
        self.send(xml(&format!(
            r#"<iq xmlns="{NS_COMPONENT}" type="set" from="{from}" to="{room}" id="{id}"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit">{form}</x></query></iq>"#
        )))
        .await;
        let answer = self.iq_answer(&id).await;
        assert_eq!(
            answer.attr("type"),
            Some("result"),
            "room configuration refused: {}",
            String::from(&answer)
        );
    }

    /// Send the catch-up query from `from`; returns the answer.
    pub async fn query_rooms(&mut self, from: &str) -> Element {
        let id = format!("rooms-{}", rand::random::<u32>());
        self.send(xml(&format!(
            r#"<iq xmlns="{NS_COMPONENT}" type="get" from="{from}" to="{MUC}" id="{id}"><rooms xmlns="{NS}"/></iq>"#
        )))
        .await;
        self.iq_answer(&id).await
    }

    pub async fn close(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }
}

pub fn xml(s: &str) -> Element {
    s.parse()
        .unwrap_or_else(|e| panic!("test XML does not parse ({e}): {s}"))
}

pub fn has_status(presence: &Element, code: &str) -> bool {
    presence.get_child("x", NS_MUC_USER).is_some_and(|x| {
        x.children()
            .any(|c| c.name() == "status" && c.attr("code") == Some(code))
    })
}

pub fn error_condition(el: &Element) -> Option<String> {
    let error = el.children().find(|c| c.name() == "error")?;
    error
        .children()
        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        .map(|c| c.name().to_string())
}

/// One occupant as the module reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occ {
    pub nick: String,
    pub jid: String,
    pub role: String,
    pub affiliation: String,
    pub features: Vec<String>,
}

impl Occ {
    pub fn from_element(el: &Element) -> Occ {
        assert_eq!(
            el.name(),
            "occupant",
            "not an occupant: {}",
            String::from(el)
        );
        Occ {
            nick: el.attr("nick").unwrap_or_default().into(),
            jid: el.attr("jid").unwrap_or_default().into(),
            role: el.attr("role").unwrap_or_default().into(),
            affiliation: el.attr("affiliation").unwrap_or_default().into(),
            features: el
                .children()
                .filter(|f| f.name() == "feature")
                .map(|f| f.attr("var").unwrap_or_default().to_string())
                .collect(),
        }
    }
}

/// One module event.
#[derive(Debug, Clone)]
pub struct Event {
    pub from: String,
    pub to: String,
    pub message_type: String,
    pub kind: String,
    pub room: String,
    pub meeting_id: Option<String>,
    pub occupants: String,
    pub occupant: Option<Occ>,
}

impl Event {
    pub fn from_message(msg: &Element) -> Event {
        let ev = msg.get_child("event", NS).expect("event child");
        let occupants: Vec<_> = ev.children().filter(|c| c.name() == "occupant").collect();
        assert!(
            occupants.len() <= 1,
            "more than one occupant: {}",
            String::from(msg)
        );
        Event {
            from: msg.attr("from").unwrap_or_default().into(),
            to: msg.attr("to").unwrap_or_default().into(),
            message_type: msg.attr("type").unwrap_or_default().into(),
            kind: ev.attr("type").unwrap_or_default().into(),
            room: ev.attr("room").unwrap_or_default().into(),
            meeting_id: ev.attr("meeting-id").map(str::to_string),
            occupants: ev.attr("occupants").unwrap_or_default().into(),
            occupant: occupants.first().map(|o| Occ::from_element(o)),
        }
    }
}

/// Wait until Prosody's log contains `needle` (module load messages are written at start).
pub fn wait_for_log(prosody: &Prosody, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = prosody.log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "prosody log never contained {needle:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until, for each entry of `wanted`, one error line contains all its parts; returns the
/// log.
pub fn wait_for_errors(prosody: &Prosody, wanted: &[&[&str]]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = prosody.log();
        let errors = error_lines(&log);
        let missing: Vec<_> = wanted
            .iter()
            .filter(|parts| !errors.iter().any(|l| parts.iter().all(|p| l.contains(p))))
            .collect();
        if missing.is_empty() {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no error lines with {missing:?} in prosody's log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Log lines at error level.
pub fn error_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.split('\t').any(|f| f.trim() == "error"))
        .collect()
}
