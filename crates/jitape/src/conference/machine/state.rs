//! Where the machine stands with the room: one state at a time, each carrying only what
//! matters in it.
//!
//! ```text
//!            LinkUp, room not known alive
//!  Offline ───────────────────────────────▶ Waiting
//!     │  LinkUp, room alive                    │ room alive (and enough others in it)
//!     ▼                                        ▼
//!  Joining ◀───────────────────────────────────┘
//!     │ self-presence          refusal, kick: Joining again (bounded by the attempts)
//!     ▼
//!  Joined ──too few others──▶ Away ──enough back──▶ Joining
//!
//!  any ──LinkDown──▶ Offline        any ──end──▶ Ended
//! ```

use std::time::Instant;

use crate::sink::GapKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// The link is down: join once it is up and the room is known to live.
    Offline(Out),
    /// The link is up but we are not in the room: nobody said yet that the room lives, or
    /// too few others are in it.
    Waiting(Out),
    /// Our join presence is out (or, after a refusal or a kick, about to be sent again).
    Joining(Joining),
    Joined,
    /// We left on purpose while fewer than `min_participants` others were in the room; the
    /// recording goes on and we rejoin when enough are back.
    Away(Interruption),
    Ended,
}

/// Out of the room, not on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Out {
    /// We were an occupant before (the recording is open).
    pub been_in: bool,
    /// Since when, if we were in the room until then.
    pub interrupted: Option<Interruption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Joining {
    pub attempt: u32,
    /// We left just before rejoining: Prosody's unavailable echo of that leave (if we were
    /// still in) is expected before our join's self-presence, and is not a kick.
    pub leave_echo: bool,
    pub been_in: bool,
    pub interrupted: Option<Interruption>,
}

/// Since when we are not an occupant although we were (link down, kicked, stepped out),
/// why, and how the sidecar lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Interruption {
    pub since: Instant,
    pub why: &'static str,
    pub kind: GapKind,
}

impl State {
    /// What a state out of the room keeps of this one: whether we were in, and since when
    /// we are not.
    pub fn out(&self) -> Out {
        match self {
            State::Offline(o) | State::Waiting(o) => o.clone(),
            State::Joining(j) => Out {
                been_in: j.been_in,
                interrupted: j.interrupted,
            },
            State::Joined => Out {
                been_in: true,
                interrupted: None,
            },
            State::Away(i) => Out {
                been_in: true,
                interrupted: Some(*i),
            },
            State::Ended => Out::default(),
        }
    }

    /// Whether we are an occupant, or asked to be one (a leave presence undoes it).
    pub fn in_room(&self) -> bool {
        matches!(self, State::Joined | State::Joining(_))
    }
}

impl Out {
    /// Marks the interruption `why` from `now`, unless one is already running.
    pub fn interrupt(mut self, now: Instant, why: &'static str, kind: GapKind) -> Out {
        self.interrupted.get_or_insert(Interruption {
            since: now,
            why,
            kind,
        });
        self
    }
}
