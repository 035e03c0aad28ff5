//! libopus decoding for one source at the output rate: normal decode, in-band FEC (decode the
//! *next* packet's redundancy to recover a lost frame) and PLC (decode "nothing").
//!
//! In: Opus payloads and frame lengths. Out: PCM at the output rate, into a caller's buffer.
//! libopus rejects FEC/PLC lengths that are not a multiple of 2.5 ms; callers round with
//! [`OpusDecoder::quantum`].

use opus::{Channels, Decoder};

use super::{AudioError, RTP_CLOCK};

/// The longest Opus packet: 120 ms at 48 kHz.
pub(super) const MAX_FRAME_48K: u32 = 5760;

pub(super) struct OpusDecoder {
    decoder: Decoder,
    rate: u32,
    scratch: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// The duration of an Opus packet in 48 kHz RTP units, if its TOC and frame count parse.
pub(super) fn packet_duration_48k(payload: &[u8]) -> Option<u32> {
    let n = opus::packet::get_nb_samples(payload, RTP_CLOCK).ok()?;
    let n = u32::try_from(n).ok()?;
    (n > 0 && n <= MAX_FRAME_48K).then_some(n)
}

impl OpusDecoder {
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        let decoder = Decoder::new(rate, Channels::Mono)?;
        let max = (MAX_FRAME_48K as usize) * (rate as usize) / (RTP_CLOCK as usize);
        Ok(OpusDecoder {
            decoder,
            rate,
            scratch: vec![0; max],
        })
    }

    /// The granularity of FEC/PLC lengths, in 48 kHz units (2.5 ms).
    pub const fn quantum() -> u32 {
        RTP_CLOCK / 400
    }

    fn out_len(&self, duration_48k: u32) -> usize {
        let d = duration_48k.min(MAX_FRAME_48K) as usize;
        d * self.rate as usize / RTP_CLOCK as usize
    }

    /// Forgets the decoder's history (as if new), keeping its buffers.
    pub fn reset(&mut self) {
        let _ = self.decoder.reset_state();
    }

    /// Decodes a packet into `out` (replacing its content); returns its duration (48 kHz units).
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<u32, opus::Error> {
        out.clear();
        let n = self.decoder.decode(payload, &mut self.scratch, false)?;
        let n = n.min(self.scratch.len());
        out.extend_from_slice(self.scratch.get(..n).unwrap_or_default());
        Ok(self.to_48k(n))
    }

    /// Recovers the frame lost just before `next_payload` from its in-band FEC data
    /// (libopus conceals with PLC when the packet carries none).
    pub fn fec(
        &mut self,
        next_payload: &[u8],
        duration_48k: u32,
        out: &mut Vec<i16>,
    ) -> Result<(), opus::Error> {
        self.conceal(next_payload, duration_48k, out)
    }

    /// Packet loss concealment for `duration_48k` (a multiple of [`Self::quantum`]).
    pub fn plc(&mut self, duration_48k: u32, out: &mut Vec<i16>) -> Result<(), opus::Error> {
        self.conceal(&[], duration_48k, out)
    }

    fn conceal(
        &mut self,
        payload: &[u8],
        duration_48k: u32,
        out: &mut Vec<i16>,
    ) -> Result<(), opus::Error> {
        out.clear();
        let len = self.out_len(duration_48k);
        let Some(buf) = self.scratch.get_mut(..len) else {
            return Ok(());
        };
        if len == 0 {
            return Ok(());
        }
        let n = self.decoder.decode(payload, buf, !payload.is_empty())?;
        out.extend_from_slice(buf.get(..n.min(len)).unwrap_or_default());
        Ok(())
    }

    fn to_48k(&self, samples: usize) -> u32 {
        (samples as u64 * u64::from(RTP_CLOCK) / u64::from(self.rate)) as u32
    }
}

#[cfg(test)]
mod tests;
