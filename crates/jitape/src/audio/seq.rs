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
mod tests;
