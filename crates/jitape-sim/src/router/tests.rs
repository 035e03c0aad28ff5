//! Loopback tests of the simulated server: real TCP on 127.0.0.1, components played by
//! tokio-xmpp's own component login and by a minimal client on its `initiate_stream`.

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::jid::Jid;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::xmlstream::{ReadError, StreamHeader, Timeouts, XmlStream, initiate_stream};
use tokio_xmpp::{Component, Stanza};

use super::xml::{NS_COMPONENT, NS_MUC_USER, NS_PROSODY_COMPONENT, NS_STANZAS, NS_STREAM};
use super::{ServerSnapshot, SimServer, SimServerConfig};

/// Bound for any single wait; a whole test is bounded by [`bounded`].
const STEP: Duration = Duration::from_secs(10);
const HOST: &str = "server.test";
const ROOM: &str = "weeklysync@muc.test";
const FOCUS: &str = "focus@sim.test/focus";
const REC: &str = "rec@rec.test/r1";

fn config() -> SimServerConfig {
    SimServerConfig {
        components: vec![
            ("sim.test".into(), "s1".into()),
            ("rec.test".into(), "s2".into()),
            ("other.test".into(), "s3".into()),
        ],
        muc_domains: vec!["muc.test".into()],
        server_domains: vec![HOST.into()],
        ..SimServerConfig::default()
    }
}

async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test took too long")
}

async fn wait(server: &SimServer, condition: impl FnMut(&ServerSnapshot) -> bool) {
    tokio::time::timeout(STEP, server.wait_for(condition))
        .await
        .expect("server state never reached")
        .expect("server running");
}

type Xml = XmlStream<BufStream<TcpStream>, Element>;

#[derive(Debug)]
enum Outcome {
    Element(Element),
    /// The peer sent `<stream:error>` with this condition.
    StreamError(String),
    /// Footer, EOF or reset without a stream error.
    Closed,
}

struct Client {
    xml: Xml,
}

async fn open(server: &SimServer, to: Option<&str>) -> (Xml, Option<String>) {
    let socket = TcpStream::connect(server.component_addr())
        .await
        .expect("connect");
    let header = StreamHeader {
        to: to.map(|t| t.to_owned().into()),
        from: None,
        id: None,
    };
    let mut pending = initiate_stream(
        BufStream::new(socket),
        NS_COMPONENT,
        header,
        Timeouts::tight(),
    )
    .await
    .expect("stream header exchange");
    let id = pending.take_header().id.map(|id| id.into_owned());
    (pending.skip_features(), id)
}

async fn next_outcome(xml: &mut Xml) -> Outcome {
    loop {
        let item = tokio::time::timeout(STEP, xml.next())
            .await
            .expect("nothing arrived in time");
        return match item {
            Some(Ok(el)) if el.is("error", NS_STREAM) => {
                let condition = el.children().next().map(|c| c.name().to_owned());
                Outcome::StreamError(condition.unwrap_or_default())
            }
            Some(Ok(el)) => Outcome::Element(el),
            Some(Err(ReadError::SoftTimeout | ReadError::ParseError(_))) => continue,
            Some(Err(_)) | None => Outcome::Closed,
        };
    }
}

fn handshake(id: &str, secret: &str) -> Element {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("{id}{secret}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut el = Element::bare("handshake", NS_COMPONENT);
    el.append_text(hex);
    el
}

/// Logs in; `Err` carries the stream error condition (or "closed").
async fn login(server: &SimServer, domain: &str, secret: &str) -> Result<Client, String> {
    let (mut xml, id) = open(server, Some(domain)).await;
    let id = id.expect("the server sends a stream id");
    xml.send(&handshake(&id, secret))
        .await
        .expect("send handshake");
    match next_outcome(&mut xml).await {
        Outcome::Element(el) if el.is("handshake", NS_COMPONENT) => Ok(Client { xml }),
        Outcome::Element(el) => Err(format!("unexpected {}", el.name())),
        Outcome::StreamError(condition) => Err(condition),
        Outcome::Closed => Err("closed".into()),
    }
}

impl Client {
    async fn send(&mut self, stanza: &str) {
        let el: Element = stanza.parse().expect("test stanza");
        self.xml.send(&el).await.expect("send");
    }

    async fn recv(&mut self) -> Element {
        match next_outcome(&mut self.xml).await {
            Outcome::Element(el) => el,
            other => panic!("expected a stanza, got {other:?}"),
        }
    }

    async fn end(&mut self) -> Outcome {
        next_outcome(&mut self.xml).await
    }

    /// Pings the server domain and returns whatever arrived before the answer: everything
    /// the server had queued for this component before it handled the ping.
    async fn barrier(&mut self, from: &str) -> Vec<Element> {
        self.send(&format!(
            "<iq xmlns='jabber:component:accept' type='get' id='barrier' from='{from}' to='{HOST}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ))
        .await;
        let mut before = Vec::new();
        loop {
            let el = self.recv().await;
            if el.attr("id") == Some("barrier") && el.attr("type") == Some("result") {
                return before;
            }
            before.push(el);
        }
    }

    /// The raw socket, to write bytes no XML writer would produce.
    fn into_raw(self) -> BufStream<TcpStream> {
        self.xml.into_inner()
    }
}

fn join_presence(from: &str, room: &str, nick: &str) -> String {
    format!(
        "<presence xmlns='jabber:component:accept' xml:lang='en' from='{from}' to='{room}/{nick}'>\
         <x xmlns='http://jabber.org/protocol/muc'/>\
         <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>\
         <SourceInfo>{{}}</SourceInfo></presence>"
    )
}

fn codes(p: &Element) -> Vec<String> {
    p.get_child("x", NS_MUC_USER)
        .map(|x| {
            x.children()
                .map(|c| c.attr("code").unwrap_or(c.name()).to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn error_condition(el: &Element) -> Option<String> {
    el.get_child("error", NS_COMPONENT)
        .and_then(|e| {
            e.children()
                .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        })
        .map(|c| c.name().to_owned())
}

/// focus (sim.test) creates the room, rec (rec.test) joins; all join traffic consumed.
async fn room_with_two(server: &SimServer) -> (Client, Client) {
    let mut focus = login(server, "sim.test", "s1").await.expect("focus login");
    let mut rec = login(server, "rec.test", "s2").await.expect("rec login");
    focus
        .send(&join_presence(FOCUS, "WeeklySync@muc.test", "focus"))
        .await;
    let own = focus.recv().await;
    assert_eq!(codes(&own), ["201", "100", "item", "110"]);
    assert_eq!(own.attr("from"), Some("weeklysync@muc.test/focus"));
    assert!(focus.recv().await.has_child("subject", NS_COMPONENT));
    rec.send(&join_presence(REC, ROOM, "rec")).await;
    let first = rec.recv().await;
    assert_eq!(first.attr("from"), Some("weeklysync@muc.test/focus"));
    let own = rec.recv().await;
    assert_eq!(codes(&own), ["100", "item", "110"]);
    assert!(rec.recv().await.has_child("subject", NS_COMPONENT));
    let seen = focus.recv().await;
    assert_eq!(seen.attr("from"), Some("weeklysync@muc.test/rec"));
    assert!(
        seen.has_child("c", "http://jabber.org/protocol/caps"),
        "payload forwarded"
    );
    assert!(
        seen.has_child("SourceInfo", NS_COMPONENT),
        "payload forwarded"
    );
    (focus, rec)
}

#[tokio::test]
async fn tokio_xmpp_component_logs_in_and_gets_answers() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let addr = server.component_addr().to_string();
        let mut component =
            Component::new_plaintext("rec.test", "s2", DnsConfig::addr(&addr), Timeouts::tight())
                .await
                .expect("tokio-xmpp component login");
        wait(&server, |s| s.components == ["rec.test"]).await;
        let ping = Iq::from_get("p1", Ping)
            .with_to(Jid::new(HOST).expect("jid"))
            .with_from(Jid::new("rec.test/x").expect("jid"));
        component.send_stanza(Stanza::Iq(ping)).await.expect("send");
        match tokio::time::timeout(STEP, component.next())
            .await
            .expect("answer")
        {
            Some(Stanza::Iq(Iq::Result { id, .. })) => assert_eq!(id, "p1"),
            other => panic!("expected the ping result, got {other:?}"),
        }
        let refused =
            Component::new_plaintext("sim.test", "bad", DnsConfig::addr(&addr), Timeouts::tight())
                .await;
        assert!(
            refused.is_err(),
            "wrong secret must fail the real client too"
        );
        server.shutdown().await;
    })
    .await;
}

/// jitape reads through tokio-xmpp's typed `Stanza` stream: a stanza xmpp-parsers cannot
/// parse would end that stream, so every shape the MUC sends must parse.
#[tokio::test]
async fn tokio_xmpp_component_parses_what_the_muc_sends() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let addr = server.component_addr().to_string();
        let mut focus = login(&server, "sim.test", "s1").await.expect("focus");
        focus.send(&join_presence(FOCUS, ROOM, "focus")).await;
        focus.recv().await;
        focus.recv().await;
        let mut rec =
            Component::new_plaintext("rec.test", "s2", DnsConfig::addr(&addr), Timeouts::tight())
                .await
                .expect("login");
        let join: Element = join_presence(REC, ROOM, "rec").parse().expect("xml");
        rec.send_stanza(Stanza::try_from(join).expect("typed")).await.expect("send");
        let mut typed_next = async || -> Element {
            let stanza = tokio::time::timeout(STEP, rec.next()).await.expect("in time");
            Element::from(stanza.expect("xmpp-parsers accepted the stanza"))
        };
        assert_eq!(typed_next().await.attr("from"), Some("weeklysync@muc.test/focus"));
        assert_eq!(codes(&typed_next().await), ["100", "item", "110"]);
        assert!(typed_next().await.has_child("subject", NS_COMPONENT));
        focus.recv().await;
        focus
            .send(&format!(
                "<iq xmlns='jabber:component:accept' type='set' id='j1' from='{FOCUS}' to='{ROOM}/rec'>\
                 <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s1'/></iq>"
            ))
            .await;
        let iq = typed_next().await;
        assert_eq!(iq.attr("type"), Some("set"));
        focus
            .send(&format!(
                "<iq xmlns='jabber:component:accept' type='set' id='k1' from='{FOCUS}' to='{ROOM}'>\
                 <query xmlns='http://jabber.org/protocol/muc#admin'><item nick='rec' role='none'/></query></iq>"
            ))
            .await;
        let kicked = typed_next().await;
        assert_eq!(kicked.attr("type"), Some("unavailable"));
        assert_eq!(codes(&kicked), ["307", "item", "110"]);
    })
    .await;
}

#[tokio::test]
async fn wrong_secret_unknown_host_and_missing_to_are_refused() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        assert_eq!(login(&server, "sim.test", "nope").await.err().as_deref(), Some("not-authorized"));
        assert_eq!(login(&server, "nowhere.test", "s1").await.err().as_deref(), Some("host-unknown"));
        let (mut xml, _) = open(&server, None).await;
        assert!(matches!(next_outcome(&mut xml).await, Outcome::StreamError(c) if c == "improper-addressing"));
        assert!(server.connected_components().is_empty());
    })
    .await;
}

#[tokio::test]
async fn garbage_before_the_header_gets_not_well_formed() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let mut socket = TcpStream::connect(server.component_addr())
            .await
            .expect("connect");
        socket.write_all(b"hello there\n").await.expect("write");
        let mut reply = Vec::new();
        tokio::time::timeout(STEP, socket.read_to_end(&mut reply))
            .await
            .expect("server closes")
            .expect("read");
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.contains("<not-well-formed"), "got {reply}");
    })
    .await;
}

#[tokio::test]
async fn second_connection_for_a_domain_gets_conflict_and_the_first_survives() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let mut first = login(&server, "sim.test", "s1").await.expect("first");
        assert_eq!(
            login(&server, "sim.test", "s1").await.err().as_deref(),
            Some("conflict")
        );
        assert!(first.barrier("sim.test").await.is_empty());
        assert_eq!(server.connected_components(), ["sim.test"]);
    })
    .await;
}

#[tokio::test]
async fn stanza_from_a_foreign_domain_closes_with_invalid_from() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let mut c = login(&server, "sim.test", "s1").await.expect("login");
        c.send(&format!(
            "<message xmlns='jabber:component:accept' from='x@rec.test/r' to='{HOST}'/>"
        ))
        .await;
        assert!(matches!(c.end().await, Outcome::StreamError(cond) if cond == "invalid-from"));
        wait(&server, |s| s.components.is_empty()).await;
    })
    .await;
}

#[tokio::test]
async fn muc_join_order_payload_and_iq_round_trip_over_tcp() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let (mut focus, mut rec) = room_with_two(&server).await;
        let rooms = server.rooms();
        assert_eq!(rooms.len(), 1);
        assert_eq!(rooms[0].jid, ROOM);
        let real: Vec<&str> = rooms[0].occupants.iter().map(|o| o.real_jid.as_str()).collect();
        assert_eq!(real, [FOCUS, REC]);

        focus
            .send(&format!(
                "<iq xmlns='jabber:component:accept' type='set' id='j1' from='{FOCUS}' to='{ROOM}/rec'>\
                 <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s1'/></iq>"
            ))
            .await;
        let iq = rec.recv().await;
        assert_eq!(iq.attr("from"), Some("weeklysync@muc.test/focus"));
        assert_eq!(iq.attr("to"), Some(REC));
        let token = iq.attr("id").expect("id").to_owned();
        assert_ne!(token, "j1");
        rec.send(&format!(
            "<iq xmlns='jabber:component:accept' type='result' id='{token}' from='{REC}' to='{ROOM}/focus'/>"
        ))
        .await;
        let result = focus.recv().await;
        assert_eq!(result.attr("type"), Some("result"));
        assert_eq!(result.attr("id"), Some("j1"));
        assert_eq!(result.attr("from"), Some("weeklysync@muc.test/rec"));
        assert_eq!(result.attr("to"), Some(FOCUS));
    })
    .await;
}

#[tokio::test]
async fn unroutable_stanzas_bounce_like_prosody_and_errors_never_do() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let mut c = login(&server, "rec.test", "s2").await.expect("login");
        let get = |id: &str, to: &str| {
            format!("<iq xmlns='jabber:component:accept' type='get' id='{id}' from='{REC}' to='{to}'><query xmlns='urn:x'/></iq>")
        };
        c.send(&get("u1", "someone@elsewhere.test")).await;
        let e = c.recv().await;
        assert_eq!((e.attr("id"), error_condition(&e).as_deref()), (Some("u1"), Some("service-unavailable")));
        c.send(&get("u2", "x@other.test/r")).await;
        let e = c.recv().await;
        assert_eq!(error_condition(&e).as_deref(), Some("remote-server-timeout"));
        let error = e.get_child("error", NS_COMPONENT).expect("error");
        assert_eq!(error.attr("type"), Some("wait"));
        assert!(error.has_child("not-connected", NS_PROSODY_COMPONENT));
        c.send(&format!("<iq xmlns='jabber:component:accept' type='get' id='u3' from='{REC}'><query xmlns='urn:x'/></iq>")).await;
        assert_eq!(error_condition(&c.recv().await).as_deref(), Some("bad-request"));
        c.send(&format!("<iq xmlns='jabber:client' type='get' id='u4' from='{REC}' to='{HOST}'><ping xmlns='urn:xmpp:ping'/></iq>")).await;
        let e = c.recv().await;
        assert_eq!((e.attr("id"), error_condition(&e).as_deref()), (Some("u4"), Some("service-unavailable")));
        c.send(&format!("<message xmlns='jabber:component:accept' type='error' from='{REC}' to='a@elsewhere.test'/>")).await;
        c.send(&format!("<iq xmlns='jabber:component:accept' type='result' id='r' from='{REC}' to='a@elsewhere.test'/>")).await;
        assert!(c.barrier(REC).await.is_empty(), "errors and results are never answered");
    })
    .await;
}

#[tokio::test]
async fn error_reply_to_groupchat_traffic_gets_the_sender_kicked() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let (mut focus, mut rec) = room_with_two(&server).await;
        rec.send(&format!(
            "<message xmlns='jabber:component:accept' type='error' from='{REC}' to='{ROOM}'>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        ))
        .await;
        let own = rec.recv().await;
        assert_eq!(codes(&own), ["333", "item", "110"]);
        let seen = focus.recv().await;
        assert_eq!(codes(&seen), ["333", "item"]);
        let rooms = server.rooms();
        assert!(rooms[0].occupant("rec").is_none());
        assert_eq!(server.connected_components(), ["rec.test", "sim.test"]);
    })
    .await;
}

#[tokio::test]
async fn disconnecting_component_leaves_its_rooms() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let (mut focus, mut rec) = room_with_two(&server).await;
        rec.xml.shutdown().await.expect("close stream");
        let gone = focus.recv().await;
        assert_eq!(gone.attr("type"), Some("unavailable"));
        assert_eq!(gone.attr("from"), Some("weeklysync@muc.test/rec"));
        assert_eq!(codes(&gone), ["333", "item"]);
        assert_eq!(server.rooms()[0].occupants.len(), 1);
        wait(&server, |s| s.components == ["sim.test"]).await;
    })
    .await;
}

#[tokio::test]
async fn drop_component_cuts_the_link_and_a_new_login_works() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let (mut focus, mut rec) = room_with_two(&server).await;
        server.drop_component("rec.test");
        assert!(
            matches!(rec.end().await, Outcome::Closed),
            "no stream error on a cut"
        );
        let gone = focus.recv().await;
        assert_eq!(codes(&gone), ["333", "item"]);
        assert!(server.rooms()[0].occupant("rec").is_none());
        let mut again = login(&server, "rec.test", "s2").await.expect("relogin");
        assert!(again.barrier(REC).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn restart_drops_everything_and_listens_on_the_same_port() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let addr = server.component_addr();
        let (mut focus, mut rec) = room_with_two(&server).await;
        server.restart().await.expect("restart");
        assert!(matches!(focus.end().await, Outcome::Closed));
        assert!(matches!(rec.end().await, Outcome::Closed));
        assert!(server.rooms().is_empty());
        assert!(server.connected_components().is_empty());
        assert_eq!(server.component_addr(), addr);
        let (mut focus, _rec) = room_with_two(&server).await;
        assert!(focus.barrier(FOCUS).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn malformed_xml_closes_only_that_connection() {
    bounded(async {
        let server = SimServer::start(config()).await.expect("start");
        let (mut focus, rec) = room_with_two(&server).await;
        let mut raw = rec.into_raw();
        raw.write_all(b"<message to='x'><</message>")
            .await
            .expect("write");
        raw.flush().await.expect("flush");
        let mut reply = Vec::new();
        tokio::time::timeout(STEP, raw.read_to_end(&mut reply))
            .await
            .expect("server closes")
            .expect("read");
        assert!(String::from_utf8_lossy(&reply).contains("not-well-formed"));
        let gone = focus.recv().await;
        assert_eq!(codes(&gone), ["333", "item"]);
        assert!(
            focus.barrier(FOCUS).await.is_empty(),
            "the other connection still works"
        );
    })
    .await;
}

#[tokio::test]
async fn oversized_stanza_closes_with_not_well_formed() {
    bounded(async {
        let server = SimServer::start(SimServerConfig {
            max_stanza_bytes: 4096,
            ..config()
        })
        .await
        .expect("start");
        let mut c = login(&server, "rec.test", "s2").await.expect("login");
        assert!(c.barrier(REC).await.is_empty(), "small stanzas pass");
        let body = "a".repeat(20_000);
        c.send(&format!(
            "<message xmlns='jabber:component:accept' from='{REC}' to='{HOST}'><body>{body}</body></message>"
        ))
        .await;
        assert!(matches!(c.end().await, Outcome::StreamError(cond) if cond == "not-well-formed"));
    })
    .await;
}
