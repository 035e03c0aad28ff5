//! Whether jitape keeps up: the load guard. A recorder that cannot keep up must not damage
//! every recording a little; it refuses new conferences, and if that is not enough, ends
//! whole conferences (the newest first, each finalized with the reason `overload`), and says
//! so in `/ready`, the metrics and the log.
//!
//! The signal is the intake delay: how long after the kernel received a packet its
//! conference took it in. While that stays well inside the lateness window nothing is lost;
//! past half of it, packets are about to miss their place.
//!
//! In: each period, the worst intake delay the conferences reported (the metrics' running
//! maximum, reset here). Out: a `load_ok` watch the router obeys (no new recording while
//! strained), shed requests to the router, gauges. [`Guard::step`] is pure.

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
    /// Consecutive periods at or above the strain and the overload thresholds: a single
    /// stall (the window absorbs it) is not a lasting overload.
    strained_for: u32,
    overloaded_for: u32,
}

/// What one period decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub level: Level,
    /// End one more conference now.
    pub shed: bool,
}

/// Periods of calm before the level goes back down.
const CALM_PERIODS: u32 = 10;
/// Periods in a row a level must be seen before it counts: a one-off stall of jitape, which
/// the lateness window absorbs, shows for one period while its backlog drains.
const STRAIN_PERIODS: u32 = 2;
const OVERLOAD_PERIODS: u32 = 3;

impl Guard {
    pub fn new(window: Duration) -> Self {
        Guard {
            window,
            level: Level::Normal,
            calm: 0,
            strained_for: 0,
            overloaded_for: 0,
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// One period with `worst` as the largest intake delay any conference saw.
    pub fn step(&mut self, worst: Duration) -> Step {
        let strain = self.window / 5;
        let overload = self.window / 2;
        let calm = self.window / 10;
        self.overloaded_for = if worst >= overload {
            self.overloaded_for + 1
        } else {
            0
        };
        self.strained_for = if worst >= strain {
            self.strained_for + 1
        } else {
            0
        };
        let seen = if self.overloaded_for >= OVERLOAD_PERIODS {
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
        Step {
            level: self.level,
            shed: seen == Level::Overloaded,
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
        load_ok.send_replace(step.level == Level::Normal);
        if step.shed {
            metrics.conferences_shed.inc();
            if control.send(Control::Shed).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
