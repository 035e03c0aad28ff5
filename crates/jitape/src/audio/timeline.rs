//! The recording's timeline: owns every source, track, the mixer and the voice detectors.
//!
//! In: the SSRC → track mapping, packets (`push`), and the current instant (`render`). Out:
//! [`Rendered`] chunks. Sample `s` of the timeline is the wall instant
//! `origin + (s − origin_sample) / rate`; `render(now)` produces every sample up to
//! `now − late_window`, so the output's length always equals the wall time elapsed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::clock::PATH_RECENT;
use super::decode::packet_duration_48k;
use super::mixer::{Limiter, to_pcm16};
use super::source::{Params, Pushed, Source};
use super::vad::VoiceActivity;
use super::{
    AudioError, AudioSettings, AudioStats, RTP_CLOCK, Rendered, SpeechEvent, TrackId, TrackStats,
};
use crate::media::packet::RtpPacket;
use crate::types::Ssrc;

/// The most one pass of [`Timeline::render`] mixes at once (its scratch buffers are this long
/// at most); a longer render goes in slices. A render covers the ~100 ms since the one before.
const SLICE: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct Track {
    stats: TrackStats,
    vad: VoiceActivity,
    /// Scratch: this render's sum of the track's sources.
    sum: Vec<i32>,
    /// `sum` holds only zeros (nothing played on the track in the last render).
    silent: bool,
}

/// The audio timeline of one recording. See the module doc.
#[derive(Debug)]
pub struct Timeline {
    cfg: AudioSettings,
    params: Params,
    origin: Instant,
    origin_sample: u64,
    rendered_until: u64,
    sources: HashMap<Ssrc, Source>,
    /// Sources replaced after their sender restarted its counters: they play out what they
    /// hold, then go.
    retiring: Vec<Source>,
    tracks: BTreeMap<TrackId, Track>,
    unknown_ssrc: u64,
    limiter: Limiter,
    /// Speech events decided outside `render` (skip, unmap), delivered with the next render.
    pending_speech: Vec<SpeechEvent>,
    mix_sum: Vec<i32>,
}

impl Timeline {
    /// A timeline whose sample `origin_sample` is the instant `origin` (non-zero when a
    /// recording continues after a restart: the downtime is then silence in the file).
    pub fn new(
        cfg: AudioSettings,
        origin: Instant,
        origin_sample: u64,
    ) -> Result<Self, AudioError> {
        cfg.validate()?;
        let rate = cfg.sample_rate.hz();
        let ms = |m: u64| (u64::from(rate) * m / 1000) as usize;
        let params = Params {
            rate,
            scale: f64::from(rate) / f64::from(RTP_CLOCK),
            plc_max_48k: (cfg.plc_max.as_micros() * u128::from(RTP_CLOCK) / 1_000_000) as i64,
            codec_delay: cfg.samples(cfg.codec_delay) as f64,
            max_drift: cfg.samples(cfg.max_drift) as f64,
            fade: (rate / 400) as usize,
            slew_slow: ms(20),
            slew_fast: ms(5),
            slew_fast_above: ms(4) as f64,
            epoch_tolerance: ms(50) as f64,
        };
        let limiter = Limiter::new(rate, cfg.limiter_ceiling_dbfs);
        tracing::info!(rate, origin_sample, "audio timeline starts");
        Ok(Timeline {
            cfg,
            params,
            origin,
            origin_sample,
            rendered_until: origin_sample,
            sources: HashMap::new(),
            retiring: Vec::new(),
            tracks: BTreeMap::new(),
            unknown_ssrc: 0,
            limiter,
            pending_speech: Vec::new(),
            mix_sum: Vec::new(),
        })
    }

    pub fn config(&self) -> &AudioSettings {
        &self.cfg
    }

    /// Routes `ssrc` to `track` (from Jingle sources). A new SSRC for a known track continues
    /// that track; an SSRC moved to another track starts afresh.
    pub fn map_source(&mut self, ssrc: Ssrc, track: TrackId) -> Result<(), AudioError> {
        if let Some(s) = self.sources.get_mut(&ssrc)
            && s.track == track
        {
            // Mapped again (possibly after an unmap): it continues, with what it holds.
            s.removed_at = None;
            return Ok(());
        }
        let source = Source::new(track, self.params)?;
        if let Some(mut old) = self.sources.insert(ssrc, source) {
            // Moved to another track: what the old owner sent still plays out as theirs.
            let now = self.rendered_until as f64;
            old.removed_at = Some(old.removed_at.map_or(now, |at| at.min(now)));
            self.retiring.push(old);
        }
        let cfg = &self.cfg;
        let pos = self.rendered_until;
        self.tracks.entry(track).or_insert_with(|| Track {
            stats: TrackStats::default(),
            vad: VoiceActivity::new(
                track,
                cfg.sample_rate.hz(),
                cfg.vad_threshold_dbfs,
                cfg.samples(cfg.vad_hangover),
                pos,
            ),
            sum: Vec::new(),
            silent: true,
        });
        tracing::debug!(%ssrc, %track, "source mapped");
        Ok(())
    }

    /// Stops taking packets from `ssrc` that reach the machine from `at` on (source-remove,
    /// owner left; `at` is when jitape learned it). Packets that arrived before `at` are still
    /// taken when jitape reads them, however late within the window: the media path is
    /// slower than the signalling one, and a leaver's last words are on it.
    pub fn unmap_source(&mut self, ssrc: Ssrc, at: Instant) {
        let at = self.position_of(at);
        if let Some(source) = self.sources.get_mut(&ssrc) {
            source.removed_at = Some(source.removed_at.map_or(at, |was| was.min(at)));
            tracing::debug!(%ssrc, track = %source.track, "source unmapped");
        }
    }

    /// The payload types of the current Jingle session's offer: Opus, and RED of Opus if
    /// offered. Packets of other payload types are counted as decode errors.
    pub fn set_payload_types(&mut self, opus: u8, red: Option<u8>) {
        self.cfg.opus_payload_type = opus;
        self.cfg.red_payload_type = red;
    }

    /// The path's delay around `at` as the sources other than `ssrc` saw it: the least of their
    /// last packets' delays beyond their own clock estimates, counting those that arrived
    /// within [`PATH_RECENT`] of `at` (all of them come through one bridge and one path).
    fn path_delay(&self, ssrc: Ssrc, at: Instant) -> Option<f64> {
        self.sources
            .iter()
            .filter(|(other, _)| **other != ssrc)
            .filter_map(|(_, s)| s.last_excess)
            .filter(|(t, _)| {
                t.saturating_duration_since(at)
                    .max(at.saturating_duration_since(*t))
                    <= PATH_RECENT
            })
            .map(|(_, excess)| excess)
            .min_by(f64::total_cmp)
    }

    /// Takes one received packet. Never panics, whatever the packet holds. A RED packet is
    /// its primary block, and its redundant blocks fill the packets before it if those are
    /// still missing (see [`crate::media::red`]).
    pub fn push(&mut self, pkt: &RtpPacket) {
        if self.cfg.red_payload_type == Some(pkt.payload_type) {
            match crate::media::red::unpack(pkt, self.cfg.opus_payload_type) {
                Ok(unpacked) => {
                    // A copy of a primary already taken brings nothing new; and a late one's
                    // older blocks are later still.
                    if self.push_one(&unpacked.primary, false) == Some(Pushed::Buffered) {
                        for r in &unpacked.redundant {
                            self.push_one(r, true);
                        }
                    }
                    return;
                }
                Err(e) => tracing::trace!(ssrc = %pkt.ssrc, error = %e, "unreadable RED packet"),
            }
        }
        self.push_one(pkt, false);
    }

    /// One packet; a `redundant` one (a RED block) counts only if it filled a gap. Returns
    /// what the source did with it, if it reached one.
    fn push_one(&mut self, pkt: &RtpPacket, redundant: bool) -> Option<Pushed> {
        let arrival = self.position_of(pkt.arrival);
        // Read only while the source's clock judges a suspect spurt start: not per packet.
        let path = self
            .sources
            .get(&pkt.ssrc)
            .is_some_and(Source::judges_path)
            .then(|| self.path_delay(pkt.ssrc, pkt.arrival))
            .flatten();
        let Some(source) = self.sources.get_mut(&pkt.ssrc).filter(|s| s.takes(arrival)) else {
            self.unknown_ssrc += u64::from(!redundant);
            tracing::trace!(ssrc = %pkt.ssrc, "packet of an unknown ssrc dropped");
            return None;
        };
        let track_id = source.track;
        let st = &mut self.tracks.get_mut(&track_id)?.stats;
        st.received += u64::from(!redundant);
        let duration = (pkt.payload_type == self.cfg.opus_payload_type)
            .then(|| packet_duration_48k(&pkt.payload))
            .flatten();
        let Some(duration) = duration else {
            st.decode_errors += u64::from(!redundant);
            tracing::trace!(
                ssrc = %pkt.ssrc,
                pt = pkt.payload_type,
                len = pkt.payload.len(),
                "not a valid opus packet"
            );
            return None;
        };
        let mut pushed = source.push(pkt, duration, arrival, !redundant, path);
        if pushed == Pushed::Restarted {
            // The old counters' packets still play out; the new ones get a source of their own.
            let mut fresh = Source::new(track_id, self.params).ok()?;
            fresh.removed_at = source.removed_at;
            pushed = fresh.push(pkt, duration, arrival, false, path);
            if let Some(mut old) = self.sources.insert(pkt.ssrc, fresh) {
                old.removed_at = Some(old.removed_at.map_or(arrival, |at| at.min(arrival)));
                self.retiring.push(old);
            }
        }
        let st = &mut self.tracks.get_mut(&track_id)?.stats;
        match (pushed, redundant) {
            (Pushed::Buffered, true) => st.recovered_red += 1,
            (Pushed::Buffered, false) | (_, true) | (Pushed::Restarted, false) => {}
            (Pushed::Duplicate, false) => st.duplicate += 1,
            (Pushed::Late, false) => st.late += 1,
            (Pushed::Overflow, false) => st.overflow += 1,
        }
        Some(pushed)
    }

    /// Renders every sample up to `now − late_window` not rendered yet (possibly none).
    /// A track none of whose sources played costs no mixing and no voice analysis.
    ///
    /// The work goes in slices of at most [`SLICE`]: a render that covers seconds (the
    /// conference's task was not run for that long: a stall, an overload) would otherwise grow
    /// every track's scratch buffer to its length, and a buffer keeps its capacity. Only the
    /// result is as long as the span; it goes to the writer and is freed there.
    pub fn render(&mut self, now: Instant) -> Rendered {
        let start = self.rendered_until;
        let end = self.target(now).max(start);
        let mut out = Rendered {
            start_sample: start,
            mix: Vec::new(),
            stems: Vec::new(),
            speech: std::mem::take(&mut self.pending_speech),
        };
        let slice = self.cfg.samples(SLICE).max(1);
        let mut from = start;
        loop {
            let to = end.min(from.saturating_add(slice));
            self.render_slice(from, to, &mut out);
            from = to;
            if from >= end {
                return out;
            }
        }
    }

    /// Renders samples `start..end` (at most [`SLICE`]) onto `out`.
    fn render_slice(&mut self, start: u64, end: u64, out: &mut Rendered) {
        let n = usize::try_from(end - start).unwrap_or(usize::MAX);
        for track in self.tracks.values_mut() {
            if !track.silent {
                track.sum.clear();
            }
            // A silent track's buffer is zeros already: only its new tail is written.
            track.sum.truncate(n);
            track.sum.resize(n, 0);
        }
        for source in self.sources.values_mut().chain(self.retiring.iter_mut()) {
            if let Some(track) = self.tracks.get_mut(&source.track) {
                source.render(start, &mut track.sum, &mut track.stats);
            }
        }
        self.sources.retain(|_, s| !s.is_drained(end));
        self.retiring.retain(|s| !s.is_drained(end));
        self.mix_sum.clear();
        self.mix_sum.resize(n, 0);
        for (i, (&id, track)) in self.tracks.iter_mut().enumerate() {
            track.silent = track.sum.iter().fold(0, |acc, &x| acc | x) == 0;
            if track.silent {
                track.vad.process_silence(start, n, &mut out.speech);
            } else {
                for (m, t) in self.mix_sum.iter_mut().zip(&track.sum) {
                    *m += *t;
                }
                track.vad.process(start, &track.sum, &mut out.speech);
            }
            if self.cfg.stems {
                // The tracks are the same in every slice of one render (none is mapped
                // meanwhile), in the same order.
                match out.stems.get_mut(i) {
                    Some((_, stem)) => stem.extend(to_pcm16(&track.sum)),
                    None => out.stems.push((id, to_pcm16(&track.sum))),
                }
            }
        }
        self.limiter.process(&self.mix_sum, &mut out.mix);
        self.rendered_until = end;
    }

    /// The longest scratch buffer the renders have grown (in samples; for tests).
    #[cfg(test)]
    pub(crate) fn scratch_capacity(&self) -> usize {
        self.tracks
            .values()
            .map(|t| t.sum.capacity())
            .chain([self.mix_sum.capacity()])
            .max()
            .unwrap_or(0)
    }

    /// The next timeline sample `render` will produce.
    pub fn rendered_until(&self) -> u64 {
        self.rendered_until
    }

    /// How many samples `render(now)` would produce (to decide on a `skip_to` instead).
    pub fn pending(&self, now: Instant) -> u64 {
        self.target(now).saturating_sub(self.rendered_until)
    }

    /// Jumps to `sample` (after an interruption): everything buffered is dropped and the
    /// samples in between are silence the caller writes itself. Returns how many samples were
    /// skipped (0 if `sample` is not ahead).
    pub fn skip_to(&mut self, sample: u64) -> u64 {
        let start = self.rendered_until;
        let n = sample.saturating_sub(start);
        if n == 0 {
            return 0;
        }
        for source in self.sources.values_mut() {
            source.flush();
        }
        self.sources.retain(|_, s| !s.is_drained(sample));
        self.retiring.clear();
        for track in self.tracks.values_mut() {
            track.vad.skip(start, n, &mut self.pending_speech);
        }
        self.limiter.reset();
        self.rendered_until = sample;
        tracing::info!(from = start, to = sample, "audio timeline skipped ahead");
        n
    }

    /// Closes open speaking segments (the recording ends); the events are returned here.
    pub fn finish_speech(&mut self) -> Vec<SpeechEvent> {
        let mut events = std::mem::take(&mut self.pending_speech);
        for track in self.tracks.values_mut() {
            track.vad.finish(&mut events);
        }
        events
    }

    pub fn stats(&self) -> AudioStats {
        let mut stats = AudioStats {
            unknown_ssrc: self.unknown_ssrc,
            limited_samples: self.limiter.limited,
            rendered_samples: self.rendered_until - self.origin_sample,
            ..AudioStats::default()
        };
        for (&id, track) in &self.tracks {
            stats.total.add(&track.stats);
            stats.tracks.insert(id, track.stats);
        }
        stats
    }

    /// The timeline sample at which wall instant `now − late_window` lies.
    fn target(&self, now: Instant) -> u64 {
        let elapsed = now
            .checked_sub(self.cfg.late_window.get())
            .and_then(|t| t.checked_duration_since(self.origin))
            .unwrap_or_default();
        self.origin_sample
            .saturating_add(self.cfg.sample_rate.samples_in(elapsed))
    }

    /// The (fractional, possibly negative) timeline position of an instant.
    fn position_of(&self, t: Instant) -> f64 {
        let rate = f64::from(self.cfg.sample_rate.hz());
        let base = self.origin_sample as f64;
        match t.checked_duration_since(self.origin) {
            Some(d) => base + d.as_secs_f64() * rate,
            None => base - self.origin.saturating_duration_since(t).as_secs_f64() * rate,
        }
    }
}
