//! One simulated conference: a Jicofo-like focus, the scripted humans, and the bridge
//! sessions, behaving towards jitape the way Jicofo and JVB do (see docs/protocol.md).
//!
//! In: the plan and the room's stanzas. Out: presences and Jingle IQs into the room, RTP from
//! the simulated bridge, and a [`ConferenceOutcome`] saying what was sent when.
//!
//! What it mirrors: the focus creates the room; when jitape's occupant appears it asks
//! disco#info and then sends session-initiate with the sources of everyone present (JSON form
//! if jitape advertises it); source-add when someone new joins; **no** source-remove when
//! someone leaves (their presence says it); it answers a session-terminate with
//! `bridge-session restart='true'` with a new session; it re-invites when jitape rejoins; it
//! destroys the room at the end.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use minidom::Element;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::bridge::{BridgeConfig, SimBridge, SpeakerScript};
use super::plan::{ConferencePlan, Disruption};
use super::voice::Voice;
use super::world::{ConferenceOutcome, SimError, WorldSettings};
use crate::jingle::model::{BridgeSession, Reason};
use crate::jingle::{self, Action as JAction};
use crate::xml::BuilderExt;
use crate::xmpp::muc;
use crate::xmpp::stanza::{self, Header, Kind, NS_COMPONENT, NS_DISCO_INFO, NS_MUC};

const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const JSON_SOURCES: &str = "http://jitsi.org/json-encoded-sources";

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Join(usize),
    Leave(usize),
    Invite,
    Disrupt(Disruption),
    End,
}

struct Session {
    sid: String,
    bridge: SimBridge,
    bridge_session: BridgeSession,
    accepted: bool,
}

pub struct SimConference {
    plan: ConferencePlan,
    s: WorldSettings,
    out: mpsc::Sender<Element>,
    inbox: mpsc::Receiver<Element>,
    voices: Vec<Arc<Voice>>,
    events: Vec<(Duration, Event)>,
    epoch: Instant,
    wall_epoch: SystemTime,
    room: String,
    focus_jid: String,
    recorder: Option<String>,
    recorder_json: bool,
    recorder_joined: Option<Duration>,
    pending_disco: Option<String>,
    session: Option<Session>,
    present: Vec<bool>,
    sent: Vec<super::bridge::SentLog>,
    sessions: u32,
    next_id: u64,
    probes: Vec<(String, String)>,
    probe_replies: Vec<(String, String, Option<String>)>,
}

/// Malformed Jingle the focus may send: (label, `<jingle>` with `{sid}` for the session).
const MALFORMED: &[(&str, &str)] = &[
    (
        "session-initiate without transport",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="bogus1" initiator="focus"><content name="audio" creator="initiator"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><payload-type id="111" name="opus" clockrate="48000" channels="2"/></description></content></jingle>"#,
    ),
    (
        "unknown action",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-dance" sid="{sid}"/>"#,
    ),
    (
        "source-add with a bad SSRC",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{sid}"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="12abc"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="deadbeef"/></source></description></content></jingle>"#,
    ),
];

impl SimConference {
    pub fn new(
        plan: ConferencePlan,
        s: WorldSettings,
        out: mpsc::Sender<Element>,
        inbox: mpsc::Receiver<Element>,
    ) -> Result<Self, SimError> {
        let voices = plan
            .speakers
            .iter()
            .map(|sp| sp.voice.load())
            .collect::<Result<Vec<_>, _>>()?;
        let mut events: Vec<(Duration, Event)> = Vec::new();
        for (i, sp) in plan.speakers.iter().enumerate() {
            events.push((sp.join_at, Event::Join(i)));
            if let Some(at) = sp.leave_at {
                events.push((at, Event::Leave(i)));
            }
        }
        if let Some(at) = plan.invite_at {
            events.push((at, Event::Invite));
        }
        for (at, d) in &plan.disruptions {
            events.push((*at, Event::Disrupt(d.clone())));
        }
        events.push((plan.end_at, Event::End));
        // Stable order: by time, joins before invites before leaves at the same instant.
        events.sort_by_key(|(at, e)| (*at, matches!(e, Event::Leave(_) | Event::End)));
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
            recorder_joined: None,
            pending_disco: None,
            session: None,
            present: vec![false; n],
            sent: Vec::new(),
            sessions: 0,
            next_id: 0,
            probes: Vec::new(),
            probe_replies: Vec::new(),
        })
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("sim-{}", self.next_id)
    }

    async fn send(&self, el: Element) {
        let _ = self.out.send(el).await;
    }

    fn presence(from: &str, to: &str, children: Vec<Element>) -> Element {
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
            loop {
                tokio::select! {
                    el = self.inbox.recv() => match el {
                        Some(el) => self.on_stanza(el).await,
                        None => return Err(SimError::Closed),
                    },
                    _ = tokio::time::sleep_until(due.into()) => break,
                }
            }
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
            recorder_joined: self.recorder_joined,
            probe_replies: self.probe_replies,
        })
    }

    /// The focus joins first and creates the room (Jicofo does, on the first conference IQ).
    async fn create_room(&mut self) -> Result<(), SimError> {
        let x = Element::builder("x", NS_MUC).build();
        let p = Self::presence(&self.focus_jid, &format!("{}/focus", self.room), vec![x]);
        self.send(p).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let el = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .map_err(|_| SimError::Protocol("the focus could not create the room".into()))?
                .ok_or(SimError::Closed)?;
            let Some(h) = Header::of(&el) else { continue };
            let from_focus = h.from.as_ref().and_then(|f| f.resource.as_deref()) == Some("focus");
            if h.kind == Kind::Presence && from_focus {
                if h.is_type("error") {
                    return Err(SimError::Protocol(format!(
                        "room creation refused: {:?}",
                        stanza::error_condition(&el)
                    )));
                }
                return Ok(());
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        debug!(room = %self.room, ?event, "simulation event");
        match event {
            Event::Join(i) => self.join(i).await,
            Event::Leave(i) => self.leave(i).await,
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
            Event::Disrupt(Disruption::MoveBridge) => self.move_bridge().await,
            Event::Disrupt(Disruption::FailBridge) => {
                if let Some(s) = &mut self.session {
                    info!(room = %self.room, "simulated bridge fails");
                    s.bridge.fail().await;
                }
            }
            Event::Disrupt(Disruption::MalformedJingle) => self.send_malformed().await,
            Event::End => self.destroy().await,
        }
    }

    async fn send_malformed(&mut self) {
        let Some(nick) = self.recorder.clone() else {
            return;
        };
        let sid = self
            .session
            .as_ref()
            .map_or("none".to_string(), |s| s.sid.clone());
        for (label, xml) in MALFORMED {
            let Ok(payload) = xml.replace("{sid}", &sid).parse::<Element>() else {
                continue;
            };
            let id = self.id();
            self.probes.push((id.clone(), (*label).to_string()));
            let to = format!("{}/{nick}", self.room);
            self.send(stanza::iq("set", &self.focus_jid, &to, &id, payload))
                .await;
        }
    }

    fn speaker_jid(&self, i: usize) -> String {
        format!(
            "p{}@{}/{}",
            i + 1,
            self.s.domain,
            self.plan.speakers[i].endpoint
        )
    }

    fn script(&self, i: usize) -> SpeakerScript {
        let sp = &self.plan.speakers[i];
        SpeakerScript {
            endpoint: sp.endpoint.clone(),
            voice: Arc::clone(&self.voices[i]),
            windows: sp.talk.clone(),
        }
    }

    async fn join(&mut self, i: usize) {
        let sp = &self.plan.speakers[i];
        let children = vec![
            Element::builder("x", NS_MUC).build(),
            Element::builder("nick", "http://jabber.org/protocol/nick")
                .append(sp.display_name.clone())
                .build(),
            Element::builder("stats-id", NS_COMPONENT)
                .append(sp.stats_id.clone())
                .build(),
        ];
        let to = format!("{}/{}", self.room, sp.endpoint);
        let p = Self::presence(&self.speaker_jid(i), &to, children);
        self.send(p).await;
        self.present[i] = true;
        let script = self.script(i);
        let Some(session) = &mut self.session else {
            return;
        };
        match session.bridge.add_speaker(script) {
            Ok(source) => {
                let sid = session.sid.clone();
                let payload = jingle::source_add(&sid, &[source], self.recorder_json);
                self.jingle_to_recorder(payload).await;
            }
            Err(e) => warn!(error = %e, "bridge could not add a speaker"),
        }
    }

    async fn leave(&mut self, i: usize) {
        if !self.present[i] {
            return;
        }
        self.present[i] = false;
        let endpoint = self.plan.speakers[i].endpoint.clone();
        let p = muc::leave_presence(&self.speaker_jid(i), &self.room, &endpoint);
        self.send(p).await;
        // Jicofo sends no source-remove for a leaver: the bridge just stops forwarding.
        if let Some(s) = &mut self.session
            && !self.plan.bridge_keeps_leavers
        {
            let _ = s.bridge.remove_speaker(&endpoint);
        }
    }

    async fn destroy(&mut self) {
        let id = self.id();
        let q = Element::builder("query", NS_MUC_OWNER)
            .append(Element::builder("destroy", NS_MUC_OWNER).build())
            .build();
        let iq = stanza::iq("set", &self.focus_jid, &self.room, &id, q);
        self.send(iq).await;
        info!(room = %self.room, "simulated conference ends (room destroyed)");
    }

    async fn jingle_to_recorder(&mut self, payload: Element) {
        let Some(nick) = self.recorder.clone() else {
            return;
        };
        let id = self.id();
        let to = format!("{}/{nick}", self.room);
        let iq = stanza::iq("set", &self.focus_jid, &to, &id, payload);
        self.send(iq).await;
    }

    async fn on_stanza(&mut self, el: Element) {
        let Some(h) = Header::of(&el) else { return };
        let nick = h.from.as_ref().and_then(|f| f.resource.clone());
        match h.kind {
            Kind::Presence => {
                if let (Some(from), Some(_)) = (&h.from, &nick)
                    && let Some(p) = muc::parse_presence(&el, from)
                {
                    self.on_presence(p).await;
                }
            }
            Kind::Iq if h.is_iq_request() => self.on_request(&h, &el, nick).await,
            Kind::Iq => {
                if let Some(pos) = self
                    .probes
                    .iter()
                    .position(|(id, _)| h.id.as_deref() == Some(id))
                {
                    let (_, label) = self.probes.remove(pos);
                    let kind = h.type_.clone().unwrap_or_default();
                    self.probe_replies
                        .push((label, kind, stanza::error_condition(&el)));
                } else if h.id.is_some() && h.id == self.pending_disco {
                    self.pending_disco = None;
                    self.recorder_json = self.plan.json_sources && disco_has(&el, JSON_SOURCES);
                    self.start_session().await;
                }
            }
            Kind::Message => {}
        }
    }

    async fn on_presence(&mut self, p: muc::OccupantPresence) {
        let is_recorder = p
            .item
            .jid
            .as_ref()
            .is_some_and(|j| j.domain() == self.s.recorder_domain);
        if !is_recorder || p.error.is_some() {
            return;
        }
        if p.unavailable {
            if self.recorder.as_deref() == Some(p.nick.as_str()) {
                info!(room = %self.room, "recorder left the room");
                self.recorder = None;
                self.pending_disco = None;
                if let Some(s) = self.session.take() {
                    self.sent.push(s.bridge.close().await);
                }
            }
            return;
        }
        if self.recorder.as_deref() == Some(p.nick.as_str()) {
            return;
        }
        // A member joined: Jicofo discovers its features, then invites it.
        info!(room = %self.room, nick = %p.nick, "recorder joined; discovering features");
        self.recorder_joined.get_or_insert(self.epoch.elapsed());
        self.recorder = Some(p.nick.clone());
        let id = self.id();
        self.pending_disco = Some(id.clone());
        let to = format!("{}/{}", self.room, p.nick);
        let q = Element::builder("query", NS_DISCO_INFO).build();
        let iq = stanza::iq("get", &self.focus_jid, &to, &id, q);
        self.send(iq).await;
    }

    async fn start_session(&mut self) {
        if let Some(old) = self.session.take() {
            self.sent.push(old.bridge.close().await);
        }
        let scripts: Vec<SpeakerScript> = (0..self.plan.speakers.len())
            .filter(|i| self.present[*i])
            .map(|i| self.script(i))
            .collect();
        let cfg = BridgeConfig {
            max_speakers: self.plan.speakers.len().max(1) * 2,
            seed: self
                .plan
                .bridge
                .seed
                .wrapping_add(u64::from(self.sessions) * 7919 + self.next_id),
            ..self.plan.bridge.clone()
        };
        let (bridge, offer, sources) = match SimBridge::allocate(cfg, scripts).await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "simulated bridge allocation failed");
                return;
            }
        };
        let sid = format!("{:016x}", rand::random::<u64>());
        let bridge_session = BridgeSession {
            id: format!("{:016x}", rand::random::<u64>()),
            region: None,
            restart: false,
            ice_restart: false,
        };
        let focus_real = self.focus_jid.clone();
        let payload = jingle::session_initiate(
            &sid,
            &focus_real,
            &offer,
            &sources,
            &bridge_session,
            self.recorder_json,
        );
        self.session = Some(Session {
            sid,
            bridge,
            bridge_session,
            accepted: false,
        });
        self.jingle_to_recorder(payload).await;
    }

    async fn move_bridge(&mut self) {
        let Some(sid) = self.session.as_ref().map(|s| s.sid.clone()) else {
            return;
        };
        info!(room = %self.room, "focus moves the recorder to another bridge");
        let reason = Reason {
            condition: "success".into(),
            text: Some("moving".into()),
        };
        self.jingle_to_recorder(jingle::session_terminate(&sid, None, &reason, None))
            .await;
        self.start_session().await;
    }

    async fn on_request(&mut self, h: &Header, el: &Element, nick: Option<String>) {
        let Some(payload) = stanza::payload(el) else {
            return;
        };
        let from_recorder = nick.is_some() && nick == self.recorder;
        if !(from_recorder && payload.is("jingle", jingle::ns::JINGLE)) {
            let reply = if payload.is("query", NS_DISCO_INFO) || payload.is("ping", stanza::NS_PING)
            {
                stanza::iq_result(el, None)
            } else {
                stanza::iq_error(el, "service-unavailable", None)
            };
            self.send(reply).await;
            return;
        }
        let j = match jingle::parse(payload) {
            Ok(j) => j,
            Err(e) => {
                self.send(stanza::iq_error(el, e.condition(), Some(&e.to_string())))
                    .await;
                return;
            }
        };
        let current = self.session.as_ref().is_some_and(|s| s.sid == j.sid);
        if !current {
            debug!(?h.id, sid = %j.sid, "jingle for an old session");
            self.send(stanza::iq_result(el, None)).await;
            return;
        }
        match j.action {
            JAction::SessionAccept | JAction::TransportAccept => {
                let reply = self.accept(&j).await;
                self.send(reply.map_or_else(
                    |e| stanza::iq_error(el, "bad-request", Some(&e)),
                    |()| stanza::iq_result(el, None),
                ))
                .await;
            }
            JAction::SessionTerminate => {
                self.send(stanza::iq_result(el, None)).await;
                let restart = j.bridge_session.as_ref().is_some_and(|b| b.restart);
                let known = self.session.as_ref().is_some_and(|s| {
                    j.bridge_session
                        .as_ref()
                        .is_none_or(|b| b.id == s.bridge_session.id)
                });
                if let Some(s) = self.session.take() {
                    self.sent.push(s.bridge.close().await);
                }
                if restart && known {
                    info!(room = %self.room, "recorder asked for a new session");
                    self.start_session().await;
                }
            }
            _ => self.send(stanza::iq_result(el, None)).await,
        }
    }

    async fn accept(&mut self, j: &jingle::Jingle) -> Result<(), String> {
        let transport = j
            .audio
            .as_ref()
            .map(|a| a.transport.clone())
            .ok_or("accept without a transport")?;
        let Some(s) = &mut self.session else {
            return Err("no session".into());
        };
        if s.accepted {
            return Ok(());
        }
        s.bridge
            .accept(&transport)
            .await
            .map_err(|e| e.to_string())?;
        s.bridge.start(self.epoch).map_err(|e| e.to_string())?;
        s.accepted = true;
        self.sessions += 1;
        info!(room = %self.room, sid = %s.sid, "session accepted by the recorder");
        Ok(())
    }
}

fn disco_has(el: &Element, feature: &str) -> bool {
    el.get_child("query", NS_DISCO_INFO).is_some_and(|q| {
        q.children()
            .any(|f| f.name() == "feature" && f.attr("var") == Some(feature))
    })
}
