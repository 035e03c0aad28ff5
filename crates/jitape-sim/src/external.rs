//! A bridge that is another program: the simulated focus drives an external process (started
//! here, loopback only, killed when dropped) that plays the videobridge's media side on a
//! WebRTC stack other than webrtc-rs, so bugs shared by jitape and the simulated bridge show.
//!
//! In: an [`ExternalBridgeSpec`] (the command), the speakers' scripts, jitape's transport and
//! the conference epoch. Out: what Jicofo would put in a session-initiate (the same
//! [`AudioOffer`] and [`Source`]s as [`super::bridge::SimBridge`] gives), and at the end a
//! [`SentLog`] of what the process sent, with the facts it reported about its side (negotiated
//! SRTP profile, cipher suite, roles) and any error it hit.
//!
//! The protocol: one JSON object per line. To the process, on stdin:
//! `{"op":"allocate","max_speakers":n,"speakers":[S…]}`, then `{"op":"accept","ufrag","pwd",
//! "fingerprint":{"hash","value","setup":"active"},"candidates":[{"foundation","priority",
//! "ip","port"}]}`, `{"op":"start","epoch_unix":secs}`, `{"op":"add","speaker":S}`,
//! `{"op":"remove","endpoint"}` and `{"op":"close"}`, where S is `{"endpoint","ssrc",
//! "windows":[[start,end]…] (seconds after the epoch),"frames":[base64 Opus…],"levels":[dBov…]}`.
//! From the process, on stdout: `{"event":"offer","ufrag","pwd","fingerprint":{"hash","value"},
//! "candidates":[{"foundation","component","priority","ip","port"}]}` after allocate,
//! `{"event":"connected"}`, `{"event":"fact","key","value"}`, `{"event":"log","message"}`,
//! `{"event":"error","message"}`, and `{"event":"closed","sent":{"speakers":[{"endpoint",
//! "ssrc","windows":[{"start","end","first_unix","last_unix","first_seq","last_seq",
//! "packets"}]}],"skipped_ticks"}}` in answer to close. Its stderr goes to the log.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

pub use super::bridge::ExternalBridgeSpec;
use super::bridge::{BridgeError, SentLog, SentSpeaker, SentWindow, SpeakerScript, TalkWindow};
use jitape::jingle::model::{
    AudioOffer, BRIDGE_OWNER, Candidate, CandidateType, Fingerprint, IceTransport, Protocol, Setup,
    Source,
};

/// How long the process may take to answer `allocate` (a JVM or Python start included).
const ALLOCATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to report what it sent after `close`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct OfferFingerprint {
    hash: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct OfferCandidate {
    foundation: String,
    #[serde(default = "one")]
    component: u8,
    priority: u32,
    ip: std::net::IpAddr,
    port: u16,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Deserialize)]
struct Offer {
    ufrag: String,
    pwd: String,
    fingerprint: OfferFingerprint,
    candidates: Vec<OfferCandidate>,
}

#[derive(Debug, Deserialize)]
struct SentWindowMsg {
    start: f64,
    end: f64,
    first_unix: f64,
    last_unix: f64,
    first_seq: u16,
    last_seq: u16,
    packets: u32,
}

#[derive(Debug, Deserialize)]
struct SentSpeakerMsg {
    endpoint: String,
    ssrc: u32,
    windows: Vec<SentWindowMsg>,
}

#[derive(Debug, Default, Deserialize)]
struct SentMsg {
    speakers: Vec<SentSpeakerMsg>,
    #[serde(default)]
    skipped_ticks: u64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Offer(Offer),
    Connected,
    Fact { key: String, value: String },
    Log { message: String },
    Error { message: String },
    Closed { sent: SentMsg },
}

/// What the stdout reader shares with the handle.
#[derive(Default)]
struct Reports {
    facts: Vec<(String, String)>,
    offer: Option<oneshot::Sender<Offer>>,
    closed: Option<oneshot::Sender<SentMsg>>,
}

/// A running external bridge process.
pub struct ExternalBridge {
    child: Child,
    to_process: mpsc::UnboundedSender<Value>,
    reports: Arc<Mutex<Reports>>,
    connected: watch::Receiver<bool>,
    closed: Option<oneshot::Receiver<SentMsg>>,
    rng: StdRng,
    used: HashSet<u32>,
    wall_epoch: Option<SystemTime>,
    accepted: bool,
    /// Killed on purpose ([`ExternalBridge::fail`]): no report is expected.
    failed: bool,
}

impl ExternalBridge {
    /// Starts the process and has it allocate: returns the offer and sources to signal.
    pub async fn allocate(
        spec: &ExternalBridgeSpec,
        max_speakers: usize,
        seed: u64,
        speakers: Vec<SpeakerScript>,
    ) -> Result<(ExternalBridge, AudioOffer, Vec<Source>), BridgeError> {
        let mut child = Command::new(&spec.program)
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                BridgeError::External(format!("cannot start {}: {e}", spec.program.display()))
            })?;
        let missing = || BridgeError::External("the process has no stdio pipes".into());
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;
        let (offer_tx, offer_rx) = oneshot::channel();
        let (closed_tx, closed_rx) = oneshot::channel();
        let reports = Arc::new(Mutex::new(Reports {
            facts: Vec::new(),
            offer: Some(offer_tx),
            closed: Some(closed_tx),
        }));
        let (connected_tx, connected) = watch::channel(false);
        let (to_process, outbox) = mpsc::unbounded_channel();
        tokio::spawn(write_lines(stdin, outbox));
        tokio::spawn(read_events(stdout, Arc::clone(&reports), connected_tx));
        tokio::spawn(log_stderr(stderr));
        let mut bridge = ExternalBridge {
            child,
            to_process,
            reports,
            connected,
            closed: Some(closed_rx),
            rng: StdRng::seed_from_u64(seed),
            used: HashSet::new(),
            wall_epoch: None,
            accepted: false,
            failed: false,
        };
        let mut sources = vec![Source {
            ssrc: jitape::types::Ssrc(bridge.fresh_ssrc()),
            name: Some("jvb-a0".into()),
            owner: BRIDGE_OWNER.into(),
            msid: None,
        }];
        let mut specs = Vec::new();
        for script in &speakers {
            let (source, spec) = bridge.speaker(script);
            sources.push(source);
            specs.push(spec);
        }
        bridge.send(json!({"op": "allocate", "max_speakers": max_speakers, "speakers": specs}));
        let offer = tokio::time::timeout(ALLOCATE_TIMEOUT, offer_rx)
            .await
            .map_err(|_| BridgeError::Timeout("the external bridge's offer"))?
            .map_err(|_| BridgeError::External(bridge.failure("exited before its offer")))?;
        let offer = AudioOffer {
            content_name: "audio".into(),
            // The other stack sends plain Opus (pt 111) with the audio level at id 1.
            description: super::bridge::jicofo_description(&super::bridge::Wire::default()),
            transport: transport_of(offer),
        };
        info!(speakers = speakers.len(), "external bridge allocated");
        Ok((bridge, offer, sources))
    }

    fn fresh_ssrc(&mut self) -> u32 {
        loop {
            let ssrc = self.rng.random_range(1..u32::MAX);
            if self.used.insert(ssrc) {
                return ssrc;
            }
        }
    }

    /// The source to signal for a speaker and the speaker's description for the process.
    fn speaker(&mut self, script: &SpeakerScript) -> (Source, Value) {
        let ssrc = self.fresh_ssrc();
        let b64 = base64::engine::general_purpose::STANDARD;
        let voice = &script.voice;
        // The process loops `frames[i % n]`; frame 0 is the voice's spurt onset (a fresh
        // encoder's), so `n` covers the longest talk window and the loop never wraps back to it
        // inside a window.
        let longest = script
            .windows
            .iter()
            .map(|w| w.end.saturating_sub(w.start).as_millis() / 20 + 1)
            .max()
            .unwrap_or(0);
        let n = voice
            .len()
            .max(usize::try_from(longest).unwrap_or(usize::MAX));
        let frames: Vec<String> = (0..n).map(|i| b64.encode(&voice.frame(i).opus)).collect();
        let levels: Vec<u8> = (0..n).map(|i| voice.frame(i).level).collect();
        let windows: Vec<[f64; 2]> = script
            .windows
            .iter()
            .map(|w| [w.start.as_secs_f64(), w.end.as_secs_f64()])
            .collect();
        let source = Source {
            ssrc: jitape::types::Ssrc(ssrc),
            name: Some(format!("{}-a0", script.endpoint)),
            owner: script.endpoint.clone(),
            msid: Some(format!("{0}-audio-0-1 {0}-track", script.endpoint)),
        };
        let spec = json!({"endpoint": script.endpoint, "ssrc": ssrc, "windows": windows,
            "frames": frames, "levels": levels});
        (source, spec)
    }

    fn send(&self, message: Value) {
        let _ = self.to_process.send(message);
    }

    /// Why the process stopped talking: its exit status if it has one.
    fn failure(&mut self, what: &str) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!("the external bridge {what} ({status})"),
            _ => format!("the external bridge {what}"),
        }
    }

    /// Hands the process jitape's transport (from session-accept).
    pub fn accept(&mut self, answer: &IceTransport) -> Result<(), BridgeError> {
        let fp = answer
            .fingerprints
            .first()
            .ok_or_else(|| BridgeError::InvalidAnswer("no fingerprint".into()))?;
        let setup = match fp.setup {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::Actpass | Setup::Holdconn => {
                return Err(BridgeError::InvalidAnswer(
                    "setup must be active or passive".into(),
                ));
            }
        };
        let candidates: Vec<Value> = answer
            .candidates
            .iter()
            .filter(|c| c.protocol == Protocol::Udp && c.component == 1)
            .map(|c| {
                let foundation: String = c
                    .foundation
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect();
                json!({"foundation": foundation, "priority": c.priority,
                    "ip": c.ip.to_string(), "port": c.port})
            })
            .collect();
        self.send(
            json!({"op": "accept", "ufrag": answer.ufrag, "pwd": answer.pwd,
            "fingerprint": {"hash": fp.hash, "value": fp.value, "setup": setup},
            "candidates": candidates}),
        );
        self.accepted = true;
        Ok(())
    }

    /// Starts sending; talk windows are relative to `epoch`.
    pub fn start(&mut self, epoch: Instant) -> Result<(), BridgeError> {
        if !self.accepted {
            return Err(BridgeError::State("accepted"));
        }
        let (now, wall_now) = (Instant::now(), SystemTime::now());
        let wall_epoch = if epoch >= now {
            wall_now + (epoch - now)
        } else {
            wall_now - (now - epoch)
        };
        let unix = wall_epoch
            .duration_since(UNIX_EPOCH)
            .map_err(|_| BridgeError::State("after 1970"))?;
        self.wall_epoch = Some(wall_epoch);
        self.send(json!({"op": "start", "epoch_unix": unix.as_secs_f64()}));
        Ok(())
    }

    /// Announces a speaker (a source-add): returns the source to signal.
    pub fn add_speaker(&mut self, script: SpeakerScript) -> Result<Source, BridgeError> {
        let (source, spec) = self.speaker(&script);
        self.send(json!({"op": "add", "speaker": spec}));
        Ok(source)
    }

    /// A speaker leaves: their stream stops.
    pub fn remove_speaker(&mut self, endpoint: &str) {
        self.send(json!({"op": "remove", "endpoint": endpoint}));
    }

    /// Waits until the process reports its connection up.
    pub async fn connected(&mut self, timeout: Duration) -> Result<(), BridgeError> {
        tokio::time::timeout(timeout, self.connected.wait_for(|c| *c))
            .await
            .map_err(|_| BridgeError::Timeout("the external bridge's connection"))?
            .map_err(|_| BridgeError::State("connected"))?;
        Ok(())
    }

    /// The facts the process reported so far (`("error", …)` for each error it hit).
    pub fn facts(&self) -> Vec<(String, String)> {
        self.reports
            .lock()
            .map(|r| r.facts.clone())
            .unwrap_or_default()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The bridge drops dead: the process is killed (no DTLS alert, no more STUN).
    pub async fn fail(&mut self) {
        self.failed = true;
        let _ = self.child.kill().await;
    }

    /// Asks the process to stop, waits for its report and its exit; returns what it sent.
    pub async fn close(mut self) -> SentLog {
        self.send(json!({"op": "close"}));
        let sent = match self.closed.take() {
            Some(rx) => match tokio::time::timeout(CLOSE_TIMEOUT, rx).await {
                Ok(Ok(sent)) => sent,
                _ if self.failed => SentMsg::default(),
                _ => {
                    let why = self.failure("did not report what it sent");
                    warn!("{why}");
                    self.note("error", why);
                    SentMsg::default()
                }
            },
            None => SentMsg::default(),
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        self.sent_log(sent)
    }

    fn note(&self, key: &str, value: String) {
        if let Ok(mut r) = self.reports.lock() {
            r.facts.push((key.into(), value));
        }
    }

    fn sent_log(&self, sent: SentMsg) -> SentLog {
        let at = |unix: f64| UNIX_EPOCH + Duration::try_from_secs_f64(unix).unwrap_or_default();
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or_default();
        SentLog {
            epoch: self.wall_epoch,
            speakers: sent
                .speakers
                .into_iter()
                .map(|s| SentSpeaker {
                    endpoint: s.endpoint,
                    ssrc: s.ssrc,
                    // The process draws its own; its wire is not observed.
                    ts_base: 0,
                    wire: None,
                    skipped: Vec::new(),
                    windows: s
                        .windows
                        .into_iter()
                        .map(|w| {
                            // The other stack sends every frame of a window on the 20 ms grid
                            // from its start (it reports no ticks of its own).
                            let first_tick = (w.start / 0.020).round() as u64;
                            SentWindow {
                                window: TalkWindow {
                                    start: secs(w.start),
                                    end: secs(w.end),
                                },
                                first: at(w.first_unix),
                                last: at(w.last_unix),
                                first_seq: w.first_seq,
                                last_seq: w.last_seq,
                                packets: w.packets,
                                first_tick,
                                last_tick: first_tick + u64::from(w.packets.max(1)) - 1,
                            }
                        })
                        .collect(),
                })
                .collect(),
            skipped_ticks: sent.skipped_ticks,
            facts: self.facts(),
        }
    }
}

/// The transport Jicofo would signal for the process's offer (`actpass`, UDP host candidates).
fn transport_of(offer: Offer) -> IceTransport {
    IceTransport {
        ufrag: offer.ufrag,
        pwd: offer.pwd,
        fingerprints: vec![Fingerprint {
            hash: offer.fingerprint.hash,
            setup: Setup::Actpass,
            value: offer.fingerprint.value,
        }],
        candidates: offer
            .candidates
            .into_iter()
            .filter(|c| c.component == 1)
            .map(|c| Candidate {
                component: 1,
                foundation: c.foundation,
                generation: 0,
                id: None,
                ip: c.ip,
                port: c.port,
                priority: c.priority,
                protocol: Protocol::Udp,
                kind: CandidateType::Host,
                rel_addr: None,
                rel_port: None,
                network: Some(0),
            })
            .collect(),
        rtcp_mux: true,
        web_socket: None,
        ice_generation: None,
    }
}

async fn write_lines(mut stdin: ChildStdin, mut outbox: mpsc::UnboundedReceiver<Value>) {
    while let Some(message) = outbox.recv().await {
        let mut line = message.to_string();
        line.push('\n');
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

async fn read_events(
    stdout: tokio::process::ChildStdout,
    reports: Arc<Mutex<Reports>>,
    connected: watch::Sender<bool>,
) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let event = match serde_json::from_str::<Event>(&line) {
            Ok(e) => e,
            Err(e) => {
                warn!(%line, error = %e, "external bridge: unreadable line");
                continue;
            }
        };
        let Ok(mut r) = reports.lock() else { return };
        match event {
            Event::Offer(offer) => {
                if let Some(tx) = r.offer.take() {
                    let _ = tx.send(offer);
                }
            }
            Event::Connected => {
                info!("external bridge connected");
                connected.send_replace(true);
            }
            Event::Fact { key, value } => {
                info!(%key, %value, "external bridge reports");
                r.facts.push((key, value));
            }
            Event::Log { message } => info!("external bridge: {message}"),
            Event::Error { message } => {
                warn!("external bridge error: {message}");
                r.facts.push(("error".into(), message));
            }
            Event::Closed { sent } => {
                if let Some(tx) = r.closed.take() {
                    let _ = tx.send(sent);
                }
            }
        }
    }
    // The process is gone: whoever waits for its offer or report learns it now.
    if let Ok(mut r) = reports.lock() {
        r.offer = None;
        r.closed = None;
    }
}

async fn log_stderr(stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        info!("external bridge stderr: {line}");
    }
}

#[cfg(test)]
mod tests;
