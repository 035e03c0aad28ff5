//! The simulated Jitsi side as one XMPP component: its connection (jitape's own link code),
//! a dispatcher that hands each room's stanzas to the conference playing in it, and
//! [`World::run`] to play a [`ConferencePlan`].
//!
//! It connects like jitape does, as an XEP-0114 component (e.g. `sim.localhost`), to the
//! in-process [`super::router::SimServer`] or to a real Prosody: the same simulation runs
//! against both. Every simulated occupant has its own JID on that domain
//! (`focus@sim.localhost/focus`, `p1@sim.localhost/...`), as Prosody's affiliations are per
//! bare JID. A tenant room is played in its internal form (`[tenant]room@muc`), which is
//! what a component must address; stanzas that arrive in the virtual form are normalised.

use std::collections::HashMap;
use std::time::Duration;

use minidom::Element;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::debug;

pub use super::conference::{ConferenceOutcome, SimConference, SimError, SimInput, WorldSettings};
use super::plan::ConferencePlan;
use jitape::config::Secret;
use jitape::xmpp::link::{self, LinkEvent, LinkSettings};
use jitape::xmpp::stanza::{Header, Jid};
use jitape::xmpp::tenant;

enum Dispatch {
    Register {
        room: String,
        inbox: mpsc::Sender<SimInput>,
    },
    Unregister {
        room: String,
    },
}

/// The connected simulation.
pub struct World {
    settings: WorldSettings,
    outbound: mpsc::Sender<Element>,
    dispatch: mpsc::Sender<Dispatch>,
    shutdown: watch::Sender<bool>,
}

impl World {
    /// Connect and wait until the link is up.
    pub async fn connect(settings: WorldSettings) -> Result<World, SimError> {
        let (out_tx, out_rx) = mpsc::channel(1024);
        let (ev_tx, ev_rx) = mpsc::channel(1024);
        let (dispatch_tx, dispatch_rx) = mpsc::channel(64);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (up_tx, up_rx) = oneshot::channel();
        let link_settings = LinkSettings {
            host: settings.host.clone(),
            port: settings.port,
            domain: settings.domain.clone(),
            secret: Secret::new(settings.secret.clone()),
            ping_target: settings.muc_domain.clone(),
            ping_interval: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(2),
            limits: Default::default(),
        };
        tokio::spawn(link::run(link_settings, out_rx, ev_tx, shutdown_rx));
        let mucs = vec![settings.muc_domain.clone()];
        tokio::spawn(dispatcher(ev_rx, dispatch_rx, up_tx, mucs));
        let limit = Duration::from_secs(15);
        tokio::time::timeout(limit, up_rx)
            .await
            .map_err(|_| SimError::LinkTimeout(limit))?
            .map_err(|_| SimError::Closed)?;
        Ok(World {
            settings,
            outbound: out_tx,
            dispatch: dispatch_tx,
            shutdown: shutdown_tx,
        })
    }

    pub fn settings(&self) -> &WorldSettings {
        &self.settings
    }

    /// Play one conference to its end.
    pub async fn run(&self, plan: ConferencePlan) -> Result<ConferenceOutcome, SimError> {
        let room = plan.room.to_lowercase();
        let (tx, rx) = mpsc::channel(1024);
        self.dispatch
            .send(Dispatch::Register {
                room: room.clone(),
                inbox: tx,
            })
            .await
            .map_err(|_| SimError::Closed)?;
        let conf = SimConference::new(plan, self.settings.clone(), self.outbound.clone(), rx)?;
        let outcome = conf.play().await;
        let _ = self.dispatch.send(Dispatch::Unregister { room }).await;
        outcome
    }

    /// A stanza sender on the simulation's link (for tests that script extra traffic).
    pub fn outbound(&self) -> mpsc::Sender<Element> {
        self.outbound.clone()
    }

    pub async fn close(self) {
        let _ = self.shutdown.send(true);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dispatcher(
    mut events: mpsc::Receiver<LinkEvent>,
    mut control: mpsc::Receiver<Dispatch>,
    up: oneshot::Sender<()>,
    muc_domains: Vec<String>,
) {
    let mut up = Some(up);
    let mut rooms: HashMap<String, mpsc::Sender<SimInput>> = HashMap::new();
    loop {
        tokio::select! {
            // Registrations first: a conference registers its room before its focus sends the
            // join, and the join's echo must not reach the dispatcher before the room does
            // (an unbiased select, on a busy machine, dropped it as "for no conference" and
            // the focus timed out creating the room).
            biased;
            c = control.recv() => match c {
                Some(Dispatch::Register { room, inbox }) => { rooms.insert(room, inbox); }
                Some(Dispatch::Unregister { room }) => { rooms.remove(&room); }
                None => return,
            },
            ev = events.recv() => match ev {
                Some(LinkEvent::Up { .. }) => match up.take() {
                    Some(tx) => {
                        let _ = tx.send(());
                    }
                    None => {
                        for tx in rooms.values() {
                            let _ = tx.send(SimInput::Reconnected).await;
                        }
                    }
                },
                Some(LinkEvent::Stanza(el, _)) => {
                    // Like jitape, a component: tenant rooms arrive in their virtual form
                    // and are played (and answered) in their internal one.
                    let el = tenant::normalize_inbound(&muc_domains, el);
                    let room = Header::of(&el)
                        .and_then(|h| h.from)
                        .map(|f: Jid| f.bare);
                    match room.and_then(|r| rooms.get(&r)) {
                        Some(tx) => {
                            let _ = tx.send(SimInput::Stanza(el)).await;
                        }
                        None => debug!("simulation: stanza for no conference"),
                    }
                }
                Some(LinkEvent::Down { .. }) | Some(LinkEvent::Dropped(_)) => {}
                None => return,
            },
        }
    }
}
