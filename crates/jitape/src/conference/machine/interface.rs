//! What goes into the machine and what comes out: its settings, inputs, actions and timers.

use std::time::{Duration, Instant};

use minidom::Element;

use crate::audio::TrackId;
use crate::conference::roster::RosterLimits;
use crate::jingle::model::{AudioOffer, IceTransport, Source};
use crate::sink::GapKind;
use crate::types::Ssrc;

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

impl Settings {
    /// What every conference of this process is set up with (the room is filled in per
    /// conference), from the configuration; `our_jid` is this process's full JID.
    pub fn new(cfg: &crate::config::Config, our_jid: &str) -> Self {
        Settings {
            room: String::new(),
            our_jid: our_jid.to_string(),
            nick: cfg.xmpp.nick_prefix.clone(),
            focus_nick: cfg.xmpp.focus_nick.clone(),
            display_name: cfg.xmpp.display_name.clone(),
            // Only `jigasi`: browsers then never offer P2P to jitape, and (from a trusted
            // domain) Jicofo never makes it moderator nor force-mutes it. `transcriber` would
            // make Jicofo refuse real Jigasi transcription in every room jitape is in
            // (docs/protocol.md, "Presence features").
            presence_features: vec![crate::xmpp::muc::FEATURE_JIGASI.into()],
            service_domains: cfg.xmpp.service_domains.clone(),
            join_timeout: Duration::from_secs(10),
            max_join_attempts: 6,
            empty_grace: cfg.recording.empty_grace,
            min_participants: cfg.rooms.min_participants,
            lone_hold: cfg.rooms.lone_hold,
            max_duration: cfg.recording.max_duration,
            room_status_timeout: Duration::from_secs(15),
            max_sources: cfg.limits.max_sources,
            opus_red: cfg.media.opus_red,
            roster_limits: RosterLimits {
                max_participants: cfg.limits.max_participants,
                max_presences: cfg.limits.max_presences,
            },
        }
    }
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
    /// Several instances: this one's owner record ran out (no link to Prosody for the
    /// lease), so it stopped writing; the room's next owner continues the files.
    Fenced,
    /// Several instances: the module gave the room to another instance while this one was
    /// away longer than the lease; that one continues the files.
    Moved,
}

impl EndReason {
    /// The recording's files are left unfinished for the instance that owns the room now.
    pub fn leaves_files(&self) -> bool {
        matches!(self, EndReason::Fenced | EndReason::Moved)
    }
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
            EndReason::Fenced => f.write_str("fenced"),
            EndReason::Moved => f.write_str("moved"),
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
        tracks: Vec<(Ssrc, TrackId)>,
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
