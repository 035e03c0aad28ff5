//! The simulated humans and the focus's room administration: joins (with the room password
//! they know), leaves (with no source-remove, as Jicofo does), lobby knocks and admission,
//! members-only and password configuration, kicking jitape, a browser's P2P offer, and the
//! room's destruction.

use std::time::Duration;

use minidom::Element;
use tracing::{info, warn};

use super::conference::SimConference;
use super::plan::Disruption;
use jitape::jingle;
use jitape::xml::BuilderExt;
use jitape::xmpp::muc;
use jitape::xmpp::stanza::{self, NS_COMPONENT, NS_MUC};

const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_DATA: &str = "jabber:x:data";

impl SimConference {
    fn bare_jid(&self, speaker: usize) -> String {
        format!("p{}@{}", speaker + 1, self.s.domain)
    }

    fn speaker_jid(&self, speaker: usize, stint: usize) -> String {
        format!(
            "{}/{}",
            self.bare_jid(speaker),
            self.plan.speakers[speaker].stints[stint].endpoint
        )
    }

    /// A human's join presence, with the room password if there is one.
    pub(super) fn join_presence(&self, speaker: usize, stint: usize, id: Option<&str>) -> Element {
        let sp = &self.plan.speakers[speaker];
        let mut x = Element::builder("x", NS_MUC);
        if let Some(pw) = &self.config.password {
            x = x.append(
                Element::builder("password", NS_MUC)
                    .append(pw.clone())
                    .build(),
            );
        }
        let mut children = vec![
            x.build(),
            Element::builder("nick", "http://jabber.org/protocol/nick")
                .append(sp.display_name.clone())
                .build(),
            Element::builder("stats-id", NS_COMPONENT)
                .append(sp.stats_id.clone())
                .build(),
        ];
        if sp.identity.is_some() || sp.hidden_from_recorder {
            let field = |name: &str, value: &str| {
                Element::builder(name, NS_COMPONENT)
                    .append(value.to_string())
                    .build()
            };
            let mut user = Element::builder("user", NS_COMPONENT);
            if let Some((id, email)) = &sp.identity {
                user = user
                    .append(field("id", id))
                    .append(field("email", email))
                    .append(field("name", &sp.display_name));
            }
            if sp.hidden_from_recorder {
                user = user.append(field("hidden-from-recorder", "true"));
            }
            children.push(
                Element::builder("identity", NS_COMPONENT)
                    .append(user.build())
                    .build(),
            );
        }
        let to = format!("{}/{}", self.room, sp.stints[stint].endpoint);
        let mut b = Element::builder("presence", NS_COMPONENT)
            .set("from", self.speaker_jid(speaker, stint))
            .set("to", to)
            .set_opt("id", id);
        for c in children {
            b = b.append(c);
        }
        b.build()
    }

    pub(super) async fn join(&mut self, speaker: usize, stint: usize) {
        if !self.focus_in {
            self.reopen_room().await;
        }
        self.send(self.join_presence(speaker, stint, None)).await;
        self.present[speaker] = Some(stint);
        let script = self.script(speaker, stint);
        if let Some(session) = &mut self.session {
            match session.bridge.add_speaker(script) {
                Ok(source) => {
                    let sid = session.sid.clone();
                    let payload = jingle::source_add(&sid, &[source], self.recorder_json);
                    self.jingle_to_recorder(payload).await;
                }
                Err(e) => warn!(error = %e, "bridge could not add a speaker"),
            }
        }
        self.humans_changed().await;
    }

    pub(super) async fn leave(&mut self, speaker: usize, stint: usize) {
        if self.present[speaker] != Some(stint) {
            return;
        }
        self.present[speaker] = None;
        let endpoint = self.plan.speakers[speaker].stints[stint].endpoint.clone();
        let p = muc::leave_presence(&self.speaker_jid(speaker, stint), &self.room, &endpoint);
        self.send(p).await;
        // Jicofo sends no source-remove for a leaver: the bridge just stops forwarding.
        if let Some(s) = &mut self.session
            && !self.plan.bridge_keeps_leavers
        {
            let _ = s.bridge.remove_speaker(&endpoint);
        }
        self.humans_changed().await;
    }

    /// A lobby knock: a join attempt the members-only room refuses.
    pub(super) async fn knock(&mut self, speaker: usize, stint: usize) {
        let id = self.id();
        let p = self.join_presence(speaker, stint, Some(&id));
        self.probes.push((
            id,
            format!("knock {}", self.plan.speakers[speaker].display_name),
        ));
        self.send(p).await;
    }

    /// The moderator admits the knocker (Jitsi's lobby grants member affiliation).
    pub(super) async fn admit(&mut self, speaker: usize, _stint: usize) {
        let jid = self.bare_jid(speaker);
        self.grant_member(&jid).await;
    }

    async fn grant_member(&mut self, bare: &str) {
        if !self.config.members.iter().any(|m| m == bare) {
            self.config.members.push(bare.to_string());
        }
        let item = Element::builder("item", NS_MUC_ADMIN)
            .set("affiliation", "member")
            .set("jid", bare)
            .build();
        self.admin(item).await;
    }

    async fn admin(&mut self, item: Element) {
        let id = self.id();
        let q = Element::builder("query", NS_MUC_ADMIN).append(item).build();
        let iq = stanza::iq("set", &self.focus_jid, &self.room, &id, q);
        self.send(iq).await;
    }

    /// Change the room's configuration (as the owner).
    pub(super) async fn configure(&mut self, d: Disruption) {
        match d {
            Disruption::MembersOnly(on) => {
                if on {
                    // As Jitsi's lobby does: everyone present becomes a member first.
                    for speaker in 0..self.present.len() {
                        if self.present[speaker].is_some() {
                            let jid = self.bare_jid(speaker);
                            self.grant_member(&jid).await;
                        }
                    }
                }
                self.config.members_only = on;
            }
            Disruption::Password(pw) => self.config.password = pw,
            _ => return,
        }
        info!(room = %self.room, members_only = self.config.members_only, password = self.config.password.is_some(), "room configured");
        self.apply_config().await;
    }

    /// Send the whole configuration form (after changes, and after a server restart).
    pub(super) async fn apply_config(&mut self) {
        let field = |var: &str, value: &str| {
            Element::builder("field", NS_DATA)
                .set("var", var)
                .append(
                    Element::builder("value", NS_DATA)
                        .append(value.to_string())
                        .build(),
                )
                .build()
        };
        let flag = |b: bool| if b { "1" } else { "0" };
        let form = Element::builder("x", NS_DATA)
            .set("type", "submit")
            .append(field(
                "FORM_TYPE",
                "http://jabber.org/protocol/muc#roomconfig",
            ))
            .append(field(
                "muc#roomconfig_membersonly",
                flag(self.config.members_only),
            ))
            .append(field(
                "muc#roomconfig_passwordprotectedroom",
                flag(self.config.password.is_some()),
            ))
            .append(field(
                "muc#roomconfig_roomsecret",
                self.config.password.as_deref().unwrap_or(""),
            ))
            .build();
        let id = self.id();
        let q = Element::builder("query", NS_MUC_OWNER).append(form).build();
        let iq = stanza::iq("set", &self.focus_jid, &self.room, &id, q);
        self.send(iq).await;
        for m in self.config.members.clone() {
            let item = Element::builder("item", NS_MUC_ADMIN)
                .set("affiliation", "member")
                .set("jid", m)
                .build();
            self.admin(item).await;
        }
    }

    pub(super) async fn kick_recorder(&mut self) {
        let Some(nick) = self.recorder.clone() else {
            return;
        };
        info!(room = %self.room, "focus kicks the recorder");
        let item = Element::builder("item", NS_MUC_ADMIN)
            .set("nick", nick)
            .set("role", "none")
            .build();
        self.admin(item).await;
    }

    /// A browser (speaker `speaker`'s current endpoint) offers jitape P2P.
    pub(super) async fn offer_p2p(&mut self, speaker: usize) {
        let (Some(nick), Some(stint)) = (
            self.recorder.clone(),
            self.present.get(speaker).copied().flatten(),
        ) else {
            return;
        };
        let from = self.speaker_jid(speaker, stint);
        let offer = Element::builder("jingle", jingle::ns::JINGLE)
            .set("action", "session-initiate")
            .set("sid", format!("p2p{:08x}", rand::random::<u32>()))
            .set("initiator", from.as_str())
            .append(
                Element::builder("content", jingle::ns::JINGLE)
                    .set("creator", "initiator")
                    .set("name", "0")
                    .set("senders", "both")
                    .build(),
            )
            .build();
        let id = self.id();
        self.probes.push((id.clone(), "p2p offer".into()));
        let to = format!("{}/{nick}", self.room);
        self.send(stanza::iq("set", &from, &to, &id, offer)).await;
    }

    /// Jicofo's `maybeStop`: when no member is left (no human, no jitape), the focus leaves
    /// and Prosody destroys the now empty room; its configuration goes with it.
    pub(super) async fn maybe_stop(&mut self) {
        if !self.focus_in || self.humans_present() > 0 || self.recorder.is_some() {
            return;
        }
        info!(room = %self.room, "no member left: the focus leaves and the room closes");
        if let Some(s) = self.session.take() {
            self.sent.push(s.bridge.close().await);
        }
        self.alone_since = None;
        let p = muc::leave_presence(&self.focus_jid, &self.room, "focus");
        self.send(p).await;
        self.focus_in = false;
        self.config = super::conference::RoomConfig::default();
        self.room_closed.push(self.epoch.elapsed());
    }

    /// Someone comes back to a closed room: as a browser's conference request makes Jicofo
    /// do, the focus creates it afresh and joins first (the join queue holds the others).
    async fn reopen_room(&mut self) {
        info!(room = %self.room, "a participant returns to a closed room: the focus creates it again");
        let x = Element::builder("x", NS_MUC).build();
        let p = Self::presence(&self.focus_jid, &format!("{}/focus", self.room), vec![x]);
        self.send(p).await;
        self.focus_in = true;
    }

    pub(super) async fn destroy(&mut self) {
        if !self.focus_in {
            info!(room = %self.room, "simulated conference ends (the room had already closed)");
            return;
        }
        let id = self.id();
        let q = Element::builder("query", NS_MUC_OWNER)
            .append(Element::builder("destroy", NS_MUC_OWNER).build())
            .build();
        let iq = stanza::iq("set", &self.focus_jid, &self.room, &id, q);
        self.ended = Some(self.epoch.elapsed());
        self.send(iq).await;
        if self.await_answer(&id, Duration::from_secs(5)).await {
            self.end_confirmed = Some(self.epoch.elapsed());
        }
        info!(room = %self.room, "simulated conference ends (room destroyed)");
    }
}
