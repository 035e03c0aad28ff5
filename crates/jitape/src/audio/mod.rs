//! The audio stage: received Opus RTP packets in, the conference's mixed PCM (plus optional
//! per-track stems and speaking events) out, on the recording's wall-clock sample timeline.
//!
//! In: [`RtpPacket`](crate::media::packet::RtpPacket)s per SSRC, in any order, with their
//! arrival instants; the SSRC → [`TrackId`] mapping from the Jingle sources. Out: [`Rendered`]
//! chunks from [`Timeline::render`], always exactly as many samples as wall time has passed
//! (minus the playout delay), so the file's duration equals the conference's duration.
//!
//! The stages, one file each: `seq` (RTP wrap-around, duplicate history), `clock` (each
//! source's RTP-time → timeline mapping, robust to jitter, following sender clock skew),
//! `decode` (libopus with FEC/PLC), `source` (jitter buffer and talk-spurt playout per SSRC),
//! `mixer` (sum with a peak limiter), `vad` (speaking segments per track) and `timeline`
//! (the owner of all of it). Nothing here does I/O or reads the clock: time is a parameter.

mod clock;
mod decode;
mod mixer;
mod seq;
mod source;
mod stats;
mod timeline;
mod vad;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::types::{LateWindow, SampleRate};

pub use stats::{AudioStats, TrackStats};
pub use timeline::Timeline;

/// The RTP clock rate of Opus (RFC 7587), whatever the output rate.
pub const RTP_CLOCK: u32 = 48_000;

/// A recorded participant's track: assigned by the conference, stable across SSRC changes
/// and rejoins, so one participant's audio continues on one track (and one stem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackId(pub u32);

impl std::fmt::Display for TrackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "track{}", self.0)
    }
}

/// Settings of the audio stage.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSettings {
    /// Output sample rate (48000, 24000, 16000 in practice).
    pub sample_rate: SampleRate,
    /// How far rendering stays behind real time: a packet arriving up to this late is still
    /// placed where it belongs (the jitter buffer's depth), and the time the anchor of a talk
    /// spurt can still be refined before its first sample is rendered. A recorder has no live
    /// listener, so this is seconds, not the tens of milliseconds a call would use.
    pub late_window: LateWindow,
    /// Longest loss concealed with FEC/PLC; longer gaps become digital silence.
    pub plc_max: Duration,
    /// Also return one buffer per track ([`Rendered::stems`]).
    pub stems: bool,
    /// The RTP payload type negotiated for Opus (Jitsi: 111). Others are not decoded. Set per
    /// session from the offer ([`Timeline::set_payload_types`]).
    pub opus_payload_type: u8,
    /// The RED (RFC 2198) payload type whose blocks are Opus, if the offer has one: its
    /// primary block is decoded and its redundant blocks fill lost packets.
    pub red_payload_type: Option<u8>,
    /// The sender's algorithmic codec delay, subtracted so speech lands where it was spoken
    /// (libopus `OPUS_APPLICATION_VOIP`, what browsers use: 6.5 ms).
    pub codec_delay: Duration,
    /// A source whose playout drifts further than this from its estimated clock is cut and
    /// re-anchored; smaller offsets are corrected gently, one sample at a time.
    pub max_drift: Duration,
    /// A 10 ms block of a track louder than this (RMS, dB full scale) counts as voice.
    pub vad_threshold_dbfs: f32,
    /// Pauses shorter than this do not end a speaking segment.
    pub vad_hangover: Duration,
    /// The limiter keeps the mix's peaks below this level (dB full scale).
    pub limiter_ceiling_dbfs: f32,
}

impl Default for AudioSettings {
    fn default() -> Self {
        AudioSettings {
            sample_rate: SampleRate::OPUS,
            late_window: LateWindow::default(),
            plc_max: Duration::from_millis(100),
            stems: false,
            opus_payload_type: 111,
            red_payload_type: None,
            codec_delay: Duration::from_micros(6_500),
            max_drift: Duration::from_millis(40),
            vad_threshold_dbfs: -45.0,
            // Well below the pauses between sentences (half a second and more), and never a
            // value a pause lands on by chance: the pause measured between 10 ms blocks is
            // the real one minus up to a block at each edge.
            vad_hangover: Duration::from_millis(300),
            limiter_ceiling_dbfs: -1.0,
        }
    }
}

impl AudioSettings {
    /// The audio stage's settings from `[recording]` (the rest are defaults).
    pub fn new(recording: &crate::config::RecordingConfig) -> Self {
        AudioSettings {
            sample_rate: recording.sample_rate,
            late_window: recording.late_window,
            stems: recording.stems,
            ..AudioSettings::default()
        }
    }

    /// Checks the values a config file can get wrong.
    pub fn validate(&self) -> Result<(), AudioError> {
        let bad = |key: &'static str, reason: &'static str| {
            Err(AudioError::InvalidConfig { key, reason })
        };
        if self.plc_max > Duration::from_secs(1) {
            return bad("plc_max", "must be at most 1 s");
        }
        if self.codec_delay > Duration::from_millis(100) {
            return bad("codec_delay", "must be at most 100 ms");
        }
        if self.max_drift < Duration::from_millis(5) || self.max_drift > Duration::from_secs(2) {
            return bad("max_drift", "must be between 5 ms and 2 s");
        }
        if !(-120.0..=0.0).contains(&self.vad_threshold_dbfs) {
            return bad("vad_threshold_dbfs", "must be between -120 and 0");
        }
        if !(-40.0..=0.0).contains(&self.limiter_ceiling_dbfs) {
            return bad("limiter_ceiling_dbfs", "must be between -40 and 0");
        }
        Ok(())
    }

    /// A duration in output samples (rounded down).
    pub(crate) fn samples(&self, d: Duration) -> u64 {
        self.sample_rate.samples_in(d)
    }
}

/// Errors of the audio stage.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    // -- unsupported / bad configuration
    #[error("audio setting `{key}` {reason}")]
    InvalidConfig {
        key: &'static str,
        reason: &'static str,
    },
    // -- the codec library refused (our bug or out of memory)
    #[error("opus decoder could not be created: {0}")]
    Codec(#[from] opus::Error),
}

/// A talk-spurt boundary of one track's voice activity, at a timeline sample offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechEvent {
    /// The track started speaking at `sample`.
    Start { track: TrackId, sample: u64 },
    /// The track stopped speaking at `sample` (end of its last voiced block, hangover excluded).
    End { track: TrackId, sample: u64 },
}

impl SpeechEvent {
    pub fn track(&self) -> TrackId {
        match *self {
            SpeechEvent::Start { track, .. } | SpeechEvent::End { track, .. } => track,
        }
    }

    pub fn sample(&self) -> u64 {
        match *self {
            SpeechEvent::Start { sample, .. } | SpeechEvent::End { sample, .. } => sample,
        }
    }
}

/// One chunk of the timeline, from [`Timeline::render`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// Timeline offset of `mix[0]`.
    pub start_sample: u64,
    /// The mono mix, limited.
    pub mix: Vec<i16>,
    /// One buffer per known track (only if [`AudioSettings::stems`]), each as long as `mix`.
    /// A track appears from the first render after its first `map_source` and in every
    /// render after that (silence once it has gone); the writer pads earlier samples with 0.
    pub stems: Vec<(TrackId, Vec<i16>)>,
    /// Speaking events decided since the last render; their samples may lie before
    /// `start_sample` (a segment's end is known only after the hangover).
    pub speech: Vec<SpeechEvent>,
}
