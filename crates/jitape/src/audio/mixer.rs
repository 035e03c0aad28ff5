//! Mixing: the tracks' sum through a peak limiter, to 16-bit PCM that never wraps.
//!
//! In: per-track sums (`i32`, may exceed 16 bits). Out: the mono mix. Below the ceiling the
//! mix is the exact sum (one speaker passes bit-exact). Above it a peak envelope with an
//! instant attack and a slow release sets the gain, so the output stays under the ceiling
//! and the gain changes smoothly afterwards (no wrap, no hard clipping).
//!
//! Cost: while the envelope is at or below the ceiling its exact value cannot change any
//! output (a sample above the ceiling sets it to that sample's level whatever it was), so a
//! block of samples all at or below the ceiling is copied as it is, without the per-sample
//! envelope. Most of a conference (silence, one speaker) takes that path.

/// Release time constant of the limiter's envelope.
const RELEASE_SECONDS: f32 = 0.08;

/// Samples checked at a time for the copy path.
const BLOCK: usize = 256;

#[derive(Debug)]
pub(super) struct Limiter {
    ceiling: f32,
    /// The largest integer level not above `ceiling`.
    ceiling_int: u32,
    release: f32,
    envelope: f32,
    /// Samples attenuated so far.
    pub limited: u64,
}

impl Limiter {
    pub fn new(rate: u32, ceiling_dbfs: f32) -> Self {
        let ceiling = 32767.0 * 10f32.powf(ceiling_dbfs / 20.0);
        let release = (-1.0 / (RELEASE_SECONDS * rate as f32)).exp();
        Limiter {
            ceiling,
            ceiling_int: ceiling.floor() as u32,
            release,
            envelope: 0.0,
            limited: 0,
        }
    }

    /// Forgets the envelope (after a skip: what follows is not continuous with the past).
    pub fn reset(&mut self) {
        self.envelope = 0.0;
    }

    /// Limits `sum`, appending it to `out`.
    pub fn process(&mut self, sum: &[i32], out: &mut Vec<i16>) {
        out.reserve(sum.len());
        for block in sum.chunks(BLOCK) {
            let peak = block.iter().fold(0u32, |m, &x| m.max(x.unsigned_abs()));
            if self.envelope <= self.ceiling && peak <= self.ceiling_int {
                // An envelope at or below the ceiling only decays further, and a sample
                // above it sets the envelope to its own level whatever the envelope was:
                // any value up to the ceiling gives the same output from here on. 0 also
                // spares the decay's denormals during long silences.
                self.envelope = 0.0;
                // |x| <= ceiling < 32768: the exact sum.
                out.extend(block.iter().map(|&x| x as i16));
            } else {
                self.limit(block, out);
            }
        }
    }

    /// The envelope, sample by sample.
    fn limit(&mut self, sum: &[i32], out: &mut Vec<i16>) {
        let mut env = self.envelope;
        let mut limited = 0u64;
        for &x in sum {
            let a = (x as f32).abs();
            env = (env * self.release).max(a);
            let y = if env > self.ceiling {
                limited += 1;
                (x as f32 * (self.ceiling / env))
                    .round()
                    .clamp(-32768.0, 32767.0) as i16
            } else {
                // |x| <= env <= ceiling < 32768: the exact sum, no float rounding needed.
                x as i16
            };
            out.push(y);
        }
        self.envelope = env;
        self.limited += limited;
    }
}

/// A track's sum as 16-bit PCM (its sources seldom overlap; saturates if they do).
pub(super) fn to_pcm16(sum: &[i32]) -> Vec<i16> {
    sum.iter().map(|&x| x.clamp(-32768, 32767) as i16).collect()
}

#[cfg(test)]
mod tests;
