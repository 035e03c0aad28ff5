//! The Jingle session half of the conference machine: which session is current, which
//! remote sources it has, and how to answer every Jingle IQ.
//!
//! In: parsed Jingle requests (with the IQ they came in), media readiness and failure, and
//! the instant. Out: [`Effect`]s the machine turns into actions — replies, session-accept,
//! restart requests, media start/stop and source-set changes. A new session (re-invite, new
//! sid) replaces the old one; the recording itself never depends on a session existing.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use minidom::Element;

use crate::jingle::model::{
    AudioOffer, BridgeSession, IceTransport, Reason, RtpDescription, Source,
};
use crate::jingle::{Action as JAction, Header as JingleHeader, Jingle};
use crate::types::Ssrc;

/// What a session event asks the machine to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a Jingle IQ set (the `<jingle/>` payload) to the focus; the machine wraps it.
    SendToFocus(Element),
    /// Send a Jingle IQ set to another occupant (declining P2P).
    SendTo {
        nick: String,
        jingle: Element,
    },
    StartMedia {
        sid: String,
        offer: AudioOffer,
        sources: Vec<Source>,
    },
    SourcesChanged,
    StopMedia,
    /// Sources were not taken because the conference holds `max_sources` already.
    SourceLimit {
        refused: usize,
    },
}

/// How a session came to be, which decides how we answer once media is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Initiate,
    Replace,
}

/// The current session, if any.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionState {
    None,
    /// Media is being brought up for this offer; the answer goes out on `media_ready`.
    Starting {
        sid: String,
        origin: Origin,
        initiator: Option<String>,
        bridge: Option<BridgeSession>,
        description: RtpDescription,
    },
    Active {
        sid: String,
        initiator: Option<String>,
        bridge: Option<BridgeSession>,
    },
    /// We asked the focus for a new session (ICE failed); waiting for its session-initiate.
    RestartRequested {
        since: Instant,
    },
}

/// Jicofo's restart rate limit is "at least 5 s apart, at most 5 per minute"; we stay
/// inside it so our requests are never refused as `resource-constraint`.
const RESTART_MIN_GAP: Duration = Duration::from_secs(6);
const RESTART_WINDOW: Duration = Duration::from_secs(60);
const RESTART_MAX_IN_WINDOW: usize = 4;
/// If the requested session never comes, ask again after this long.
pub const RESTART_RETRY: Duration = Duration::from_secs(15);

/// Remembered ended sids, so late stanzas for them are acked instead of refused.
const RECENT_SIDS: usize = 8;

#[derive(Debug)]
pub struct Sessions {
    pub state: SessionState,
    sources: BTreeMap<Ssrc, Source>,
    recent: VecDeque<String>,
    restarts: VecDeque<Instant>,
    max_sources: usize,
}

/// Reply to a Jingle request: `Ok` = empty result, `Err((condition, text))` = IQ error.
pub type Reply = Result<(), (&'static str, String)>;

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(1000)
    }
}

impl Sessions {
    /// No session yet; at most `max_sources` remote sources are taken.
    pub fn new(max_sources: usize) -> Self {
        Sessions {
            state: SessionState::None,
            sources: BTreeMap::new(),
            recent: VecDeque::new(),
            restarts: VecDeque::new(),
            max_sources,
        }
    }

    /// The current session's sid (starting or active).
    pub fn sid(&self) -> Option<&str> {
        match &self.state {
            SessionState::Starting { sid, .. } | SessionState::Active { sid, .. } => Some(sid),
            _ => None,
        }
    }

    /// Remote media sources of the current session (the bridge's own excluded).
    pub fn sources(&self) -> Vec<Source> {
        self.sources.values().cloned().collect()
    }

    fn end_current(&mut self, fx: &mut Vec<Effect>) {
        if let Some(sid) = self.sid() {
            let sid = sid.to_string();
            self.recent.push_back(sid);
            if self.recent.len() > RECENT_SIDS {
                self.recent.pop_front();
            }
            fx.push(Effect::StopMedia);
        }
        self.state = SessionState::None;
        if !self.sources.is_empty() {
            self.sources.clear();
            fx.push(Effect::SourcesChanged);
        }
    }

    /// Take the offer's sources, up to the limit; returns how many did not fit.
    fn set_sources(&mut self, sources: &[Source]) -> usize {
        self.sources.clear();
        self.add_sources(sources)
    }

    /// Add media sources (see [`Jingle::media_sources`]) up to the limit; returns how many did
    /// not fit.
    fn add_sources(&mut self, sources: &[Source]) -> usize {
        let mut refused = 0;
        for s in sources {
            if self.sources.len() < self.max_sources || self.sources.contains_key(&s.ssrc) {
                self.sources.insert(s.ssrc, s.clone());
            } else {
                refused += 1;
            }
        }
        refused
    }

    /// A Jingle request from the focus.
    pub fn on_focus_jingle(&mut self, j: Jingle, fx: &mut Vec<Effect>) -> Reply {
        let current = self.sid() == Some(j.sid.as_str());
        // The bridge's own, synthetic (translation) and repair sources never carry media of
        // their own: they get no m-line and do not count against `max_sources`.
        let media: Vec<Source> = j.media_sources().cloned().collect();
        if media.len() < j.sources.len() {
            tracing::debug!(
                action = %j.action,
                ignored = j.sources.len() - media.len(),
                "signalled sources without media of their own ignored"
            );
        }
        match j.action {
            JAction::SessionInitiate | JAction::TransportReplace => {
                let replace = j.action == JAction::TransportReplace;
                if replace && !current {
                    return Err(("item-not-found", format!("unknown session {}", j.sid)));
                }
                let Some(offer) = j.audio else {
                    return Err(("bad-request", "offer without audio content".into()));
                };
                self.end_current(fx);
                let refused = self.set_sources(&media);
                if refused > 0 {
                    // The session itself is accepted: refusing it would lose every source.
                    fx.push(Effect::SourceLimit { refused });
                }
                self.state = SessionState::Starting {
                    sid: j.sid.clone(),
                    origin: if replace {
                        Origin::Replace
                    } else {
                        Origin::Initiate
                    },
                    initiator: j.initiator,
                    bridge: j.bridge_session,
                    // The parser refuses offers without Opus, so this always has it.
                    description: crate::jingle::answer_description(&offer.description)
                        .unwrap_or_default(),
                };
                fx.push(Effect::StartMedia {
                    sid: j.sid,
                    offer,
                    sources: self.sources(),
                });
                fx.push(Effect::SourcesChanged);
                Ok(())
            }
            JAction::SourceAdd | JAction::SourceRemove => {
                if !current {
                    return Err(("item-not-found", format!("unknown session {}", j.sid)));
                }
                let before = self.sources.len();
                let mut refused = 0;
                if j.action == JAction::SourceAdd {
                    refused = self.add_sources(&media);
                } else {
                    for s in &j.sources {
                        self.sources.remove(&s.ssrc);
                    }
                }
                if self.sources.len() != before || j.action == JAction::SourceAdd {
                    fx.push(Effect::SourcesChanged);
                }
                if refused > 0 {
                    fx.push(Effect::SourceLimit { refused });
                    return Err((
                        "resource-constraint",
                        format!(
                            "{refused} sources not taken: this conference records at most {} (limits.max_sources)",
                            self.max_sources
                        ),
                    ));
                }
                Ok(())
            }
            JAction::SessionTerminate => {
                if current {
                    self.end_current(fx);
                    Ok(())
                } else if self.recent.contains(&j.sid) {
                    Ok(())
                } else {
                    Err(("item-not-found", format!("unknown session {}", j.sid)))
                }
            }
            JAction::TransportInfo | JAction::SessionInfo => {
                if current || self.recent.contains(&j.sid) {
                    Ok(())
                } else {
                    Err(("item-not-found", format!("unknown session {}", j.sid)))
                }
            }
            other => Err((
                "feature-not-implemented",
                format!("jitape does not handle {other:?} from the focus"),
            )),
        }
    }

    /// A Jingle request from another occupant: a browser offering P2P. Acked, then declined.
    /// Only the envelope is read: a browser's offer need not parse as a Jicofo one.
    pub fn on_peer_jingle(&mut self, nick: &str, j: &JingleHeader, fx: &mut Vec<Effect>) -> Reply {
        match j.action {
            JAction::SessionInitiate => {
                fx.push(Effect::SendTo {
                    nick: nick.to_string(),
                    jingle: crate::jingle::decline(&j.sid, j.initiator.as_deref()),
                });
                Ok(())
            }
            // Anything else for a P2P session we declined (or never had).
            JAction::SessionTerminate | JAction::TransportInfo | JAction::SessionInfo => Ok(()),
            _ => Err(("item-not-found", format!("unknown session {}", j.sid))),
        }
    }

    /// Media for `sid` is up: answer the focus.
    pub fn media_ready(
        &mut self,
        sid: &str,
        local: &IceTransport,
        responder: &str,
        focus: &str,
        fx: &mut Vec<Effect>,
    ) {
        let SessionState::Starting {
            sid: current,
            origin,
            initiator,
            bridge,
            description,
        } = &self.state
        else {
            return;
        };
        if current != sid {
            return;
        }
        // Jicofo matches our answers by sid only; it always names itself as initiator.
        let initiator_or_focus = initiator.as_deref().unwrap_or(focus);
        let payload = match origin {
            Origin::Initiate => crate::jingle::session_accept(
                sid,
                initiator_or_focus,
                responder,
                description,
                local,
            ),
            Origin::Replace => crate::jingle::transport_accept(sid, initiator_or_focus, local),
        };
        fx.push(Effect::SendToFocus(payload));
        self.state = SessionState::Active {
            sid: sid.to_string(),
            initiator: initiator.clone(),
            bridge: bridge.clone(),
        };
    }

    /// The focus refused our session-accept or answered it with an error: the session is
    /// dead on its side.
    /// Returns whether that was the current session (a late refusal of an older one is
    /// moot).
    pub fn accept_refused(&mut self, sid: &str, fx: &mut Vec<Effect>) -> bool {
        let current = self.sid() == Some(sid);
        if current {
            self.end_current(fx);
        }
        current
    }

    /// Media for `sid` failed (ICE/DTLS): ask the focus for a new session, within Jicofo's
    /// rate limit. Returns false when the limit says wait (the caller retries on a timer).
    pub fn media_failed(&mut self, sid: &str, now: Instant, fx: &mut Vec<Effect>) -> bool {
        let (initiator, bridge) = match &self.state {
            SessionState::Active {
                sid: s,
                initiator,
                bridge,
            }
            | SessionState::Starting {
                sid: s,
                initiator,
                bridge,
                ..
            } if s == sid => (initiator.clone(), bridge.clone()),
            _ => return true,
        };
        if !self.restart_allowed(now) {
            return false;
        }
        self.restarts.push_back(now);
        let reason = Reason {
            condition: "connectivity-error".into(),
            text: Some("ICE FAILED".into()),
        };
        let restart = bridge.map(|b| BridgeSession {
            restart: true,
            ice_restart: false,
            ..b
        });
        fx.push(Effect::SendToFocus(crate::jingle::session_terminate(
            sid,
            initiator.as_deref(),
            &reason,
            restart.as_ref(),
        )));
        self.end_current(fx);
        self.state = SessionState::RestartRequested { since: now };
        true
    }

    /// Whether a restart request may be sent now.
    pub fn restart_allowed(&mut self, now: Instant) -> bool {
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        let gap_ok = self
            .restarts
            .back()
            .is_none_or(|t| now.duration_since(*t) >= RESTART_MIN_GAP);
        gap_ok && self.restarts.len() < RESTART_MAX_IN_WINDOW
    }

    /// When the rate limit next allows a restart request.
    pub fn next_restart_slot(&self, now: Instant) -> Instant {
        let gap = self.restarts.back().map(|t| *t + RESTART_MIN_GAP);
        let window = if self.restarts.len() >= RESTART_MAX_IN_WINDOW {
            self.restarts.front().map(|t| *t + RESTART_WINDOW)
        } else {
            None
        };
        [gap, window]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now)
            .max(now)
    }

    /// The owner left the room: Jicofo sends no source-remove, so drop their sources here.
    pub fn owner_left(&mut self, owner: &str, fx: &mut Vec<Effect>) {
        let before = self.sources.len();
        self.sources.retain(|_, s| s.owner != owner);
        if self.sources.len() != before {
            fx.push(Effect::SourcesChanged);
        }
    }

    /// The focus left, or our occupancy ended: the session is gone with it.
    pub fn drop_session(&mut self, fx: &mut Vec<Effect>) {
        self.end_current(fx);
    }
}
