//! The component link: one TCP connection to Prosody at a time, XEP-0114 handshake,
//! keepalive pings, reconnect with backoff.
//!
//! In: stanzas to send (an mpsc the rest of jitape writes to). Out: [`LinkEvent`]s — `Up`
//! after every successful handshake, each inbound stanza, each stanza dropped at the wire
//! (too large, too deep, not well-formed), `Down` when the connection ends.
//! The link owns the socket and nothing else; what a reconnect means for conferences is the
//! router's business. While the link is down, outbound stanzas are dropped (the conferences
//! rejoin on the next `Up`, so nothing stale is replayed).
//!
//! The bytes are cut into stanzas by [`wire`](super::wire), which skips a stanza that breaks
//! a limit instead of failing the stream: one hostile presence must not take the link (and
//! every recording's signalling) down, again on every rejoin.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use super::stanza::{self, NS_COMPONENT, NS_PING};
use super::wire::{self, Frame, SkipReason, Splitter, WireLimits};

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
    /// Bounds on one inbound stanza.
    pub limits: WireLimits,
}

impl LinkSettings {
    /// The link's settings from `[xmpp]` and `[limits]`.
    pub fn new(xmpp: &crate::config::XmppConfig, limits: &crate::config::LimitsConfig) -> Self {
        LinkSettings {
            host: xmpp.host.clone(),
            port: xmpp.port,
            domain: xmpp.domain.clone(),
            secret: xmpp.secret.clone(),
            ping_target: xmpp.muc_domains.first().cloned().unwrap_or_default(),
            ping_interval: xmpp.ping_interval,
            ping_timeout: xmpp.ping_timeout,
            reconnect_min: xmpp.reconnect_min,
            reconnect_max: xmpp.reconnect_max,
            limits: WireLimits {
                max_stanza: limits.max_stanza_size,
                ..Default::default()
            },
        }
    }
}

/// What the link reports.
#[derive(Debug)]
pub enum LinkEvent {
    /// Handshake done; `generation` counts connections since start (1 for the first).
    Up { generation: u64 },
    /// An inbound stanza, and when it reached jitape (on the conference tasks' clock).
    Stanza(Element, std::time::Instant),
    /// An inbound stanza the link could not take (the stream goes on).
    Dropped(Dropped),
    /// The connection ended; stanzas sent from now on are dropped until the next `Up`.
    Down { reason: String },
}

/// A stanza dropped at the wire.
#[derive(Debug)]
pub struct Dropped {
    pub why: DropReason,
    /// Bytes it had on the wire.
    pub size: usize,
    /// Its opening tag (name and attributes only), when that could be read: enough to
    /// answer an IQ request with an error.
    pub head: Option<Element>,
}

/// Why a stanza was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    TooLarge,
    TooDeep,
    Malformed(String),
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::TooLarge => f.write_str("larger than the stanza size limit"),
            DropReason::TooDeep => f.write_str("nested deeper than the limit"),
            DropReason::Malformed(e) => write!(f, "not well-formed: {e}"),
        }
    }
}

/// Why a connection attempt or a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("stream: {0}")]
    Stream(io::Error),
    #[error("server sent no stream id")]
    NoStreamId,
    #[error("handshake refused by the server: {0}")]
    Refused(String),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("connection closed by the server")]
    Closed,
}

/// One inbound unit on a connected stream.
#[derive(Debug)]
pub enum Inbound {
    Stanza(Element),
    Dropped(Dropped),
    /// The server closed the stream (footer or end of file).
    Closed,
}

/// A connected component stream (after [`connect`], authenticated).
pub struct Stream {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    splitter: Splitter,
    /// The server's stream header: the namespace context every stanza is parsed in.
    header: Vec<u8>,
    frames: VecDeque<Frame>,
    /// When the read that completed the queued frames returned (see [`Stream::arrived`]).
    read_at: std::time::Instant,
    limits: WireLimits,
    buf: Vec<u8>,
    write_timeout: Duration,
}

/// Acknowledges what Prosody sent at once instead of after Linux's delayed-ACK timer (up to
/// 40 ms). Prosody leaves Nagle's algorithm on (`network_settings.nagle`, true by default;
/// docs/protocol.md): a small stanza it writes while an earlier one is unacknowledged waits
/// for that ACK, so with delayed ACKs a room's end reached jitape 25-40 ms late whenever
/// another event had just gone out. The kernel drops quick-ack mode on its own, so this is
/// asked again after every read.
fn quick_ack(reader: &tokio::net::tcp::OwnedReadHalf) {
    #[cfg(target_os = "linux")]
    {
        let tcp: &TcpStream = reader.as_ref();
        let _ = rustix::net::sockopt::set_tcp_quickack(tcp, true);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = reader;
}

impl Stream {
    fn new(tcp: TcpStream, limits: WireLimits, write_timeout: Duration) -> Stream {
        let (reader, writer) = tcp.into_split();
        Stream {
            reader,
            writer,
            splitter: Splitter::new(limits),
            header: Vec::new(),
            frames: VecDeque::new(),
            read_at: crate::util::task_now(),
            limits,
            buf: vec![0; 16 * 1024],
            write_timeout,
        }
    }

    /// The next frame, reading as needed. Cancel-safe (the only await is the socket read).
    async fn frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Ok(Some(f));
            }
            let n = self.reader.read(&mut self.buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.read_at = crate::util::task_now();
            quick_ack(&self.reader);
            let mut out = Vec::new();
            self.splitter.push(&self.buf[..n], &mut out);
            self.frames.extend(out);
        }
    }

    /// When the last stanza [`Stream::next`] returned reached jitape: the read that brought
    /// its last byte. Frames are queued only from the latest read (the socket is read again
    /// only when the queue is empty), so this is the same for every frame of one read, and
    /// it is not moved by how long jitape took to get round to the stanza.
    pub fn arrived(&self) -> std::time::Instant {
        self.read_at
    }

    /// The next stanza (or dropped stanza, or the end). Cancel-safe.
    pub async fn next(&mut self) -> io::Result<Inbound> {
        loop {
            let Some(frame) = self.frame().await? else {
                return Ok(Inbound::Closed);
            };
            return Ok(match frame {
                Frame::Header(h) => {
                    self.header = h;
                    continue;
                }
                Frame::Footer => Inbound::Closed,
                Frame::Stanza(bytes) => {
                    match wire::parse_stanza(&self.header, &bytes, self.limits.max_stanza) {
                        Ok(el) => Inbound::Stanza(el),
                        Err(e) => Inbound::Dropped(Dropped {
                            why: DropReason::Malformed(e.to_string()),
                            size: bytes.len(),
                            head: wire::head_of(&bytes)
                                .and_then(|h| wire::parse_head(&self.header, h)),
                        }),
                    }
                }
                Frame::Skipped { size, reason, head } => Inbound::Dropped(Dropped {
                    why: match reason {
                        SkipReason::TooLarge => DropReason::TooLarge,
                        SkipReason::TooDeep => DropReason::TooDeep,
                    },
                    size,
                    head: head.and_then(|h| wire::parse_head(&self.header, &h)),
                }),
            });
        }
    }

    /// Write one element; a peer that stops reading fails the write after the timeout.
    pub async fn send(&mut self, el: &Element) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(512);
        el.write_to(&mut bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        self.write_raw(&bytes).await
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::time::timeout(self.write_timeout, self.writer.write_all(bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }

    /// Close the stream properly (footer, then half-close), bounded in time.
    pub async fn close(&mut self) {
        let _ = self.write_raw(b"</stream:stream>").await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.writer.shutdown()).await;
    }
}

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

/// Runs [`run`] on a thread and a runtime of its own (`jitape-xmpp`), so that reading the
/// socket, and with it the moment each stanza is stamped as arrived, never waits behind the
/// conference and media tasks of a busy runtime (150 rooms ending within seconds once made
/// files end up to 171 ms after their room). The returned receiver resolves when the link has
/// stopped.
pub fn spawn(
    settings: LinkSettings,
    outbound: mpsc::Receiver<Element>,
    events: mpsc::Sender<LinkEvent>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<tokio::sync::oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("jitape-xmpp".into())
        .spawn(move || {
            runtime.block_on(run(settings, outbound, events, shutdown));
            let _ = done_tx.send(());
        })?;
    Ok(done_rx)
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

/// Connect and perform the component handshake.
pub async fn connect(s: &LinkSettings) -> Result<Stream, LinkError> {
    let addr = format!("{}:{}", s.host, s.port);
    let limit = s.ping_timeout.max(Duration::from_secs(5));
    let tcp = tokio::time::timeout(limit, TcpStream::connect(&addr))
        .await
        .map_err(|_| LinkError::Timeout("connecting"))?
        .map_err(|source| LinkError::Connect { addr, source })?;
    let _ = tcp.set_nodelay(true);
    let mut stream = Stream::new(tcp, s.limits, limit);
    tokio::time::timeout(limit, handshake(&mut stream, s))
        .await
        .map_err(|_| LinkError::Timeout("in the handshake"))??;
    Ok(stream)
}

async fn handshake(stream: &mut Stream, s: &LinkSettings) -> Result<(), LinkError> {
    let open = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='{NS_STREAMS}' to='{}'>",
        escape_attr(&s.domain)
    );
    stream
        .write_raw(open.as_bytes())
        .await
        .map_err(LinkError::Stream)?;
    let id = match stream.frame().await.map_err(LinkError::Stream)? {
        Some(Frame::Header(h)) => {
            let id = wire::header_attr(&h, "id");
            stream.header = h;
            id.ok_or(LinkError::NoStreamId)?
        }
        Some(Frame::Footer) | None => return Err(LinkError::Closed),
        Some(_) => return Err(LinkError::Refused("no stream header".into())),
    };
    let digest =
        xmpp_parsers::component::Handshake::from_stream_id_and_password(id, s.secret.expose())
            .data
            .unwrap_or_default();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    stream
        .write_raw(format!("<handshake>{hex}</handshake>").as_bytes())
        .await
        .map_err(LinkError::Stream)?;
    match stream.next().await.map_err(LinkError::Stream)? {
        Inbound::Stanza(el) if el.name() == "handshake" => Ok(()),
        Inbound::Stanza(el) => Err(LinkError::Refused(describe_refusal(&el))),
        Inbound::Dropped(d) => Err(LinkError::Refused(format!("unreadable reply: {}", d.why))),
        Inbound::Closed => Err(LinkError::Closed),
    }
}

const NS_STREAMS: &str = "http://etherx.jabber.org/streams";

fn escape_attr(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
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
                Ok(Inbound::Stanza(el)) => {
                    if is_stream_error(&el) {
                        return format!("stream error from server: {}", describe_refusal(&el));
                    }
                    if let Some((id, _)) = &outstanding
                        && is_ping_reply(&el, id)
                    {
                        outstanding = None;
                        continue;
                    }
                    let at = stream.arrived();
                    if events.send(LinkEvent::Stanza(el, at)).await.is_err() {
                        return "router gone".into();
                    }
                }
                Ok(Inbound::Dropped(d)) => {
                    if events.send(LinkEvent::Dropped(d)).await.is_err() {
                        return "router gone".into();
                    }
                }
                Ok(Inbound::Closed) => return "closed by server".into(),
                Err(e) => return format!("read error: {e}"),
            },
            out = outbound.recv() => match out {
                Some(el) => {
                    if let Err(e) = stream.send(&el).await {
                        return format!("write error: {e}");
                    }
                }
                None => {
                    // jitape is stopping: close the stream properly.
                    stream.close().await;
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
                stream.close().await;
                return "shutting down".into();
            }
        }
    }
}

fn is_stream_error(el: &Element) -> bool {
    el.name() == "error" && el.ns() == NS_STREAMS
}

/// Any answer (result or error) to our ping proves the link is alive.
fn is_ping_reply(el: &Element, id: &str) -> bool {
    el.name() == "iq"
        && el.attr("id") == Some(id)
        && matches!(el.attr("type"), Some("result") | Some("error"))
}

#[cfg(test)]
mod tests;
