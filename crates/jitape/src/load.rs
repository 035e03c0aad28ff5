//! Whether jitape keeps up: the load guard. A recorder that cannot keep up must not damage
//! every recording a little; it refuses new conferences, and if that is not enough, ends
//! whole conferences (the newest first, each finalized with the reason `overload`), and says
//! so in `/ready`, the metrics and the log.
//!
//! The signal is the intake delay: how long after the kernel received a packet its
//! conference took it in. While that stays well inside the lateness window nothing is lost;
//! past half of it, packets are about to miss their place.
//!
//! Refusing starts early (a delay over a tenth of the window for two periods: a ramp of new
//! conferences costs its CPU only once their speakers talk, so a late refusal comes after
//! the damage is booked). Shedding is sized: a backlog that grows by g seconds per second
//! means the conferences bring (1 + g) times the work jitape gets through, so enough of
//! them end at once to bring the rest under that, with a margin for the backlog to drain;
//! the guard then waits to see the effect before shedding again, and sheds nothing while the
//! backlog is falling.
//!
//! In: each period, the worst intake delay the conferences reported (the metrics' running
//! maximum, reset here). Out: a `load_ok` watch the router obeys (no new recording while
//! busy), shed requests (a share of the conferences) to the router, gauges.
//! [`Guard::step`] is pure.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::router::Control;

/// How often the guard looks.
pub const PERIOD: Duration = Duration::from_secs(1);

/// How loaded jitape is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Normal,
    /// The intake delay is a noticeable part of the lateness window: no new recording.
    Strained,
    /// Packets are close to missing their place: conferences are shed, newest first.
    Overloaded,
}

/// The load guard's state. Pure: the delays and the period are its inputs.
#[derive(Debug)]
pub struct Guard {
    window: Duration,
    level: Level,
    /// Consecutive periods under the calm threshold.
    calm: u32,
    /// Consecutive periods at or above the calm, strain and overload thresholds: a single
    /// stall (the window absorbs it) is not a lasting overload.
    busy_for: u32,
    strained_for: u32,
    overloaded_for: u32,
    /// The worst delays of the last periods, oldest first (at most [`TREND_PERIODS`] + 1):
    /// how fast the backlog grows.
    recent: std::collections::VecDeque<Duration>,
    /// Periods to wait after a shed before judging again: the conferences ended need time
    /// to stop, and the backlog to show what is left.
    cooldown: u32,
}

/// What one period decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub level: Level,
    /// Whether a new recording may start now. Stricter than the level: a ramp of new
    /// conferences shows as a delay that keeps rising long before it is a strain, and each
    /// conference admitted then is one more to shed later.
    pub admit: bool,
    /// End this share of the conferences now (percent, newest first; 0: none). Enough to
    /// bring the work back under what the machine does, judged by how fast the backlog
    /// grows.
    pub shed_percent: u32,
}

/// Periods of calm before the level goes back down.
const CALM_PERIODS: u32 = 10;
/// Periods in a row a level must be seen before it counts: a one-off stall of jitape, which
/// the lateness window absorbs, shows for one period while its backlog drains.
const STRAIN_PERIODS: u32 = 2;
const OVERLOAD_PERIODS: u32 = 3;
/// Over how many periods the backlog's growth is judged.
const TREND_PERIODS: usize = 3;
/// A backlog that grows this fast reaches the window within these many periods: overloaded
/// now, not when it is there.
const LOOKAHEAD_PERIODS: f64 = 3.0;
/// After shedding, keep the work at this share of what the machine did: the backlog must
/// drain, not merely stop growing.
const TARGET_SHARE: f64 = 0.85;
/// Periods after a shed before the next one.
const SHED_COOLDOWN: u32 = 2;
/// At most this share at once: a growth judged over a few periods can also be a stall of
/// the whole machine (a burst of other work, a frozen disk), and a conference ended cannot
/// be taken back. A real overload that needs more gets it at the next step.
const MAX_SHED_PERCENT: f64 = 34.0;

impl Guard {
    pub fn new(window: Duration) -> Self {
        Guard {
            window,
            level: Level::Normal,
            calm: 0,
            busy_for: 0,
            strained_for: 0,
            overloaded_for: 0,
            recent: std::collections::VecDeque::with_capacity(TREND_PERIODS + 1),
            cooldown: 0,
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// How fast the backlog grew over the last `periods` (at most the recent ones): seconds
    /// of delay per second (0.3: the conferences bring 1.3 times the work jitape gets
    /// through).
    fn growth(&self, periods: usize) -> f64 {
        let n = periods.min(self.recent.len());
        if n < 2 {
            return 0.0;
        }
        let first = self.recent[self.recent.len() - n];
        let last = self.recent[self.recent.len() - 1];
        let span = (n - 1) as f64 * PERIOD.as_secs_f64();
        (last.as_secs_f64() - first.as_secs_f64()) / span
    }

    /// One period with `worst` as the largest intake delay any conference saw.
    pub fn step(&mut self, worst: Duration) -> Step {
        let strain = self.window / 5;
        let overload = self.window / 2;
        let calm = self.window / 10;
        if self.recent.len() > TREND_PERIODS {
            self.recent.pop_front();
        }
        self.recent.push_back(worst);
        let count = |n: u32, over: bool| if over { n + 1 } else { 0 };
        self.busy_for = count(self.busy_for, worst >= calm);
        self.strained_for = count(self.strained_for, worst >= strain);
        self.overloaded_for = count(self.overloaded_for, worst >= overload);
        // Judged over the strain only: a quiet period before it says nothing of the trend.
        let growth = self.growth(self.strained_for as usize);
        // A lasting strain whose backlog grows fast enough to reach the window soon.
        let heading_over = self.strained_for >= STRAIN_PERIODS
            && worst.as_secs_f64() + growth * LOOKAHEAD_PERIODS * PERIOD.as_secs_f64()
                >= self.window.as_secs_f64();
        let seen = if self.overloaded_for >= OVERLOAD_PERIODS || heading_over {
            Level::Overloaded
        } else if self.strained_for >= STRAIN_PERIODS {
            Level::Strained
        } else {
            Level::Normal
        };
        if seen > self.level {
            self.level = seen;
            self.calm = 0;
        } else if worst < calm {
            self.calm += 1;
            if self.calm >= CALM_PERIODS {
                self.level = Level::Normal;
            }
        } else {
            self.calm = 0;
            // Still above calm: an overload that eased stays strained at least.
            if self.level == Level::Overloaded && seen < Level::Overloaded {
                self.level = Level::Strained;
            }
        }
        // A backlog smaller than the period before is draining: what was shed, or a stall
        // that ended, is taking effect, and ending more now would end conferences the machine
        // can carry (at 268 conferences a second third went while the delay fell from 5.4 s
        // to 2.8 s, and it was 9 ms a period later). Judged again the next period.
        let draining = self
            .recent
            .len()
            .checked_sub(2)
            .is_some_and(|before| worst < self.recent[before]);
        let mut shed_percent = 0;
        if self.cooldown > 0 {
            self.cooldown -= 1;
        } else if seen == Level::Overloaded && !draining {
            // The work is (1 + growth) times what jitape gets through; keep TARGET_SHARE of
            // that much. A backlog that stands still still has to drain.
            let keep = TARGET_SHARE / (1.0 + growth.max(0.0));
            // (Less a hair, so that 15.000000000000002 % is 15 %.)
            shed_percent = ((1.0 - keep) * 100.0 - 1e-9)
                .ceil()
                .clamp(1.0, MAX_SHED_PERCENT) as u32;
            self.cooldown = SHED_COOLDOWN;
        }
        Step {
            level: self.level,
            admit: self.level == Level::Normal && self.busy_for < STRAIN_PERIODS,
            shed_percent,
        }
    }
}

/// The guard's task.
pub async fn run(
    window: Duration,
    metrics: Arc<Metrics>,
    load_ok: watch::Sender<bool>,
    control: mpsc::Sender<Control>,
) {
    let mut guard = Guard::new(window);
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let worst = Duration::from_micros(metrics.take_intake_delay_us());
        let before = guard.level();
        let step = guard.step(worst);
        metrics.intake_delay_ms.set(worst.as_millis() as i64);
        metrics.load_level.set(step.level as i64);
        if step.level != before {
            match step.level {
                Level::Normal => info!("load back to normal: new recordings start again"),
                Level::Strained => warn!(
                    delay_ms = worst.as_millis() as u64,
                    "jitape is strained: packets wait {worst:?} before their conference takes them in; no new recording starts"
                ),
                Level::Overloaded => warn!(
                    delay_ms = worst.as_millis() as u64,
                    "jitape is overloaded: packets wait {worst:?}, close to the lateness window; ending conferences, newest first, to save the others"
                ),
            }
        }
        load_ok.send_replace(step.admit);
        if step.shed_percent > 0
            && control
                .send(Control::Shed {
                    percent: step.shed_percent,
                })
                .await
                .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
