//! The admin endpoints: their [`routes`], the answers, and which room a request names
//! ([`parse_room`], pure).
//!
//! ```text
//! GET    /health               200 while the process runs
//! GET    /ready                200 or 503 with the reasons (XMPP up, recording dir writable,
//!                              free space above the floor, the disk keeping up with the audio)
//! GET    /metrics              Prometheus text format
//! GET    /conferences          every active recording (JSON), each with this `instance`
//!                              (`xmpp.instance`; also the `X-Jitape-Instance` header)
//! POST   /conferences/{room}   record a room now (202; 200 if already recording); a tenant
//!                              room as `[tenant]room@muc` or `room@muc.<tenant>.<base>`
//! DELETE /conferences/{room}   stop and finalize a recording (202; 404 if not recording)
//! GET    /login                the login form (no token needed; see `auth`)
//! POST   /login                form field `token` (and `next`): 303 to `next` with the
//!                              `jitape_token` cookie, or 401 and the form again
//! ```
//!
//! With a token configured every request but `/login` needs it, as `Authorization: Bearer
//! <token>` or as the cookie; without it the answer is 401 `unauthorized` (the login form
//! for a browser). An unknown path is 404 `not found`, a known one with another method 405
//! `method not allowed`, a room that is not on a configured MUC domain 400. GET routes also
//! answer HEAD.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::sync::oneshot;

use super::HttpState;
use crate::conference::snapshot::ConferenceSnapshot;
use crate::guard::Readiness;
use crate::router::{Control, RecordOutcome};
use crate::xmpp::stanza::Jid;

/// Time the router gets to answer a request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin endpoints (the token check is the caller's layer).
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/conferences", get(list))
        .route("/conferences/", get(list))
        .route("/conferences/{*room}", any(room))
}

/// A path segment that does not name a room on a configured MUC domain; holds the start of
/// the segment as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRoom(pub String);

/// The room a raw (still percent-encoded) `/conferences/` path segment names, in its
/// internal spelling (`[tenant]room@muc`). Pure.
pub fn parse_room(raw: &str, muc_domains: &[String]) -> Result<String, BadRoom> {
    let room = super::percent_decode(raw).as_deref().and_then(Jid::parse);
    // A tenant room may be named in either spelling; it is recorded under its internal one.
    let room = room.map(|j| crate::xmpp::tenant::to_internal(muc_domains, &j).unwrap_or(j));
    match room {
        Some(j)
            if j.resource.is_none()
                && j.node().is_some()
                && muc_domains.iter().any(|d| d == j.domain()) =>
        {
            Ok(j.bare)
        }
        _ => Err(BadRoom(raw.chars().take(200).collect())),
    }
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_string()).into_response()
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into()) + "\n";
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn health() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn ready(State(state): State<HttpState>) -> Response {
    let r = readiness(&state);
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &r)
}

/// What the guard reports, with what the load and the disk say now.
fn readiness(state: &HttpState) -> Readiness {
    let mut r = state.ready.borrow().clone();
    let m = &state.metrics;
    // Not a reason to stop sending work here, but never only a log line.
    match m.load_level.get() {
        0 => {}
        level => {
            r.ready = false;
            r.reasons.push(format!(
                "{} (packets wait {} ms before their conference takes them in): no new recording starts{}",
                if level >= 2 { "overloaded" } else { "strained" },
                m.intake_delay_ms.get(),
                if level >= 2 { ", conferences are ended, newest first" } else { "" }
            ));
        }
    }
    let deaf = m.conferences_deaf.get();
    if deaf > 0 {
        r.reasons.push(format!(
            "{deaf} conference(s) recording without a working media session (silence, listed as a gap; see /conferences)"
        ));
    }
    // The disk does not keep up: audio waits in memory, and past its bound is lost.
    let behind = m.recordings_write_behind.get();
    if behind > 0 {
        r.ready = false;
        r.reasons.push(format!(
            "{behind} recording(s) far behind writing to disk ({:.1} s of audio waiting; a slow or stalled disk)",
            m.write_backlog_micros.get() as f64 / 1e6
        ));
    }
    r
}

async fn metrics(State(state): State<HttpState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

/// A conference as `/conferences` lists it: which instance records it, then its snapshot.
#[derive(serde::Serialize)]
struct Listed<'a> {
    instance: &'a str,
    #[serde(flatten)]
    conference: &'a ConferenceSnapshot,
}

async fn list(State(state): State<HttpState>) -> Response {
    let instance = state.metrics.instance.get().map_or("", String::as_str);
    match conferences(&state).await {
        Ok(list) => {
            let listed: Vec<Listed<'_>> = list
                .iter()
                .map(|conference| Listed {
                    instance,
                    conference,
                })
                .collect();
            let mut answer = json(StatusCode::OK, &listed);
            if let Ok(value) = header::HeaderValue::from_str(instance) {
                answer.headers_mut().insert("x-jitape-instance", value);
            }
            answer
        }
        Err(answer) => answer,
    }
}

/// Every conference being recorded, as the router reports them (or the 503 to answer).
pub(super) async fn conferences(state: &HttpState) -> Result<Vec<ConferenceSnapshot>, Response> {
    match ask(state, |reply| Control::List { reply }).await {
        Ok(Some(list)) => Ok(list),
        Ok(None) => Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no answer from the conferences\n",
        )),
        Err(closed) => Err(closed),
    }
}

/// `/conferences/{room}`: the room is read from the raw path, so an encoded `/` (`%2F`) stays
/// part of the segment (and makes it a bad room).
async fn room(State(state): State<HttpState>, method: Method, uri: Uri) -> Response {
    let raw = uri.path().strip_prefix("/conferences/").unwrap_or_default();
    let room = match parse_room(raw, &state.muc_domains) {
        Ok(room) => room,
        Err(BadRoom(raw)) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("`{raw}` is not a room on a configured MUC domain (room@muc.domain)\n"),
            );
        }
    };
    match method {
        Method::POST => record(&state, room).await,
        Method::DELETE => stop(&state, room).await,
        _ => super::method_not_allowed().await,
    }
}

async fn record(state: &HttpState, room: String) -> Response {
    let asked = ask(state, |reply| Control::Record {
        room: room.clone(),
        reply: Some(reply),
    });
    let body = |status: &str| serde_json::json!({ "room": room, "status": status });
    match asked.await {
        Ok(Some(RecordOutcome::Started)) => json(StatusCode::ACCEPTED, &body("recording")),
        Ok(Some(RecordOutcome::AlreadyRecording)) => {
            json(StatusCode::OK, &body("already recording"))
        }
        Ok(Some(RecordOutcome::Refused(why))) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "room": room, "status": "refused", "reason": why }),
        ),
        Ok(None) => text(StatusCode::SERVICE_UNAVAILABLE, "no answer\n"),
        Err(closed) => closed,
    }
}

async fn stop(state: &HttpState, room: String) -> Response {
    let asked = ask(state, |reply| Control::Stop {
        room: room.clone(),
        reply: Some(reply),
    });
    let body = |status: &str| serde_json::json!({ "room": room, "status": status });
    match asked.await {
        Ok(Some(true)) => json(StatusCode::ACCEPTED, &body("stopping")),
        Ok(Some(false)) => json(StatusCode::NOT_FOUND, &body("not recording")),
        Ok(None) => text(StatusCode::SERVICE_UNAVAILABLE, "no answer\n"),
        Err(closed) => closed,
    }
}

/// Send the router a request and wait for its answer: `Ok(None)` if it does not come in
/// time, `Err` (the 503 to give) if the router is gone.
async fn ask<T>(
    state: &HttpState,
    message: impl FnOnce(oneshot::Sender<T>) -> Control,
) -> Result<Option<T>, Response> {
    let (tx, rx) = oneshot::channel();
    if state.control.send(message(tx)).await.is_err() {
        return Err(text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"));
    }
    Ok(tokio::time::timeout(ANSWER_TIMEOUT, rx)
        .await
        .ok()
        .and_then(Result::ok))
}

#[cfg(test)]
mod tests;
