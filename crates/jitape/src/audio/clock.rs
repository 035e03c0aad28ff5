//! One source's clock mapping: where on the timeline a given RTP timestamp belongs.
//!
//! In: for every packet, its arrival instant and its *offset* `v = arrival position − RTP end
//! time` (both in output samples). Out: per clock epoch, the estimated offset, so that the
//! timeline position of RTP time `t` is `offset + t`.
//!
//! Network delay only ever adds to `v`, so the packets with the least delay tell the truth:
//! the estimate is the minimum of `v` over a sliding window of arrivals. The window slides,
//! so a sender clock that runs fast or slow (skew) is followed: `v` then drifts linearly and
//! the windowed minimum drifts with it. The estimate comes down with the minimum at once but
//! rises no faster than [`MAX_SKEW`]: a sender or bridge that falls behind and stays behind
//! for longer than the window raises the minimum as well, and that is delay, not a clock.
//!
//! A talk spurt whose first packet is far behind the estimate (e.g. a sender that did not
//! advance its RTP clock across a pause), or any packet more than a second off, starts a new
//! epoch with a fresh window; packets still buffered from the old epoch keep the old offset. A packet that directly continues the one before it (next
//! sequence number, timestamp right after that frame, no marker) never does: the sender's
//! clock ran between the two, so however late it comes, that is delay. A jump is undone if a
//! packet comes back to the old clock before [`CONFIRM`] has passed: the packet that made it
//! was late, not the clock (one stamped when jitape read it, seconds after it arrived).
//!
//! A spurt that starts earlier than the estimate (by less than a second) shows that the
//! packets the estimate came from had more delay, as within a spurt: the estimate comes down
//! to it, and what is still buffered of those packets with it (a new speaker whose first words
//! came late as a whole, the next on time).
//!
//! A spurt that starts far off the estimate but at the delay level of the packets just before
//! it ([`RECENT`]) is that delay going on: a path or sender that fell behind and stays
//! behind across a pause keeps the epoch, and the spurt is placed where it was spoken.
//!
//! A spurt that starts far off is only *suspect* at first: a sender (or bridge) that stalled
//! and then sends what it held in a burst looks the same for one packet, but its burst comes
//! back to the estimate within milliseconds. The epoch changes only if the offset is still off
//! [`CONFIRM`] later (by arrival), and then from the packet that raised the suspicion: the
//! caller moves the packets it buffered since then into the new epoch.
//!
//! Even then the old clock is kept for [`CARRY`]: a sender that was behind for a whole spurt
//! looks like a clock that moved until it sends on time again. A later packet back on the
//! old clock (its next spurt, or the rest of this one once it caught up) undoes the new epoch,
//! and the caller moves what it still holds of it back: placed where it was spoken, as long
//! as it was not played out yet (the lateness window is the hindsight a recorder has).
//!
//! Nor when the other sources on the same path are as late at that moment (the caller gives
//! their delay beyond their own estimates, [`PATH_RECENT`]): a bridge or path that fell
//! behind and stays behind for a while delays every sender it forwards alike, while a sender's
//! clock moves alone. A speaker who starts talking just then has no packets of their own
//! before the pause to tell (a pause longer than [`RECENT`]), but the others who were talking
//! do.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How much history the minimum is taken over.
const WINDOW: Duration = Duration::from_secs(4);
/// An arrival gap longer than this starts a talk spurt (for the epoch check).
const SPURT_GAP: Duration = Duration::from_millis(100);
/// After the window has emptied, the last estimate still counts for this long.
const CARRY: Duration = Duration::from_secs(20);
/// The fastest a sender's clock can run slow against ours (1 per mille; crystals and sound
/// cards are within a fraction of that): the estimate never rises faster.
const MAX_SKEW: f64 = 0.001;
/// How many past epochs keep their offset (for packets buffered across an epoch change).
const FROZEN: usize = 8;
/// An offset change this large is a jump of the sender's clock even inside a spurt (unless
/// the packet continues the one before it).
const JUMP_SECONDS: f64 = 1.0;
/// How long (by arrival) a spurt that started far off the estimate must stay off, without
/// coming down, before it is a new epoch. A burst after a stall arrives faster than real time
/// and comes down with every packet until it has caught up; a sender whose clock really moved
/// sends on in real time (a packet every 20 ms) and its offset stays.
const CONFIRM: Duration = Duration::from_millis(60);
/// The packets that arrived within this much before a talk spurt starts give the path's
/// delay level at that moment: a spurt that starts at that level, however far it is off the
/// estimate, is the same delay going on (a path or sender that fell behind and stays there),
/// not a sender clock that moved.
const RECENT: Duration = Duration::from_secs(1);
/// Other sources' packets tell the path's delay if they arrived within this much of the
/// packet judged.
pub(super) const PATH_RECENT: Duration = Duration::from_millis(100);

/// What [`ClockEstimator::observe`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Observed {
    /// The epoch the packet belongs to.
    pub epoch: u32,
    /// This packet made the clock suspect a jump (it belongs to `epoch` unless confirmed).
    pub suspects: bool,
    /// This packet confirmed the suspicion: `epoch` is new, and it holds every packet since
    /// the one that raised it.
    pub confirms: bool,
    /// This packet undid the jump to the epoch given here: the packets in it belong to
    /// `epoch` again.
    pub reverts: Option<u32>,
    /// How far the packet's offset lay above the estimate when it came (its delay beyond the
    /// least), if there was one: what it tells other sources of the path's delay.
    pub excess: Option<f64>,
}

/// The epoch a jump left, kept until the jump is confirmed: a packet back on its clock undoes
/// the jump (the one that made it was late, e.g. stamped when jitape read it, not when it
/// reached the machine).
#[derive(Debug, Clone)]
struct Jumped {
    epoch: u32,
    window: VecDeque<Entry>,
    last: Option<Entry>,
    at: Instant,
    /// How long (by arrival) a packet back on the old clock still undoes it.
    undo_within: Duration,
}

/// A spurt that started far off the estimate, not yet a new epoch.
#[derive(Debug, Clone, Copy)]
struct Suspect {
    /// When the offset last came down (by more than [`ClockEstimator::settle`]): a burst
    /// still draining keeps coming down, a sender in real time holds it.
    since: Instant,
    /// The least offset seen since the suspicion began (the new epoch's first estimate if
    /// confirmed).
    v: f64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    v: f64,
}

#[derive(Debug)]
pub(super) struct ClockEstimator {
    /// Increasing in `v` from front to back: the front is the window's minimum.
    window: VecDeque<Entry>,
    epoch: u32,
    frozen: VecDeque<(u32, f64)>,
    /// The current epoch's last estimate and the arrival that confirmed it: the window's
    /// minimum, but risen no faster than [`MAX_SKEW`] since the estimate before.
    last: Option<Entry>,
    /// [`MAX_SKEW`] in output samples per second.
    max_rise: f64,
    latest_arrival: Option<Instant>,
    /// A spurt whose first offset is further than this from the estimate is a new epoch.
    tolerance: f64,
    /// Any offset further than this from the estimate is a new epoch.
    jump: f64,
    suspect: Option<Suspect>,
    /// How far a suspect offset must come down to count as a burst still draining.
    settle: f64,
    jumped: Option<Jumped>,
}

impl ClockEstimator {
    /// `tolerance`: in output samples, how far off the estimate a spurt may start (network
    /// delay) before it is taken as a jump of the sender's clock; `rate`: output sample rate.
    pub fn new(tolerance: f64, rate: u32) -> Self {
        ClockEstimator {
            window: VecDeque::new(),
            epoch: 0,
            frozen: VecDeque::new(),
            last: None,
            max_rise: MAX_SKEW * f64::from(rate),
            latest_arrival: None,
            tolerance,
            jump: JUMP_SECONDS * f64::from(rate),
            suspect: None,
            settle: tolerance / 10.0,
            jumped: None,
        }
    }

    /// Takes one packet's offset into account; returns the epoch the packet belongs to.
    /// `continues`: the packet directly follows one already seen, by its sequence number and
    /// timestamp, and starts no talk spurt (no marker): the sender's clock ran on between
    /// them, so however late it arrives (a sender or bridge fallen behind, a packet whose
    /// arrival was stamped late) its offset is delay, never a new epoch.
    #[cfg(test)]
    pub fn observe(&mut self, arrival: Instant, v: f64, continues: bool) -> Observed {
        self.observe_on_path(arrival, v, continues, None)
    }

    /// [`Self::observe`], with `path`: the least delay beyond their own estimates that the
    /// other sources on the same path showed within [`PATH_RECENT`] of `arrival` (`None`: no
    /// other packets then). A suspect spurt start that is as late as they are is delay.
    pub fn observe_on_path(
        &mut self,
        arrival: Instant,
        v: f64,
        continues: bool,
        path: Option<f64>,
    ) -> Observed {
        let spurt_start = !continues
            && self
                .latest_arrival
                .is_none_or(|latest| arrival.saturating_duration_since(latest) > SPURT_GAP);
        let level = if spurt_start {
            self.level(arrival)
        } else {
            None
        };
        let latest = self.latest_arrival.map_or(arrival, |l| l.max(arrival));
        self.latest_arrival = Some(latest);
        let reverts = self.revert(arrival, v);
        if let Some(horizon) = latest.checked_sub(WINDOW) {
            while self.window.front().is_some_and(|e| e.at < horizon) {
                self.window.pop_front();
            }
        }
        let current = match self.window.front() {
            Some(front) => Some(self.capped(front.v, latest)),
            None => self
                .last
                .filter(|last| latest.saturating_duration_since(last.at) <= CARRY)
                .map(|last| last.v),
        };
        let mut seen = Observed {
            epoch: self.epoch,
            suspects: false,
            confirms: false,
            reverts,
            excess: current.map(|c| v - c),
        };
        if spurt_start {
            // The spurt that raised it ended without confirming it: that was a stall.
            self.suspect = None;
        }
        if let (Some(current), Some(sus)) = (current, self.suspect.as_mut()) {
            if (v - current).abs() <= self.tolerance {
                // The burst caught up: it was a stall, not a clock that moved.
                self.suspect = None;
            } else if v < sus.v - self.settle {
                // Still coming down: a burst draining (slowly, if its sender is busy too).
                sus.v = v;
                sus.since = arrival;
                return seen;
            } else if arrival.saturating_duration_since(sus.since) < CONFIRM {
                sus.v = sus.v.min(v);
                return seen;
            } else if path.is_some_and(|p| (sus.v.min(v) - current - p).abs() <= self.tolerance) {
                // The others on the path are as late: a bridge or path behind, not this
                // sender's clock. The spurt keeps the epoch (where it was spoken).
                self.suspect = None;
            } else {
                let first = Entry {
                    at: sus.since,
                    v: sus.v.min(v),
                };
                self.suspect = None;
                let left = Jumped {
                    epoch: self.epoch,
                    window: self.window.clone(),
                    last: self.last,
                    at: arrival,
                    undo_within: CARRY,
                };
                self.new_epoch(current);
                self.jumped = Some(left);
                self.window.push_back(first);
                seen = Observed {
                    epoch: self.epoch,
                    suspects: false,
                    confirms: true,
                    reverts: None,
                    excess: seen.excess,
                };
            }
        }
        if let Some(current) = current.filter(|_| !seen.confirms) {
            let off = (v - current).abs();
            if off > self.jump && !continues {
                self.jump(current, arrival);
                seen.epoch = self.epoch;
            } else if spurt_start
                && v - current > self.tolerance
                && level.is_none_or(|level| (v - level).abs() > self.tolerance)
            {
                self.suspect = Some(Suspect { since: arrival, v });
                seen.suspects = true;
                return seen;
            } else if self.window.is_empty() {
                // carry the previous estimate into the new window
                self.window.push_back(Entry {
                    at: arrival,
                    v: current,
                });
            }
        }
        while self.window.back().is_some_and(|e| e.v >= v) {
            self.window.pop_back();
        }
        self.window.push_back(Entry { at: arrival, v });
        if let Some(front) = self.window.front() {
            self.last = Some(Entry {
                at: latest,
                v: self.capped(front.v, latest),
            });
        }
        seen
    }

    /// The path's delay level before a spurt that starts at `arrival`: the least offset of
    /// the packets that arrived in the [`RECENT`] before the last arrival, if that was no
    /// longer ago than [`CARRY`]. Read before the window slides to `arrival`.
    fn level(&self, arrival: Instant) -> Option<f64> {
        let latest = self.latest_arrival?;
        if arrival.saturating_duration_since(latest) > CARRY {
            return None;
        }
        let since = latest.checked_sub(RECENT);
        // The window increases from front to back, so its first entry at or after `since`
        // holds the least offset of every arrival since then.
        self.window
            .iter()
            .find(|e| since.is_none_or(|since| e.at >= since))
            .map(|e| e.v)
    }

    /// The window's minimum `v` as the estimate at `at`: at once if it is no higher than the
    /// estimate so far, else risen from that no faster than [`MAX_SKEW`].
    fn capped(&self, v: f64, at: Instant) -> f64 {
        match self.last {
            Some(e) if v > e.v => {
                let elapsed = at.saturating_duration_since(e.at).as_secs_f64();
                v.min(e.v + self.max_rise * elapsed)
            }
            _ => v,
        }
    }

    /// A new epoch at once, keeping the one left until the jump is confirmed.
    fn jump(&mut self, current: f64, arrival: Instant) {
        self.suspect = None;
        let left = Jumped {
            epoch: self.epoch,
            window: self.window.clone(),
            last: self.last,
            at: arrival,
            undo_within: CONFIRM,
        };
        self.new_epoch(current);
        self.jumped = Some(left);
    }

    /// Undoes the last jump if `v` is back on the clock it left (before [`CONFIRM`] has passed
    /// by arrival, or [`CARRY`] after a confirmed spurt); returns the epoch undone.
    fn revert(&mut self, arrival: Instant, v: f64) -> Option<u32> {
        let left = self.jumped.as_ref()?;
        if arrival.saturating_duration_since(left.at) >= left.undo_within {
            self.jumped = None;
            return None;
        }
        let before = left.window.front().or(left.last.as_ref()).map(|e| e.v);
        if before.is_none_or(|b| (v - b).abs() > self.tolerance) {
            return None;
        }
        let left = self.jumped.take()?;
        tracing::trace!(epoch = self.epoch, "source clock jump undone");
        let undone = self.epoch;
        self.frozen.retain(|(e, _)| *e != left.epoch);
        self.epoch = left.epoch;
        self.window = left.window;
        self.last = left.last;
        self.suspect = None;
        Some(undone)
    }

    fn new_epoch(&mut self, offset: f64) {
        tracing::trace!(epoch = self.epoch, "source clock jumped: new epoch");
        self.frozen.push_back((self.epoch, offset));
        while self.frozen.len() > FROZEN {
            self.frozen.pop_front();
        }
        self.epoch = self.epoch.wrapping_add(1);
        self.window.clear();
        self.last = None;
    }

    /// Whether a spurt start is suspect: only then does the next packet read the path's delay
    /// (see [`Self::observe_on_path`]).
    pub fn suspects(&self) -> bool {
        self.suspect.is_some()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The offset of `epoch` (timeline position = offset + RTP time), if still known.
    pub fn offset(&self, epoch: u32) -> Option<f64> {
        if epoch == self.epoch {
            return self.last.map(|e| e.v);
        }
        self.frozen
            .iter()
            .find(|(e, _)| *e == epoch)
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests;
