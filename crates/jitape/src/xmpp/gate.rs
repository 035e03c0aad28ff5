//! The IQ gate: how fast one sender may send jitape IQ requests (`limits.iq_rate`, with a
//! burst of `limits.iq_burst`), before anything else looks at them.
//!
//! Pure: time is a parameter. Owned by the router, which answers a refused request with
//! `<resource-constraint/>` and counts it. The focus (Jicofo's occupant, whose Jingle the
//! recording needs), the MUC services (the Prosody module) and the server are exempt.

use std::collections::HashMap;
use std::time::Instant;

use super::stanza::Header;

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
mod tests {
    use super::*;
    use minidom::Element;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut l = IqLimiter::new(10, 5, 100);
        let first: Vec<bool> = (0..7).map(|_| l.allow("mallory", t0)).collect();
        assert_eq!(first, [true, true, true, true, true, false, false]);
        // 10 per second: one more every 100 ms.
        assert!(!l.allow("mallory", t0 + Duration::from_millis(50)));
        assert!(l.allow("mallory", t0 + Duration::from_millis(160)));
        assert!(!l.allow("mallory", t0 + Duration::from_millis(170)));
        // However long the pause, the allowance never exceeds the burst.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..50).filter(|_| l.allow("mallory", later)).count(), 5);
        // Senders have separate buckets.
        assert!(l.allow("alice", t0));
    }

    #[test]
    fn the_sender_map_stays_bounded_under_a_flood_of_new_names() {
        let t0 = Instant::now();
        let mut l = IqLimiter::new(1, 2, 1000);
        for i in 0..20_000 {
            assert!(l.allow(&format!("n{i}"), t0 + Duration::from_secs(i)));
        }
        assert!(l.senders() <= 1000, "{}", l.senders());
        // All at one instant: nobody's bucket is full, so new names are refused instead.
        let t1 = t0 + Duration::from_secs(100_000);
        let allowed = (0..20_000)
            .filter(|i| l.allow(&format!("m{i}"), t1))
            .count();
        assert!(l.senders() <= 1000);
        assert_eq!(allowed, 1000);
    }

    fn header(xml: &str) -> Header {
        let el: Element = xml.parse().unwrap();
        Header::of(&el).unwrap()
    }

    #[test]
    fn occupants_are_limited_and_the_focus_module_and_server_are_not() {
        let t0 = Instant::now();
        let mut g = IqGate::new(1, 3, "focus", &["muc.example".to_string()]);
        let iq = |from: &str, ty: &str| {
            header(&format!(
                "<iq xmlns='jabber:component:accept' type='{ty}' id='1' from='{from}' to='rec.example'/>"
            ))
        };
        let count = |g: &mut IqGate, h: &Header| (0..50).filter(|_| g.admit(h, t0)).count();
        assert_eq!(count(&mut g, &iq("room@muc.example/mallory", "get")), 3);
        assert_eq!(count(&mut g, &iq("room@muc.example/alice", "set")), 3);
        assert_eq!(count(&mut g, &iq("other@muc.example/mallory", "get")), 3);
        assert_eq!(count(&mut g, &iq("mallory@evil.example/x", "get")), 3);
        assert_eq!(count(&mut g, &iq("room@muc.example/focus", "set")), 50);
        assert_eq!(count(&mut g, &iq("muc.example", "get")), 50);
        assert_eq!(count(&mut g, &iq("example", "get")), 50);
        // Answers and other stanzas are never limited.
        assert_eq!(count(&mut g, &iq("room@muc.example/mallory", "result")), 50);
        let presence = header(
            "<presence xmlns='jabber:component:accept' from='room@muc.example/mallory' to='rec.example'/>",
        );
        assert_eq!(count(&mut g, &presence), 50);
    }
}
