//! One simulated conference: a Jicofo-like focus, the scripted humans and the bridge
//! sessions, behaving towards jitape the way Jicofo, Prosody's MUC and JVB do (see
//! docs/protocol.md). This file is the loop and the stanza dispatch; the focus's session
//! handling is in `focus.rs`, the people and room administration in `people.rs`.
//!
//! In: the plan, the room's stanzas, and `Reconnected` after the simulation's XMPP link came
//! back (a server restart). Out: presences, room configuration and Jingle IQs, RTP from the
//! simulated bridge, and a [`ConferenceOutcome`] saying what was sent when.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use minidom::Element;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::any_bridge::Bridge;
use super::bridge::{BridgeConfig, RED_PT, RedSend};
use super::plan::{ConferencePlan, Disruption};
use super::voice::Voice;
use jitape::jingle::model::BridgeSession;
use jitape::xml::BuilderExt;
use jitape::xmpp::muc;
use jitape::xmpp::stanza::{self, Header, Kind, NS_COMPONENT, NS_MUC};

/// Where the simulated side connects and what it knows about jitape.
#[derive(Debug, Clone)]
pub struct WorldSettings {
    pub host: String,
    pub port: u16,
    /// The simulation's component domain.
    pub domain: String,
    pub secret: String,
    pub muc_domain: String,
    /// jitape's component domain (to recognise its occupants); occupants of its subdomains
    /// are jitape too (several instances, `jitape-1.<recorder_domain>`, …).
    pub recorder_domain: String,
}

/// Why a simulated conference could not be played.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the simulation's XMPP link did not come up within {0:?}")]
    LinkTimeout(Duration),
    #[error("the simulation is shut down")]
    Closed,
    #[error("voice: {0}")]
    Voice(#[from] super::voice::VoiceError),
    #[error("bridge: {0}")]
    Bridge(#[from] super::bridge::BridgeError),
    #[error("{0}")]
    Protocol(String),
}

/// What a simulated conference receives.
#[derive(Debug)]
pub enum SimInput {
    Stanza(Element),
    /// The simulation's link came back after a drop (e.g. the server restarted).
    Reconnected,
}

/// What happened in a played conference; tests compare the recording against it.
#[derive(Debug, Clone)]
pub struct ConferenceOutcome {
    pub plan: ConferencePlan,
    /// The epoch every plan offset refers to, as instant and as wall clock.
    pub epoch: Instant,
    pub wall_epoch: SystemTime,
    /// What each bridge session sent (one per Jingle session).
    pub sent: Vec<super::bridge::SentLog>,
    /// How many Jingle sessions jitape accepted.
    pub sessions: u32,
    /// When jitape's occupant first appeared, after the epoch.
    pub recorder_joined: Option<Duration>,
    /// Every time jitape's occupant (re)appeared, after the epoch.
    pub recorder_joins: Vec<Duration>,
    /// Every time jitape's occupant left, after the epoch.
    pub recorder_leaves: Vec<Duration>,
    /// Every time the focus left the room because no member was left in it (Jicofo's
    /// `maybeStop`), after the epoch; the room then closes as Prosody destroys empty rooms.
    pub room_closed: Vec<Duration>,
    /// When the simulation sent the room's destruction, after the epoch: the plan's end
    /// plus the simulation's own lateness on a busy machine, which is not the recorder's.
    pub ended: Option<Duration>,
    /// When the server's answer to that destruction reached the simulation, after the
    /// epoch. The server sends the occupants' destruction presences (jitape's among them)
    /// before that answer (docs/protocol.md, Prosody), so the room ended between `ended` and
    /// this moment: over Prosody, 3–10 ms apart on an idle machine, more on a busy one.
    pub end_confirmed: Option<Duration>,
    /// Replies to probes (malformed Jingle, knocks, P2P offers): `(what was sent, reply
    /// type, error condition or reason)`.
    pub probe_replies: Vec<(String, String, Option<String>)>,
}

/// A scheduled step.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Event {
    Configure(Disruption),
    Knock { speaker: usize, stint: usize },
    Admit { speaker: usize, stint: usize },
    Join { speaker: usize, stint: usize },
    Invite,
    Disrupt(Disruption),
    Leave { speaker: usize, stint: usize },
    End,
}

impl Event {
    /// Order of events at the same instant: room configuration first, the end last.
    fn rank(&self) -> u8 {
        match self {
            Event::Configure(_) => 0,
            Event::Knock { .. } | Event::Admit { .. } => 1,
            Event::Join { .. } => 2,
            Event::Invite => 3,
            Event::Disrupt(_) => 4,
            Event::Leave { .. } => 5,
            Event::End => 6,
        }
    }
}

pub(super) struct Session {
    pub(super) sid: String,
    /// The id of the session-initiate IQ (its error reply ends the session).
    pub(super) initiate_id: Option<String>,
    pub(super) bridge: Bridge,
    pub(super) bridge_session: BridgeSession,
    pub(super) accepted: bool,
}

/// The room's configuration as the focus set it (re-applied after a server restart).
#[derive(Debug, Default, Clone)]
pub(super) struct RoomConfig {
    pub(super) password: Option<String>,
    pub(super) members_only: bool,
    /// Bare JIDs granted membership.
    pub(super) members: Vec<String>,
}

pub struct SimConference {
    pub(super) plan: ConferencePlan,
    pub(super) s: WorldSettings,
    out: mpsc::Sender<Element>,
    inbox: mpsc::Receiver<SimInput>,
    pub(super) voices: Vec<Arc<Voice>>,
    events: Vec<(Duration, Event)>,
    pub(super) epoch: Instant,
    wall_epoch: SystemTime,
    pub(super) room: String,
    pub(super) focus_jid: String,
    pub(super) recorder: Option<String>,
    pub(super) recorder_json: bool,
    /// jitape advertised `http://jitsi.org/opus-red` (and the plan's Jicofo offers RED).
    pub(super) recorder_red: bool,
    pub(super) recorder_joins: Vec<Duration>,
    pub(super) recorder_leaves: Vec<Duration>,
    /// The focus is in the room (it leaves when no member is left, as Jicofo does).
    pub(super) focus_in: bool,
    pub(super) room_closed: Vec<Duration>,
    pub(super) ended: Option<Duration>,
    pub(super) end_confirmed: Option<Duration>,
    /// Unusable offers sent so far (see `ConferencePlan::unusable_offers`).
    pub(super) unusable_sent: u32,
    pub(super) pending_disco: Option<String>,
    pub(super) disco_done: bool,
    pub(super) session: Option<Session>,
    /// Per speaker: the stint currently in the room.
    pub(super) present: Vec<Option<usize>>,
    pub(super) config: RoomConfig,
    /// Since when jitape is the only participant with a session (Jicofo's idle timeout).
    pub(super) alone_since: Option<Instant>,
    pub(super) sent: Vec<super::bridge::SentLog>,
    pub(super) sessions: u32,
    next_id: u64,
    pub(super) probes: Vec<(String, String)>,
    pub(super) probe_replies: Vec<(String, String, Option<String>)>,
}

impl SimConference {
    pub fn new(
        plan: ConferencePlan,
        s: WorldSettings,
        out: mpsc::Sender<Element>,
        inbox: mpsc::Receiver<SimInput>,
    ) -> Result<Self, SimError> {
        let voices = plan
            .speakers
            .iter()
            .map(|sp| sp.voice.load())
            .collect::<Result<Vec<_>, _>>()?;
        let mut events: Vec<(Duration, Event)> = Vec::new();
        for (speaker, sp) in plan.speakers.iter().enumerate() {
            for (stint, st) in sp.stints.iter().enumerate() {
                if st.knock {
                    let knock = st.join_at.saturating_sub(Duration::from_secs(2));
                    events.push((knock, Event::Knock { speaker, stint }));
                    let admit = st.join_at.saturating_sub(Duration::from_millis(500));
                    events.push((admit, Event::Admit { speaker, stint }));
                }
                events.push((st.join_at, Event::Join { speaker, stint }));
                if let Some(at) = st.leave_at {
                    events.push((at, Event::Leave { speaker, stint }));
                }
            }
        }
        if let Some(at) = plan.invite_at {
            events.push((at, Event::Invite));
        }
        for (at, d) in &plan.disruptions {
            let ev = match d {
                Disruption::MembersOnly(_) | Disruption::Password(_) => Event::Configure(d.clone()),
                _ => Event::Disrupt(d.clone()),
            };
            events.push((*at, ev));
        }
        events.push((plan.end_at, Event::End));
        events.sort_by_key(|(at, e)| (*at, e.rank()));
        let room = plan.room.to_lowercase();
        let focus_jid = format!("focus@{}/focus", s.domain);
        let n = plan.speakers.len();
        Ok(SimConference {
            plan,
            s,
            out,
            inbox,
            voices,
            events,
            epoch: Instant::now(),
            wall_epoch: SystemTime::now(),
            room,
            focus_jid,
            recorder: None,
            recorder_json: false,
            recorder_red: false,
            recorder_joins: Vec::new(),
            recorder_leaves: Vec::new(),
            focus_in: false,
            room_closed: Vec::new(),
            ended: None,
            end_confirmed: None,
            unusable_sent: 0,
            pending_disco: None,
            disco_done: false,
            session: None,
            present: vec![None; n],
            config: RoomConfig::default(),
            alone_since: None,
            sent: Vec::new(),
            sessions: 0,
            next_id: 0,
            probes: Vec::new(),
            probe_replies: Vec::new(),
        })
    }

    pub(super) fn id(&mut self) -> String {
        self.next_id += 1;
        format!("sim-{}", self.next_id)
    }

    pub(super) async fn send(&self, el: Element) {
        let _ = self.out.send(el).await;
    }

    /// Waits (at most `within`) for the answer to the request `id`; everything else that
    /// arrives meanwhile is left unread, as it would be once the conference is over.
    pub(super) async fn await_answer(&mut self, id: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Ok(Some(input)) = tokio::time::timeout_at(deadline, self.inbox.recv()).await else {
                return false;
            };
            let SimInput::Stanza(el) = input else {
                continue;
            };
            if let Some(h) = Header::of(&el)
                && h.kind == Kind::Iq
                && !h.is_iq_request()
                && h.id.as_deref() == Some(id)
            {
                return true;
            }
        }
    }

    pub(super) fn presence(from: &str, to: &str, children: Vec<Element>) -> Element {
        let mut b = Element::builder("presence", NS_COMPONENT)
            .set("from", from)
            .set("to", to);
        for c in children {
            b = b.append(c);
        }
        b.build()
    }

    /// Play the plan to its end.
    pub async fn play(mut self) -> Result<ConferenceOutcome, SimError> {
        self.create_room().await?;
        self.epoch = Instant::now();
        self.wall_epoch = SystemTime::now();
        info!(room = %self.room, "simulated conference starts");
        let events = std::mem::take(&mut self.events);
        for (at, event) in events {
            let due = self.epoch + at;
            while Instant::now() < due {
                let idle = self.idle_deadline().filter(|d| *d < due).unwrap_or(due);
                tokio::select! {
                    input = self.inbox.recv() => match input {
                        Some(SimInput::Stanza(el)) => self.on_stanza(el).await,
                        Some(SimInput::Reconnected) => self.rebuild().await,
                        None => return Err(SimError::Closed),
                    },
                    _ = tokio::time::sleep_until(idle.into()) => {
                        if idle < due {
                            self.idle_timeout().await;
                        }
                    }
                }
            }
            debug!(room = %self.room, ?event, "simulation event");
            self.on_event(event).await;
        }
        if let Some(s) = self.session.take() {
            self.sent.push(s.bridge.close().await);
        }
        Ok(ConferenceOutcome {
            plan: self.plan,
            epoch: self.epoch,
            wall_epoch: self.wall_epoch,
            sent: self.sent,
            sessions: self.sessions,
            recorder_joined: self.recorder_joins.first().copied(),
            recorder_joins: self.recorder_joins,
            recorder_leaves: self.recorder_leaves,
            room_closed: self.room_closed,
            ended: self.ended,
            end_confirmed: self.end_confirmed,
            probe_replies: self.probe_replies,
        })
    }

    /// The focus joins first and creates the room (Jicofo does, on the first conference IQ).
    async fn create_room(&mut self) -> Result<(), SimError> {
        self.send(self.focus_join()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let input = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .map_err(|_| SimError::Protocol("the focus could not create the room".into()))?
                .ok_or(SimError::Closed)?;
            let SimInput::Stanza(el) = input else {
                continue;
            };
            let Some(h) = Header::of(&el) else { continue };
            let from_focus = h.from.as_ref().and_then(|f| f.resource.as_deref()) == Some("focus");
            if h.kind == Kind::Presence && from_focus {
                if h.is_type("error") {
                    return Err(SimError::Protocol(format!(
                        "room creation refused: {:?}",
                        stanza::error_condition(&el)
                    )));
                }
                self.focus_in = true;
                return Ok(());
            }
        }
    }

    fn focus_join(&self) -> Element {
        let x = Element::builder("x", NS_MUC).build();
        Self::presence(&self.focus_jid, &format!("{}/focus", self.room), vec![x])
    }

    /// The simulation's link came back (the server restarted: every room is gone). Like the
    /// real clients after a reload, the focus recreates the room, re-applies its
    /// configuration, and the humans rejoin; jitape's old session died with the bridge
    /// conference.
    async fn rebuild(&mut self) {
        info!(room = %self.room, "server restarted; recreating the room");
        self.recorder = None;
        self.pending_disco = None;
        self.disco_done = false;
        self.alone_since = None;
        if let Some(s) = self.session.take() {
            self.sent.push(s.bridge.close().await);
        }
        self.send(self.focus_join()).await;
        self.apply_config().await;
        for speaker in 0..self.present.len() {
            if let Some(stint) = self.present[speaker] {
                self.send(self.join_presence(speaker, stint, None)).await;
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Configure(d) => self.configure(d).await,
            Event::Knock { speaker, stint } => self.knock(speaker, stint).await,
            Event::Admit { speaker, stint } => self.admit(speaker, stint).await,
            Event::Join { speaker, stint } => self.join(speaker, stint).await,
            Event::Leave { speaker, stint } => self.leave(speaker, stint).await,
            Event::Invite => {
                let x = Element::builder("x", "jabber:x:conference")
                    .set("jid", self.room.as_str())
                    .build();
                let m = Element::builder("message", NS_COMPONENT)
                    .set("from", self.focus_jid.as_str())
                    .set("to", self.s.recorder_domain.as_str())
                    .append(x)
                    .build();
                self.send(m).await;
            }
            Event::Disrupt(d) => self.disrupt(d).await,
            Event::End => self.destroy().await,
        }
    }

    async fn disrupt(&mut self, d: Disruption) {
        match d {
            Disruption::MoveBridge => self.move_bridge().await,
            Disruption::ReplaceTransport => self.replace_transport().await,
            Disruption::FailBridge => {
                if let Some(s) = &mut self.session {
                    info!(room = %self.room, "simulated bridge fails");
                    s.bridge.fail().await;
                }
            }
            Disruption::QuietBridge => {
                if let Some(Session {
                    bridge: Bridge::Sim(b),
                    ..
                }) = &mut self.session
                {
                    info!(room = %self.room, "simulated bridge stops forwarding");
                    b.go_quiet();
                }
            }
            Disruption::MalformedJingle => self.send_malformed().await,
            Disruption::KickRecorder => self.kick_recorder().await,
            Disruption::P2pOffer(speaker) => self.offer_p2p(speaker).await,
            Disruption::MembersOnly(_) | Disruption::Password(_) => self.configure(d).await,
            Disruption::Netem(_) | Disruption::FocusSilent => self.fault(d).await,
        }
    }

    async fn on_stanza(&mut self, el: Element) {
        let Some(h) = Header::of(&el) else { return };
        let nick = h.from.as_ref().and_then(|f| f.resource.clone());
        match h.kind {
            Kind::Presence if h.is_type("error") && self.is_probe(&h) => {
                self.on_response(&h, &el).await;
            }
            Kind::Presence => {
                if let (Some(from), Some(_)) = (&h.from, &nick)
                    && let Some(p) = muc::parse_presence(&el, from)
                {
                    self.on_presence(p).await;
                }
            }
            Kind::Iq if h.is_iq_request() => self.on_request(&h, &el, nick).await,
            Kind::Iq => self.on_response(&h, &el).await,
            Kind::Message => {}
        }
    }

    fn is_probe(&self, h: &Header) -> bool {
        self.probes
            .iter()
            .any(|(id, _)| h.id.as_deref() == Some(id))
    }

    async fn on_response(&mut self, h: &Header, el: &Element) {
        if let Some(pos) = self
            .probes
            .iter()
            .position(|(id, _)| h.id.as_deref() == Some(id))
        {
            let (_, label) = self.probes.remove(pos);
            let kind = h.type_.clone().unwrap_or_default();
            self.probe_replies
                .push((label, kind, stanza::error_condition(el)));
        } else if h.is_type("error")
            && h.id.is_some()
            && self.session.as_ref().and_then(|s| s.initiate_id.as_ref()) == h.id.as_ref()
        {
            // Jicofo: an error answer to the offer expires the participant; no new invite
            // until it joins again (`ParticipantInviteRunnable`).
            info!(room = %self.room, "the recorder refused the offer; its participant is expired");
            if let Some(s) = self.session.take() {
                self.sent.push(s.bridge.close().await);
            }
        } else if h.id.is_some() && h.id == self.pending_disco {
            self.pending_disco = None;
            self.disco_done = true;
            self.recorder_json = self.plan.json_sources && disco_has(el, JSON_SOURCES);
            self.recorder_red = self.plan.offer.red_distance.is_some() && disco_has(el, OPUS_RED);
            if self.humans_present() > 0 {
                self.start_session().await;
            }
        }
    }

    /// A bridge configuration for a new session.
    pub(super) fn bridge_config(&self) -> BridgeConfig {
        let stints: usize = self.plan.speakers.iter().map(|s| s.stints.len()).sum();
        let mut wire = self.plan.bridge.wire.clone();
        // Jicofo offers RED only to a receiver that asked for it; the bridge then forwards
        // the senders' RED as it is (docs/protocol.md, "Opus RED").
        wire.red = match self.plan.offer.red_distance {
            Some(distance) if self.recorder_red => Some(RedSend {
                pt: RED_PT,
                distance,
            }),
            _ => None,
        };
        BridgeConfig {
            wire,
            max_speakers: stints.max(1) + 2,
            seed: self
                .plan
                .bridge
                .seed
                .wrapping_add(u64::from(self.sessions) * 7919 + self.next_id),
            ..self.plan.bridge.clone()
        }
    }
}

const JSON_SOURCES: &str = "http://jitsi.org/json-encoded-sources";
const OPUS_RED: &str = "http://jitsi.org/opus-red";

fn disco_has(el: &Element, feature: &str) -> bool {
    el.get_child("query", stanza::NS_DISCO_INFO)
        .is_some_and(|q| {
            q.children()
                .any(|f| f.name() == "feature" && f.attr("var") == Some(feature))
        })
}
