//! The component link: one TCP connection to Prosody at a time, XEP-0114 handshake,
//! keepalive pings, reconnect with backoff.
//!
//! In: stanzas to send (an mpsc the rest of jitape writes to). Out: [`LinkEvent`]s — `Up`
//! after every successful handshake, each inbound stanza, `Down` when the connection ends.
//! The link owns the socket and nothing else; what a reconnect means for conferences is the
//! router's business. While the link is down, outbound stanzas are dropped (the conferences
//! rejoin on the next `Up`, so nothing stale is replayed).

use std::borrow::Cow;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use minidom::Element;

use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_xmpp::xmlstream::{self, ReadError, StreamHeader, Timeouts, XmlStream};
use tracing::{debug, info, warn};
use xmpp_parsers::component::Handshake;

use super::stanza::{self, NS_COMPONENT, NS_PING};

/// How to reach Prosody and keep the link healthy.
#[derive(Clone)]
pub struct LinkSettings {
    pub host: String,
    pub port: u16,
    pub domain: String,
    pub secret: crate::config::Secret,
    /// Where keepalive pings go: any entity that answers IQs (a MUC service does).
    pub ping_target: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

/// What the link reports.
#[derive(Debug)]
pub enum LinkEvent {
    /// Handshake done; `generation` counts connections since start (1 for the first).
    Up { generation: u64 },
    /// An inbound stanza.
    Stanza(Element),
    /// The connection ended; stanzas sent from now on are dropped until the next `Up`.
    Down { reason: String },
}

/// Why a connection attempt or a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("stream: {0}")]
    Stream(std::io::Error),
    #[error("server sent no stream id")]
    NoStreamId,
    #[error("handshake refused by the server: {0}")]
    Refused(String),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("connection closed by the server")]
    Closed,
}

/// A connected, authenticated component stream.
pub type Stream = XmlStream<BufStream<TcpStream>, Element>;

/// Exponential backoff with jitter, from `min` doubling to `max`. Pure: the caller passes
/// the random fraction.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay before the next attempt; `jitter` in [0, 1) scales it to 50-100%.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Run the link until `shutdown` turns true. Never returns early on errors: it reconnects.
pub async fn run(
    settings: LinkSettings,
    mut outbound: mpsc::Receiver<Element>,
    events: mpsc::Sender<LinkEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(settings.reconnect_min, settings.reconnect_max);
    let mut generation = 0u64;
    while !*shutdown.borrow() {
        let attempt = tokio::select! {
            r = connect(&settings) => r,
            _ = shutdown.changed() => break,
        };
        match attempt {
            Ok(stream) => {
                generation += 1;
                info!(generation, host = %settings.host, port = settings.port, "xmpp link up");
                if events.send(LinkEvent::Up { generation }).await.is_err() {
                    return;
                }
                let started = Instant::now();
                let reason =
                    session(stream, &settings, &mut outbound, &events, &mut shutdown).await;
                let stopping = *shutdown.borrow() || outbound.is_closed();
                if !stopping {
                    warn!(%reason, "xmpp link down");
                }
                if events.send(LinkEvent::Down { reason }).await.is_err() || stopping {
                    return;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    backoff.reset();
                }
            }
            Err(e) => warn!(error = %e, "xmpp connect failed"),
        }
        let delay = backoff.next_delay(rand::random::<f64>());
        debug!(?delay, "xmpp reconnect backoff");
        let until = Instant::now() + delay;
        // Drain (drop) outbound stanzas while waiting, so senders never block on a dead link.
        loop {
            tokio::select! {
                _ = sleep_until(until) => break,
                msg = outbound.recv() => if msg.is_none() { return },
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn timeouts(s: &LinkSettings) -> Timeouts {
    Timeouts {
        // A soft timeout only tells us the server was quiet; our own pings decide liveness.
        read_timeout: s.ping_interval,
        response_timeout: s.ping_interval + s.ping_timeout * 2,
    }
}

/// Connect and perform the component handshake.
pub async fn connect(s: &LinkSettings) -> Result<Stream, LinkError> {
    let addr = format!("{}:{}", s.host, s.port);
    let limit = s.ping_timeout.max(Duration::from_secs(5));
    let tcp = tokio::time::timeout(limit, TcpStream::connect(&addr))
        .await
        .map_err(|_| LinkError::Timeout("connecting"))?
        .map_err(|source| LinkError::Connect { addr, source })?;
    let _ = tcp.set_nodelay(true);
    let header = StreamHeader {
        to: Some(Cow::Owned(s.domain.clone())),
        from: None,
        id: None,
    };
    let handshake = async {
        let mut pending =
            xmlstream::initiate_stream(BufStream::new(tcp), NS_COMPONENT, header, timeouts(s))
                .await
                .map_err(LinkError::Stream)?;
        let id = pending.take_header().id.ok_or(LinkError::NoStreamId)?;
        let mut stream: Stream = pending.skip_features();
        let nonza = Handshake::from_stream_id_and_password(id.into_owned(), s.secret.expose());
        stream.send(&nonza).await.map_err(LinkError::Stream)?;
        loop {
            match stream.next().await {
                Some(Ok(el)) if el.name() == "handshake" => return Ok(stream),
                Some(Ok(el)) => return Err(LinkError::Refused(describe_refusal(&el))),
                Some(Err(ReadError::SoftTimeout)) => continue,
                Some(Err(ReadError::HardError(e))) => return Err(LinkError::Stream(e)),
                Some(Err(ReadError::ParseError(e))) => {
                    return Err(LinkError::Refused(format!("unparsable reply: {e}")));
                }
                Some(Err(ReadError::StreamFooterReceived)) | None => return Err(LinkError::Closed),
            }
        }
    };
    tokio::time::timeout(limit, handshake)
        .await
        .map_err(|_| LinkError::Timeout("in the handshake"))?
}

/// A short description of a stream error (`<not-authorized/>`, `<conflict/>` …).
fn describe_refusal(el: &Element) -> String {
    let condition = el
        .children()
        .find(|c| c.name() != "text")
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| el.name().to_string());
    match condition.as_str() {
        "not-authorized" => "not-authorized (wrong component secret?)".into(),
        "conflict" => "conflict (another connection for this component is still open)".into(),
        "host-unknown" => "host-unknown (no Component declared for this domain?)".into(),
        other => other.to_string(),
    }
}

/// One connected session: pump stanzas both ways and ping until something breaks.
async fn session(
    mut stream: Stream,
    s: &LinkSettings,
    outbound: &mut mpsc::Receiver<Element>,
    events: &mpsc::Sender<LinkEvent>,
    shutdown: &mut watch::Receiver<bool>,
) -> String {
    let mut ping_seq = 0u64;
    let mut next_ping = Instant::now() + s.ping_interval;
    let mut outstanding: Option<(String, Instant)> = None;
    loop {
        let deadline = match &outstanding {
            Some((_, sent)) => (*sent + s.ping_timeout).min(next_ping),
            None => next_ping,
        };
        tokio::select! {
            inbound = stream.next() => match inbound {
                Some(Ok(el)) => {
                    if is_stream_error(&el) {
                        return format!("stream error from server: {}", describe_refusal(&el));
                    }
                    if let Some((id, _)) = &outstanding
                        && is_ping_reply(&el, id)
                    {
                        outstanding = None;
                        continue;
                    }
                    if events.send(LinkEvent::Stanza(el)).await.is_err() {
                        return "router gone".into();
                    }
                }
                Some(Err(ReadError::SoftTimeout)) => {}
                Some(Err(ReadError::ParseError(e))) => warn!(error = %e, "unparsable stanza ignored"),
                Some(Err(ReadError::HardError(e))) => return format!("read error: {e}"),
                Some(Err(ReadError::StreamFooterReceived)) | None => return "closed by server".into(),
            },
            out = outbound.recv() => match out {
                Some(el) => {
                    if let Err(e) = stream.send(&el).await {
                        return format!("write error: {e}");
                    }
                }
                None => {
                    // jitape is stopping: close the stream properly.
                    let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
                    return "shutting down".into();
                }
            },
            _ = sleep_until(deadline) => {
                let now = Instant::now();
                if let Some((_, sent)) = &outstanding
                    && now >= *sent + s.ping_timeout
                {
                    return format!("no answer to keepalive ping within {:?}", s.ping_timeout);
                }
                if now >= next_ping {
                    next_ping = now + s.ping_interval;
                    if outstanding.is_none() {
                        ping_seq += 1;
                        let id = format!("jitape-ping-{ping_seq}");
                        let ping = Element::builder("ping", NS_PING).build();
                        let iq = stanza::iq("get", &s.domain, &s.ping_target, &id, ping);
                        if let Err(e) = stream.send(&iq).await {
                            return format!("write error: {e}");
                        }
                        outstanding = Some((id, now));
                    }
                }
            },
            _ = shutdown.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
                return "shutting down".into();
            }
        }
    }
}

fn is_stream_error(el: &Element) -> bool {
    el.name() == "error" && el.ns() == "http://etherx.jabber.org/streams"
}

/// Any answer (result or error) to our ping proves the link is alive.
fn is_ping_reply(el: &Element, id: &str) -> bool {
    el.name() == "iq"
        && el.attr("id") == Some(id)
        && matches!(el.attr("type"), Some("result") | Some("error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let full: Vec<_> = (0..6).map(|_| b.next_delay(1.0)).collect();
        assert_eq!(
            full,
            [500, 1000, 2000, 4000, 4000, 4000].map(Duration::from_millis)
        );
        assert_eq!(b.next_delay(0.0), Duration::from_secs(2));
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(500));
    }

    #[test]
    fn ping_replies_and_stream_errors_are_recognised() {
        let ok: Element =
            r#"<iq xmlns="jabber:component:accept" type="error" id="jitape-ping-3"/>"#
                .parse()
                .unwrap();
        assert!(is_ping_reply(&ok, "jitape-ping-3"));
        assert!(!is_ping_reply(&ok, "jitape-ping-4"));
        let se: Element = r#"<error xmlns="http://etherx.jabber.org/streams"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error>"#.parse().unwrap();
        assert!(is_stream_error(&se));
        assert!(describe_refusal(&se).starts_with("conflict"));
    }
}
