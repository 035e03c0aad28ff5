//! The router: decides where each inbound stanza goes, answers what the component itself is
//! asked (ping, disco#info), learns of conferences (invitations), and owns the set of running
//! conferences — but only their inbox senders, never their state.
//!
//! In: link events, control messages (record/stop/shutdown, a conference ended). Out: inputs
//! to conference tasks, replies to the link. [`classify`] is the pure decision; [`run`] the
//! I/O loop around it.

use std::collections::HashMap;
use std::time::Duration;

use minidom::Element;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::link::LinkEvent;
use super::muc;
use super::stanza::{self, Header, Jid, Kind, NS_CONFERENCE, NS_DISCO_INFO, NS_MUC_USER, NS_PING};
use crate::conference::machine::{EndReason, Input};

/// What the router needs to know to classify stanzas.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// Our component domain.
    pub domain: String,
    /// Our full JID in rooms (`rec@domain/instance`).
    pub our_jid: String,
    pub muc_domains: Vec<String>,
}

/// Where a stanza goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// To the conference of this room (bare JID).
    Conference(String),
    /// Answer on the link right away.
    Reply(Element),
    /// We were invited to record this room.
    Invitation { room: String, via: &'static str },
    /// Nothing to do (results for others, chatter, stale traffic). The reason is for logs.
    Drop(&'static str),
}

fn on_muc_domain(s: &RouterSettings, jid: &Jid) -> bool {
    jid.node().is_some() && s.muc_domains.iter().any(|d| d == jid.domain())
}

/// Classify one inbound stanza. Pure.
pub fn classify(s: &RouterSettings, el: &Element) -> Route {
    let Some(h) = Header::of(el) else {
        return Route::Drop("not a stanza");
    };
    let to_ok = h.to.as_ref().is_some_and(|t| t.domain() == s.domain);
    if !to_ok {
        return Route::Drop("not addressed to our domain");
    }
    if h.is_iq_request()
        && let Some(reply) = answer_component_iq(el)
    {
        return Route::Reply(reply);
    }
    if h.kind == Kind::Message
        && let Some(r) = invitation(s, &h, el)
    {
        return r;
    }
    let Some(from) = h.from.as_ref() else {
        return Route::Drop("no from");
    };
    if on_muc_domain(s, from) {
        return Route::Conference(from.bare.clone());
    }
    if h.is_iq_request() {
        return Route::Reply(stanza::iq_error(el, "service-unavailable", None));
    }
    Route::Drop("not from a conference room")
}

/// Ping and disco#info are answered for any of our JIDs (the component domain and every
/// occupant JID we use), immediately: Jicofo blocks a room's presence handling until our
/// disco#info answer arrives.
fn answer_component_iq(el: &Element) -> Option<Element> {
    let p = stanza::payload(el)?;
    if el.attr("type") == Some("get") && p.is("ping", NS_PING) {
        return Some(stanza::iq_result(el, None));
    }
    if el.attr("type") == Some("get") && p.is("query", NS_DISCO_INFO) {
        return Some(stanza::iq_result(el, Some(muc::disco_info(p.attr("node")))));
    }
    None
}

/// XEP-0249 direct invitations and XEP-0045 mediated invitations.
fn invitation(s: &RouterSettings, h: &Header, el: &Element) -> Option<Route> {
    if h.is_type("error") {
        return None;
    }
    if let Some(x) = el.get_child("x", NS_CONFERENCE) {
        let room = x.attr("jid").and_then(Jid::parse)?;
        if !on_muc_domain(s, &room) || room.resource.is_some() {
            return Some(Route::Drop(
                "invitation to a room outside the configured MUC domains",
            ));
        }
        return Some(Route::Invitation {
            room: room.bare,
            via: "direct invitation",
        });
    }
    let x = el.get_child("x", NS_MUC_USER)?;
    x.children().find(|c| c.name() == "invite")?;
    let room = h.from.as_ref()?;
    if !on_muc_domain(s, room) {
        return Some(Route::Drop(
            "invitation from a room outside the configured MUC domains",
        ));
    }
    Some(Route::Invitation {
        room: room.bare.clone(),
        via: "mediated invitation",
    })
}

/// Messages to the router from the rest of jitape.
#[derive(Debug)]
pub enum Control {
    /// Record this room (admin API, tests).
    Record { room: String },
    /// Stop recording this room and finalize.
    Stop { room: String },
    /// A conference task ended (sent by the task itself).
    Ended { room: String, generation: u64 },
    /// Finalize everything and return. The reply is sent when all conferences ended.
    Shutdown { done: oneshot::Sender<()> },
}

/// Starts conference tasks. The router calls it with the room and a fresh generation; it
/// returns the conference's inbox.
pub trait Spawn: Send {
    fn spawn(&mut self, room: &str, generation: u64) -> mpsc::Sender<Input>;
}

struct Entry {
    inbox: mpsc::Sender<Input>,
    generation: u64,
}

/// The router loop.
pub async fn run(
    settings: RouterSettings,
    mut link: mpsc::Receiver<LinkEvent>,
    outbound: mpsc::Sender<Element>,
    mut control: mpsc::Receiver<Control>,
    mut spawner: impl Spawn,
) {
    let mut conferences: HashMap<String, Entry> = HashMap::new();
    let mut link_up = false;
    let mut generation = 0u64;
    let mut shutting_down: Option<oneshot::Sender<()>> = None;
    loop {
        if shutting_down.is_some() && conferences.is_empty() {
            if let Some(done) = shutting_down.take() {
                let _ = done.send(());
            }
            return;
        }
        tokio::select! {
            ev = link.recv() => match ev {
                Some(LinkEvent::Up { .. }) => {
                    link_up = true;
                    broadcast(&conferences, || Input::LinkUp);
                }
                Some(LinkEvent::Down { .. }) => {
                    link_up = false;
                    broadcast(&conferences, || Input::LinkDown);
                }
                Some(LinkEvent::Stanza(el)) => match classify(&settings, &el) {
                    Route::Conference(room) => match conferences.get(&room) {
                        Some(e) => deliver(&room, &e.inbox, Input::Stanza(el)),
                        None => stale(&el, &outbound).await,
                    },
                    Route::Reply(reply) => { let _ = outbound.send(reply).await; }
                    Route::Invitation { room, via } if shutting_down.is_none() => {
                        if !conferences.contains_key(&room) {
                            info!(%room, via, "invited; recording");
                            generation += 1;
                            start(&mut conferences, &mut spawner, &room, generation, link_up);
                        }
                    }
                    Route::Invitation { .. } => {}
                    Route::Drop(why) => debug!(why, "stanza dropped"),
                },
                None => return,
            },
            c = control.recv() => match c {
                Some(Control::Record { room }) if shutting_down.is_none() => {
                    if !conferences.contains_key(&room) {
                        generation += 1;
                        start(&mut conferences, &mut spawner, &room, generation, link_up);
                    }
                }
                Some(Control::Record { .. }) => {}
                Some(Control::Stop { room }) => {
                    if let Some(e) = conferences.get(&room) {
                        deliver(&room, &e.inbox, Input::Stop(EndReason::Stopped));
                    }
                }
                Some(Control::Ended { room, generation: g }) => {
                    if conferences.get(&room).is_some_and(|e| e.generation == g) {
                        conferences.remove(&room);
                    }
                }
                Some(Control::Shutdown { done }) => {
                    info!(conferences = conferences.len(), "shutting down: finalizing every recording");
                    broadcast(&conferences, || Input::Stop(EndReason::Shutdown));
                    shutting_down = Some(done);
                }
                None => return,
            },
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

fn start(
    conferences: &mut HashMap<String, Entry>,
    spawner: &mut impl Spawn,
    room: &str,
    generation: u64,
    link_up: bool,
) {
    let inbox = spawner.spawn(room, generation);
    if link_up {
        deliver(room, &inbox, Input::LinkUp);
    }
    conferences.insert(room.to_string(), Entry { inbox, generation });
}

fn broadcast(conferences: &HashMap<String, Entry>, input: impl Fn() -> Input) {
    for (room, e) in conferences {
        deliver(room, &e.inbox, input());
    }
}

/// Hand an input to a conference without ever blocking the router on a slow one.
fn deliver(room: &str, inbox: &mpsc::Sender<Input>, input: Input) {
    if let Err(e) = inbox.try_send(input) {
        match e {
            mpsc::error::TrySendError::Full(_) => crate::util::log_limited(
                "conference-inbox-full",
                format_args!("conference {room} is not keeping up; input dropped"),
            ),
            mpsc::error::TrySendError::Closed(_) => debug!(%room, "conference already ended"),
        }
    }
}

/// Traffic for a room we do not record (any more): IQ requests get an error so the sender
/// (Jicofo) gives up on that session; presences and messages are never answered with errors
/// (Prosody kicks occupants that do).
async fn stale(el: &Element, outbound: &mpsc::Sender<Element>) {
    let Some(h) = Header::of(el) else { return };
    if h.is_iq_request() {
        let _ = outbound
            .send(stanza::iq_error(
                el,
                "item-not-found",
                Some("no such conference here"),
            ))
            .await;
    } else {
        warn!(kind = ?h.kind, "stanza for a room we are not recording");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RouterSettings {
        RouterSettings {
            domain: "rec.example".into(),
            our_jid: "rec@rec.example/i1".into(),
            muc_domains: vec!["muc.example".into()],
        }
    }

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn ping_and_disco_are_answered_for_any_of_our_jids() {
        let s = settings();
        let ping = el(
            r#"<iq xmlns="jabber:component:accept" type="get" id="p1" from="muc.example" to="rec.example"><ping xmlns="urn:xmpp:ping"/></iq>"#,
        );
        let Route::Reply(r) = classify(&s, &ping) else {
            panic!()
        };
        assert_eq!(
            (r.attr("type"), r.attr("id"), r.attr("to")),
            (Some("result"), Some("p1"), Some("muc.example"))
        );
        let disco = el(
            r#"<iq xmlns="jabber:component:accept" type="get" id="Zm9v" from="room@muc.example/focus" to="rec@rec.example/i1"><query xmlns="http://jabber.org/protocol/disco#info" node="n#v"/></iq>"#,
        );
        let Route::Reply(r) = classify(&s, &disco) else {
            panic!()
        };
        assert_eq!(r.attr("from"), Some("rec@rec.example/i1"));
        assert_eq!(r.attr("to"), Some("room@muc.example/focus"));
        assert_eq!(r.attr("id"), Some("Zm9v"));
        let q = r.get_child("query", NS_DISCO_INFO).unwrap();
        assert_eq!(q.attr("node"), Some("n#v"));
    }

    #[test]
    fn invitations_for_configured_muc_domains_only() {
        let s = settings();
        let direct = el(
            r#"<message xmlns="jabber:component:accept" from="u@meet/x" to="rec.example"><x xmlns="jabber:x:conference" jid="Room1@muc.example"/></message>"#,
        );
        assert_eq!(
            classify(&s, &direct),
            Route::Invitation {
                room: "room1@muc.example".into(),
                via: "direct invitation"
            }
        );
        let elsewhere = el(
            r#"<message xmlns="jabber:component:accept" from="u@meet/x" to="rec.example"><x xmlns="jabber:x:conference" jid="room@other.example"/></message>"#,
        );
        assert!(matches!(classify(&s, &elsewhere), Route::Drop(_)));
        let mediated = el(
            r#"<message xmlns="jabber:component:accept" from="room2@muc.example" to="rec@rec.example"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="u@meet/x"/></x></message>"#,
        );
        assert_eq!(
            classify(&s, &mediated),
            Route::Invitation {
                room: "room2@muc.example".into(),
                via: "mediated invitation"
            }
        );
    }

    #[test]
    fn room_traffic_goes_to_the_conference() {
        let s = settings();
        let p = el(
            r#"<presence xmlns="jabber:component:accept" from="Room@muc.example/a1" to="rec@rec.example/i1"/>"#,
        );
        assert_eq!(
            classify(&s, &p),
            Route::Conference("room@muc.example".into())
        );
        let jingle = el(
            r#"<iq xmlns="jabber:component:accept" type="set" id="x" from="room@muc.example/focus" to="rec@rec.example/i1"><jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="s"/></iq>"#,
        );
        assert_eq!(
            classify(&s, &jingle),
            Route::Conference("room@muc.example".into())
        );
    }

    #[test]
    fn unknown_requests_get_errors_but_messages_never_do() {
        let s = settings();
        let iq = el(
            r#"<iq xmlns="jabber:component:accept" type="set" id="x" from="u@meet/x" to="rec.example"><foo xmlns="urn:foo"/></iq>"#,
        );
        let Route::Reply(r) = classify(&s, &iq) else {
            panic!()
        };
        assert_eq!(
            stanza::error_condition(&r).as_deref(),
            Some("service-unavailable")
        );
        let msg = el(
            r#"<message xmlns="jabber:component:accept" type="chat" from="u@meet/x" to="rec.example"><body>hi</body></message>"#,
        );
        assert!(matches!(classify(&s, &msg), Route::Drop(_)));
        let other = el(
            r#"<presence xmlns="jabber:component:accept" from="room@muc.example/a" to="someone@else.example"/>"#,
        );
        assert!(matches!(classify(&s, &other), Route::Drop(_)));
    }
}
