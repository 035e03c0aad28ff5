//! What jitape itself said about its load during a benchmark run: `/ready` (and its reasons)
//! and the load, refusal and shedding figures of `/metrics`, polled over jitape's HTTP
//! endpoint on 127.0.0.1.
//!
//! In: jitape's HTTP address (from its log). Out: a [`Health`] summary for the report. A
//! failed poll counts as `unreachable`, never as ready.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// How often `/ready` and `/metrics` are polled.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// A poll that takes longer than this counts as unreachable.
const POLL_LIMIT: Duration = Duration::from_secs(2);

/// jitape's own account of the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Health {
    /// Polls of `/ready`: answered 200, answered 503, not answered in time.
    pub ready: u64,
    pub not_ready: u64,
    pub unreachable: u64,
    /// Every reason `/ready` gave while not ready.
    pub reasons: BTreeSet<String>,
    /// The highest `jitape_load_level` seen (0 normal, 1 strained, 2 overloaded).
    pub max_load_level: f64,
    /// The highest `jitape_intake_delay_ms` seen.
    pub max_intake_delay_ms: f64,
    /// At the end of the run: recordings refused and conferences shed, as counted.
    pub recordings_refused: f64,
    pub conferences_shed: f64,
}

/// The address jitape's HTTP server listens on, from its log (`http server listening
/// addr=…`).
pub fn address_in_log(log: &str) -> Option<SocketAddr> {
    log.lines()
        .filter(|l| l.contains("http server listening"))
        .find_map(|l| {
            l.split("addr=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

/// One GET; the status and the body.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    };
    tokio::time::timeout(POLL_LIMIT, exchange)
        .await
        .ok()
        .flatten()
}

/// The value of an unlabelled sample `name` in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

impl Health {
    fn note_ready(&mut self, answer: Option<(u16, String)>) {
        match answer {
            Some((200, _)) => self.ready += 1,
            Some((_, body)) => {
                self.not_ready += 1;
                let reasons = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("reasons").cloned());
                if let Some(serde_json::Value::Array(rs)) = reasons {
                    self.reasons
                        .extend(rs.iter().filter_map(|r| r.as_str().map(str::to_string)));
                }
            }
            None => self.unreachable += 1,
        }
    }

    fn note_metrics(&mut self, text: &str) {
        let get = |n| metric(text, n).unwrap_or(0.0);
        self.max_load_level = self.max_load_level.max(get("jitape_load_level"));
        self.max_intake_delay_ms = self.max_intake_delay_ms.max(get("jitape_intake_delay_ms"));
        // Counters only grow; a missing line is not a reset.
        self.recordings_refused = self
            .recordings_refused
            .max(get("jitape_recordings_refused_total"));
        self.conferences_shed = self
            .conferences_shed
            .max(get("jitape_conferences_shed_total"));
    }
}

/// Poll until `stop`, then once more; the summary.
pub async fn watch(addr: SocketAddr, mut stop: watch::Receiver<bool>) -> Health {
    let mut h = Health::default();
    let mut tick = tokio::time::interval(POLL_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        h.note_ready(get(addr, "/ready").await);
        if let Some((200, text)) = get(addr, "/metrics").await {
            h.note_metrics(&text);
        }
        if stopping {
            return h;
        }
    }
}

#[cfg(test)]
mod tests;
