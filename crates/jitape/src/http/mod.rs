//! The HTTP side: health, readiness, Prometheus metrics and the admin API, on one small
//! server (127.0.0.1 by default; a bearer token is required anywhere else).
//!
//! In: TCP connections on the configured address. Out: answers built from [`HttpState`]
//! (metrics, readiness) and from the router (conference snapshots, record/stop). One request
//! per connection, a bounded head, a bounded time: hostile clients cost little. The routing
//! decision is [`api::route`] (pure); this file does the I/O.

pub mod api;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::Secret;
use crate::guard::Readiness;
use crate::metrics::Metrics;
use crate::router::Control;

/// What the server needs from the rest of jitape.
#[derive(Clone)]
pub struct HttpState {
    pub control: mpsc::Sender<Control>,
    pub metrics: Arc<Metrics>,
    pub ready: watch::Receiver<Readiness>,
    pub token: Option<Secret>,
    pub muc_domains: Vec<String>,
}

/// Largest request head we read.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client gets to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// Serve until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: HttpState, mut shutdown: watch::Receiver<bool>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "http server listening");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        debug!(%peer, "too many http connections; refused");
                        continue;
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        connection(stream, &state).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// Parse a request head; `Ok(None)` if more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<Request>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let authorization = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(str::to_string);
            Ok(Some(Request {
                method: req.method.unwrap_or("").to_string(),
                path: req.path.unwrap_or("").to_string(),
                authorization,
            }))
        }
        Err(e) => Err(e.to_string()),
    }
}

async fn read_head(stream: &mut TcpStream) -> Result<Request, api::Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => return Err(api::Response::text(408, "request timeout\n")),
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return Err(api::Response::text(400, "bad request\n")),
        };
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf) {
            Ok(Some(req)) => return Ok(req),
            Ok(None) if buf.len() < MAX_HEAD => continue,
            Ok(None) => return Err(api::Response::text(431, "request head too large\n")),
            Err(_) => return Err(api::Response::text(400, "bad request\n")),
        }
    }
}

async fn connection(mut stream: TcpStream, state: &HttpState) {
    let response = match read_head(&mut stream).await {
        Ok(req) => api::handle(&req, state).await,
        Err(resp) => resp,
    };
    let bytes = response.to_bytes();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests;
