//! Stretches of a recording during which jitape heard nothing from the bridge because its
//! media session was broken or gone (not because nobody spoke).
//!
//! The file keeps its length through such a stretch (it is silence, in place); the sidecar
//! lists it as a `media-session` gap so a listener can tell "deaf" from "quiet". A stretch
//! starts when a connected session loses its traffic (ICE disconnected or failed, dated back
//! to when the traffic stopped) or is closed (re-invite, bridge move, focus gone) and ends at
//! the next connected session or at the end of the recording. Stretches under
//! [`MIN_DEAF`] (an ordinary re-invite) are not listed.

use std::time::{Duration, Instant};

use crate::media::MediaState;

/// Shorter deaf stretches are not worth a sidecar entry.
pub const MIN_DEAF: Duration = Duration::from_secs(1);

/// Tracks one conference's deaf stretches. Pure: time is a parameter.
#[derive(Debug, Default)]
pub struct Deafness {
    /// A session has been connected at least once (before that, nothing was lost).
    heard: bool,
    /// When the current deaf stretch began, and why.
    since: Option<(Instant, &'static str)>,
    /// jitape is out of the room on purpose: no media is expected, nothing is "deaf".
    away: bool,
}

/// A finished deaf stretch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeafStretch {
    pub start: Instant,
    pub end: Instant,
    pub why: &'static str,
}

impl Deafness {
    /// The media session reported `state` at `now`. `silent_for` is how long the traffic had
    /// already stopped by then, as far as the caller can tell.
    /// Returns the stretch that a reconnection ends.
    pub fn on_state(
        &mut self,
        state: MediaState,
        now: Instant,
        silent_for: Duration,
    ) -> Option<DeafStretch> {
        match state {
            MediaState::Connected => {
                self.heard = true;
                self.close(now)
            }
            MediaState::Disconnected | MediaState::Failed if self.heard && !self.away => {
                let began = now.checked_sub(silent_for).unwrap_or(now);
                self.since
                    .get_or_insert((began, "no traffic from the bridge"));
                None
            }
            _ => None,
        }
    }

    /// The media session was closed at `now` (re-invite, bridge move, session ended).
    pub fn on_closed(&mut self, now: Instant) {
        if self.heard && !self.away {
            self.since.get_or_insert((now, "no media session"));
        }
    }

    /// jitape left the room on purpose at `now` (too few others in it): the stretch until it
    /// is back is listed as such by the caller, not as deafness. Returns the deaf stretch
    /// this ends, if any.
    pub fn on_away(&mut self, now: Instant) -> Option<DeafStretch> {
        self.away = true;
        self.close(now)
    }

    /// jitape is back in the room at `now`: until a session connects, it is deaf again.
    pub fn on_back(&mut self, now: Instant) {
        if self.away {
            self.away = false;
            if self.heard {
                self.since = Some((now, "no media session"));
            }
        }
    }

    /// The recording starts (jitape is in the room) at `now`: until a session connects,
    /// nothing can be heard. A normal start connects well within [`MIN_DEAF`].
    pub fn on_started(&mut self, now: Instant) {
        if !self.heard && !self.away {
            self.since.get_or_insert((now, "no media session yet"));
        }
    }

    /// The deaf stretch under way, if any: since when and why.
    pub fn current(&self) -> Option<(Instant, &'static str)> {
        self.since
    }

    /// The recording ends at `now`: the open stretch, if any, ends with it.
    pub fn finish(&mut self, now: Instant) -> Option<DeafStretch> {
        self.close(now)
    }

    fn close(&mut self, now: Instant) -> Option<DeafStretch> {
        let (start, why) = self.since.take()?;
        (now.saturating_duration_since(start) >= MIN_DEAF).then_some(DeafStretch {
            start,
            end: now,
            why,
        })
    }
}

#[cfg(test)]
mod tests;
