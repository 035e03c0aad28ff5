//! Unit tests of this module: the bounds of a real connection (head size, head time, garbage,
//! a body that never comes, a peer that stops reading), and the helpers the other tests of
//! `http` share (a state with a stand-in router, one request through the [`app`]).

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower::ServiceExt;

use super::*;
use crate::router::RecordOutcome;

pub(super) const TOKEN: &str = "s3cret";

/// A state on `muc.example` (with tenants under `example`), and a stand-in for the router:
/// it lists no conference, starts every recording but `busy@muc.example` (already
/// recording) and is recording nothing to stop.
pub(super) fn state(token: Option<&str>) -> HttpState {
    let (control, mut rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Control::List { reply } => drop(reply.send(Vec::new())),
                Control::Record {
                    room,
                    reply: Some(reply),
                } => drop(reply.send(if room == "busy@muc.example" {
                    RecordOutcome::AlreadyRecording
                } else {
                    RecordOutcome::Started
                })),
                Control::Stop {
                    reply: Some(reply), ..
                } => drop(reply.send(false)),
                _ => {}
            }
        }
    });
    let (_, ready) = watch::channel(Readiness::default());
    HttpState {
        control,
        metrics: Arc::new(Metrics::default()),
        ready,
        token: token.map(Secret::new),
        muc_domains: vec!["muc.example".into()],
        recordings: std::path::PathBuf::from("/nonexistent/jitape-test-recordings"),
    }
}

/// An answer, its body as text.
pub(super) struct Answer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request through the whole app, in process.
pub(super) async fn send(state: &HttpState, req: Request<Body>) -> Answer {
    let resp = app(state.clone()).oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A request with the token as bearer.
pub(super) fn authed(method: &str, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("request")
}

/// The server on a loopback port.
async fn listening() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        serve(listener, state(Some(TOKEN)), rx).await;
        drop(tx);
    });
    addr
}

/// Send `bytes`, read until the server closes; what came back.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("the server closes")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn heads_are_bounded_to_8_kib_and_garbage_is_refused() {
    let addr = listening().await;
    let start = format!("GET /health HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nX-Pad: ");
    // A head just under the bound is served...
    let fits = format!(
        "{start}{}\r\n\r\n",
        "a".repeat(MAX_HEAD - start.len() - 200)
    );
    let answer = raw(addr, fits.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
    // One request per connection: the raw clients of the tests read to the end.
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    // ...8 KiB without its end is not. (Exactly 8 KiB: the server reads all of it, so it
    // closes cleanly rather than resetting with bytes unread.)
    let over = format!("{start}{}", "a".repeat(MAX_HEAD - start.len()));
    let answer = raw(addr, over.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer}"
    );
    let answer = raw(addr, b"\x00\x01 garbage\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_head_that_never_ends_is_closed_after_5_s() {
    let addr = listening().await;
    let begun = Instant::now();
    let answer = raw(addr, b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
    let waited = begun.elapsed();
    assert_eq!(answer, "", "closed without an answer");
    assert!(
        waited >= READ_TIMEOUT && waited < READ_TIMEOUT + Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_that_never_comes_gets_408_after_10_s() {
    let addr = listening().await;
    let begun = Instant::now();
    let head = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=";
    let answer = raw(addr, head.as_bytes()).await;
    let waited = begun.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(
        waited >= HANDLER_TIMEOUT && waited < HANDLER_TIMEOUT + Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_is_dropped_but_a_slow_one_is_not() {
    // Nobody reads: the writer fails once nothing moved for the limit.
    let (ours, _theirs) = tokio::io::duplex(64);
    let mut guarded = conn::StallGuard::new(ours, WRITE_STALL);
    let begun = Instant::now();
    let err = guarded.write_all(&[0; 1024]).await.expect_err("stalled");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(begun.elapsed(), WRITE_STALL);
    // A reader that takes a little every few seconds gets everything, however long it takes.
    let (ours, mut theirs) = tokio::io::duplex(64);
    let mut guarded = conn::StallGuard::new(ours, WRITE_STALL);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0; 64];
        loop {
            tokio::time::sleep(WRITE_STALL / 2).await;
            match theirs.read(&mut buf).await.expect("read") {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    let begun = Instant::now();
    guarded
        .write_all(&[7; 1024])
        .await
        .expect("slow but moving");
    guarded.shutdown().await.expect("shutdown");
    drop(guarded);
    assert_eq!(reader.await.expect("reader"), vec![7; 1024]);
    assert!(begun.elapsed() > WRITE_STALL * 5, "{:?}", begun.elapsed());
}
