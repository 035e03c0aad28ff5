//! The room lifecycle state machine: joining, being an occupant, following the roster and
//! the Jingle session, and deciding when the recording ends.
//!
//! Pure: `handle(now, input)` returns [`Action`]s; `next_deadline()` names the soonest timer.
//! The task in `task.rs` does the I/O (sending stanzas, media, audio, files). Nothing here
//! blocks, sleeps or panics on network input.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use minidom::Element;
use tracing::{debug, info, warn};

use super::roster::{Classifier, Roster};
use super::session::Sessions;
use crate::audio::TrackId;
use crate::jingle::model::Source;
use crate::sink::GapKind;
use crate::types::Ssrc;
use crate::xmpp::muc;
use crate::xmpp::stanza::{Header, Jid, Kind, NS_COMPONENT};

mod interface;
mod media;
mod occupancy;
mod state;

pub use interface::{Action, EndReason, Input, MediaProblem, Occupancy, RoomView, Settings, Timer};
use state::{Out, State};

/// Outstanding IQs we sent and what their answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Accept {
        sid: String,
    },
    /// Our request for a new session (session-terminate with restart).
    Restart,
    Other,
}

pub struct Machine {
    s: Settings,
    state: State,
    /// What the router last said of the room from outside it (nothing while the link is
    /// down): whether it lives (or we were invited), so that we may join, and who is in it
    /// where the Prosody module reports that.
    view: RoomView,
    roster: Roster,
    sessions: Sessions,
    timers: BTreeMap<Timer, Instant>,
    pending: HashMap<String, Pending>,
    next_id: u64,
    tracks: Vec<(Ssrc, TrackId)>,
    /// Rejoins made to get a session the focus never sent (reset when one comes).
    rejoins_for_session: u32,
}

/// Our IQs awaiting an answer, at most: a focus that never answers must not grow the map.
const MAX_PENDING: usize = 64;

impl Machine {
    /// A machine for a room we decided to record. Call `handle(now, Input::LinkUp)` when
    /// the link is up to send the join.
    pub fn new(s: Settings) -> Self {
        let our_domain = Jid::parse(&s.our_jid)
            .map(|j| j.domain().to_string())
            .unwrap_or_default();
        let roster = Roster::with_limits(
            Classifier {
                our_nick: s.nick.clone(),
                our_domain,
                focus_nick: s.focus_nick.clone(),
                service_domains: s.service_domains.clone(),
            },
            s.roster_limits,
        );
        Machine {
            state: State::Offline(Out::default()),
            view: RoomView::default(),
            roster,
            sessions: Sessions::new(s.max_sources),
            rejoins_for_session: 0,
            timers: BTreeMap::new(),
            pending: HashMap::new(),
            next_id: 0,
            tracks: Vec::new(),
            s,
        }
    }

    pub fn room(&self) -> &str {
        &self.s.room
    }
    pub fn nick(&self) -> &str {
        &self.s.nick
    }
    pub fn roster(&self) -> &Roster {
        &self.roster
    }
    pub fn is_joined(&self) -> bool {
        self.state == State::Joined
    }
    pub fn session_sid(&self) -> Option<&str> {
        self.sessions.sid()
    }

    /// Remote sources of the current session.
    pub fn sources(&self) -> Vec<Source> {
        self.sessions.sources()
    }

    /// The soonest timer.
    pub fn next_deadline(&self) -> Option<(Instant, Timer)> {
        self.timers.iter().map(|(t, at)| (*at, *t)).min()
    }

    fn focus_jid(&self) -> String {
        format!("{}/{}", self.s.room, self.s.focus_nick)
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("jitape-{}", self.next_id)
    }

    /// Handle one input at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if !matches!(input, Input::Stanza(_) | Input::Tick) {
            debug!(room = %self.s.room, ?input, state = ?self.state, alive = self.view.alive, "conference input");
        }
        if self.state == State::Ended {
            return out;
        }
        match input {
            Input::LinkUp => self.on_link_up(now, &mut out),
            Input::LinkDown => self.on_link_down(now),
            Input::RoomStatus(view) => self.on_room_view(now, view, &mut out),
            Input::RoomDestroyed { occupied } => self.on_room_destroyed(now, occupied, &mut out),
            Input::RecordingStarted { elapsed } => {
                let left = self.s.max_duration.saturating_sub(elapsed);
                self.timers.insert(Timer::MaxDuration, now + left);
            }
            Input::Stanza(el) => self.on_stanza(now, el, &mut out),
            Input::MediaReady { sid, transport } => {
                let mut fx = Vec::new();
                let focus = self.focus_jid();
                self.sessions
                    .media_ready(&sid, &transport, &self.s.our_jid, &focus, &mut fx);
                self.apply_effects(now, fx, &mut out);
            }
            Input::MediaFailed {
                sid,
                reason,
                silent,
            } => self.on_media_failed(now, sid, reason, silent, &mut out),
            Input::Stop(reason) => self.end(now, reason, &mut out),
            Input::Tick => self.on_timers(now, &mut out),
        }
        if self.state != State::Ended {
            self.update_empty_grace(now);
        }
        out
    }

    fn on_link_up(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let State::Offline(o) = &self.state {
            self.state = State::Waiting(o.clone());
        }
        if self.view.alive {
            self.join(now, 1, out);
        } else {
            self.timers
                .insert(Timer::RoomStatusTimeout, now + self.s.room_status_timeout);
        }
    }

    fn on_link_down(&mut self, now: Instant) {
        let mut out = self.state.out();
        if self.state == State::Joined {
            out = out.interrupt(now, "xmpp link down", GapKind::XmppReconnect);
        }
        self.state = State::Offline(out);
        // What we knew of the room is stale; the router tells us again after the
        // reconnect (or the status timeout lets us rejoin anyway).
        self.view = RoomView::default();
        for t in [
            Timer::JoinTimeout,
            Timer::Rejoin,
            Timer::EmptyGrace,
            Timer::LoneHold,
        ] {
            self.timers.remove(&t);
        }
        self.roster.clear(now);
        self.pending.clear();
    }

    fn on_room_destroyed(&mut self, now: Instant, occupied: bool, out: &mut Vec<Action>) {
        self.view.alive = false;
        if matches!(self.state, State::Away(_)) && !occupied {
            // We left it to empty out, as it would have without us: the recording
            // waits out the grace for people to come back (to a new room).
            info!(room = %self.s.room, "the room was destroyed while we were out; waiting for people to return");
            return;
        }
        if self.state == State::Joined {
            // The destroy presence follows; leaving now is harmless.
            self.state = State::Waiting(self.state.out());
        }
        self.end(now, EndReason::RoomDestroyed, out);
    }

    fn on_media_failed(
        &mut self,
        now: Instant,
        sid: String,
        reason: String,
        silent: bool,
        out: &mut Vec<Action>,
    ) {
        warn!(room = %self.s.room, %sid, %reason, "media session failed; asking the focus for a new session");
        out.push(Action::MediaProblem {
            kind: if silent {
                MediaProblem::NoPackets
            } else {
                MediaProblem::Failed
            },
            detail: reason,
        });
        self.request_restart(now, &sid, out);
    }

    /// Humans present now, as far as we can tell (`None` while the link is down).
    pub fn humans(&self) -> Option<usize> {
        match self.state {
            State::Joined => Some(self.roster.humans()),
            State::Offline(_) => None,
            _ => self.view.occupancy.as_ref().map(|o| o.humans),
        }
    }

    /// Whether we are out of the room on purpose (too few others in it).
    pub fn is_away(&self) -> bool {
        matches!(self.state, State::Away(_))
    }

    /// The empty-grace timer runs exactly while no human is known to be present.
    fn update_empty_grace(&mut self, now: Instant) {
        match self.humans() {
            Some(0) => {
                self.timers
                    .entry(Timer::EmptyGrace)
                    .or_insert(now + self.s.empty_grace);
            }
            Some(_) => {
                self.timers.remove(&Timer::EmptyGrace);
            }
            None => {}
        }
    }

    fn end(&mut self, now: Instant, reason: EndReason, out: &mut Vec<Action>) {
        if self.state.in_room() {
            out.push(Action::Send(muc::leave_presence(
                &self.s.our_jid,
                &self.s.room,
                &self.s.nick,
            )));
        }
        let mut fx = Vec::new();
        self.sessions.drop_session(&mut fx);
        self.apply_effects(now, fx, out);
        self.state = State::Ended;
        self.timers.clear();
        info!(room = %self.s.room, %reason, "recording ends");
        out.push(Action::End(reason));
    }

    fn on_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        let due: Vec<Timer> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in due {
            self.timers.remove(&t);
            match t {
                Timer::JoinTimeout | Timer::Rejoin => {
                    let attempt = match &self.state {
                        State::Joining(j) => j.attempt + 1,
                        _ => 1,
                    };
                    if attempt > self.s.max_join_attempts {
                        self.end(now, EndReason::JoinRefused("timeout".into()), out);
                        return;
                    }
                    debug!(room = %self.s.room, attempt, "(re)joining");
                    self.join(now, attempt, out);
                }
                Timer::EmptyGrace => {
                    info!(room = %self.s.room, grace = ?self.s.empty_grace, "no human present for the whole grace period");
                    self.end(now, EndReason::Empty, out);
                    return;
                }
                Timer::MaxDuration => {
                    info!(room = %self.s.room, "maximum recording duration reached");
                    self.end(now, EndReason::MaxDuration, out);
                    return;
                }
                Timer::LoneHold => {
                    if self.state == State::Joined && self.roster.others() < self.s.min_participants
                    {
                        self.step_out(now, "too few others in the room", out);
                    }
                }
                Timer::RoomStatusTimeout => {
                    if matches!(self.state, State::Waiting(_)) {
                        warn!(room = %self.s.room, "no news of the room since the reconnect; rejoining");
                        self.view.alive = true;
                        self.join(now, 1, out);
                    }
                }
                Timer::RestartSession => match self.sessions.sid() {
                    // Our restart request was held back by the rate limit: send it now.
                    Some(sid) => {
                        let sid = sid.to_string();
                        self.request_restart(now, &sid, out);
                    }
                    None => self.request_restart_again(now, out),
                },
            }
        }
    }

    fn on_stanza(&mut self, now: Instant, el: Element, out: &mut Vec<Action>) {
        let Some(h) = Header::of(&el) else { return };
        match h.kind {
            Kind::Presence => self.on_presence(now, &h, &el, out),
            Kind::Iq if h.is_iq_request() => self.on_iq_request(now, &h, &el, out),
            Kind::Iq => self.on_iq_response(now, &h, out),
            // Room messages (chat, room metadata) carry nothing we record. Never answer them
            // with an error: Prosody kicks occupants that do.
            Kind::Message => {}
        }
    }
}

/// The next nick after a conflict: same prefix, new random suffix.
fn next_nick(nick: &str) -> String {
    // Our nicks are the configured prefix plus 8 hex digits; keep the prefix.
    let split = nick.len().saturating_sub(8);
    let prefix = match nick.get(split..) {
        Some(tail) if split > 0 && tail.chars().all(|c| c.is_ascii_hexdigit()) => &nick[..split],
        _ => nick,
    };
    format!("{prefix}{:08x}", rand::random::<u32>())
}

/// Whether a stanza's `to` is one of our addresses; used by tests and the router.
pub fn addressed_to_us(el: &Element, our_domain: &str) -> bool {
    el.attr("to")
        .and_then(Jid::parse)
        .is_some_and(|j| j.domain() == our_domain)
}

/// The namespace every stanza we build carries.
pub const STANZA_NS: &str = NS_COMPONENT;

#[cfg(test)]
mod tests;
