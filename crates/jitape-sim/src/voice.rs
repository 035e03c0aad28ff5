//! Speaker voices for the simulated bridge: sequences of pre-encoded 20 ms Opus packets.
//!
//! In: a sine tone (frequency, amplitude) or a WAV file (any rate and channel count, read with
//! `hound`, mixed to mono and linearly resampled to 48 kHz). Out: a [`Voice`], encoded once
//! (48 kHz mono, in-band FEC on, ~32 kbps) so the bridge only copies bytes while sending.
//! Each frame also carries its RFC 6464 level, which the bridge puts in the audio-level header
//! extension. Voices loop without a seam: the loop is encoded twice in a row; a talk window
//! plays the first pass once (its frame 0 comes from a fresh encoder, so its first
//! [`lookahead`] of output is the encoder's silent pre-roll and, once a receiver removes the
//! codec delay, the voice starts exactly at the window's start), then the second pass over
//! and over: each wrap continues the waveform as the encoder did (re-using the first pass
//! would put a fresh encoder's 6.5 ms of pre-roll at every wrap).

use std::path::Path;

use bytes::Bytes;

/// Samples per 20 ms frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// The voice sample rate.
pub const SAMPLE_RATE: u32 = 48_000;

/// One pre-encoded 20 ms frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceFrame {
    /// The Opus packet.
    pub opus: Bytes,
    /// RFC 6464 level of the frame in -dBov (0 loudest, 127 silence).
    pub level: u8,
}

/// A speaker's voice: the first pass over the loop (the start of every talk spurt) and the
/// second (what repeats), equally long and non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    first: Vec<VoiceFrame>,
    frames: Vec<VoiceFrame>,
}

/// The encoder's algorithmic delay (its look-ahead) at 48 kHz: decoded audio lags what was
/// encoded by this much. A receiver that removes it (jitape's `codec_delay`) puts the audio of
/// frame `k` at `[k, k + 1) × 20 ms − lookahead`; the first frame of a spurt holds silence
/// there before its audio starts at `k × 20 ms`.
pub fn lookahead() -> Result<std::time::Duration, VoiceError> {
    let samples = encoder(true)?.get_lookahead()?;
    Ok(std::time::Duration::from_micros(
        u64::try_from(samples).unwrap_or(0) * 1_000_000 / u64::from(SAMPLE_RATE),
    ))
}

/// The encoder every voice is made with (in-band FEC as the offer asks; the look-ahead does
/// not depend on it).
fn encoder(inband_fec: bool) -> Result<opus::Encoder, VoiceError> {
    let mut encoder =
        opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
    encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
    encoder.set_inband_fec(inband_fec)?;
    encoder.set_packet_loss_perc(10)?;
    Ok(encoder)
}

/// Why a voice could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// Malformed input or I/O: the WAV file could not be read.
    #[error("cannot read WAV: {0}")]
    Wav(#[from] hound::Error),
    /// Malformed input: nothing to encode, or a nonsensical tone.
    #[error("invalid voice input: {0}")]
    Invalid(&'static str),
    /// libopus refused (our bug).
    #[error("opus encoder: {0}")]
    Opus(#[from] opus::Error),
}

/// The default tone of speaker `i`: 440, 660, 880, 1100 Hz, ... (220 Hz apart, easy to
/// separate with a short FFT or a Goertzel filter).
pub fn default_tone_hz(speaker: usize) -> f32 {
    440.0 + 220.0 * speaker as f32
}

impl Voice {
    /// A one-second loop of a sine tone; `amplitude` is relative to full scale (0..=1).
    /// Whole-hertz frequencies loop without a phase jump.
    pub fn tone(freq_hz: f32, amplitude: f32) -> Result<Voice, VoiceError> {
        if !(freq_hz > 0.0 && freq_hz < 20_000.0 && (0.0..=1.0).contains(&amplitude)) {
            return Err(VoiceError::Invalid(
                "tone frequency or amplitude out of range",
            ));
        }
        let step = std::f32::consts::TAU * freq_hz / SAMPLE_RATE as f32;
        let pcm: Vec<f32> = (0..SAMPLE_RATE as usize)
            .map(|n| amplitude * (step * n as f32).sin())
            .collect();
        Voice::from_pcm(&pcm)
    }

    /// A voice from a WAV file, mixed to mono and resampled to 48 kHz.
    pub fn from_wav(path: &Path) -> Result<Voice, VoiceError> {
        let reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        let channels = usize::from(spec.channels.max(1));
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader.into_samples::<f32>().collect::<Result<_, _>>()?,
            hound::SampleFormat::Int => {
                let bits = u32::from(spec.bits_per_sample.clamp(1, 32));
                let scale = 1.0 / (1u64 << (bits - 1)) as f32;
                reader
                    .into_samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()?
            }
        };
        let mono: Vec<f32> = interleaved
            .chunks(channels)
            .map(|c| c.iter().sum::<f32>() / c.len() as f32)
            .collect();
        Voice::from_pcm(&resample_linear(&mono, spec.sample_rate, SAMPLE_RATE))
    }

    /// Encodes 48 kHz mono PCM (padded with silence to whole frames) as a loop: once from a
    /// fresh encoder, then again with the encoder carrying on.
    pub fn from_pcm(pcm: &[f32]) -> Result<Voice, VoiceError> {
        Voice::encode(pcm, true)
    }

    /// Encodes 48 kHz mono PCM with or without Opus in-band FEC (a browser codes FEC when
    /// the offer says `useinbandfec=1`, which Jicofo leaves out when it enables RED).
    pub fn encode(pcm: &[f32], inband_fec: bool) -> Result<Voice, VoiceError> {
        if pcm.is_empty() {
            return Err(VoiceError::Invalid("no audio"));
        }
        let mut encoder = encoder(inband_fec)?;
        let mut out = vec![0u8; 1500];
        let mut encode = |chunk: &[f32]| -> Result<VoiceFrame, VoiceError> {
            let mut frame = [0f32; FRAME_SAMPLES];
            frame[..chunk.len()].copy_from_slice(chunk);
            let len = encoder.encode_float(&frame, &mut out)?;
            Ok(VoiceFrame {
                opus: Bytes::copy_from_slice(out.get(..len).unwrap_or_default()),
                level: level_dbov(&frame),
            })
        };
        let first: Vec<VoiceFrame> = pcm
            .chunks(FRAME_SAMPLES)
            .map(&mut encode)
            .collect::<Result<_, _>>()?;
        let frames: Vec<VoiceFrame> = pcm
            .chunks(FRAME_SAMPLES)
            .map(&mut encode)
            .collect::<Result<_, _>>()?;
        Ok(Voice { first, frames })
    }

    /// Frame `i` of a talk spurt: the first pass, then the second over and over.
    pub fn frame(&self, i: usize) -> &VoiceFrame {
        match self.first.get(i) {
            Some(f) => f,
            // `frames` is never empty (every constructor encodes at least one frame).
            None => &self.frames[i % self.frames.len()],
        }
    }

    /// The number of frames in the loop.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Always false: a voice has at least one frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// RFC 6464 level: -dBov of the frame's RMS, where a full-scale sine is 0 dBov.
fn level_dbov(frame: &[f32]) -> u8 {
    let energy: f32 = frame.iter().map(|s| s * s).sum::<f32>() / frame.len().max(1) as f32;
    if energy <= 1e-13 {
        return 127;
    }
    let dbov = 10.0 * energy.log10() + 3.0103;
    (-dbov).round().clamp(0.0, 127.0) as u8
}

/// Linear-interpolation resampling (good enough for test voices).
fn resample_linear(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 {
        return input.to_vec();
    }
    let ratio = f64::from(from) / f64::from(to);
    let out_len = ((input.len() as f64) / ratio).floor() as usize;
    (0..out_len)
        .map(|n| {
            let pos = n as f64 * ratio;
            let i = pos.floor() as usize;
            let frac = (pos - i as f64) as f32;
            let a = input.get(i).copied().unwrap_or(0.0);
            let b = input.get(i + 1).copied().unwrap_or(a);
            a + (b - a) * frac
        })
        .collect()
}

/// The strongest of `candidates` (Hz) in `pcm` by Goertzel power.
pub fn dominant(pcm: &[f32], candidates: &[f32]) -> f32 {
    let power = |f: f32| {
        let w = std::f32::consts::TAU * f / SAMPLE_RATE as f32;
        let (mut s1, mut s2) = (0f32, 0f32);
        for &x in pcm {
            let s = x + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
    };
    candidates
        .iter()
        .copied()
        .fold((0.0, f32::MIN), |best, f| {
            let p = power(f);
            if p > best.1 { (f, p) } else { best }
        })
        .0
}

/// Decodes `frames` (mono Opus at [`SAMPLE_RATE`]) into one signal.
pub fn decode(frames: &[&[u8]]) -> Vec<f32> {
    let mut dec = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).expect("decoder");
    let mut pcm = Vec::new();
    let mut buf = [0f32; FRAME_SAMPLES];
    for f in frames {
        let n = dec.decode_float(f, &mut buf, false).expect("decodable");
        pcm.extend_from_slice(&buf[..n]);
    }
    pcm
}

#[cfg(test)]
mod tests;
