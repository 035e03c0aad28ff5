//! The IQ gate: how fast one sender may send jitape IQ requests (`limits.iq_rate`, with a
//! burst of `limits.iq_burst`), before anything else looks at them.
//!
//! Pure: time is a parameter. Owned by the router, which answers a refused request with
//! `<resource-constraint/>` and counts it. The focus (Jicofo's occupant, whose Jingle the
//! recording needs), the MUC services (the Prosody module) and the server are exempt.

use std::collections::HashMap;
use std::time::Instant;

use crate::xmpp::stanza::Header;

/// One token bucket per sender. A sender starts with a full bucket of `burst` tokens,
/// each request takes one, tokens come back at `rate` per second.
#[derive(Debug)]
pub struct IqLimiter {
    rate: f64,
    burst: f64,
    max_senders: usize,
    buckets: HashMap<String, (f64, Instant)>,
}

impl IqLimiter {
    pub fn new(rate: u32, burst: u32, max_senders: usize) -> Self {
        IqLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            max_senders,
            buckets: HashMap::new(),
        }
    }

    /// May `sender` have one more request at `now`?
    pub fn allow(&mut self, sender: &str, now: Instant) -> bool {
        if self.buckets.len() >= self.max_senders && !self.buckets.contains_key(sender) {
            self.forget_full(now);
            if self.buckets.len() >= self.max_senders {
                return false; // thousands of senders flooding at once: no new ones
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let (tokens, last) = self
            .buckets
            .entry(sender.to_string())
            .or_insert((burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * rate;
        *tokens = (*tokens + refill).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Senders tracked now.
    pub fn senders(&self) -> usize {
        self.buckets.len()
    }

    /// Forget senders whose bucket is full again (they behave like new ones).
    fn forget_full(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
        });
    }
}

/// Senders tracked at most (across all rooms).
const MAX_SENDERS: usize = 65_536;

/// Which IQ requests are rate-limited, and the limiter.
#[derive(Debug)]
pub struct IqGate {
    limiter: IqLimiter,
    focus_nick: String,
    muc_domains: Vec<String>,
}

impl IqGate {
    pub fn new(rate: u32, burst: u32, focus_nick: &str, muc_domains: &[String]) -> Self {
        IqGate {
            limiter: IqLimiter::new(rate, burst, MAX_SENDERS),
            focus_nick: focus_nick.to_string(),
            muc_domains: muc_domains.to_vec(),
        }
    }

    /// Whether this stanza may pass: anything but an IQ request does; an IQ request from a
    /// room occupant (other than the focus) or a foreign entity takes a token.
    pub fn admit(&mut self, h: &Header, now: Instant) -> bool {
        if !h.is_iq_request() {
            return true;
        }
        let Some(from) = h.from.as_ref() else {
            return true;
        };
        let on_muc = self.muc_domains.iter().any(|d| d == from.domain());
        if on_muc && (from.node().is_none() || from.resource.as_deref() == Some(&self.focus_nick)) {
            return true;
        }
        if from.node().is_none() && from.resource.is_none() {
            return true; // a server or component domain (Prosody's own pings)
        }
        self.limiter.allow(&from.full(), now)
    }
}

#[cfg(test)]
mod tests;
