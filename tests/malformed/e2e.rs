//! A hostile participant in a loopback conference: it joins with an oversized, oddly shaped
//! presence and sends jitape's occupant a too deeply nested presence, huge and erroneous
//! messages, Jingle it has no business sending, and answers to IQs never asked.
//!
//! In: the loopback's simulated server (to find jitape's occupant) and a sender on the
//! simulation's own component link (`World::outbound`; every stanza is from
//! `mallory@<sim domain>`, so the MUC relays it as a real occupant's). Out: how many stanzas
//! were sent. Whatever jitape answers goes back to the simulation, which ignores it; what
//! matters is that jitape is never kicked (the simulated MUC, like Prosody, kicks an
//! occupant that answers a presence or message with an error) and keeps recording.

use std::time::Duration;

use jitape_sim::loopback::{MUC_DOMAIN, RECORDER_DOMAIN, SIM_DOMAIN};
use jitape_sim::router::SimServer;
use minidom::Element;
use tokio::sync::mpsc;

const NS: &str = "jabber:component:accept";

fn el(xml: &str) -> Element {
    xml.parse()
        .unwrap_or_else(|e| panic!("test XML ({e}): {}", &xml[..xml.len().min(300)]))
}

/// jitape's nick in `room`, once it has joined (at most `limit`).
pub async fn recorder_nick(server: &SimServer, room: &str, limit: Duration) -> String {
    let found = tokio::time::timeout(
        limit,
        server.wait_for(|s| {
            s.rooms.iter().any(|r| {
                r.jid == room
                    && r.occupants
                        .iter()
                        .any(|o| o.real_jid.contains(&format!("@{RECORDER_DOMAIN}/")))
            })
        }),
    )
    .await
    .expect("jitape joined the room in time")
    .expect("server running");
    found
        .rooms
        .iter()
        .find(|r| r.jid == room)
        .and_then(|r| {
            r.occupants
                .iter()
                .find(|o| o.real_jid.contains(&format!("@{RECORDER_DOMAIN}/")))
        })
        .map(|o| o.nick.clone())
        .expect("jitape's occupant")
}

/// Mallory's stanzas, in order; `to` is jitape's occupant JID.
fn stanzas(room: &str, to: &str) -> Vec<Element> {
    let me = format!("mallory@{SIM_DOMAIN}/m");
    let at = format!("{room}/mallory");
    let long = "é".repeat(4_000);
    let features: String = (0..2_000)
        .map(|i| format!(r#"<feature var="urn:x:{i}:{}"/>"#, "f".repeat(60)))
        .collect();
    // Deeper than jitape's link takes (32), shallow enough for the simulated server.
    let nested = format!("{}deep{}", "<a>".repeat(100), "</a>".repeat(100));
    let jingle = |id: &str, action: &str| {
        el(&format!(
            r#"<iq xmlns="{NS}" type="set" id="{id}" from="{me}" to="{to}"><jingle xmlns="urn:xmpp:jingle:1" action="{action}" sid="mallory1"/></iq>"#
        ))
    };
    vec![
        // ~200 KB join presence with odd features, identity and display name.
        el(&format!(
            r#"<presence xmlns="{NS}" from="{me}" to="{at}"><x xmlns="http://jabber.org/protocol/muc"/><features>{features}</features><identity><user><id>{long}</id><name>{long}</name></user></identity><nick xmlns="http://jabber.org/protocol/nick">{long}</nick><stats-id>{long}</stats-id></presence>"#
        )),
        el(&format!(
            r#"<presence xmlns="{NS}" from="{me}" to="{at}"><stats-id>{nested}</stats-id><x xmlns="http://jabber.org/protocol/muc#user"><status code="abc"/><destroy/></x></presence>"#
        )),
        el(&format!(
            r#"<message xmlns="{NS}" type="groupchat" from="{me}" to="{room}"><body>{}</body></message>"#,
            "b".repeat(100_000)
        )),
        el(&format!(
            r#"<message xmlns="{NS}" type="chat" from="{me}" to="{to}"><x xmlns="jabber:x:conference" jid="room@evil.example"/></message>"#
        )),
        jingle("m1", "source-add"),
        jingle("m2", "transport-replace"),
        jingle("m3", "session-terminate"),
        el(&format!(
            r#"<iq xmlns="{NS}" type="result" id="jitape-1" from="{me}" to="{to}"/>"#
        )),
        el(&format!(
            r#"<iq xmlns="{NS}" type="get" id="m4" from="{me}" to="{to}"/>"#
        )),
        // A direct invitation to a foreign domain, to jitape's component itself.
        el(&format!(
            r#"<message xmlns="{NS}" from="{me}" to="{RECORDER_DOMAIN}"><x xmlns="jabber:x:conference" jid="lesson@{MUC_DOMAIN}.evil.example"/></message>"#
        )),
        el(&format!(
            r#"<presence xmlns="{NS}" type="unavailable" from="{me}" to="{at}"/>"#
        )),
    ]
}

/// Plays Mallory in `room` once jitape is in it; returns the number of stanzas sent.
pub async fn mallory(server: &SimServer, out: mpsc::Sender<Element>, room: &str) -> usize {
    let nick = recorder_nick(server, room, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let all = stanzas(room, &format!("{room}/{nick}"));
    let n = all.len();
    for s in all {
        out.send(s).await.expect("simulation link");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    n
}
