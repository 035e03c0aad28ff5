//! Small cross-cutting helpers: rate-limited warnings for hostile or broken input, and the
//! clock the conference tasks run on.
//!
//! A peer that sends garbage many times a second must not flood the log: each kind of
//! complaint is logged at warn a few times per minute, then counted and summarised.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

const WINDOW: Duration = Duration::from_secs(60);
const PER_WINDOW: u32 = 5;

struct Window {
    start: Instant,
    count: u32,
}

fn windows() -> &'static Mutex<HashMap<&'static str, Window>> {
    static W: OnceLock<Mutex<HashMap<&'static str, Window>>> = OnceLock::new();
    W.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Now on the clock the conference tasks and their timers run on: tokio's, so that tests run
/// conferences on paused time. The same as `std::time::Instant::now()` outside such tests,
/// which the kernel's packet arrival times (and the audio timeline placing them) rely on.
/// Moments that reach a conference from elsewhere (a stanza's arrival on the XMPP link, a
/// router decision) are taken on it too.
pub fn task_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Decide whether the `n`-th event of a window is logged; pure, for tests.
pub fn admit(window: &mut (Instant, u32), now: Instant) -> (bool, Option<u32>) {
    let mut suppressed = None;
    if now.duration_since(window.0) >= WINDOW {
        if window.1 > PER_WINDOW {
            suppressed = Some(window.1 - PER_WINDOW);
        }
        *window = (now, 0);
    }
    window.1 += 1;
    (window.1 <= PER_WINDOW, suppressed)
}

/// Log `msg` at warn unless `kind` was logged `PER_WINDOW` times this minute.
pub fn log_limited(kind: &'static str, msg: std::fmt::Arguments<'_>) {
    let now = Instant::now();
    let (log, suppressed) = {
        let mut map = match windows().lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let w = map.entry(kind).or_insert(Window {
            start: now,
            count: 0,
        });
        let mut pair = (w.start, w.count);
        let r = admit(&mut pair, now);
        (w.start, w.count) = pair;
        r
    };
    if let Some(n) = suppressed {
        warn!(
            kind,
            suppressed = n,
            "similar warnings were suppressed in the last minute"
        );
    }
    if log {
        warn!("{msg}");
    } else {
        debug!("{msg}");
    }
}

#[cfg(test)]
mod tests;
