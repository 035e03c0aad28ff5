//! The values that flow between the stages, as types: a source's [`Ssrc`], a recording's
//! [`SampleRate`] and its [`LateWindow`]. Each is checked once, where it is made (`TryFrom`),
//! so the stages that take one need not check it again.
//!
//! In: raw numbers from the configuration, the wire or a sidecar. Out: the typed values or a
//! [`ValueError`] saying what was wrong. Pure; no I/O.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A value outside what jitape can work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("sample rate {0} Hz: Opus decodes at 8000, 12000, 16000, 24000 or 48000 Hz only")]
    SampleRate(u32),
    #[error("late window {0:?}: must be between 20ms and 10s")]
    LateWindow(Duration),
}

/// An RTP synchronization source: one sender's stream (RFC 3550), as Jingle signals it and
/// RTP carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An SSRC is compared with the number the wire carries.
impl PartialEq<u32> for Ssrc {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl From<u32> for Ssrc {
    fn from(v: u32) -> Self {
        Ssrc(v)
    }
}

/// A recording's sample rate: one of the rates Opus decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct SampleRate(u32);

impl SampleRate {
    /// Every rate Opus decodes to, highest first.
    pub const ALL: [SampleRate; 5] = [
        SampleRate(48_000),
        SampleRate(24_000),
        SampleRate(16_000),
        SampleRate(12_000),
        SampleRate(8_000),
    ];
    /// Opus's own rate, the default.
    pub const OPUS: SampleRate = SampleRate(48_000);

    /// Samples per second.
    pub const fn hz(self) -> u32 {
        self.0
    }

    /// Samples in `d` (rounded down).
    pub fn samples_in(self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.0) / 1_000_000_000) as u64
    }
}

impl TryFrom<u32> for SampleRate {
    type Error = ValueError;
    fn try_from(hz: u32) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|r| r.0 == hz)
            .ok_or(ValueError::SampleRate(hz))
    }
}

impl From<SampleRate> for u32 {
    fn from(r: SampleRate) -> u32 {
        r.0
    }
}

impl fmt::Display for SampleRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz", self.0)
    }
}

/// How long a packet may arrive late and still be placed where it belongs: how far
/// rendering stays behind real time (`recording.late_window`, 20 ms to 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LateWindow(Duration);

impl LateWindow {
    pub const MIN: Duration = Duration::from_millis(20);
    pub const MAX: Duration = Duration::from_secs(10);

    pub const fn get(self) -> Duration {
        self.0
    }
}

impl TryFrom<Duration> for LateWindow {
    type Error = ValueError;
    fn try_from(d: Duration) -> Result<Self, ValueError> {
        if (Self::MIN..=Self::MAX).contains(&d) {
            Ok(LateWindow(d))
        } else {
            Err(ValueError::LateWindow(d))
        }
    }
}

impl Default for LateWindow {
    fn default() -> Self {
        LateWindow(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests;
