//! The room lifecycle state machine: joining, being an occupant, following the roster and
//! the Jingle session, and deciding when the recording ends.
//!
//! Pure: `handle(now, input)` returns [`Action`]s; `next_deadline()` names the soonest timer.
//! The task in `task.rs` does the I/O (sending stanzas, media, audio, files). Nothing here
//! blocks, sleeps or panics on network input.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use minidom::Element;
use tracing::{debug, info, warn};

use super::roster::{Classifier, Roster, RosterChange, RosterLimits};
use super::session::{Effect, RESTART_RETRY, SessionState, Sessions};
use crate::audio::TrackId;
use crate::jingle::model::{AudioOffer, IceTransport, Source};
use crate::sink::GapKind;
use crate::xmpp::muc::{self, JoinSpec, OccupantPresence};
use crate::xmpp::stanza::{self, Header, Jid, Kind, NS_COMPONENT};

/// Fixed facts about this conference and who we are in it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bare room JID, normalised.
    pub room: String,
    /// The full JID we join from (on our component domain).
    pub our_jid: String,
    pub nick: String,
    pub focus_nick: String,
    pub display_name: String,
    pub presence_features: Vec<String>,
    pub service_domains: Vec<String>,
    pub join_timeout: Duration,
    pub max_join_attempts: u32,
    /// End after no human has been present this long.
    pub empty_grace: Duration,
    /// Jicofo's `min-participants`: jitape is in the room only while at least this many
    /// others are (it counts as a member itself, so being there with fewer would start
    /// bridge sessions, hold off idle timeouts and keep rooms alive that Jicofo and Prosody
    /// would otherwise end). Applies where the Prosody module reports the room.
    pub min_participants: usize,
    /// With fewer others than that but not none, stay this long before leaving (a page
    /// reload comes back within it; nobody notices the lone participant's idle timeout
    /// starting this much later).
    pub lone_hold: Duration,
    /// End this long after the recording started.
    pub max_duration: Duration,
    /// After a reconnect, join anyway if the router said nothing about the room for this
    /// long (normally it answers within milliseconds of the link coming up).
    pub room_status_timeout: Duration,
    /// Remote audio sources recorded at once (`limits.max_sources`).
    pub max_sources: usize,
    /// Advertise Opus RED in our caps (`media.opus_red`).
    pub opus_red: bool,
    /// What the roster keeps (`limits.max_participants`, `limits.max_presences`).
    pub roster_limits: RosterLimits,
}

/// Why a recording ended; becomes the sidecar's `end_reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    RoomDestroyed,
    Banned,
    JoinRefused(String),
    Shutdown,
    Stopped,
    /// No human present for `empty_grace`.
    Empty,
    MaxDuration,
    /// The recording could not be opened (I/O).
    CannotRecord(String),
    /// jitape could not carry every conference and ended this one to save the others.
    Overload,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::RoomDestroyed => f.write_str("room-destroyed"),
            EndReason::Banned => f.write_str("banned"),
            EndReason::JoinRefused(c) => write!(f, "join-refused:{c}"),
            EndReason::Shutdown => f.write_str("shutdown"),
            EndReason::Stopped => f.write_str("stopped"),
            EndReason::Empty => f.write_str("empty"),
            EndReason::MaxDuration => f.write_str("max-duration"),
            EndReason::CannotRecord(e) => write!(f, "cannot-record:{e}"),
            EndReason::Overload => f.write_str("overload"),
        }
    }
}

/// Inputs to the machine.
#[derive(Debug)]
pub enum Input {
    /// A stanza from this room (or to our occupant JID).
    Stanza(Element),
    LinkUp,
    LinkDown,
    MediaReady {
        sid: String,
        transport: IceTransport,
    },
    MediaFailed {
        sid: String,
        reason: String,
        /// Connected, but nothing arrived for `media.silence_timeout`.
        silent: bool,
    },
    /// What the router knows of the room from outside it.
    RoomStatus(RoomView),
    /// The Prosody module reported the room destroyed; `occupied`: people were still in it
    /// (the meeting was ended for them), not just emptied.
    RoomDestroyed {
        occupied: bool,
    },
    /// The recording is open; it started `elapsed` ago (more than zero after a restart).
    RecordingStarted {
        elapsed: Duration,
    },
    /// The admin API asks what this conference is doing (answered by the task; the
    /// machine ignores it).
    Snapshot(tokio::sync::oneshot::Sender<super::snapshot::ConferenceSnapshot>),
    Stop(EndReason),
    /// A timer may have expired.
    Tick,
}

/// The room as the router sees it from outside (Prosody module events, invitations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomView {
    /// The room exists (the module says so, or we were invited or asked to record it).
    pub alive: bool,
    /// Its occupants as the Prosody module reports them; `None` where the module does not
    /// answer (invitation-only rooms): then nobody can tell from outside who is in it.
    pub occupancy: Option<Occupancy>,
    /// Jitsi's meeting id, when the Prosody module reported one.
    pub meeting_id: Option<String>,
}

/// Who is in a room, from the module's reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Occupancy {
    pub humans: usize,
    /// Occupants other than the focus and jitape (humans and services): Jicofo's member
    /// count without jitape.
    pub others: usize,
    /// Their nicks.
    pub nicks: Vec<String>,
}

/// What the machine asks the task to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(Element),
    /// We are in the room for the first time: open the recording.
    StartRecording,
    StartMedia {
        sid: String,
        offer: AudioOffer,
        sources: Vec<Source>,
    },
    /// The remote source set of the current session changed.
    UpdateSources(Vec<Source>),
    StopMedia,
    /// The SSRC → track mapping for the audio timeline (only recorded participants), as of
    /// `at`: a source no longer listed keeps the packets that reached the machine before it.
    Tracks {
        tracks: Vec<(u32, TrackId)>,
        at: Instant,
    },
    /// Our occupancy was interrupted from `start` to `end` (link down, kicked, stepped out
    /// while too few others were in): a gap note for the sidecar.
    Interruption {
        start: Instant,
        end: Instant,
        kind: GapKind,
        detail: String,
    },
    /// We left the room on purpose (too few others) and are back from `end` on: no media
    /// until then was expected, so none of it was "deaf".
    SteppedOut,
    /// Sources were refused by `limits.max_sources` (counted in the metrics).
    SourceLimitHit,
    /// The media session could not be set up or kept: counted, shown, listed as a gap (the
    /// machine asks the focus for a new one).
    MediaProblem {
        kind: MediaProblem,
        detail: String,
    },
    /// Finalize and end the task. Every stanza needed (leave presence) precedes it.
    End(EndReason),
}

/// Why a conference has no working media session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaProblem {
    /// We answered the focus's offer with an error (one we cannot take).
    OfferRefused,
    /// ICE or DTLS failed, or the session could not be brought up.
    Failed,
    /// The focus refused our session-accept.
    AcceptRefused,
    /// A connected session with sources brought no RTP nor RTCP for `media.silence_timeout`.
    NoPackets,
}

impl MediaProblem {
    /// The `reason` label in metrics and the text in `/conferences`.
    pub fn label(self) -> &'static str {
        match self {
            MediaProblem::OfferRefused => "offer-refused",
            MediaProblem::Failed => "ice-dtls-failed",
            MediaProblem::AcceptRefused => "accept-refused",
            MediaProblem::NoPackets => "no-packets",
        }
    }
}

/// Named timers; `next_deadline` reports the soonest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// No self-presence since we sent our join.
    JoinTimeout,
    /// Retry a join after a refusal or a kick.
    Rejoin,
    /// Ask the focus again for a session (restart not answered, or rate-limited).
    RestartSession,
    /// No human for `empty_grace`.
    EmptyGrace,
    MaxDuration,
    /// The link is up but nobody told us whether the room is alive.
    RoomStatusTimeout,
    /// Fewer others than `min_participants` (but some) for `lone_hold`: step out.
    LoneHold,
}

/// Our membership in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Membership {
    /// Link is down; join when it comes up.
    Offline,
    Joining {
        attempt: u32,
    },
    Joined,
    /// We left on purpose while fewer than `min_participants` others were in the room; the
    /// recording goes on and we rejoin when enough are back.
    Away,
    Ended,
}

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
    membership: Membership,
    recording: bool,
    link_up: bool,
    /// May we join (the room exists, or we were invited)?
    alive: bool,
    /// The room's occupants as the module reports them (`None`: no module here).
    outside: Option<Occupancy>,
    /// Since when we are not an occupant although we were (link down, kicked, stepped
    /// out), why, and how the sidecar lists it.
    interrupted: Option<(Instant, &'static str, GapKind)>,
    /// We left just before rejoining: Prosody's unavailable echo of that leave (if we were
    /// still in) is expected before our join's self-presence, and is not a kick.
    leave_echo: bool,
    roster: Roster,
    sessions: Sessions,
    timers: BTreeMap<Timer, Instant>,
    pending: HashMap<String, Pending>,
    next_id: u64,
    tracks: Vec<(u32, TrackId)>,
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
            membership: Membership::Offline,
            recording: false,
            link_up: false,
            alive: false,
            outside: None,
            interrupted: None,
            leave_echo: false,
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
        self.membership == Membership::Joined
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
        if !matches!(input, Input::Stanza(_) | Input::Tick | Input::Snapshot(_)) {
            debug!(room = %self.s.room, ?input, membership = ?self.membership, alive = self.alive, "conference input");
        }
        if self.membership == Membership::Ended {
            return out;
        }
        match input {
            Input::LinkUp => {
                self.link_up = true;
                if self.alive {
                    self.join(now, 1, &mut out);
                } else {
                    self.timers
                        .insert(Timer::RoomStatusTimeout, now + self.s.room_status_timeout);
                }
            }
            Input::LinkDown => {
                if self.membership == Membership::Joined {
                    self.interrupted
                        .get_or_insert((now, "xmpp link down", GapKind::XmppReconnect));
                }
                self.link_up = false;
                // What we knew of the room is stale; the router tells us again after the
                // reconnect (or the status timeout lets us rejoin anyway).
                self.alive = false;
                self.outside = None;
                self.membership = Membership::Offline;
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
            Input::RoomStatus(view) => self.on_room_view(now, view, &mut out),
            Input::RoomDestroyed { occupied } => {
                self.alive = false;
                if self.membership == Membership::Away && !occupied {
                    // We left it to empty out, as it would have without us: the recording
                    // waits out the grace for people to come back (to a new room).
                    info!(room = %self.s.room, "the room was destroyed while we were out; waiting for people to return");
                } else {
                    if self.membership == Membership::Joined {
                        // The destroy presence follows; leaving now is harmless.
                        self.membership = Membership::Offline;
                    }
                    self.end(now, EndReason::RoomDestroyed, &mut out);
                }
            }
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
            } => {
                warn!(room = %self.s.room, %sid, %reason, "media session failed; asking the focus for a new session");
                out.push(Action::MediaProblem {
                    kind: if silent {
                        MediaProblem::NoPackets
                    } else {
                        MediaProblem::Failed
                    },
                    detail: reason,
                });
                self.request_restart(now, &sid, &mut out);
            }
            Input::Stop(reason) => self.end(now, reason, &mut out),
            Input::Tick => self.on_timers(now, &mut out),
            Input::Snapshot(_) => {}
        }
        if self.membership != Membership::Ended {
            self.update_empty_grace(now);
        }
        out
    }

    /// Humans present now, as far as we can tell (`None` while the link is down).
    pub fn humans(&self) -> Option<usize> {
        match self.membership {
            Membership::Joined => Some(self.roster.humans()),
            _ if !self.link_up => None,
            _ => self.outside.as_ref().map(|o| o.humans),
        }
    }

    /// Whether we are out of the room on purpose (too few others in it).
    pub fn is_away(&self) -> bool {
        self.membership == Membership::Away
    }

    /// News of the room from outside it.
    fn on_room_view(&mut self, now: Instant, view: RoomView, out: &mut Vec<Action>) {
        self.timers.remove(&Timer::RoomStatusTimeout);
        self.alive = view.alive;
        self.outside = view.occupancy;
        if self.membership == Membership::Away
            && let Some(o) = &self.outside
        {
            self.roster.outside_present(&o.nicks, now);
        }
        let out_of_room = matches!(self.membership, Membership::Offline | Membership::Away);
        if out_of_room && self.link_up && self.may_join() {
            self.join(now, 1, out);
        }
    }

    /// Whether joining now changes nothing for the people in the room: it exists, and (where
    /// the module lets us see in) at least `min_participants` others are there, so Jicofo
    /// already runs the conference on the bridge without us.
    fn may_join(&self) -> bool {
        self.alive
            && self
                .outside
                .as_ref()
                .is_none_or(|o| o.others >= self.s.min_participants.max(1))
    }

    /// While joined: leave at once when nobody else is left (the room then closes as it would
    /// without us), or after `lone_hold` when fewer than `min_participants` others stay.
    /// Without the module we could not tell when people return, so we stay.
    fn check_company(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.membership != Membership::Joined || self.outside.is_none() {
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
    fn step_out(&mut self, now: Instant, why: &'static str, out: &mut Vec<Action>) {
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
        self.membership = Membership::Away;
        self.interrupted.get_or_insert((now, why, GapKind::Away));
        out.push(Action::SteppedOut);
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

    fn join(&mut self, now: Instant, attempt: u32, out: &mut Vec<Action>) {
        debug!(room = %self.s.room, attempt, "sending join presence");
        // A rejoin (after a reconnect, a kick, a retry) first leaves: Prosody restores rooms
        // with their occupants after a restart, and if an occupant of ours (same full JID)
        // is still there, a join is only a presence update — no self-presence, no new Jingle
        // invite. Leaving first makes the join a real one; when we were not in, Prosody
        // ignores the leave.
        if self.recording || attempt > 1 {
            out.push(Action::Send(muc::leave_presence(
                &self.s.our_jid,
                &self.s.room,
                &self.s.nick,
            )));
            self.leave_echo = true;
        }
        self.membership = Membership::Joining { attempt };
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

    fn end(&mut self, now: Instant, reason: EndReason, out: &mut Vec<Action>) {
        if matches!(
            self.membership,
            Membership::Joined | Membership::Joining { .. }
        ) {
            out.push(Action::Send(muc::leave_presence(
                &self.s.our_jid,
                &self.s.room,
                &self.s.nick,
            )));
        }
        let mut fx = Vec::new();
        self.sessions.drop_session(&mut fx);
        self.apply_effects(now, fx, out);
        self.membership = Membership::Ended;
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
                    let attempt = match self.membership {
                        Membership::Joining { attempt } => attempt + 1,
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
                    if self.membership == Membership::Joined
                        && self.roster.others() < self.s.min_participants
                    {
                        self.step_out(now, "too few others in the room", out);
                    }
                }
                Timer::RoomStatusTimeout => {
                    if self.link_up && self.membership == Membership::Offline {
                        warn!(room = %self.s.room, "no news of the room since the reconnect; rejoining");
                        self.alive = true;
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

    fn on_presence(&mut self, now: Instant, h: &Header, el: &Element, out: &mut Vec<Action>) {
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

    fn on_self_presence(&mut self, now: Instant, p: OccupantPresence, out: &mut Vec<Action>) {
        if self.membership == Membership::Away {
            // Out of the room on purpose: whatever Prosody says of our old occupant (the
            // echo of our leave, or a destroy after we left) changes nothing.
            self.leave_echo = false;
            return;
        }
        if let Some(condition) = p.error {
            return self.join_refused(now, &condition, out);
        }
        if p.unavailable {
            if std::mem::take(&mut self.leave_echo)
                && matches!(self.membership, Membership::Joining { .. })
                && !p.destroyed
            {
                debug!(room = %self.s.room, "our leave before the rejoin was echoed");
                return;
            }
            return self.on_removed(now, &p, out);
        }
        self.leave_echo = false;
        if matches!(self.membership, Membership::Joining { .. }) {
            info!(room = %self.s.room, nick = %self.s.nick, "joined");
            self.membership = Membership::Joined;
            self.timers.remove(&Timer::JoinTimeout);
            if !self.recording {
                self.recording = true;
                out.push(Action::StartRecording);
            }
            self.roster.settle_outside(now);
            if let Some((start, why, kind)) = self.interrupted.take() {
                out.push(Action::Interruption {
                    start,
                    end: now,
                    kind,
                    detail: format!("not in the room ({why}) until rejoined"),
                });
            }
            self.roster.apply(&p, now);
            self.check_company(now, out);
            return;
        }
        self.roster.apply(&p, now);
    }

    fn join_refused(&mut self, now: Instant, condition: &str, out: &mut Vec<Action>) {
        let attempt = match self.membership {
            Membership::Joining { attempt } => attempt,
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
        self.membership = Membership::Joining { attempt };
        self.timers.remove(&Timer::JoinTimeout);
        let backoff = Duration::from_secs(1 << attempt.min(5));
        self.timers.insert(Timer::Rejoin, now + backoff);
    }

    /// Our own unavailable presence: destroyed, banned, kicked, or removed by the server.
    fn on_removed(&mut self, now: Instant, p: &OccupantPresence, out: &mut Vec<Action>) {
        let mut fx = Vec::new();
        self.sessions.drop_session(&mut fx);
        self.apply_effects(now, fx, out);
        self.roster.clear(now);
        // We are no longer an occupant, so `end` must not send a leave presence.
        self.membership = Membership::Offline;
        if p.destroyed {
            return self.end(now, EndReason::RoomDestroyed, out);
        }
        if p.status(301) {
            return self.end(now, EndReason::Banned, out);
        }
        // Kicked (307), removed for a server shutdown (332) or an error (333), or
        // anything else: rejoin, bounded by the join attempt limit.
        warn!(room = %self.s.room, statuses = ?p.statuses, "removed from the room; rejoining");
        self.interrupted
            .get_or_insert((now, "removed from the room", GapKind::XmppReconnect));
        self.membership = Membership::Joining { attempt: 1 };
        self.timers.remove(&Timer::JoinTimeout);
        self.timers
            .insert(Timer::Rejoin, now + Duration::from_secs(1));
    }

    fn on_iq_request(&mut self, now: Instant, h: &Header, el: &Element, out: &mut Vec<Action>) {
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

    fn on_jingle(
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
    fn offer_refused(&mut self, now: Instant, why: &str, out: &mut Vec<Action>) {
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

    fn on_iq_response(&mut self, now: Instant, h: &Header, out: &mut Vec<Action>) {
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

    fn request_restart(&mut self, now: Instant, sid: &str, out: &mut Vec<Action>) {
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
    fn request_restart_again(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.membership != Membership::Joined {
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

    fn apply_effects(&mut self, now: Instant, fx: Vec<Effect>, out: &mut Vec<Action>) {
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
    fn remember_pending(&mut self, id: String, p: Pending) {
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
    fn sources_changed(&mut self, now: Instant, out: &mut Vec<Action>) {
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
