//! `jitape check-config --live`: is this deployment ready for jitape? Connects to Prosody
//! with the configured component credentials, asks every MUC domain whether jitape's Prosody
//! module answers, and checks the recording directory and the media address — then says
//! what is missing and how to fix it.
//!
//! In: a validated [`Config`]. Out: a [`Report`] (printed by `main`; the exit status is
//! non-zero when anything failed). Connects once, sends only IQ gets, changes nothing.

use std::fmt;
use std::time::Duration;

use minidom::Element;

use jitape::config::Config;
use jitape::router::rooms;
use jitape::xmpp::link::{self, LinkSettings};
use jitape::xmpp::stanza;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub ok: bool,
    pub what: String,
    /// What to do when it failed.
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.items.iter().all(|i| i.ok)
    }

    fn push(&mut self, ok: bool, what: impl Into<String>, hint: Option<&str>) {
        self.items.push(Item {
            ok,
            what: what.into(),
            hint: hint.map(str::to_string),
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in &self.items {
            writeln!(f, "[{}] {}", if i.ok { " ok " } else { "FAIL" }, i.what)?;
            if let (false, Some(h)) = (i.ok, &i.hint) {
                writeln!(f, "       → {h}")?;
            }
        }
        write!(
            f,
            "{}",
            if self.ok() {
                "everything jitape needs is in place"
            } else {
                "jitape will not record every conference until the items above are fixed"
            }
        )
    }
}

const MODULE_HINT: &str = "load mod_jitape on this MUC component (modules_enabled = { \"jitape\" } and jitape_component = \"<xmpp.domain>\"; docker: XMPP_MUC_MODULES=jitape), see config/prosody/README.md";

/// Run every check.
pub async fn live(cfg: &Config) -> Report {
    let mut r = Report::default();
    local_checks(cfg, &mut r);
    let settings = LinkSettings {
        host: cfg.xmpp.host.clone(),
        port: cfg.xmpp.port,
        domain: cfg.xmpp.domain.clone(),
        secret: cfg.xmpp.secret.clone(),
        ping_target: String::new(),
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(5),
        reconnect_min: Duration::from_secs(1),
        reconnect_max: Duration::from_secs(1),
        limits: jitape::xmpp::wire::WireLimits {
            max_stanza: cfg.limits.max_stanza_size,
            ..Default::default()
        },
    };
    let mut stream = match link::connect(&settings).await {
        Ok(s) => {
            r.push(
                true,
                format!(
                    "component {} connected to {}:{} (handshake accepted)",
                    cfg.xmpp.domain, cfg.xmpp.host, cfg.xmpp.port
                ),
                None,
            );
            s
        }
        Err(e) => {
            r.push(
                false,
                format!("component {} at {}:{}: {e}", cfg.xmpp.domain, cfg.xmpp.host, cfg.xmpp.port),
                Some("declare the component in Prosody (config/prosody/jitape.cfg.lua) with the same secret, and make Prosody listen for components (component_ports; docker turns them off, see config/prosody/README.md)"),
            );
            return r;
        }
    };
    for domain in &cfg.xmpp.muc_domains {
        let id = format!("jitape-check-{domain}");
        let iq = stanza::iq("get", &cfg.xmpp.domain, domain, &id, rooms::catchup_query());
        if stream.send(&iq).await.is_err() {
            r.push(
                false,
                format!("{domain}: could not send the module query"),
                None,
            );
            continue;
        }
        match answer(&mut stream, &id).await {
            Some(el) if el.attr("type") == Some("result") => {
                let n = rooms::parse_catchup(&el).map_or(0, |v| v.len());
                r.push(
                    true,
                    format!("{domain}: mod_jitape answers ({n} rooms live)"),
                    None,
                );
                instances(
                    &cfg.xmpp.domain,
                    domain,
                    &rooms::parse_instances(&el),
                    &mut r,
                );
            }
            Some(el) => {
                let cond = stanza::error_condition(&el).unwrap_or_else(|| "error".into());
                r.push(
                    false,
                    format!("{domain}: mod_jitape does not answer ({cond})"),
                    Some(MODULE_HINT),
                );
            }
            None => r.push(
                false,
                format!("{domain}: no answer within 5 s"),
                Some(MODULE_HINT),
            ),
        }
    }
    stream.close().await;
    r
}

/// The jitape instances as the module on `domain` sees them (`jitape_components`): each with
/// its state and its rooms. This check's own connection stands in for `us` (`xmpp.domain`),
/// so `us` shows as live here even while the jitape it belongs to is not running.
fn instances(us: &str, domain: &str, list: &[rooms::InstanceReport], r: &mut Report) {
    if list.len() < 2 {
        return; // one instance (or a module too old to list them): nothing to choose between
    }
    let shown: Vec<String> = list
        .iter()
        .map(|i| {
            let state = match i.state.as_str() {
                "away" => "away, lease running",
                s => s,
            };
            let me = if i.component == us { ", this one" } else { "" };
            format!("{} ({state}{me}, {} rooms)", i.component, i.rooms)
        })
        .collect();
    let live = list.iter().filter(|i| i.state == "live").count();
    r.push(
        true,
        format!(
            "{domain}: {live} of {} jitape instances live: {}",
            list.len(),
            shown.join(", ")
        ),
        None,
    );
}

/// Wait for the IQ answer with `id`, skipping anything else.
async fn answer(stream: &mut link::Stream, id: &str) -> Option<Element> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .ok()?
            .ok()?;
        if let link::Inbound::Closed = next {
            return None;
        }
        if let link::Inbound::Stanza(el) = next
            && el.name() == "iq"
            && el.attr("id") == Some(id)
        {
            return Some(el);
        }
    }
}

fn local_checks(cfg: &Config, r: &mut Report) {
    let dir = &cfg.recording.dir;
    if let Err(e) = std::fs::create_dir_all(dir) {
        r.push(
            false,
            format!("recording dir {}: {e}", dir.display()),
            Some("create it and make it writable for the jitape user"),
        );
        return;
    }
    let writable = jitape::guard::writable(dir);
    r.push(
        writable,
        format!("recording dir {} writable", dir.display()),
        Some("make it writable for the jitape user"),
    );
    if let Ok(free) = jitape::guard::free_bytes(dir) {
        r.push(
            free >= cfg.recording.disk_floor,
            format!(
                "{} MB free (floor {} MB)",
                free / 1_000_000,
                cfg.recording.disk_floor / 1_000_000
            ),
            Some("free space, or lower recording.disk_floor"),
        );
    }
    match cfg.media.bind {
        Some(ip) => r.push(true, format!("ICE host candidate {ip} (media.bind)"), None),
        None => match std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
            s.connect((cfg.xmpp.host.as_str(), cfg.xmpp.port))?;
            s.local_addr()
        }) {
            Ok(a) => r.push(true, format!("ICE host candidate {} (media.bind = auto); the videobridge must reach it over UDP", a.ip()), None),
            Err(e) => r.push(false, format!("media.bind = auto: {e}"), Some("set media.bind to the IP the videobridge can reach")),
        },
    }
}
