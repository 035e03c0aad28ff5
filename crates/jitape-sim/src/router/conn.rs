//! One accepted XEP-0114 component connection of the simulated server: stream header,
//! handshake, then stanzas both ways.
//!
//! In: the TCP socket, the immutable component table, an outbound stanza channel. Out:
//! [`ConnEvent`]s to the server task (authenticated, stanza, closed). The server decides
//! conflicts and routing; this task only speaks the wire protocol, like Prosody's
//! `mod_component.lua`:
//! - header: `to` is required (`improper-addressing`) and must be a configured component
//!   (`host-unknown`); the answer header has `from` = that domain and a fresh random `id`;
//!   no `<stream:features/>` (tokio-xmpp's component login calls `skip_features`);
//! - handshake: hex `sha1(id .. secret)`, compared case-insensitively; wrong or with child
//!   elements → `not-authorized`; a second connection for a connected domain → `conflict`
//!   "Component already connected"; success → empty `<handshake/>`;
//! - stanzas: `from` must be on the component's domain or the stream closes with
//!   `invalid-from`; malformed XML or a stanza over the size limit → `not-well-formed`
//!   (Prosody's `component_stanza_size_limit`, 512 KiB by default).
//!
//! tokio-xmpp 6 has no responder-side "skip features", so the peer's header is read here by
//! hand and replayed, normalised, into `initiate_stream` (which sends our header and then
//! parses the replayed one): the wire order is still theirs first, ours second.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use minidom::Element;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::xmlstream::{ReadError, StreamHeader, Timeouts, XmlStream, initiate_stream};

use super::route::ConnId;
use super::wire::{HeaderError, PeerHeader, ReplayIo, read_header};
use super::xml::{
    Addr, ErrorSpec, NS_COMPONENT, NS_STREAM, error_reply, may_bounce, with_child, with_text,
};

const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
const NS_CLIENT: &str = "jabber:client";
/// How long a peer may take to send its header and its handshake.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long we wait for a stream error and footer to be written before cutting.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Immutable settings shared by all connection tasks.
pub(crate) struct ConnConfig {
    /// Component domain → secret.
    pub(crate) secrets: BTreeMap<String, String>,
    pub(crate) max_stanza_bytes: usize,
}

/// What a connection task tells the server task.
pub(crate) enum ConnEvent {
    /// The handshake was right; the server answers whether the domain may attach.
    Authenticated {
        conn: ConnId,
        domain: String,
        verdict: oneshot::Sender<bool>,
    },
    Stanza {
        conn: ConnId,
        stanza: Element,
    },
    Closed {
        conn: ConnId,
    },
}

/// Why a connection ended (for logs; every variant is handled, none panics).
#[derive(Debug, thiserror::Error)]
enum ConnError {
    // Peer misbehaved.
    #[error("stream header: {0}")]
    Header(#[from] HeaderError),
    #[error("no 'to' on the stream header")]
    NoTo,
    #[error("stream header for an unknown component")]
    UnknownHost,
    #[error("handshake refused")]
    NotAuthorized,
    #[error("component already connected")]
    Conflict,
    #[error("stanza from outside the component's domain")]
    InvalidFrom,
    #[error("unsupported stream element <{0}/>")]
    Unsupported(String),
    #[error("malformed XML or stanza over the size limit")]
    NotWellFormed,
    #[error("login timed out")]
    LoginTimeout,
    #[error("peer closed the stream")]
    PeerClosed,
    #[error("peer sent a stream error")]
    PeerStreamError,
    // The server task is gone (shutdown).
    #[error("server stopped")]
    ServerGone,
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

type Xml = XmlStream<ReplayIo, Element>;

/// Runs one connection to its end.
pub(crate) async fn run(
    conn: ConnId,
    socket: TcpStream,
    config: Arc<ConnConfig>,
    events: mpsc::Sender<ConnEvent>,
    outbound: mpsc::UnboundedReceiver<Element>,
) {
    let mut io = BufStream::new(socket);
    let result = match tokio::time::timeout(LOGIN_TIMEOUT, read_header(&mut io)).await {
        Err(_) => Err(ConnError::LoginTimeout),
        Ok(Err(e)) => {
            if matches!(e, HeaderError::Malformed | HeaderError::BadNamespace) {
                write_raw_stream_error(&mut io, &e).await;
            }
            Err(ConnError::Header(e))
        }
        Ok(Ok(header)) => serve(conn, io, header, &config, &events, outbound).await,
    };
    match &result {
        Ok(()) | Err(ConnError::PeerClosed | ConnError::Header(HeaderError::Closed)) => {
            tracing::debug!(conn, "sim router: connection closed")
        }
        Err(e) => tracing::info!(conn, error = %e, "sim router: connection ended"),
    }
    let _ = events.send(ConnEvent::Closed { conn }).await;
}

async fn serve(
    conn: ConnId,
    io: BufStream<TcpStream>,
    header: PeerHeader,
    config: &ConnConfig,
    events: &mpsc::Sender<ConnEvent>,
    mut outbound: mpsc::UnboundedReceiver<Element>,
) -> Result<(), ConnError> {
    let stream_id = fresh_stream_id();
    let replay = ReplayIo::new(header.replay.into_bytes(), io, config.max_stanza_bytes);
    // Like Prosody, an unknown or missing `to` is refused before the stream is "opened":
    // that answer header carries no `from`.
    let known = header
        .to
        .as_ref()
        .filter(|to| config.secrets.contains_key(*to));
    let ours = StreamHeader {
        from: known.cloned().map(Into::into),
        to: None,
        id: Some(stream_id.clone().into()),
    };
    let pending = initiate_stream(replay, NS_COMPONENT, ours, long_timeouts()).await?;
    let mut xml: Xml = pending.skip_features();
    let domain = login(conn, &mut xml, header.to, &stream_id, config, events).await?;
    tracing::info!(conn, component = %domain, "sim router: component authenticated");
    stanza_loop(conn, &domain, &mut xml, events, &mut outbound).await
}

/// Checks the header's `to`, the handshake, and (with the server) conflicts; answers
/// `<handshake/>` and returns the component's domain, or closes with a stream error.
async fn login(
    conn: ConnId,
    xml: &mut Xml,
    to: Option<String>,
    stream_id: &str,
    config: &ConnConfig,
    events: &mpsc::Sender<ConnEvent>,
) -> Result<String, ConnError> {
    let Some(domain) = to else {
        let text = "A 'to' attribute is required on stream headers";
        return Err(close_with(xml, "improper-addressing", Some(text), ConnError::NoTo).await);
    };
    let Some(secret) = config.secrets.get(&domain) else {
        let text = format!("{domain} does not match any configured external components");
        let reason = ConnError::UnknownHost;
        return Err(close_with(xml, "host-unknown", Some(&text), reason).await);
    };
    let handshake = match tokio::time::timeout(LOGIN_TIMEOUT, next_element(xml)).await {
        Err(_) => {
            let reason = ConnError::LoginTimeout;
            return Err(close_with(xml, "connection-timeout", None, reason).await);
        }
        Ok(Err(e)) => return Err(fail_read(xml, e).await),
        Ok(Ok(el)) => el,
    };
    if !handshake_ok(&handshake, stream_id, secret) {
        tracing::info!(conn, component = %domain, "sim router: component authentication failed");
        let text = "Given token does not match calculated token";
        let reason = ConnError::NotAuthorized;
        return Err(close_with(xml, "not-authorized", Some(text), reason).await);
    }
    let (verdict, verdict_rx) = oneshot::channel();
    let event = ConnEvent::Authenticated {
        conn,
        domain: domain.clone(),
        verdict,
    };
    events
        .send(event)
        .await
        .map_err(|_| ConnError::ServerGone)?;
    if !verdict_rx.await.map_err(|_| ConnError::ServerGone)? {
        let text = "Component already connected";
        return Err(close_with(xml, "conflict", Some(text), ConnError::Conflict).await);
    }
    xml.send(&Element::bare("handshake", NS_COMPONENT)).await?;
    Ok(domain)
}

async fn stanza_loop(
    conn: ConnId,
    domain: &str,
    xml: &mut Xml,
    events: &mpsc::Sender<ConnEvent>,
    outbound: &mut mpsc::UnboundedReceiver<Element>,
) -> Result<(), ConnError> {
    loop {
        tokio::select! {
            read = next_element(xml) => match read {
                Ok(el) => on_element(conn, domain, xml, events, el).await?,
                Err(e) => return Err(fail_read(xml, e).await),
            },
            next = outbound.recv() => match next {
                Some(el) => send_or_skip(xml, &el).await?,
                None => return Err(ConnError::ServerGone),
            },
        }
    }
}

/// Writes one stanza. A stanza the XML writer refuses (`InvalidInput`; tokio-xmpp rewinds
/// its buffer then) is dropped with a warning instead of ending the connection.
async fn send_or_skip(xml: &mut Xml, el: &Element) -> Result<(), ConnError> {
    match xml.send(el).await {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            tracing::warn!(error = %e, "sim router: unserialisable stanza dropped");
            Ok(())
        }
        other => Ok(other?),
    }
}

/// One element from an authenticated component; `Err` ends the connection.
async fn on_element(
    conn: ConnId,
    domain: &str,
    xml: &mut Xml,
    events: &mpsc::Sender<ConnEvent>,
    el: Element,
) -> Result<(), ConnError> {
    if el.is("error", NS_STREAM) {
        return Err(ConnError::PeerStreamError);
    }
    let client_ns = el.ns() == NS_CLIENT;
    let is_stanza = (el.ns() == NS_COMPONENT || client_ns)
        && matches!(el.name(), "iq" | "message" | "presence");
    if !is_stanza {
        let err = ConnError::Unsupported(el.name().to_owned());
        return Err(close_with(xml, "unsupported-stanza-type", None, err).await);
    }
    let from_domain = el.attr("from").and_then(Addr::parse).map(|a| a.domain);
    if from_domain.as_deref() != Some(domain) {
        let text = format!("Component tried to send from an address not in domain <{domain}>");
        return Err(close_with(xml, "invalid-from", Some(&text), ConnError::InvalidFrom).await);
    }
    if client_ns {
        // Prosody has no handler for `stanza/jabber:client:*` from a component: its
        // `handle_unhandled_stanza` answers `service-unavailable` (never to errors/results).
        tracing::warn!(
            conn,
            "sim router: jabber:client stanza on a component stream"
        );
        if may_bounce(&el) {
            let spec = ErrorSpec::new("cancel", "service-unavailable");
            if let Some(reply) = error_reply(&el, spec) {
                xml.send(&reply).await?;
            }
        }
        return Ok(());
    }
    let event = ConnEvent::Stanza { conn, stanza: el };
    events.send(event).await.map_err(|_| ConnError::ServerGone)
}

/// The next top-level element; soft timeouts are ignored (we have no keepalive duty).
async fn next_element(xml: &mut Xml) -> Result<Element, ReadError> {
    loop {
        let item = xml.next().await;
        xml.get_stream().reset_budget();
        match item {
            Some(Ok(el)) => return Ok(el),
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::ParseError(e))) => {
                tracing::debug!(error = %e, "sim router: element skipped");
                continue;
            }
            Some(Err(e)) => return Err(e),
            None => return Err(ReadError::StreamFooterReceived),
        }
    }
}

/// Why reading stopped, after answering it on the stream where Prosody would.
async fn fail_read(xml: &mut Xml, e: ReadError) -> ConnError {
    match e {
        ReadError::StreamFooterReceived => {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, xml.shutdown()).await;
            ConnError::PeerClosed
        }
        ReadError::HardError(e) if e.kind() == io::ErrorKind::InvalidData => {
            if xml.get_stream().over_budget() {
                tracing::info!("sim router: stanza over the size limit");
            }
            close_with(xml, "not-well-formed", None, ConnError::NotWellFormed).await
        }
        ReadError::HardError(e) => ConnError::Io(e),
        ReadError::SoftTimeout | ReadError::ParseError(_) => ConnError::NotWellFormed,
    }
}

/// Sends `<stream:error><condition/><text/></stream:error></stream:stream>`, shuts the
/// stream down and returns `reason` for the caller to end with.
async fn close_with(
    xml: &mut Xml,
    condition: &str,
    text: Option<&str>,
    reason: ConnError,
) -> ConnError {
    let error = stream_error(condition, text);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        xml.send(&error).await?;
        xml.shutdown().await
    })
    .await;
    reason
}

fn stream_error(condition: &str, text: Option<&str>) -> Element {
    let mut error = with_child(
        Element::bare("error", NS_STREAM),
        Element::bare(condition, NS_STREAM_ERRORS),
    );
    if let Some(text) = text {
        error = with_child(
            error,
            with_text(Element::bare("text", NS_STREAM_ERRORS), text),
        );
    }
    error
}

/// Before a header could be parsed, answer like Prosody's `session_close` on an unopened
/// stream: our own header, the error, the footer.
async fn write_raw_stream_error(io: &mut BufStream<TcpStream>, reason: &HeaderError) {
    let condition = match reason {
        HeaderError::BadNamespace => "invalid-namespace",
        _ => "not-well-formed",
    };
    let bytes = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='{NS_STREAM}' \
         id='' version='1.0'><stream:error><{condition} xmlns='{NS_STREAM_ERRORS}'/>\
         </stream:error></stream:stream>"
    );
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        io.write_all(bytes.as_bytes()).await?;
        io.flush().await
    })
    .await;
}

fn handshake_ok(el: &Element, stream_id: &str, secret: &str) -> bool {
    if !el.is("handshake", NS_COMPONENT) || el.children().next().is_some() {
        return false;
    }
    let mut hasher = Sha1::new();
    hasher.update(stream_id.as_bytes());
    hasher.update(secret.as_bytes());
    let expected: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    el.text().to_ascii_lowercase() == expected
}

/// A random UUID-shaped stream id (Prosody uses `util.uuid`).
fn fresh_stream_id() -> String {
    let v: u128 = rand::random();
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Read timeouts long enough never to fire in practice: Prosody does not time out idle
/// components (it sends whitespace keepalives on its read timeout).
fn long_timeouts() -> Timeouts {
    Timeouts {
        read_timeout: Duration::from_secs(24 * 3600),
        response_timeout: Duration::from_secs(24 * 3600),
    }
}

#[cfg(test)]
mod tests;
