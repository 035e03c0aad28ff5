//! The HTTP side: health, readiness, Prometheus metrics, the admin API and the login form, on
//! one small server (127.0.0.1 by default; a token is required anywhere else).
//!
//! In: TCP connections on the configured address. Out: answers built from [`HttpState`]
//! (metrics, readiness) and from the router (conference snapshots, record/stop).
//!
//! [`app`] is the whole server as an axum [`Router`]: the routes of [`api`] behind the token
//! check of [`auth`], the login form open to all, and the bounds every route shares. [`serve`]
//! runs it connection by connection on hyper's HTTP/1 server, which bounds what a hostile
//! client costs: 64 connections at once, one request each, a head of at most 8 KiB that must
//! arrive within 5 s, a small request body, 10 s for a handler, and a socket that stops
//! taking the answer for 10 s is dropped (`conn`).

pub mod api;
pub mod auth;
mod conn;
pub mod pages;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
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
    /// The recording directory (`recording.dir`), which the recordings page reads.
    pub recordings: PathBuf,
}

/// Connections served at once; more are refused (dropped).
const MAX_CONNECTIONS: usize = 64;
/// Largest request head (hyper's read buffer; 8 KiB is its smallest).
const MAX_HEAD: usize = 8 * 1024;
/// Most header lines in a head.
const MAX_HEADERS: usize = 32;
/// Time a client gets to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request body (only the login form has one).
const MAX_BODY: usize = 4 * 1024;
/// Time a handler gets, reading the request body included.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the peer may take none of the answer's bytes before its connection is dropped.
const WRITE_STALL: Duration = Duration::from_secs(10);

/// The whole server: every route, the token check and the common layers.
///
/// Routes that need the token are merged into `guarded`; `open` ones (the login form) are
/// reachable without it. Every answer carries `Cache-Control: no-store`.
pub fn app(state: HttpState) -> Router {
    let guarded = bounded(Router::new().merge(api::routes()).merge(pages::routes()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let open = bounded(auth::routes());
    Router::new()
        .merge(open)
        .merge(guarded)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

/// The bounds of routes that answer small requests quickly: a small body, a short time, and
/// the plain-text 405.
fn bounded(routes: Router<HttpState>) -> Router<HttpState> {
    routes
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            HANDLER_TIMEOUT,
        ))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response()
}

/// Serve until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: HttpState, mut shutdown: watch::Receiver<bool>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "http server listening");
    }
    let app = app(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        debug!(%peer, "too many http connections; refused");
                        continue;
                    };
                    let app = app.clone();
                    tokio::spawn(async move {
                        conn::serve(stream, app).await;
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

/// Decode `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
