//! Being in the room: joining (and retrying), our own presence, the others' presences,
//! and stepping out while too few others are in.

use std::time::{Duration, Instant};

use minidom::Element;
use tracing::{debug, info, warn};

use super::state::{Interruption, Joining, Out, State};
use super::{Action, EndReason, Machine, RoomView, Timer, next_nick};
use crate::conference::roster::RosterChange;
use crate::conference::session::Effect;
use crate::sink::GapKind;
use crate::xmpp::muc::{self, JoinSpec, OccupantPresence};
use crate::xmpp::stanza::Header;

impl Machine {
    /// News of the room from outside it.
    pub(super) fn on_room_view(&mut self, now: Instant, view: RoomView, out: &mut Vec<Action>) {
        self.timers.remove(&Timer::RoomStatusTimeout);
        self.view = view;
        if let (State::Away(_), Some(o)) = (&self.state, &self.view.occupancy) {
            self.roster.outside_present(&o.nicks, now);
        }
        // Offline, we join once the link is back up.
        let out_of_room = matches!(self.state, State::Waiting(_) | State::Away(_));
        if out_of_room && self.may_join() {
            self.join(now, 1, out);
        }
    }

    /// Whether joining now changes nothing for the people in the room: it exists, and (where
    /// the module lets us see in) at least `min_participants` others are there, so Jicofo
    /// already runs the conference on the bridge without us.
    pub(super) fn may_join(&self) -> bool {
        self.view.alive
            && self
                .view
                .occupancy
                .as_ref()
                .is_none_or(|o| o.others >= self.s.min_participants.max(1))
    }

    /// While joined: leave at once when nobody else is left (the room then closes as it would
    /// without us), or after `lone_hold` when fewer than `min_participants` others stay.
    /// Without the module we could not tell when people return, so we stay.
    pub(super) fn check_company(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Joined || self.view.occupancy.is_none() {
            self.timers.remove(&Timer::LoneHold);
            return;
        }
        let others = self.roster.others();
        if others >= self.s.min_participants {
            self.timers.remove(&Timer::LoneHold);
        } else if others == 0 {
            self.step_out(now, "nobody else in the room", out);
        } else {
            self.timers
                .entry(Timer::LoneHold)
                .or_insert(now + self.s.lone_hold);
        }
    }

    /// Leave the room on purpose; the recording continues.
    pub(super) fn step_out(&mut self, now: Instant, why: &'static str, out: &mut Vec<Action>) {
        info!(room = %self.s.room, why, "leaving the room until enough people are back");
        out.push(Action::Send(muc::leave_presence(
            &self.s.our_jid,
            &self.s.room,
            &self.s.nick,
        )));
        let mut fx = Vec::new();
        self.sessions.drop_session(&mut fx);
        self.apply_effects(now, fx, out);
        self.roster.step_out();
        self.timers.remove(&Timer::LoneHold);
        self.state = State::Away(Interruption {
            since: now,
            why,
            kind: GapKind::Away,
        });
        out.push(Action::SteppedOut);
    }

    pub(super) fn join(&mut self, now: Instant, attempt: u32, out: &mut Vec<Action>) {
        debug!(room = %self.s.room, attempt, "sending join presence");
        // A rejoin (after a reconnect, a kick, a retry) first leaves: Prosody restores rooms
        // with their occupants after a restart, and if an occupant of ours (same full JID)
        // is still there, a join is only a presence update — no self-presence, no new Jingle
        // invite. Leaving first makes the join a real one; when we were not in, Prosody
        // ignores the leave.
        let was = self.state.out();
        let leave_first = was.been_in || attempt > 1;
        if leave_first {
            out.push(Action::Send(muc::leave_presence(
                &self.s.our_jid,
                &self.s.room,
                &self.s.nick,
            )));
        }
        // An echo still expected of an earlier leave stays expected.
        let echo_pending = matches!(&self.state, State::Joining(j) if j.leave_echo);
        self.state = State::Joining(Joining {
            attempt,
            leave_echo: leave_first || echo_pending,
            been_in: was.been_in,
            interrupted: was.interrupted,
        });
        self.timers.remove(&Timer::Rejoin);
        self.timers
            .insert(Timer::JoinTimeout, now + self.s.join_timeout);
        out.push(Action::Send(muc::join_presence(&JoinSpec {
            from: &self.s.our_jid,
            room: &self.s.room,
            nick: &self.s.nick,
            display_name: &self.s.display_name,
            features: &self.s.presence_features,
            password: None,
            opus_red: self.s.opus_red,
        })));
    }

    pub(super) fn on_presence(
        &mut self,
        now: Instant,
        h: &Header,
        el: &Element,
        out: &mut Vec<Action>,
    ) {
        let Some(from) = &h.from else { return };
        let Some(p) = muc::parse_presence(el, from) else {
            return;
        };
        if p.nick == self.s.nick {
            return self.on_self_presence(now, p, out);
        }
        if p.error.is_some() {
            return;
        }
        let change = self.roster.apply(&p, now);
        let mut fx = Vec::new();
        match change {
            RosterChange::Left { nick } => {
                debug!(room = %self.s.room, %nick, "occupant left");
                if nick == self.s.focus_nick {
                    info!(room = %self.s.room, "focus left the room; its session is gone");
                    self.sessions.drop_session(&mut fx);
                } else {
                    self.sessions.owner_left(&nick, &mut fx);
                }
            }
            RosterChange::Joined { nick } => {
                debug!(room = %self.s.room, %nick, "occupant joined");
                // Presence may change who is recorded (hidden-from-recorder).
                fx.push(Effect::SourcesChanged);
            }
            RosterChange::Updated { .. } => fx.push(Effect::SourcesChanged),
            RosterChange::Unchanged => {}
        }
        self.apply_effects(now, fx, out);
        self.check_company(now, out);
    }

    pub(super) fn on_self_presence(
        &mut self,
        now: Instant,
        p: OccupantPresence,
        out: &mut Vec<Action>,
    ) {
        if matches!(self.state, State::Away(_)) {
            // Out of the room on purpose: whatever Prosody says of our old occupant (the
            // echo of our leave, or a destroy after we left) changes nothing.
            return;
        }
        if let Some(condition) = p.error {
            return self.join_refused(now, &condition, out);
        }
        if p.unavailable {
            if let State::Joining(j) = &mut self.state
                && std::mem::take(&mut j.leave_echo)
                && !p.destroyed
            {
                debug!(room = %self.s.room, "our leave before the rejoin was echoed");
                return;
            }
            return self.on_removed(now, &p, out);
        }
        let State::Joining(j) = &self.state else {
            self.roster.apply(&p, now);
            return;
        };
        let j = j.clone();
        self.joined(now, j, out);
        self.roster.apply(&p, now);
        self.check_company(now, out);
    }

    /// Our join's self-presence: we are in (again).
    pub(super) fn joined(&mut self, now: Instant, j: Joining, out: &mut Vec<Action>) {
        info!(room = %self.s.room, nick = %self.s.nick, "joined");
        self.state = State::Joined;
        self.timers.remove(&Timer::JoinTimeout);
        if !j.been_in {
            out.push(Action::StartRecording);
        }
        self.roster.settle_outside(now);
        if let Some(i) = j.interrupted {
            out.push(Action::Interruption {
                start: i.since,
                end: now,
                kind: i.kind,
                detail: format!("not in the room ({}) until rejoined", i.why),
            });
        }
    }

    pub(super) fn join_refused(&mut self, now: Instant, condition: &str, out: &mut Vec<Action>) {
        let attempt = match &self.state {
            State::Joining(j) => j.attempt,
            _ => 1,
        };
        warn!(room = %self.s.room, %condition, attempt, "join refused");
        if condition == "conflict" {
            // Someone holds our nick (a stale occupant of ours, or a namesake): new suffix.
            self.s.nick = next_nick(&self.s.nick);
            self.roster.set_our_nick(&self.s.nick);
        }
        if attempt >= self.s.max_join_attempts {
            return self.end(now, EndReason::JoinRefused(condition.to_string()), out);
        }
        match &self.state {
            // A stale refusal that arrived after the link went down: the join after the
            // reconnect is the next try.
            State::Offline(_) => return,
            State::Joining(_) => {}
            other => {
                let was = other.out();
                self.state = State::Joining(Joining {
                    attempt,
                    leave_echo: false,
                    been_in: was.been_in,
                    interrupted: was.interrupted,
                });
            }
        }
        self.timers.remove(&Timer::JoinTimeout);
        let backoff = Duration::from_secs(1 << attempt.min(5));
        self.timers.insert(Timer::Rejoin, now + backoff);
    }

    /// Our own unavailable presence: destroyed, banned, kicked, or removed by the server.
    pub(super) fn on_removed(&mut self, now: Instant, p: &OccupantPresence, out: &mut Vec<Action>) {
        let mut fx = Vec::new();
        self.sessions.drop_session(&mut fx);
        self.apply_effects(now, fx, out);
        self.roster.clear(now);
        // We are no longer an occupant, so `end` must not send a leave presence.
        let was = self.state.out();
        let offline = matches!(self.state, State::Offline(_));
        self.state = State::Waiting(Out::default());
        if p.destroyed {
            return self.end(now, EndReason::RoomDestroyed, out);
        }
        if p.status(301) {
            return self.end(now, EndReason::Banned, out);
        }
        // Kicked (307), removed for a server shutdown (332) or an error (333), or
        // anything else: rejoin, bounded by the join attempt limit.
        warn!(room = %self.s.room, statuses = ?p.statuses, "removed from the room; rejoining");
        let was = was.interrupt(now, "removed from the room", GapKind::XmppReconnect);
        if offline {
            // A stale removal that arrived after the link went down: the join after the
            // reconnect brings us back.
            self.state = State::Offline(was);
            return;
        }
        self.state = State::Joining(Joining {
            attempt: 1,
            leave_echo: false,
            been_in: was.been_in,
            interrupted: was.interrupted,
        });
        self.timers.remove(&Timer::JoinTimeout);
        self.timers
            .insert(Timer::Rejoin, now + Duration::from_secs(1));
    }
}
