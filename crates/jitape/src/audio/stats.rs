//! Counters of the audio stage, per track and in total, for logs, metrics and the sidecar.

use std::collections::BTreeMap;

use super::TrackId;

/// What happened to one track's packets (or all tracks' packets, in [`AudioStats::total`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackStats {
    /// Packets of the track's SSRCs handed to `push`, whatever became of them.
    pub received: u64,
    /// Copies of a packet already buffered or played.
    pub duplicate: u64,
    /// Packets that came after their playout time (their slot was already concealed or silent).
    pub late: u64,
    /// Packets never received although the stream went on (sequence gaps that were concealed).
    pub lost: u64,
    /// Frames recovered from the next packet's in-band FEC (libopus falls back to PLC
    /// inside when that packet carries no FEC data).
    pub concealed_fec: u64,
    /// Frames concealed with PLC.
    pub concealed_plc: u64,
    /// Lost packets recovered from a later RED (RFC 2198) packet's redundant block before
    /// their playout time (they are then played like received ones).
    pub recovered_red: u64,
    /// Empty payloads, other payload types, payloads libopus rejects.
    pub decode_errors: u64,
    /// Packets dropped because the source's buffer was full.
    pub overflow: u64,
    /// Talk spurts started (each one anchored afresh).
    pub spurts: u64,
    /// Hard re-anchors of a spurt whose drift exceeded `max_drift`.
    pub resyncs: u64,
    /// Samples inserted minus samples dropped to follow the sender's clock.
    pub slewed_samples: i64,
}

impl TrackStats {
    pub(super) fn add(&mut self, o: &TrackStats) {
        self.received += o.received;
        self.duplicate += o.duplicate;
        self.late += o.late;
        self.lost += o.lost;
        self.concealed_fec += o.concealed_fec;
        self.concealed_plc += o.concealed_plc;
        self.recovered_red += o.recovered_red;
        self.decode_errors += o.decode_errors;
        self.overflow += o.overflow;
        self.spurts += o.spurts;
        self.resyncs += o.resyncs;
        self.slewed_samples += o.slewed_samples;
    }
}

/// A snapshot of the audio stage's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioStats {
    /// The sum over all tracks.
    pub total: TrackStats,
    pub tracks: BTreeMap<TrackId, TrackStats>,
    /// Packets of SSRCs not (or no longer) mapped to a track: dropped.
    pub unknown_ssrc: u64,
    /// Mix samples the limiter attenuated.
    pub limited_samples: u64,
    /// Samples rendered or skipped so far (the timeline's length past `origin_sample`).
    pub rendered_samples: u64,
}
