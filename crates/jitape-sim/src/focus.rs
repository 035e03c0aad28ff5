//! The simulated focus's Jingle side, mirroring current Jicofo (see docs/protocol.md):
//! disco#info when jitape's occupant appears, session-initiate once a human is present,
//! source-add for newcomers and never a source-remove, `<expired/>` after jitape has been
//! the only participant for the idle timeout and a fresh session-initiate when a human
//! returns, a new session for a restart request, "moving" and transport-replace re-invites.

use std::time::Instant;

use minidom::Element;
use tracing::{debug, info, warn};

use super::any_bridge::Bridge;
use super::bridge::SpeakerScript;
use super::conference::{Session, SimConference};
use super::plan::Disruption;
use jitape::jingle::model::{BridgeSession, Reason};
use jitape::jingle::{self, Action as JAction};
use jitape::xmpp::muc;
use jitape::xmpp::stanza::{self, Header, NS_DISCO_INFO};

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
    (
        "source-add with SSRC 0",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{sid}"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="0"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="deadbeef"/></source></description></content></jingle>"#,
    ),
    (
        "source-add with an SSRC above 2^32",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{sid}"><json-message xmlns="http://jitsi.org/jitmeet">{"sources":{"deadbeef":[[],[],[{"s":4294967296}]]}}</json-message></jingle>"#,
    ),
    (
        "source-add with 3,000 sources",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{sid}"><json-message xmlns="http://jitsi.org/jitmeet">{many}</json-message></jingle>"#,
    ),
    (
        "source-add whose JSON is not JSON",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="{sid}"><json-message xmlns="http://jitsi.org/jitmeet">{"sources":</json-message></jingle>"#,
    ),
    (
        "source-add for an unknown session",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="no-such-session"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="77"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="deadbeef"/></source></description></content></jingle>"#,
    ),
    (
        "source-remove for an unknown session",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-remove" sid="no-such-session"/>"#,
    ),
    (
        "transport-replace with a candidate port above 65535",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="transport-replace" sid="{sid}" initiator="focus"><content name="audio" creator="initiator"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><payload-type id="111" name="opus" clockrate="48000" channels="2"/></description><transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="u1" pwd="p1p1p1p1p1p1p1p1p1p1p1p1"><candidate component="1" foundation="1" generation="0" id="c1" ip="192.0.2.1" port="70000" priority="1" protocol="udp" type="host"/></transport></content></jingle>"#,
    ),
    (
        "transport-info with a negative port",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="transport-info" sid="{sid}"><content name="audio" creator="initiator"><transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="u1" pwd="p1"><candidate component="1" foundation="1" generation="0" ip="10.0.0.1" port="-1" priority="1" protocol="udp" type="host"/></transport></content></jingle>"#,
    ),
    (
        "session-initiate without Opus",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="bogus2" initiator="focus"><content name="audio" creator="initiator"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><payload-type id="0" name="PCMU" clockrate="8000"/></description><transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="u1" pwd="p1"/></content></jingle>"#,
    ),
    (
        "session-accept from the focus",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-accept" sid="{sid}"><content name="audio" creator="initiator"><transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="u1" pwd="p1"/></content></jingle>"#,
    ),
    (
        "Jingle without a sid",
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add"/>"#,
    ),
    (
        "Jingle in a foreign namespace",
        r#"<jingle xmlns="urn:xmpp:jingle:0" action="source-add" sid="{sid}"/>"#,
    ),
];

/// `{many}` in [`MALFORMED`]: Jicofo's JSON form with more sources than jitape takes.
fn many_sources_json() -> String {
    let sources: Vec<String> = (1..=3_000).map(|s| format!(r#"{{"s":{s}}}"#)).collect();
    format!(
        r#"{{"sources":{{"deadbeef":[[],[],[{}]]}}}}"#,
        sources.join(",")
    )
}

impl SimConference {
    /// Humans in the room now.
    pub(super) fn humans_present(&self) -> usize {
        self.present.iter().filter(|p| p.is_some()).count()
    }

    /// When Jicofo's single-participant timeout fires, if it is running.
    pub(super) fn idle_deadline(&self) -> Option<Instant> {
        self.alone_since.map(|t| t + self.plan.idle_timeout)
    }

    /// Called whenever the set of humans changes.
    pub(super) async fn humans_changed(&mut self) {
        if self.humans_present() == 0 {
            if self.session.is_some() {
                self.alone_since.get_or_insert(Instant::now());
            }
            self.maybe_stop().await;
            return;
        }
        self.alone_since = None;
        // Jicofo re-invites every member when nobody has a session any more.
        if self.session.is_none() && self.recorder.is_some() && self.disco_done {
            info!(room = %self.room, "a human returned; the focus invites the recorder again");
            self.start_session().await;
        }
    }

    pub(super) async fn idle_timeout(&mut self) {
        self.alone_since = None;
        if self.focus_silent() {
            return;
        }
        let Some(s) = self.session.take() else { return };
        info!(room = %self.room, "recorder alone: idle session timeout");
        let reason = Reason {
            condition: "expired".into(),
            text: Some("Idle session timeout".into()),
        };
        let sid = s.sid.clone();
        self.sent.push(s.bridge.close().await);
        self.jingle_to_recorder(jingle::session_terminate(&sid, None, &reason, None))
            .await;
    }

    pub(super) fn script(&self, speaker: usize, stint: usize) -> SpeakerScript {
        let sp = &self.plan.speakers[speaker];
        SpeakerScript {
            endpoint: sp.stints[stint].endpoint.clone(),
            voice: std::sync::Arc::clone(&self.voices[speaker]),
            windows: sp.talk.clone(),
        }
    }

    pub(super) async fn on_presence(&mut self, p: muc::OccupantPresence) {
        let is_recorder = p.item.jid.as_ref().is_some_and(|j| {
            let d = j.domain();
            d == self.s.recorder_domain
                || d.strip_suffix(self.s.recorder_domain.as_str())
                    .is_some_and(|sub| sub.ends_with('.'))
        });
        if !is_recorder || p.error.is_some() {
            return;
        }
        if p.unavailable {
            if self.recorder.as_deref() == Some(p.nick.as_str()) {
                info!(room = %self.room, "recorder left the room");
                self.recorder_leaves.push(self.epoch.elapsed());
                self.recorder = None;
                self.pending_disco = None;
                self.disco_done = false;
                self.alone_since = None;
                // Jicofo drops its participant silently (no session-terminate).
                if let Some(s) = self.session.take() {
                    self.sent.push(s.bridge.close().await);
                }
                self.maybe_stop().await;
            }
            return;
        }
        if self.recorder.as_deref() == Some(p.nick.as_str()) {
            return;
        }
        if self.focus_silent() {
            info!(room = %self.room, nick = %p.nick, "recorder joined; the silent focus ignores it");
            self.recorder_joins.push(self.epoch.elapsed());
            self.recorder = Some(p.nick.clone());
            return;
        }
        info!(room = %self.room, nick = %p.nick, "recorder joined; discovering features");
        self.recorder_joins.push(self.epoch.elapsed());
        self.recorder = Some(p.nick.clone());
        let id = self.id();
        self.pending_disco = Some(id.clone());
        let to = format!("{}/{}", self.room, p.nick);
        let q = Element::builder("query", NS_DISCO_INFO).build();
        let iq = stanza::iq("get", &self.focus_jid, &to, &id, q);
        self.send(iq).await;
    }

    /// Allocate a bridge session for everyone present and invite the recorder.
    pub(super) async fn start_session(&mut self) {
        if self.focus_silent() {
            return;
        }
        if let Some(old) = self.session.take() {
            self.sent.push(old.bridge.close().await);
        }
        let Some((bridge, mut offer, sources, bridge_session)) = self.allocate().await else {
            return;
        };
        if self.unusable_sent < self.plan.unusable_offers {
            self.unusable_sent += 1;
            info!(room = %self.room, "the focus offers only a codec the recorder cannot record");
            offer.description.payload_types = vec![jitape::jingle::model::PayloadType {
                id: 0,
                name: "PCMU".into(),
                clockrate: 8000,
                channels: 1,
                parameters: Vec::new(),
            }];
        }
        let sid = format!("{:016x}", rand::random::<u64>());
        let payload = super::offer::decorate(
            jingle::session_initiate(
                &sid,
                &self.focus_jid,
                &offer,
                &sources,
                &bridge_session,
                self.recorder_json,
            ),
            &self.plan.offer,
        );
        let initiate_id = self.jingle_to_recorder(payload).await;
        self.session = Some(Session {
            sid,
            initiate_id,
            bridge,
            bridge_session,
            accepted: false,
        });
    }

    async fn allocate(
        &mut self,
    ) -> Option<(
        Bridge,
        jitape::jingle::model::AudioOffer,
        Vec<jitape::jingle::model::Source>,
        BridgeSession,
    )> {
        let scripts: Vec<SpeakerScript> = (0..self.present.len())
            .filter_map(|i| self.present[i].map(|st| self.script(i, st)))
            .collect();
        match Bridge::allocate(self.bridge_config(), scripts).await {
            Ok((bridge, offer, mut sources)) => {
                // Jicofo keeps the synthetic translation sources in the conference's source
                // map, so every full offer carries them.
                let synthetic = super::offer::synthetic_sources(&sources, &self.plan.offer, || {
                    rand::random_range(1..u32::MAX)
                });
                sources.extend(synthetic);
                let bridge_session = BridgeSession {
                    id: format!("{:016x}", rand::random::<u64>()),
                    region: None,
                    restart: false,
                    ice_restart: false,
                };
                Some((bridge, offer, sources, bridge_session))
            }
            Err(e) => {
                warn!(error = %e, "simulated bridge allocation failed");
                None
            }
        }
    }

    pub(super) async fn move_bridge(&mut self) {
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

    /// `reinvite-method = ReplaceTransport`: same sid, a new bridge allocation.
    pub(super) async fn replace_transport(&mut self) {
        let Some(sid) = self.session.as_ref().map(|s| s.sid.clone()) else {
            return;
        };
        let Some((bridge, offer, sources, bridge_session)) = self.allocate().await else {
            return;
        };
        info!(room = %self.room, "focus replaces the recorder's transport");
        let payload = super::offer::decorate(
            jingle::transport_replace(
                &sid,
                &self.focus_jid,
                &offer,
                &sources,
                &bridge_session,
                self.recorder_json,
            ),
            &self.plan.offer,
        );
        if let Some(old) = self.session.replace(Session {
            sid,
            initiate_id: None,
            bridge,
            bridge_session,
            accepted: false,
        }) {
            self.sent.push(old.bridge.close().await);
        }
        let id = self.jingle_to_recorder(payload).await;
        if let Some(s) = &mut self.session {
            s.initiate_id = id;
        }
    }

    pub(super) async fn send_malformed(&mut self) {
        let Some(nick) = self.recorder.clone() else {
            return;
        };
        let sid = self
            .session
            .as_ref()
            .map_or("none".to_string(), |s| s.sid.clone());
        let many = many_sources_json();
        for (label, xml) in MALFORMED {
            let xml = xml.replace("{sid}", &sid).replace("{many}", &many);
            let Ok(payload) = xml.parse::<Element>() else {
                continue;
            };
            let id = self.id();
            self.probes.push((id.clone(), (*label).to_string()));
            let to = format!("{}/{nick}", self.room);
            self.send(stanza::iq("set", &self.focus_jid, &to, &id, payload))
                .await;
        }
    }

    /// Sends a Jingle IQ to the recorder; returns its id.
    pub(super) async fn jingle_to_recorder(&mut self, payload: Element) -> Option<String> {
        let nick = self.recorder.clone()?;
        if self.focus_silent() {
            return None;
        }
        let id = self.id();
        let to = format!("{}/{nick}", self.room);
        let iq = stanza::iq("set", &self.focus_jid, &to, &id, payload);
        self.send(iq).await;
        Some(id)
    }

    /// An IQ request from the room: jitape's Jingle to the focus (or to a human that offered
    /// P2P), or anything else.
    pub(super) async fn on_request(&mut self, h: &Header, el: &Element, nick: Option<String>) {
        let Some(payload) = stanza::payload(el) else {
            return;
        };
        let from_recorder = nick.is_some() && nick == self.recorder;
        if from_recorder && self.focus_silent() {
            self.ignore_silently(payload);
            return;
        }
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
        let to_focus = h.to.as_ref().is_some_and(|t| t.full() == self.focus_jid);
        if !to_focus {
            // jitape answering a human's P2P offer.
            let label = match jingle::parse_header(payload) {
                Ok(j) if j.action == JAction::SessionTerminate => "p2p declined",
                _ => "p2p other",
            };
            self.probe_replies
                .push((label.to_string(), "set".into(), reason_of(payload)));
            self.send(stanza::iq_result(el, None)).await;
            return;
        }
        self.on_jingle_to_focus(h, el, payload).await;
    }

    async fn on_jingle_to_focus(&mut self, h: &Header, el: &Element, payload: &Element) {
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
            self.send(stanza::iq_error(
                el,
                "item-not-found",
                Some("session no longer active"),
            ))
            .await;
            return;
        }
        match j.action {
            JAction::SessionAccept | JAction::TransportAccept => {
                let reply = match self.accept(&j).await {
                    Ok(()) => stanza::iq_result(el, None),
                    Err(e) => stanza::iq_error(el, "bad-request", Some(&e)),
                };
                self.send(reply).await;
            }
            JAction::SessionTerminate => {
                let restart = j.restart_requested();
                let known = self.session.as_ref().is_some_and(|s| {
                    j.bridge_session
                        .as_ref()
                        .is_some_and(|b| b.id == s.bridge_session.id)
                });
                let reply = if known {
                    stanza::iq_result(el, None)
                } else {
                    stanza::iq_error(el, "item-not-found", Some("bridge session id"))
                };
                self.send(reply).await;
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
        let epoch = self.epoch;
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
        s.bridge.start(epoch).map_err(|e| e.to_string())?;
        s.accepted = true;
        self.sessions += 1;
        info!(room = %self.room, sid = %s.sid, "session accepted by the recorder");
        if self.humans_present() == 0 {
            self.alone_since.get_or_insert(Instant::now());
        }
        Ok(())
    }
}

impl SimConference {
    /// A [`Disruption::FocusSilent`] is in force: the focus ignores the recorder.
    pub(super) fn focus_silent(&self) -> bool {
        let now = self.epoch.elapsed();
        self.plan
            .disruptions
            .iter()
            .any(|(at, d)| *d == Disruption::FocusSilent && *at <= now)
    }

    /// The focus-side faults: network impairments on the current bridge session, and the
    /// focus falling silent.
    pub(super) async fn fault(&mut self, d: Disruption) {
        match d {
            Disruption::Netem(cfg) => {
                if let Some(s) = &self.session {
                    info!(room = %self.room, loss = cfg.loss, "bridge network impairments change");
                    s.bridge.set_netem(cfg);
                }
            }
            Disruption::FocusSilent => {
                info!(room = %self.room, "the focus stops answering the recorder");
            }
            _ => {}
        }
    }

    /// An IQ request of the recorder that the silent focus neither answers nor acts on; it is
    /// noted in the outcome (`"ignored <action>"`) so tests can count what jitape kept sending.
    fn ignore_silently(&mut self, payload: &Element) {
        let what = payload.attr("action").unwrap_or(payload.name());
        debug!(room = %self.room, what, "the silent focus ignores a request of the recorder");
        self.probe_replies
            .push((format!("ignored {what}"), "none".into(), reason_of(payload)));
    }
}

fn reason_of(jingle: &Element) -> Option<String> {
    let reason = jingle.get_child("reason", jingle::ns::JINGLE)?;
    reason
        .children()
        .find(|c| c.name() != "text")
        .map(|c| c.name().to_string())
}
