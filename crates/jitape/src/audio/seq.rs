//! RTP counter arithmetic for one source: 16-bit sequence numbers and 32-bit timestamps
//! extended to `i64` across wrap-around, and the history of played sequence numbers that
//! tells a duplicate from a late packet.
//!
//! In: raw header fields. Out: extended values (monotonic in the sender's order) and
//! duplicate checks.

/// Extends a wrapping counter of `BITS` bits relative to the highest value seen.
#[derive(Debug, Clone)]
pub(super) struct Unwrapper<const BITS: u32> {
    highest: Option<i64>,
}

pub(super) type SeqUnwrapper = Unwrapper<16>;
pub(super) type TsUnwrapper = Unwrapper<32>;

impl<const BITS: u32> Unwrapper<BITS> {
    pub fn new() -> Self {
        Unwrapper { highest: None }
    }

    /// The extended value of `raw`: the one nearest to the highest extended value so far.
    pub fn extend(&mut self, raw: u32) -> i64 {
        let Some(highest) = self.highest else {
            let first = i64::from(raw);
            self.highest = Some(first);
            return first;
        };
        let modulus = 1i64 << BITS;
        let mask = modulus - 1;
        let mut diff = (i64::from(raw) - highest) & mask;
        if diff >= modulus / 2 {
            diff -= modulus;
        }
        let value = highest + diff;
        if value > highest {
            self.highest = Some(value);
        }
        value
    }

    pub fn highest(&self) -> Option<i64> {
        self.highest
    }
}

const HISTORY: usize = 1024;

/// The last [`HISTORY`] sequence numbers that were received and played.
#[derive(Debug)]
pub(super) struct History {
    slots: Box<[i64; HISTORY]>,
}

impl History {
    pub fn new() -> Self {
        History {
            slots: Box::new([i64::MIN; HISTORY]),
        }
    }

    fn slot(seq: i64) -> usize {
        // rem_euclid of a positive modulus is in 0..HISTORY.
        seq.rem_euclid(HISTORY as i64) as usize
    }

    pub fn mark(&mut self, seq: i64) {
        if let Some(slot) = self.slots.get_mut(Self::slot(seq)) {
            *slot = seq;
        }
    }

    pub fn contains(&self, seq: i64) -> bool {
        self.slots.get(Self::slot(seq)) == Some(&seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_forward_and_back() {
        let mut u = SeqUnwrapper::new();
        assert_eq!(u.extend(65534), 65534);
        assert_eq!(u.extend(65535), 65535);
        assert_eq!(u.extend(0), 65536);
        assert_eq!(u.extend(1), 65537);
        // a reordered packet from before the wrap
        assert_eq!(u.extend(65533), 65533);
        assert_eq!(u.highest(), Some(65537));
        assert_eq!(u.extend(3), 65539);
    }

    #[test]
    fn timestamp_wraps_and_goes_below_zero() {
        let mut u = TsUnwrapper::new();
        let start = u32::MAX - 959;
        assert_eq!(u.extend(start), i64::from(start));
        assert_eq!(u.extend(start.wrapping_add(960)), i64::from(start) + 960);
        assert_eq!(u.extend(start.wrapping_add(1920)), i64::from(start) + 1920);
        let mut v = TsUnwrapper::new();
        assert_eq!(v.extend(100), 100);
        assert_eq!(v.extend(u32::MAX - 99), -100);
        assert_eq!(v.highest(), Some(100));
    }

    #[test]
    fn history_remembers_recent_sequence_numbers_only() {
        let mut h = History::new();
        h.mark(5);
        assert!(h.contains(5));
        assert!(!h.contains(6));
        h.mark(5 + HISTORY as i64);
        assert!(!h.contains(5));
        h.mark(-3);
        assert!(h.contains(-3));
    }
}
