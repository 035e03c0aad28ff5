//! Which remote source occupies which m-line: a pure table with recycling.
//!
//! SDP cannot remove an m-line, so a conference with churn would grow its offer (and the
//! renegotiation cost) with every join. Instead a removed source frees its slot, and the next
//! new source takes the lowest free slot: the m-line count is the peak number of concurrent
//! sources, never the total ever seen. Sources keep their slot for as long as they exist, so
//! a renegotiation only touches the m-lines that changed.
//!
//! In: the full desired SSRC set (after every source-add, source-remove or MUC leave). Out:
//! the per-slot assignment ([`SlotTable::lines`]) that `sdp` renders, and what changed.

use std::collections::HashSet;

/// The m-line assignment of one media session.
#[derive(Debug, Default, Clone)]
pub(crate) struct SlotTable {
    slots: Vec<Option<u32>>,
}

/// What one [`SlotTable::assign`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SlotChange {
    /// `(slot, ssrc)` of sources that got a slot.
    pub(crate) added: Vec<(usize, u32)>,
    /// `(slot, ssrc)` of sources that lost theirs.
    pub(crate) removed: Vec<(usize, u32)>,
    /// Whether new m-lines were appended.
    pub(crate) grew: bool,
}

impl SlotChange {
    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

impl SlotTable {
    /// Makes the table hold exactly `ssrcs` (duplicates ignored, order kept for new ones).
    pub(crate) fn assign(&mut self, ssrcs: &[u32]) -> SlotChange {
        let wanted: HashSet<u32> = ssrcs.iter().copied().collect();
        let mut change = SlotChange::default();
        let mut present = HashSet::with_capacity(self.slots.len());
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            if let Some(ssrc) = *entry {
                if wanted.contains(&ssrc) {
                    present.insert(ssrc);
                } else {
                    change.removed.push((slot, ssrc));
                    *entry = None;
                }
            }
        }
        let mut free = 0;
        for &ssrc in ssrcs {
            if !present.insert(ssrc) {
                continue;
            }
            while free < self.slots.len() && self.slots.get(free).is_some_and(Option::is_some) {
                free += 1;
            }
            if free == self.slots.len() {
                self.slots.push(None);
                change.grew = true;
            }
            if let Some(entry) = self.slots.get_mut(free) {
                *entry = Some(ssrc);
                change.added.push((free, ssrc));
            }
        }
        change
    }

    /// The per-m-line assignment, `None` for a free slot.
    pub(crate) fn lines(&self) -> &[Option<u32>] {
        &self.slots
    }

    /// The number of m-lines.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests;
