//! One SSRC: its jitter buffer and its playout, talk spurt by talk spurt.
//!
//! In: packets (`push`, any order) and render requests for a range of timeline samples.
//! Out: the source's decoded audio added into the caller's buffer at the right positions.
//!
//! A spurt starts at the first buffered packet, placed where the clock estimate says (its
//! anchor is refined by every packet that arrives before its first sample is rendered). Inside
//! a spurt the RTP clock rules: frames follow each other; a missing frame is recovered with
//! FEC (if the next packet is there) or PLC, for at most `plc_max`; a longer gap, a clock
//! epoch change or the end of the buffered packets ends the spurt (with a 2.5 ms fade). The
//! playout position is compared with the clock estimate every few ms: small differences are
//! corrected by dropping or inserting one sample at a time, large ones re-anchor the spurt.

use std::collections::BTreeMap;
use std::time::Instant;

use super::clock::ClockEstimator;
use super::decode::OpusDecoder;
use super::seq::{History, SeqUnwrapper, TsUnwrapper};
use super::{AudioError, TrackId, TrackStats};
use crate::media::packet::RtpPacket;

/// Packets held per source at most (20 s of 20 ms frames).
const MAX_BUFFERED: usize = 1000;
/// Timestamp differences up to this (48 kHz units) count as contiguous.
const TS_TOLERANCE: i64 = 120;
/// After this many packets in a row refused as late, the sender must have restarted its
/// sequence numbers: the source starts over. With a lateness window of seconds a packet
/// that is genuinely this late is next to impossible, so a few suffice.
const RESTART_AFTER_LATE: u32 = 5;
/// Playout is corrected once its offset from the clock exceeds this many samples.
const SLEW_THRESHOLD: f64 = 1.5;

/// Per-timeline constants a source needs, in output samples unless named otherwise.
#[derive(Debug, Clone, Copy)]
pub(super) struct Params {
    pub rate: u32,
    /// Output samples per RTP tick.
    pub scale: f64,
    pub plc_max_48k: i64,
    pub codec_delay: f64,
    pub max_drift: f64,
    /// Length of the fades at spurt edges (2.5 ms).
    pub fade: usize,
    /// One sample corrected per this many samples when the offset is small...
    pub slew_slow: usize,
    /// ...and per this many when it exceeds `slew_fast_above`.
    pub slew_fast: usize,
    pub slew_fast_above: f64,
    /// Delay beyond the estimate at which a new talk spurt means a new clock epoch.
    pub epoch_tolerance: f64,
}

/// What became of a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pushed {
    Buffered,
    Duplicate,
    Late,
    Overflow,
    /// The sender restarted its sequence numbers (a packet reuses a buffered one's number
    /// with another timestamp, or many in a row are behind what was played): the caller
    /// retires this source (it plays out what it holds) and starts a new one for the packet.
    Restarted,
}

#[derive(Debug)]
struct Buffered {
    ts: i64,
    duration_48k: u32,
    epoch: u32,
    /// The sender marked it the first packet of a talk spurt (RFC 3551 §4.1).
    marker: bool,
    payload: Vec<u8>,
}

/// Real packets the concealment decoder is primed with before it conceals a loss.
const PRIME: usize = 6;

#[derive(Debug, Clone, Copy)]
struct Spurt {
    epoch: u32,
    next_seq: i64,
    /// RTP time right after the last frame decoded or concealed.
    next_ts: i64,
    last_duration: u32,
    /// Consecutive concealment so far (48 kHz units).
    concealed: i64,
    /// The current frame is the fade-out; the spurt ends with it.
    ending: bool,
    since_slew: usize,
    last_out: i16,
}

#[derive(Debug, Default)]
struct Frame {
    pcm: Vec<i16>,
    pos: usize,
    /// RTP time of `pcm[0]`.
    ts: i64,
}

impl Frame {
    fn remaining(&self) -> usize {
        self.pcm.len().saturating_sub(self.pos)
    }
}

#[derive(Debug)]
pub(super) struct Source {
    pub track: TrackId,
    /// Unmapped (source-remove, owner left) at this timeline position: a packet that reached
    /// the machine before it is still taken, however late jitape reads it; a later one is
    /// not. Once the render has passed it and nothing is left to play, the source goes.
    pub removed_at: Option<f64>,
    p: Params,
    seq: SeqUnwrapper,
    ts: TsUnwrapper,
    buffer: BTreeMap<i64, Buffered>,
    history: History,
    /// Every sequence number below this was played, concealed or discarded.
    consumed_upto: Option<i64>,
    clock: ClockEstimator,
    /// Decodes the sender's packets and conceals a short loss (PLC, then FEC from the packet
    /// after it), as libopus means it: its state then runs on without a seam. A decoder that
    /// skips the lost frames instead clicks where concealment hands back to it and, within a
    /// talk spurt's first half second, can stay below half level for 140 ms after a loss of
    /// two frames (docs/protocol.md, "Opus predicts each frame"). A loss too long
    /// to conceal never touches it: the fade-out runs on `concealer`, and the speech after
    /// the silence decodes from the state the sender's last packets left (Opus predicts each
    /// frame's energy from the ones before; a reset decoder plays it late).
    decoder: OpusDecoder,
    /// The last few payloads decoded, to prime a concealment decoder.
    recent: std::collections::VecDeque<Vec<u8>>,
    /// Fades out a loss too long to conceal: made at the first such loss and kept; reset and
    /// primed with `recent` when one begins (a reset libopus decoder is a fresh one, without
    /// the allocation).
    concealer: Option<OpusDecoder>,
    /// Whether `concealer` is primed for the loss going on; void when real packets resume.
    concealing: bool,
    spurt: Option<Spurt>,
    frame: Frame,
    late_run: u32,
    /// The packet from which the clock suspects a jump (see [`ClockEstimator::observe`]).
    suspect_from: Option<i64>,
    /// The highest sequence number taken so far and the RTP time right after its frame.
    newest: Option<(i64, i64)>,
    /// When the last packet came and its delay beyond the clock estimate: for the other
    /// sources' judgement of the path (see [`ClockEstimator::observe_on_path`]).
    pub(super) last_excess: Option<(Instant, f64)>,
}

impl Source {
    pub fn new(track: TrackId, p: Params) -> Result<Self, AudioError> {
        Ok(Source {
            track,
            removed_at: None,
            p,
            seq: SeqUnwrapper::new(),
            ts: TsUnwrapper::new(),
            buffer: BTreeMap::new(),
            history: History::new(),
            consumed_upto: None,
            clock: ClockEstimator::new(p.epoch_tolerance, p.rate),
            decoder: OpusDecoder::new(p.rate)?,
            recent: std::collections::VecDeque::with_capacity(PRIME),
            concealer: None,
            concealing: false,
            spurt: None,
            frame: Frame::default(),
            late_run: 0,
            suspect_from: None,
            newest: None,
            last_excess: None,
        })
    }

    /// Buffers a validated packet (`duration_48k` from its TOC) that arrived at timeline
    /// position `arrival_pos`. `own` is false for a block recovered from another packet
    /// (RED), which never signals a restart.
    pub fn push(
        &mut self,
        pkt: &RtpPacket,
        duration_48k: u32,
        arrival_pos: f64,
        own: bool,
        path: Option<f64>,
    ) -> Pushed {
        let seq = self.seq.extend(u32::from(pkt.sequence));
        if self.consumed_upto.is_some_and(|c| seq < c) {
            if self.history.contains(seq) {
                return Pushed::Duplicate;
            }
            self.late_run += 1;
            if self.late_run < RESTART_AFTER_LATE || !own {
                return Pushed::Late;
            }
            tracing::debug!(track = %self.track, "sequence numbers restarted: a new source takes over");
            return Pushed::Restarted;
        }
        self.late_run = 0;
        if let Some(held) = self.buffer.get(&seq) {
            // The low 32 bits of the extended timestamp are the packet's own.
            if own && held.ts as u32 != pkt.timestamp {
                tracing::debug!(track = %self.track, "a sequence number came back with another timestamp: a new source takes over");
                return Pushed::Restarted;
            }
            return Pushed::Duplicate;
        }
        if self.buffer.len() >= MAX_BUFFERED {
            return Pushed::Overflow;
        }
        let ts = self.ts.extend(pkt.timestamp);
        let v = arrival_pos - (ts + i64::from(duration_48k)) as f64 * self.p.scale;
        let continues = !pkt.marker && self.newest == Some((seq - 1, ts));
        if self.newest.is_none_or(|(newest, _)| seq > newest) {
            self.newest = Some((seq, ts + i64::from(duration_48k)));
        }
        let before = self.clock.epoch();
        let seen = self.clock.observe_on_path(pkt.arrival, v, continues, path);
        if let Some(excess) = seen.excess {
            self.last_excess = Some((pkt.arrival, excess));
        }
        let epoch = seen.epoch;
        if seen.suspects {
            self.suspect_from = Some(seq);
        }
        if let Some(undone) = seen.reverts {
            for b in self.buffer.values_mut().filter(|b| b.epoch == undone) {
                b.epoch = epoch;
            }
        }
        if seen.confirms
            && let Some(from) = self.suspect_from.take()
        {
            // The clock did move, from the packet that raised the suspicion on.
            for (_, b) in self.buffer.range_mut(from..) {
                b.epoch = epoch;
            }
        }
        // Older by its number than what is buffered, yet off the clock: not a reordered
        // packet but a sender that started its counters again (lower, and not colliding).
        if own
            && epoch != before
            && self
                .buffer
                .last_key_value()
                .is_some_and(|(last, _)| *last > seq)
        {
            tracing::debug!(track = %self.track, "sequence numbers went back with the clock: a new source takes over");
            return Pushed::Restarted;
        }
        let payload = pkt.payload.clone();
        self.buffer.insert(
            seq,
            Buffered {
                ts,
                duration_48k,
                epoch,
                marker: pkt.marker,
                payload,
            },
        );
        Pushed::Buffered
    }

    /// Whether this source's clock waits to judge a suspect spurt start, for which the next
    /// packet needs the path's delay.
    pub fn judges_path(&self) -> bool {
        self.clock.suspects()
    }

    /// Whether a packet that reached the machine at timeline position `arrival` is this
    /// source's to take.
    pub fn takes(&self, arrival: f64) -> bool {
        self.removed_at.is_none_or(|at| arrival < at)
    }

    /// Unmapped, rendered past the moment of its removal (`rendered_until`), nothing left.
    pub fn is_drained(&self, rendered_until: u64) -> bool {
        self.removed_at
            .is_some_and(|at| rendered_until as f64 >= at)
            && self.spurt.is_none()
            && self.buffer.is_empty()
    }

    /// Forgets everything buffered (after the timeline skipped ahead).
    pub fn flush(&mut self) {
        self.buffer.clear();
        self.spurt = None;
        self.frame.pcm.clear();
        self.frame.pos = 0;
        if let Some(h) = self.seq.highest() {
            self.consumed_upto = Some(h + 1);
        }
    }

    /// Adds this source's audio for timeline samples `start .. start + out.len()` into `out`.
    pub fn render(&mut self, start: u64, out: &mut [i32], st: &mut TrackStats) {
        let end = start + out.len() as u64;
        let mut cur = start;
        while cur < end {
            cur = if self.spurt.is_some() {
                self.render_spurt(cur, start, out, st)
            } else {
                self.start_spurt(cur, end, st)
            };
        }
    }

    fn mark_consumed(&mut self, seq: i64) {
        self.history.mark(seq);
        self.advance_consumed(seq + 1);
    }

    fn advance_consumed(&mut self, upto: i64) {
        self.consumed_upto = Some(self.consumed_upto.map_or(upto, |c| c.max(upto)));
    }

    /// Idle: finds the packet that starts the next spurt; returns where playout continues
    /// (`end` if nothing starts before it).
    fn start_spurt(&mut self, cur: u64, end: u64, st: &mut TrackStats) -> u64 {
        loop {
            let Some((&seq, first)) = self.buffer.first_key_value() else {
                return end;
            };
            let offset = self.clock.offset(first.epoch);
            let start_pos = offset.map(|o| o + first.ts as f64 * self.p.scale - self.p.codec_delay);
            let duration = f64::from(first.duration_48k) * self.p.scale;
            let Some(start_pos) = start_pos.filter(|s| s + duration > cur as f64) else {
                self.discard_late(st);
                continue;
            };
            if start_pos >= end as f64 {
                return end;
            }
            let Some((_, pkt)) = self.buffer.pop_first() else {
                return end;
            };
            self.mark_consumed(seq);
            // The sender starts a talk spurt afresh (after silence its encoder state is that
            // of silence): so does the decoder. Speech resuming after a loss is not marked
            // and continues from the decoder's state.
            if pkt.marker {
                self.decoder.reset();
            }
            let duration = match self.decode(&pkt.payload) {
                Ok(d) => d,
                Err(e) => {
                    tracing::trace!(track = %self.track, seq, error = %e, "undecodable opus packet");
                    st.decode_errors += 1;
                    continue;
                }
            };
            let first_sample = start_pos.round().max(0.0) as u64;
            self.frame.ts = pkt.ts;
            self.frame.pos = (cur.saturating_sub(first_sample) as usize).min(self.frame.pcm.len());
            let pos = self.frame.pos;
            fade_in(
                self.frame.pcm.get_mut(pos..).unwrap_or_default(),
                self.p.fade,
            );
            self.spurt = Some(Spurt {
                epoch: pkt.epoch,
                next_seq: seq + 1,
                next_ts: pkt.ts + i64::from(duration),
                last_duration: duration,
                concealed: 0,
                ending: false,
                since_slew: 0,
                last_out: 0,
            });
            st.spurts += 1;
            tracing::trace!(track = %self.track, seq, at = first_sample.max(cur), "talk spurt starts");
            return first_sample.max(cur);
        }
    }

    /// Drops the first buffered packet, too late to be played (decoded for the decoder's state).
    fn discard_late(&mut self, st: &mut TrackStats) {
        if let Some((seq, pkt)) = self.buffer.pop_first() {
            self.mark_consumed(seq);
            st.late += 1;
            let _ = self.decode(&pkt.payload);
            self.frame.pcm.clear();
            self.frame.pos = 0;
        }
    }

    /// Active: plays the spurt from `cur` on; returns where it stopped (the spurt may end).
    fn render_spurt(
        &mut self,
        mut cur: u64,
        start: u64,
        out: &mut [i32],
        st: &mut TrackStats,
    ) -> u64 {
        let Some(mut sp) = self.spurt else { return cur };
        let end = start + out.len() as u64;
        while cur < end {
            if self.frame.remaining() == 0 {
                if sp.ending {
                    self.spurt = None;
                    return cur;
                }
                self.next_frame(&mut sp, st);
                continue;
            }
            let mut chunk = self.p.slew_slow;
            if !sp.ending {
                let Some(lag) = self.lag(&sp, cur) else {
                    self.cut(&mut sp);
                    continue;
                };
                if lag.abs() > self.p.max_drift {
                    tracing::debug!(track = %self.track, lag, "source drifted: re-anchoring");
                    st.resyncs += 1;
                    self.cut(&mut sp);
                    continue;
                }
                let interval = if lag.abs() > self.p.slew_fast_above {
                    self.p.slew_fast
                } else {
                    self.p.slew_slow
                };
                if lag.abs() > SLEW_THRESHOLD {
                    if sp.since_slew >= interval {
                        let idx = (cur - start) as usize;
                        if self.slew(&mut sp, lag > 0.0, out.get_mut(idx), st) {
                            cur += 1;
                            continue;
                        }
                    }
                    chunk = interval.saturating_sub(sp.since_slew).max(1);
                }
            }
            let idx = (cur - start) as usize;
            let n = ((end - cur) as usize)
                .min(self.frame.remaining())
                .min(chunk);
            let src = self
                .frame
                .pcm
                .get(self.frame.pos..self.frame.pos + n)
                .unwrap_or_default();
            for (o, s) in out
                .get_mut(idx..idx + n)
                .unwrap_or_default()
                .iter_mut()
                .zip(src)
            {
                *o += i32::from(*s);
            }
            if let Some(last) = src.last() {
                sp.last_out = *last;
            }
            self.frame.pos += n;
            sp.since_slew += n;
            cur += n as u64;
        }
        self.spurt = Some(sp);
        cur
    }

    /// Whether two epochs place RTP time within what slewing absorbs quickly of each other.
    fn same_clock(&self, a: u32, b: u32) -> bool {
        match (self.clock.offset(a), self.clock.offset(b)) {
            (Some(x), Some(y)) => (x - y).abs() <= self.p.slew_fast_above,
            _ => false,
        }
    }

    /// How many samples later than its clock says the frame's next sample would be played.
    fn lag(&self, sp: &Spurt, cur: u64) -> Option<f64> {
        let offset = self.clock.offset(sp.epoch)?;
        let ideal = offset + self.frame.ts as f64 * self.p.scale - self.p.codec_delay
            + self.frame.pos as f64;
        Some(cur as f64 - ideal)
    }

    /// Drops (`late`) or inserts one sample, blending neighbours; false if not possible here.
    fn slew(
        &mut self,
        sp: &mut Spurt,
        late: bool,
        out: Option<&mut i32>,
        st: &mut TrackStats,
    ) -> bool {
        let pos = self.frame.pos;
        let (Some(&a), Some(out)) = (self.frame.pcm.get(pos), out) else {
            return false;
        };
        let blended = if late {
            let Some(&b) = self.frame.pcm.get(pos + 1) else {
                return false;
            };
            self.frame.pos += 2;
            st.slewed_samples -= 1;
            avg(a, b)
        } else {
            st.slewed_samples += 1;
            avg(sp.last_out, a)
        };
        *out += i32::from(blended);
        sp.last_out = blended;
        sp.since_slew = 0;
        true
    }

    /// Ends the spurt within the current frame, fading out over what is left of 2.5 ms.
    fn cut(&mut self, sp: &mut Spurt) {
        let keep = self.frame.remaining().min(self.p.fade);
        self.frame.pcm.truncate(self.frame.pos + keep);
        fade_out(self.frame.pcm.get_mut(self.frame.pos..).unwrap_or_default());
        sp.ending = true;
    }

    /// Decodes one of the sender's packets into the frame (on the main decoder); the loss
    /// it may end is over.
    fn decode(&mut self, payload: &[u8]) -> Result<u32, opus::Error> {
        let d = self.decoder.decode(payload, &mut self.frame.pcm)?;
        // The oldest payload's buffer takes the newest: no allocation per packet.
        let mut kept = if self.recent.len() == PRIME {
            self.recent.pop_front().unwrap_or_default()
        } else {
            Vec::new()
        };
        kept.clear();
        kept.extend_from_slice(payload);
        self.recent.push_back(kept);
        self.concealing = false;
        Ok(d)
    }

    /// The decoder that fades out a loss too long to conceal: a fresh one primed with the
    /// last packets (their output unused), so the main decoder's state stays the sender's.
    fn concealer(&mut self) -> Option<&mut OpusDecoder> {
        if !self.concealing {
            if self.concealer.is_none() {
                self.concealer = Some(OpusDecoder::new(self.p.rate).ok()?);
            }
            let d = self.concealer.as_mut()?;
            d.reset();
            let mut scratch = Vec::new();
            for payload in &self.recent {
                let _ = d.decode(payload, &mut scratch);
            }
            self.concealing = true;
        }
        self.concealer.as_mut()
    }

    /// Ends the spurt after the current frame: 2.5 ms of PLC, faded out. After a loss (speech
    /// resumes later, and must find the main decoder as the sender's packets left it), from
    /// the concealment decoder; at the plain end of a talk spurt (the next one is marked and
    /// starts the decoder afresh), from the main one, which spares priming a concealer.
    fn fade_out(&mut self, sp: &mut Spurt, after_loss: bool) {
        let mut pcm = std::mem::take(&mut self.frame.pcm);
        let ok = if after_loss || self.concealing {
            self.concealer()
                .is_some_and(|d| d.plc(OpusDecoder::quantum(), &mut pcm).is_ok())
        } else {
            self.decoder.plc(OpusDecoder::quantum(), &mut pcm).is_ok()
        };
        self.frame.pcm = pcm;
        if !ok {
            self.frame.pcm.clear();
        }
        fade_out(&mut self.frame.pcm);
        self.frame.pos = 0;
        self.frame.ts = sp.next_ts;
        sp.ending = true;
    }

    /// Fills the frame with what comes next in the spurt: the next packet, a concealed frame,
    /// or the fade-out that ends it.
    fn next_frame(&mut self, sp: &mut Spurt, st: &mut TrackStats) {
        loop {
            let Some((&seq, pkt)) = self.buffer.first_key_value() else {
                return self.fade_out(sp, false);
            };
            if pkt.epoch != sp.epoch {
                // A sender that stalls mid-spurt and then sends what it held in a burst looks
                // to the clock like a spurt starting late, and gets a new epoch. Once the
                // burst has caught up, that epoch's clock is the old one: the spurt goes on
                // (ending it would cost a fade and the decoder's recovery, a 20 ms hole).
                // Only a clock that really moved ends the spurt here.
                if !self.same_clock(sp.epoch, pkt.epoch) {
                    return self.fade_out(sp, false);
                }
                sp.epoch = pkt.epoch;
            }
            if seq < sp.next_seq {
                self.buffer.pop_first();
                continue;
            }
            let span = pkt.ts - sp.next_ts;
            if span <= TS_TOLERANCE {
                if seq == sp.next_seq {
                    return self.play_next(sp, st);
                }
                // sequence numbers skipped without a gap in time
                sp.next_seq = seq;
                continue;
            }
            if span + sp.concealed > self.p.plc_max_48k {
                return self.fade_out(sp, true);
            }
            return self.conceal(sp, seq, span, st);
        }
    }

    fn play_next(&mut self, sp: &mut Spurt, st: &mut TrackStats) {
        let Some((seq, pkt)) = self.buffer.pop_first() else {
            return;
        };
        self.mark_consumed(seq);
        sp.next_seq = seq + 1;
        self.frame.pos = 0;
        self.frame.ts = pkt.ts;
        match self.decode(&pkt.payload) {
            Ok(duration) => {
                sp.next_ts = pkt.ts + i64::from(duration);
                sp.last_duration = duration;
                sp.concealed = 0;
            }
            Err(e) => {
                tracing::trace!(track = %self.track, seq, error = %e, "undecodable opus packet: concealed");
                st.decode_errors += 1;
                let q = OpusDecoder::quantum();
                let duration = (pkt.duration_48k / q).max(1) * q;
                self.plc_into_frame(duration, st);
                sp.next_ts = pkt.ts + i64::from(duration);
                sp.concealed += i64::from(duration);
            }
        }
    }

    /// Conceals the frame at `sp.next_ts`; the first buffered packet (`seq`) starts `span`
    /// later. FEC if that packet directly follows the lost one, PLC otherwise.
    fn conceal(&mut self, sp: &mut Spurt, seq: i64, span: i64, st: &mut TrackStats) {
        let q = OpusDecoder::quantum();
        let lost = seq > sp.next_seq;
        let last = i64::from(sp.last_duration);
        let fec = seq == sp.next_seq + 1 && (span - last).abs() <= TS_TOLERANCE;
        let duration = if fec {
            sp.last_duration
        } else {
            ((span.min(last) as u32) / q).max(1) * q
        };
        self.frame.pos = 0;
        self.frame.ts = sp.next_ts;
        if fec {
            let payload = self
                .buffer
                .get(&seq)
                .map(|b| b.payload.as_slice())
                .unwrap_or_default();
            let ok = self
                .decoder
                .fec(payload, duration, &mut self.frame.pcm)
                .is_ok();
            if !ok {
                st.decode_errors += 1;
                self.silence_frame(duration);
            }
            st.concealed_fec += 1;
        } else {
            self.plc_into_frame(duration, st);
        }
        sp.next_ts += i64::from(duration);
        sp.concealed += i64::from(duration);
        if lost {
            st.lost += 1;
            sp.next_seq += 1;
            self.advance_consumed(sp.next_seq);
        }
    }

    fn plc_into_frame(&mut self, duration_48k: u32, st: &mut TrackStats) {
        st.concealed_plc += 1;
        if self.decoder.plc(duration_48k, &mut self.frame.pcm).is_err() {
            st.decode_errors += 1;
            self.silence_frame(duration_48k);
        }
    }

    fn silence_frame(&mut self, duration_48k: u32) {
        let n = (f64::from(duration_48k) * self.p.scale).round() as usize;
        self.frame.pcm.clear();
        self.frame.pcm.resize(n, 0);
    }
}

fn avg(a: i16, b: i16) -> i16 {
    ((i32::from(a) + i32::from(b)) / 2) as i16
}

/// Linear fade-in over the first `n` samples.
fn fade_in(pcm: &mut [i16], n: usize) {
    let n = n.min(pcm.len());
    for (i, s) in pcm.iter_mut().take(n).enumerate() {
        *s = (i32::from(*s) * (i as i32 + 1) / (n as i32 + 1)) as i16;
    }
}

/// Linear fade-out over all of `pcm`.
fn fade_out(pcm: &mut [i16]) {
    let n = pcm.len() as i32;
    for (i, s) in pcm.iter_mut().enumerate() {
        *s = (i32::from(*s) * (n - i as i32) / (n + 1)) as i16;
    }
}
