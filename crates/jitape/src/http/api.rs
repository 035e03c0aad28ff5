//! The HTTP endpoints: what each request means ([`route`], pure) and the answer
//! ([`handle`]).
//!
//! ```text
//! GET    /health               200 while the process runs
//! GET    /ready                200 or 503 with the reasons (XMPP up, recording dir writable,
//!                              free space above the floor, the disk keeping up with the audio)
//! GET    /metrics              Prometheus text format
//! GET    /conferences          every active recording (JSON)
//! POST   /conferences/{room}   record a room now (202; 200 if already recording); a tenant
//!                              room as `[tenant]room@muc` or `room@muc.<tenant>.<base>`
//! DELETE /conferences/{room}   stop and finalize a recording (202; 404 if not recording)
//! ```
//!
//! With a token configured every request needs `Authorization: Bearer <token>`.

use std::time::Duration;

use tokio::sync::oneshot;

use super::{HttpState, Request};
use crate::router::{Control, RecordOutcome};
use crate::xmpp::stanza::Jid;

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
        }
    }

    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into()) + "\n",
        }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Error",
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
            self.status,
            self.reason(),
            self.content_type,
            self.body.len()
        );
        if self.status == 401 {
            out.push_str("WWW-Authenticate: Bearer\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Ready,
    Metrics,
    List,
    Record(String),
    Stop(String),
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    BadRoom(String),
}

/// Decode `%XX` escapes (room JIDs like `[tenant]room@muc` arrive escaped).
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

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Map a request to a route. Pure.
pub fn route(req: &Request, token: Option<&str>, muc_domains: &[String]) -> Route {
    if let Some(t) = token {
        let given = req
            .authorization
            .as_deref()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| same(g, t)) {
            return Route::Unauthorized;
        }
    }
    let path = req.path.split('?').next().unwrap_or("");
    let get = req.method == "GET";
    match path {
        "/health" if get => return Route::Health,
        "/ready" if get => return Route::Ready,
        "/metrics" if get => return Route::Metrics,
        "/conferences" | "/conferences/" if get => return Route::List,
        "/health" | "/ready" | "/metrics" | "/conferences" | "/conferences/" => {
            return Route::MethodNotAllowed;
        }
        _ => {}
    }
    let Some(raw) = path.strip_prefix("/conferences/") else {
        return Route::NotFound;
    };
    let room = percent_decode(raw).as_deref().and_then(Jid::parse);
    // A tenant room may be named in either spelling; it is recorded under its internal one.
    let room = room.map(|j| crate::xmpp::tenant::to_internal(muc_domains, &j).unwrap_or(j));
    let room = match room {
        Some(j)
            if j.resource.is_none()
                && j.node().is_some()
                && muc_domains.iter().any(|d| d == j.domain()) =>
        {
            j.bare
        }
        _ => return Route::BadRoom(raw.chars().take(200).collect()),
    };
    match req.method.as_str() {
        "POST" => Route::Record(room),
        "DELETE" => Route::Stop(room),
        _ => Route::MethodNotAllowed,
    }
}

/// Answer a request.
pub async fn handle(req: &Request, state: &HttpState) -> Response {
    let token = state.token.as_ref().map(|t| t.expose());
    match route(req, token, &state.muc_domains) {
        Route::Health => Response::text(200, "ok\n"),
        Route::Ready => {
            let mut r = state.ready.borrow().clone();
            // Not a reason to stop sending work here, but never only a log line.
            match state.metrics.load_level.get() {
                0 => {}
                level => {
                    r.ready = false;
                    r.reasons.push(format!(
                        "{} (packets wait {} ms before their conference takes them in): no new recording starts{}",
                        if level >= 2 { "overloaded" } else { "strained" },
                        state.metrics.intake_delay_ms.get(),
                        if level >= 2 { ", conferences are ended, newest first" } else { "" }
                    ));
                }
            }
            let deaf = state.metrics.conferences_deaf.get();
            if deaf > 0 {
                r.reasons.push(format!(
                    "{deaf} conference(s) recording without a working media session (silence, listed as a gap; see /conferences)"
                ));
            }
            // The disk does not keep up: audio waits in memory, and past its bound is lost.
            let behind = state.metrics.recordings_write_behind.get();
            if behind > 0 {
                r.ready = false;
                r.reasons.push(format!(
                    "{behind} recording(s) far behind writing to disk ({:.1} s of audio waiting; a slow or stalled disk)",
                    state.metrics.write_backlog_micros.get() as f64 / 1e6
                ));
            }
            Response::json(if r.ready { 200 } else { 503 }, &r)
        }
        Route::Metrics => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: state.metrics.render(),
        },
        Route::List => {
            let (tx, rx) = oneshot::channel();
            if state
                .control
                .send(Control::List { reply: tx })
                .await
                .is_err()
            {
                return Response::text(503, "shutting down\n");
            }
            match tokio::time::timeout(Duration::from_secs(5), rx).await {
                Ok(Ok(list)) => Response::json(200, &list),
                _ => Response::text(503, "no answer from the conferences\n"),
            }
        }
        Route::Record(room) => control(state, room.clone(), true).await,
        Route::Stop(room) => control(state, room.clone(), false).await,
        Route::Unauthorized => Response::text(401, "unauthorized\n"),
        Route::NotFound => Response::text(404, "not found\n"),
        Route::MethodNotAllowed => Response::text(405, "method not allowed\n"),
        Route::BadRoom(raw) => Response::text(
            400,
            &format!("`{raw}` is not a room on a configured MUC domain (room@muc.domain)\n"),
        ),
    }
}

async fn control(state: &HttpState, room: String, record: bool) -> Response {
    let limit = Duration::from_secs(5);
    let done = if record {
        let (tx, rx) = oneshot::channel();
        let msg = Control::Record {
            room: room.clone(),
            reply: Some(tx),
        };
        if state.control.send(msg).await.is_err() {
            return Response::text(503, "shutting down\n");
        }
        tokio::time::timeout(limit, rx)
            .await
            .map(|r| r.map(Answer::Record))
    } else {
        let (tx, rx) = oneshot::channel();
        let msg = Control::Stop {
            room: room.clone(),
            reply: Some(tx),
        };
        if state.control.send(msg).await.is_err() {
            return Response::text(503, "shutting down\n");
        }
        tokio::time::timeout(limit, rx)
            .await
            .map(|r| r.map(Answer::Stop))
    };
    let body = |status: &str| serde_json::json!({ "room": room, "status": status });
    match done {
        Ok(Ok(Answer::Record(RecordOutcome::Started))) => Response::json(202, &body("recording")),
        Ok(Ok(Answer::Record(RecordOutcome::AlreadyRecording))) => {
            Response::json(200, &body("already recording"))
        }
        Ok(Ok(Answer::Record(RecordOutcome::Refused(why)))) => Response::json(
            503,
            &serde_json::json!({ "room": room, "status": "refused", "reason": why }),
        ),
        Ok(Ok(Answer::Stop(true))) => Response::json(202, &body("stopping")),
        Ok(Ok(Answer::Stop(false))) => Response::json(404, &body("not recording")),
        _ => Response::text(503, "no answer\n"),
    }
}

/// What the router answered to a record or stop request.
enum Answer {
    Record(RecordOutcome),
    Stop(bool),
}

#[cfg(test)]
mod tests;
