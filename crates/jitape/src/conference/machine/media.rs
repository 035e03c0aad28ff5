//! The Jingle half seen from the room: IQs to and from the focus, what their answers mean,
//! and getting a new session when one fails or never comes.

use std::time::{Duration, Instant};

use minidom::Element;
use tracing::{debug, info, warn};

use super::state::State;
use super::{Action, MAX_PENDING, Machine, MediaProblem, Pending, Timer};
use crate::conference::session::{Effect, RESTART_RETRY, SessionState};
use crate::xmpp::stanza::{self, Header};

impl Machine {
    pub(super) fn on_iq_request(
        &mut self,
        now: Instant,
        h: &Header,
        el: &Element,
        out: &mut Vec<Action>,
    ) {
        let Some(payload) = stanza::payload(el) else {
            out.push(Action::Send(stanza::iq_error(el, "bad-request", None)));
            return;
        };
        let from_nick = h.from.as_ref().and_then(|f| f.resource.clone());
        if payload.is("jingle", crate::jingle::ns::JINGLE) {
            let Some(nick) = from_nick else {
                out.push(Action::Send(stanza::iq_error(el, "bad-request", None)));
                return;
            };
            return self.on_jingle(now, &nick, el, payload, out);
        }
        if payload.ns() == "http://jitsi.org/jitmeet/audio" && payload.name() == "mute" {
            // "Mute everyone": we send no audio, nothing to do.
            out.push(Action::Send(stanza::iq_result(el, None)));
            return;
        }
        out.push(Action::Send(stanza::iq_error(
            el,
            "service-unavailable",
            None,
        )));
    }

    pub(super) fn on_jingle(
        &mut self,
        now: Instant,
        nick: &str,
        el: &Element,
        payload: &Element,
        out: &mut Vec<Action>,
    ) {
        let mut fx = Vec::new();
        let reply = if nick == self.s.focus_nick {
            match crate::jingle::parse(payload) {
                Ok(j) => {
                    debug!(room = %self.s.room, action = ?j.action, sid = %j.sid, "jingle from focus");
                    self.sessions.on_focus_jingle(j, &mut fx)
                }
                Err(e) => Err((e.condition(), e.to_string())),
            }
        } else {
            match crate::jingle::parse_header(payload) {
                Ok(h) => self.sessions.on_peer_jingle(nick, &h, &mut fx),
                Err(e) => Err((e.condition(), e.to_string())),
            }
        };
        match reply {
            Ok(()) => out.push(Action::Send(stanza::iq_result(el, None))),
            Err((condition, text)) => {
                crate::util::log_limited(
                    "jingle-refused",
                    format_args!(
                        "room {}: refusing Jingle from {nick}: {condition}: {text}",
                        self.s.room
                    ),
                );
                out.push(Action::Send(stanza::iq_error(el, condition, Some(&text))));
                let offer = matches!(
                    crate::jingle::parse_header(payload).map(|h| h.action),
                    Ok(crate::jingle::Action::SessionInitiate
                        | crate::jingle::Action::TransportReplace)
                );
                if nick == self.s.focus_nick && offer {
                    self.offer_refused(now, &text, out);
                }
            }
        }
        self.apply_effects(now, fx, out);
    }

    /// We could not take the focus's offer. Jicofo expires a participant that answers an
    /// offer with an error and does not invite it again by itself (`ParticipantInviteRunnable`),
    /// so without a session only a rejoin gets a new offer: soon, then less and less often
    /// (the same offer may be refused again). The recording goes on deaf meanwhile, and says
    /// so. A session that still works is kept: if the refusal cost it its bridge, ICE fails
    /// and the usual restart follows.
    pub(super) fn offer_refused(&mut self, now: Instant, why: &str, out: &mut Vec<Action>) {
        out.push(Action::MediaProblem {
            kind: MediaProblem::OfferRefused,
            detail: why.chars().take(200).collect(),
        });
        if self.sessions.sid().is_none() && self.rejoins_for_session == 0 {
            warn!(room = %self.s.room, %why, "the focus's offer was refused; asking for a new session by rejoining");
            self.timers
                .insert(Timer::RestartSession, now + Duration::from_secs(2));
        }
    }

    pub(super) fn on_iq_response(&mut self, now: Instant, h: &Header, out: &mut Vec<Action>) {
        let Some(id) = &h.id else { return };
        let Some(pending) = self.pending.remove(id) else {
            return;
        };
        if !h.is_type("error") {
            return;
        }
        match pending {
            Pending::Accept { sid } => {
                // The session is dead on Jicofo's side ("gone", "bad-request"): drop ours
                // and get a new one the way ICE failures do.
                warn!(room = %self.s.room, %sid, "focus refused our session-accept");
                out.push(Action::MediaProblem {
                    kind: MediaProblem::AcceptRefused,
                    detail: format!("session {sid}"),
                });
                let mut fx = Vec::new();
                if self.sessions.accept_refused(&sid, &mut fx) {
                    self.apply_effects(now, fx, out);
                    self.timers
                        .insert(Timer::RestartSession, now + Duration::from_secs(2));
                }
            }
            Pending::Restart => {
                // Refused (rate limit, stale bridge session): Jicofo removed us as a
                // participant and will not re-invite; only a rejoin brings a new session.
                warn!(room = %self.s.room, "focus refused our restart request; rejoining soon");
                if self.sessions.sid().is_none() {
                    self.timers
                        .insert(Timer::RestartSession, now + Duration::from_secs(2));
                }
            }
            Pending::Other => {}
        }
    }

    pub(super) fn request_restart(&mut self, now: Instant, sid: &str, out: &mut Vec<Action>) {
        let mut fx = Vec::new();
        if !self.sessions.media_failed(sid, now, &mut fx) {
            let at = self.sessions.next_restart_slot(now);
            self.timers.insert(Timer::RestartSession, at);
        } else {
            self.timers
                .insert(Timer::RestartSession, now + RESTART_RETRY);
        }
        self.apply_effects(now, fx, out);
    }

    /// Whether we are waiting for a session we asked for.
    pub fn restart_pending(&self) -> bool {
        matches!(self.sessions.state, SessionState::RestartRequested { .. })
    }

    /// A session we asked for never came: leave and rejoin the room, which makes Jicofo
    /// invite us afresh on every version.
    /// Not rate-limited by Jicofo's restart budget: the rejoined member is a new participant
    /// with a fresh one. Our own timers space these out (seconds apart at least).
    pub(super) fn request_restart_again(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Joined {
            return;
        }
        info!(room = %self.s.room, "no new session yet; rejoining to get a fresh invite");
        // Jicofo invites every member that joins; re-asserting our presence is not a join, so
        // `join` leaves first (the recording continues: only the occupancy blips).
        self.roster.clear(now);
        self.join(now, 1, out);
        // A focus that stays silent (overloaded, restarting) is asked again, less and less
        // often: 30 s, 1, 2, 4 minutes, then every 5 minutes.
        self.rejoins_for_session = self.rejoins_for_session.saturating_add(1);
        let backoff = (RESTART_RETRY * 2u32.pow(self.rejoins_for_session.min(5)))
            .min(Duration::from_secs(300));
        self.timers.insert(Timer::RestartSession, now + backoff);
    }

    pub(super) fn apply_effects(&mut self, now: Instant, fx: Vec<Effect>, out: &mut Vec<Action>) {
        let mut sources_changed = false;
        for e in fx {
            match e {
                Effect::SendToFocus(jingle) => {
                    let id = self.fresh_id();
                    let pending = match (jingle.attr("action"), jingle.attr("sid")) {
                        (Some("session-accept" | "transport-accept"), Some(sid)) => {
                            Pending::Accept {
                                sid: sid.to_string(),
                            }
                        }
                        (Some("session-terminate"), _) => Pending::Restart,
                        _ => Pending::Other,
                    };
                    self.remember_pending(id.clone(), pending);
                    let to = self.focus_jid();
                    out.push(Action::Send(stanza::iq(
                        "set",
                        &self.s.our_jid,
                        &to,
                        &id,
                        jingle,
                    )));
                }
                Effect::SendTo { nick, jingle } => {
                    let id = self.fresh_id();
                    let to = format!("{}/{}", self.s.room, nick);
                    out.push(Action::Send(stanza::iq(
                        "set",
                        &self.s.our_jid,
                        &to,
                        &id,
                        jingle,
                    )));
                }
                Effect::StartMedia {
                    sid,
                    offer,
                    sources,
                } => {
                    self.timers.remove(&Timer::RestartSession);
                    self.rejoins_for_session = 0;
                    out.push(Action::StartMedia {
                        sid,
                        offer,
                        sources,
                    });
                }
                Effect::StopMedia => out.push(Action::StopMedia),
                Effect::SourcesChanged => sources_changed = true,
                Effect::SourceLimit { refused } => {
                    crate::util::log_limited(
                        "source-limit",
                        format_args!(
                            "room {}: {refused} sources not recorded: limits.max_sources ({}) reached",
                            self.s.room, self.s.max_sources
                        ),
                    );
                    out.push(Action::SourceLimitHit);
                }
            }
        }
        if sources_changed {
            self.sources_changed(now, out);
        }
    }

    /// Track an IQ we sent; the oldest is forgotten beyond [`MAX_PENDING`] (its answer, if
    /// it ever comes, is then ignored).
    pub(super) fn remember_pending(&mut self, id: String, p: Pending) {
        if self.pending.len() >= MAX_PENDING {
            let oldest = self
                .pending
                .keys()
                .min_by_key(|k| {
                    k.rsplit('-')
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(0)
                })
                .cloned();
            if let Some(k) = oldest {
                self.pending.remove(&k);
            }
        }
        self.pending.insert(id, p);
    }

    /// Recompute the media source set and the SSRC → track mapping, emitting what changed;
    /// `now`, when the change became known, is where a removed source's audio ends.
    pub(super) fn sources_changed(&mut self, now: Instant, out: &mut Vec<Action>) {
        let sources = self.sessions.sources();
        let mut tracks = Vec::new();
        for s in &sources {
            let p = self.roster.track_for_owner(&s.owner);
            if !p.identity.hidden_from_recorder {
                tracks.push((s.ssrc, p.track));
            }
        }
        tracks.sort_unstable();
        if self.sessions.sid().is_some() {
            out.push(Action::UpdateSources(sources));
        }
        if tracks != self.tracks {
            self.tracks = tracks.clone();
            out.push(Action::Tracks { tracks, at: now });
        }
    }
}
