//! Voice activity of one track: speaking segments from the decoded signal's energy.
//!
//! In: the track's rendered samples (its sources' sum), in timeline order. Out: Start/End
//! events. Energy is measured per 10 ms block on the absolute sample grid; two voiced blocks
//! in a row start a segment (at the first one), and a segment ends at its last voiced block
//! once `hangover` has passed without voice, so the pauses inside speech do not split it.
//! (Packets whose RFC 6464 level is 127 decode to silence and so never count as voice; the
//! bridge drops most of them anyway.)

use super::{SpeechEvent, TrackId};

/// Voiced blocks in a row needed to start a segment (rejects single clicks).
const MIN_ON_BLOCKS: u32 = 2;

#[derive(Debug)]
pub(super) struct VoiceActivity {
    track: TrackId,
    block: u64,
    /// Mean square (in 16-bit units²) at or above which a block is voiced.
    threshold: f64,
    hangover: u64,
    /// Next sample expected.
    pos: u64,
    acc: i64,
    acc_n: u64,
    run: u32,
    run_start: u64,
    /// The end of the last voiced block while speaking.
    speaking: Option<u64>,
}

impl VoiceActivity {
    pub fn new(
        track: TrackId,
        rate: u32,
        threshold_dbfs: f32,
        hangover_samples: u64,
        pos: u64,
    ) -> Self {
        let rms = 32768.0 * 10f64.powf(f64::from(threshold_dbfs) / 20.0);
        VoiceActivity {
            track,
            block: u64::from(rate / 100).max(1),
            threshold: rms * rms,
            hangover: hangover_samples,
            pos,
            acc: 0,
            acc_n: 0,
            run: 0,
            run_start: 0,
            speaking: None,
        }
    }

    /// Takes the samples that start at timeline offset `start`.
    pub fn process(&mut self, start: u64, samples: &[i32], events: &mut Vec<SpeechEvent>) {
        self.feed(start, samples.len(), events, |from, to| {
            samples
                .get(from..to)
                .unwrap_or_default()
                .iter()
                .map(|&x| i64::from(x) * i64::from(x))
                .sum::<i64>()
        });
    }

    /// Takes `n` samples of digital silence that start at `start`: the same decisions as
    /// [`Self::process`] on zeros, without touching a sample.
    pub fn process_silence(&mut self, start: u64, n: usize, events: &mut Vec<SpeechEvent>) {
        self.feed(start, n, events, |_, _| 0);
    }

    /// `n` samples from `start` on, block by block; `energy(from, to)` is the sum of squares
    /// of samples `from..to` (indices into the `n`).
    fn feed(
        &mut self,
        start: u64,
        n: usize,
        events: &mut Vec<SpeechEvent>,
        energy: impl Fn(usize, usize) -> i64,
    ) {
        if start != self.pos {
            self.acc = 0;
            self.acc_n = start % self.block;
            self.pos = start;
        }
        let mut at = 0;
        while at < n {
            let to_boundary = (self.block - self.pos % self.block) as usize;
            let take = to_boundary.min(n - at);
            self.acc += energy(at, at + take);
            self.acc_n += take as u64;
            self.pos += take as u64;
            at += take;
            if self.pos.is_multiple_of(self.block) {
                let voiced = self.acc as f64 >= self.threshold * self.acc_n.max(1) as f64;
                self.decide(self.pos - self.block, self.pos, voiced, events);
                self.acc = 0;
                self.acc_n = 0;
            }
        }
    }

    /// Takes `n` samples of silence from `start` on without looking at them.
    pub fn skip(&mut self, start: u64, n: u64, events: &mut Vec<SpeechEvent>) {
        let end = start + n;
        if let Some(last) = self.speaking
            && end.saturating_sub(last) >= self.hangover
        {
            events.push(SpeechEvent::End {
                track: self.track,
                sample: last,
            });
            self.speaking = None;
        }
        self.run = 0;
        self.acc = 0;
        self.acc_n = end % self.block;
        self.pos = end;
    }

    /// Ends an open segment (the recording stops).
    pub fn finish(&mut self, events: &mut Vec<SpeechEvent>) {
        if let Some(last) = self.speaking.take() {
            events.push(SpeechEvent::End {
                track: self.track,
                sample: last,
            });
        }
        self.run = 0;
    }

    fn decide(
        &mut self,
        block_start: u64,
        block_end: u64,
        voiced: bool,
        events: &mut Vec<SpeechEvent>,
    ) {
        let track = self.track;
        if voiced {
            if self.speaking.is_some() {
                self.speaking = Some(block_end);
                return;
            }
            if self.run == 0 {
                self.run_start = block_start;
            }
            self.run += 1;
            if self.run >= MIN_ON_BLOCKS {
                events.push(SpeechEvent::Start {
                    track,
                    sample: self.run_start,
                });
                self.speaking = Some(block_end);
                self.run = 0;
            }
            return;
        }
        self.run = 0;
        if let Some(last) = self.speaking
            && block_end.saturating_sub(last) >= self.hangover
        {
            events.push(SpeechEvent::End {
                track,
                sample: last,
            });
            self.speaking = None;
        }
    }
}

#[cfg(test)]
mod tests;
