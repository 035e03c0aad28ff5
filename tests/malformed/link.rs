//! A fake Prosody for jitape's component link (`xmpp::link::run`): it accepts one
//! connection on 127.0.0.1, answers the stream header and the handshake, then writes raw
//! bytes — hostile stanzas followed by a marker message — exactly as given, so the test sees
//! what tokio-xmpp's XML reader (rxml) makes of them.
//!
//! In: the bytes to send after the handshake. Out: the link's events until the marker
//! arrives, the link goes down, or the time limit passes ([`Outcome`]).

use std::time::{Duration, Instant};

use jitape::config::Secret;
use jitape::xmpp::link::{self, LinkEvent, LinkSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

const DOMAIN: &str = "rec.example";
/// Sent after the hostile bytes; the link is healthy if it arrives.
pub const MARKER: &str =
    "<message xmlns='jabber:component:accept' from='muc.example' to='rec.example' id='marker'/>";

/// What the link reported after the hostile bytes.
#[derive(Debug)]
pub struct Outcome {
    /// The marker arrived (the stream is still being read).
    pub marker: bool,
    /// `Down` reasons seen before the marker.
    pub downs: Vec<String>,
    /// Stanzas delivered before the marker (their names and byte sizes).
    pub delivered: Vec<(String, usize)>,
    /// Stanzas the link skipped (too large, too deep), with why.
    pub dropped: Vec<String>,
    /// When the server had written the payload and the marker, and when the link said the
    /// marker reached jitape.
    pub written: Option<Instant>,
    pub marker_at: Option<Instant>,
}

async fn read_until(sock: &mut TcpStream, needle: &str) -> std::io::Result<()> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// The link's settings for the fake server on `port` (no pings, no quick reconnects).
fn settings(port: u16) -> LinkSettings {
    LinkSettings {
        host: "127.0.0.1".into(),
        port,
        domain: DOMAIN.into(),
        secret: Secret::new("secret"),
        ping_target: "muc.example".into(),
        ping_interval: Duration::from_secs(60),
        ping_timeout: Duration::from_secs(30),
        reconnect_min: Duration::from_secs(30),
        reconnect_max: Duration::from_secs(60),
        limits: Default::default(),
    }
}

/// The server side: stream header, handshake, then `payload` and the marker.
async fn serve(
    listener: TcpListener,
    payload: Vec<u8>,
    written: tokio::sync::oneshot::Sender<Instant>,
) -> std::io::Result<TcpStream> {
    let (mut sock, _) = listener.accept().await?;
    read_until(&mut sock, "stream:stream").await?;
    sock.write_all(
        format!(
            "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='fake1' from='{DOMAIN}'>"
        )
        .as_bytes(),
    )
    .await?;
    read_until(&mut sock, "handshake>").await?;
    sock.write_all(b"<handshake/>").await?;
    sock.write_all(&payload).await?;
    sock.write_all(MARKER.as_bytes()).await?;
    sock.flush().await?;
    let _ = written.send(Instant::now());
    Ok(sock)
}

/// Connects jitape's link to a fake server that sends `payload`, and watches for `limit`.
pub async fn send_through_link(payload: Vec<u8>, limit: Duration) -> Outcome {
    send_through_slow_reader(payload, limit, Duration::ZERO).await
}

/// As [`send_through_link`], with a reader of the link's events (the router) that starts
/// taking them only `wait` after the server has written everything.
pub async fn send_through_slow_reader(
    payload: Vec<u8>,
    limit: Duration,
    wait: Duration,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    let (written_tx, written_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(serve(listener, payload, written_tx));
    let (out_tx, out_rx) = mpsc::channel(16);
    let (ev_tx, mut ev_rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let settings = settings(port);
    let link = tokio::spawn(link::run(settings, out_rx, ev_tx, stop_rx));
    let mut outcome = Outcome {
        marker: false,
        downs: Vec::new(),
        delivered: Vec::new(),
        dropped: Vec::new(),
        written: None,
        marker_at: None,
    };
    let deadline = tokio::time::Instant::now() + limit;
    if !wait.is_zero() {
        outcome.written = tokio::time::timeout_at(deadline, written_rx)
            .await
            .ok()
            .and_then(Result::ok);
        tokio::time::sleep(wait).await;
    }
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, ev_rx.recv()).await {
        match ev {
            LinkEvent::Up { .. } => {}
            LinkEvent::Stanza(el, at) if el.attr("id") == Some("marker") => {
                outcome.marker = true;
                outcome.marker_at = Some(at);
                break;
            }
            LinkEvent::Stanza(el, _) => {
                let mut bytes = Vec::new();
                let _ = el.write_to(&mut bytes);
                outcome.delivered.push((el.name().to_string(), bytes.len()));
            }
            LinkEvent::Dropped(d) => outcome
                .dropped
                .push(format!("{:?} ({} bytes)", d.why, d.size)),
            LinkEvent::Down { reason } => {
                outcome.downs.push(reason);
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), link).await;
    server.abort();
    outcome
}

/// `<presence>` with an attribute value of `len` bytes.
pub fn long_attribute(len: usize) -> Vec<u8> {
    format!(
        "<presence xmlns='jabber:component:accept' from='room@muc.example/x' to='rec.example' data='{}'/>",
        "v".repeat(len)
    )
    .into_bytes()
}

/// `<presence>` with `depth` nested elements inside.
pub fn nested(depth: usize) -> Vec<u8> {
    let mut s = String::from(
        "<presence xmlns='jabber:component:accept' from='room@muc.example/x' to='rec.example'>",
    );
    s.push_str(&"<a>".repeat(depth));
    s.push_str(&"</a>".repeat(depth));
    s.push_str("</presence>");
    s.into_bytes()
}

/// Runs jitape's link on its own thread ([`link::spawn`], as `jitape run` does) against a
/// fake server on a plain thread; once the link is up, blocks every worker of the calling
/// (multi-threaded) runtime for `block` and has the server write the marker meanwhile.
/// Returns when the server wrote it and when the link stamped it as arrived.
pub async fn stamp_while_the_runtime_is_blocked(block: Duration) -> (Instant, Instant) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (written_tx, written_rx) = std::sync::mpsc::channel::<Instant>();
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut sock, _) = listener.accept()?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        let mut read_until =
            |sock: &mut std::net::TcpStream, needle: &str| -> std::io::Result<()> {
                while !String::from_utf8_lossy(&seen).contains(needle) {
                    let n = sock.read(&mut buf)?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                Ok(())
            };
        read_until(&mut sock, "stream:stream")?;
        sock.write_all(format!("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='fake2' from='{DOMAIN}'>").as_bytes())?;
        read_until(&mut sock, "handshake>")?;
        sock.write_all(b"<handshake/>")?;
        let _ = go_rx.recv();
        sock.write_all(MARKER.as_bytes())?;
        sock.flush()?;
        let _ = written_tx.send(Instant::now());
        // Hold the connection until the test is done with it.
        let _ = sock.read(&mut buf);
        Ok(())
    });
    let (out_tx, out_rx) = mpsc::channel(16);
    let (ev_tx, mut ev_rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let settings = settings(port);
    let done = link::spawn(settings, out_rx, ev_tx, stop_rx).expect("the link's thread");
    let up = tokio::time::timeout(Duration::from_secs(20), ev_rx.recv()).await;
    assert!(matches!(up, Ok(Some(LinkEvent::Up { .. }))), "{up:?}");
    // More blocking tasks than the runtime has workers: none of them is free for `block`.
    for _ in 0..4 {
        tokio::spawn(async move { std::thread::sleep(block) });
    }
    std::thread::sleep(Duration::from_millis(50));
    let _ = go_tx.send(());
    let stamped = loop {
        match tokio::time::timeout(Duration::from_secs(20), ev_rx.recv()).await {
            Ok(Some(LinkEvent::Stanza(el, at))) if el.attr("id") == Some("marker") => break at,
            Ok(Some(_)) => {}
            other => panic!("no marker: {other:?}"),
        }
    };
    let written = written_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server wrote");
    let _ = stop_tx.send(true);
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
    let _ = server.join();
    (written, stamped)
}
