//! The simulated bridge's single sender task: every speaker on one absolute 20 ms schedule.
//!
//! In: the epoch (as `Instant` and wall clock), the speakers (their scripts, SSRCs and
//! tracks) and control messages (add, remove, read the log). Out: RTP handed to webrtc-rs and
//! a [`SentLog`] of what was handed over when. Tick `k` is due at `epoch + k * 20 ms`; a
//! speaker whose talk window contains `k * 20 ms` sends frame `k - window start tick` of its
//! voice with RTP timestamp `base + k * 960`, so gaps between windows jump the timestamp.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rtc::rtp;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, trace, warn};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::{SpeakerScript, TalkWindow, Wire};
use crate::netem::WirePacket;
use jitape::media::red::{self, RedBlock};

/// One packet period.
const TICK: Duration = Duration::from_millis(20);
/// RTP clock ticks per packet (48 kHz, 20 ms).
const TS_PER_TICK: u32 = 960;
/// At most this many overdue ticks are sent in a burst after a stall; older ones are skipped.
/// A real bridge forwards what queued up while it stalled (a receiver sees a burst, nothing
/// missing); so does this one for stalls up to 2 s. It stalls for 110-150 ms while another
/// conference is set up, and skipping there (it did at 5 ticks) turned every such stall into
/// lost frames in every conference.
const MAX_BURST: u64 = 100;

/// What the bridge handed to the stack for one talk window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentWindow {
    /// The scheduled window.
    pub window: TalkWindow,
    /// Wall clock when the first and the last packet were handed to the stack.
    pub first: SystemTime,
    pub last: SystemTime,
    pub first_seq: u16,
    pub last_seq: u16,
    pub packets: u32,
    /// The first and last frame sent, as ticks of the conference's epoch: frame `k` holds
    /// the audio of `[k, k + 1)` × 20 ms after the epoch.
    pub first_tick: u64,
    pub last_tick: u64,
}

impl SentWindow {
    /// How long after it was due the window's first packet was handed to the stack, if it
    /// was late at all: frame `k` is due at `epoch + (k + 1) × 20 ms`, once its audio has
    /// been captured (the sender's schedule, [`run_sender`]).
    pub fn lateness(&self, epoch: SystemTime) -> Option<Duration> {
        let due = epoch + TICK.saturating_mul(u32::try_from(self.first_tick + 1).ok()?);
        self.first.duration_since(due).ok()
    }
}

/// What one speaker sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSpeaker {
    pub endpoint: String,
    pub ssrc: u32,
    /// RTP timestamp of tick 0 (frame `k` carries `ts_base + k × 960`).
    pub ts_base: u32,
    pub windows: Vec<SentWindow>,
    /// Which frames reached the wire and which the network emulator dropped (the simulated
    /// bridge; `None` for a bridge whose wire is not observed).
    pub wire: Option<WireFrames>,
    /// Ticks the sender skipped while this speaker was live (it fell more than
    /// `MAX_BURST` ticks behind), as inclusive runs: no packet carries them.
    pub skipped: Vec<(u64, u64)>,
}

/// One speaker's frames on the wire, as ticks of the conference's epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireFrames {
    /// Frames of which at least one copy was handed to the kernel, as inclusive tick runs.
    pub delivered: Vec<(u64, u64)>,
    /// Frames offered to the socket of which no copy left (emulated loss, vanish).
    pub lost: Vec<(u64, u64)>,
    /// Delivered frames with the RTP marker: the first frame of a talk spurt.
    pub onsets: Vec<u64>,
}

impl WireFrames {
    /// The frames of `ssrc` in a wire log (RTP timestamps are `ts_base + tick × 960`).
    pub fn from_log(log: &[WirePacket], ssrc: u32, ts_base: u32) -> WireFrames {
        let tick = |ts: u32| u64::from(ts.wrapping_sub(ts_base) / TS_PER_TICK);
        let mine = || log.iter().filter(|p| p.ssrc == ssrc);
        let delivered: BTreeSet<u64> = mine()
            .filter(|p| p.delivered)
            .map(|p| tick(p.timestamp))
            .collect();
        let lost: BTreeSet<u64> = mine()
            .filter(|p| !p.delivered)
            .map(|p| tick(p.timestamp))
            .filter(|k| !delivered.contains(k))
            .collect();
        let onsets: BTreeSet<u64> = mine()
            .filter(|p| p.delivered && p.marker)
            .map(|p| tick(p.timestamp))
            .collect();
        WireFrames {
            delivered: runs(&delivered),
            lost: runs(&lost),
            onsets: onsets.into_iter().collect(),
        }
    }
}

/// Consecutive ticks as inclusive runs.
fn runs(ticks: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &k in ticks {
        match out.last_mut() {
            Some(run) if run.1 + 1 == k => run.1 = k,
            _ => out.push((k, k)),
        }
    }
    out
}

/// What the bridge sent, per speaker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentLog {
    /// The wall clock of the bridge's epoch (tick 0), once started.
    pub epoch: Option<SystemTime>,
    pub speakers: Vec<SentSpeaker>,
    /// Ticks skipped because the task fell more than a few ticks behind.
    pub skipped_ticks: u64,
    /// What an external bridge reported about its side (`("srtp_profile", …)`, and
    /// `("error", …)` for anything that went wrong); empty for the simulated bridge.
    pub facts: Vec<(String, String)>,
}

impl SentLog {
    /// Adds to every speaker which of its frames reached the wire, from a netem wire log.
    pub fn attach_wire(&mut self, log: &[WirePacket]) {
        for s in &mut self.speakers {
            s.wire = Some(WireFrames::from_log(log, s.ssrc, s.ts_base));
        }
    }

    pub fn speaker(&self, endpoint: &str) -> Option<&SentSpeaker> {
        self.speakers.iter().find(|s| s.endpoint == endpoint)
    }

    /// Packets handed to the stack, all speakers.
    pub fn packets(&self) -> u64 {
        self.speakers
            .iter()
            .flat_map(|s| &s.windows)
            .map(|w| u64::from(w.packets))
            .sum()
    }
}

/// Messages from the bridge handle to its sender task.
pub(crate) enum Control {
    Add(Box<Live>),
    Remove(String),
    Log(oneshot::Sender<SentLog>),
}

/// A speaker as the sender task sees it.
pub(crate) struct Live {
    script: SpeakerScript,
    track: Arc<TrackLocalStaticRTP>,
    seq: u16,
    ts_base: u32,
    active: bool,
    /// The window being sent and the tick it started at.
    spurt: Option<(usize, u64)>,
    /// The spurt's last frames (timestamp, Opus payload), newest last: RED's redundancy.
    recent: std::collections::VecDeque<(u32, Bytes)>,
    log: SentSpeaker,
}

impl Live {
    pub(crate) fn new(script: SpeakerScript, ssrc: u32, track: Arc<TrackLocalStaticRTP>) -> Self {
        let ts_base = ssrc.wrapping_mul(2_654_435_761);
        let log = SentSpeaker {
            endpoint: script.endpoint.clone(),
            ssrc,
            ts_base,
            windows: Vec::new(),
            wire: None,
            skipped: Vec::new(),
        };
        Self {
            script,
            track,
            seq: (ssrc >> 16) as u16,
            ts_base,
            active: true,
            spurt: None,
            recent: std::collections::VecDeque::new(),
            log,
        }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.script.endpoint
    }

    /// The packet for tick `k`, if the speaker talks then.
    fn packet(&mut self, k: u64, wire: &Wire) -> Option<rtp::Packet> {
        let t = TICK.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX));
        let window = self
            .script
            .windows
            .iter()
            .position(|w| w.start <= t && t < w.end);
        let Some(window) = window else {
            self.spurt = None;
            return None;
        };
        let new_spurt = self.spurt.is_none_or(|(w, _)| w != window);
        if new_spurt {
            self.spurt = Some((window, k));
            self.recent.clear();
        }
        let start = self.spurt.map_or(k, |(_, start)| start);
        let frame = self
            .script
            .voice
            .frame(usize::try_from(k - start).unwrap_or(0));
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let timestamp = self
            .ts_base
            .wrapping_add((k as u32).wrapping_mul(TS_PER_TICK));
        let (payload_type, payload) = match &wire.red {
            None => (wire.opus_pt, frame.opus.clone()),
            Some(r) => {
                let blocks: Vec<RedBlock<'_>> = self
                    .recent
                    .iter()
                    .map(|(ts, data)| RedBlock {
                        pt: wire.opus_pt,
                        ts_offset: timestamp.wrapping_sub(*ts),
                        data,
                    })
                    .collect();
                let payload = red::build(&blocks, wire.opus_pt, &frame.opus);
                self.recent.push_back((timestamp, frame.opus.clone()));
                while self.recent.len() > usize::from(r.distance) {
                    self.recent.pop_front();
                }
                (r.pt, Bytes::from(payload))
            }
        };
        let two_byte = wire.two_byte_extensions || wire.audio_level_id > 14;
        Some(rtp::Packet {
            header: rtp::Header {
                version: 2,
                padding: false,
                extension: true,
                marker: new_spurt,
                payload_type,
                sequence_number: seq,
                timestamp,
                ssrc: self.log.ssrc,
                csrc: vec![],
                extension_profile: if two_byte { 0x1000 } else { 0xBEDE },
                extensions: vec![level_extension(wire.audio_level_id, frame.level, true)],
                extensions_padding: 0,
            },
            payload,
        })
    }

    /// Records that `seq` (frame `k`) of the current window was handed over at `at`.
    fn record(&mut self, seq: u16, k: u64, at: SystemTime) {
        let Some((index, _)) = self.spurt else { return };
        let Some(window) = self.script.windows.get(index).copied() else {
            return;
        };
        match self.log.windows.last_mut() {
            Some(w) if w.window == window => {
                w.last = at;
                w.last_seq = seq;
                w.last_tick = k;
                w.packets += 1;
            }
            _ => self.log.windows.push(SentWindow {
                window,
                first: at,
                last: at,
                first_seq: seq,
                last_seq: seq,
                packets: 1,
                first_tick: k,
                last_tick: k,
            }),
        }
    }
}

/// The RFC 6464 header extension for one level.
fn level_extension(id: u8, level: u8, voice: bool) -> rtp::header::Extension {
    rtp::header::Extension {
        id,
        payload: Bytes::from(vec![(level & 0x7f) | if voice { 0x80 } else { 0 }]),
    }
}

/// The sender task. Ends when the bridge drops its control sender; returns the log.
pub(crate) async fn run_sender(
    epoch: Instant,
    wall_epoch: SystemTime,
    mut control: mpsc::UnboundedReceiver<Control>,
    mut live: Vec<Live>,
    wire: Wire,
) -> SentLog {
    let mut next: u64 = 0;
    let mut skipped = 0;
    loop {
        // Frame `next` holds audio for [next, next + 1) ticks; like a real sender it leaves
        // once captured, at the end of that span.
        let due = epoch + TICK.saturating_mul(u32::try_from(next + 1).unwrap_or(u32::MAX));
        tokio::select! {
            biased;
            message = control.recv() => match message {
                Some(Control::Add(speaker)) => live.push(*speaker),
                Some(Control::Remove(endpoint)) => {
                    for l in live.iter_mut().filter(|l| l.endpoint() == endpoint) {
                        l.active = false;
                    }
                }
                Some(Control::Log(reply)) => {
                    let _ = reply.send(log(&live, skipped, wall_epoch));
                }
                None => break,
            },
            () = tokio::time::sleep_until(due.into()) => {
                let behind = (Instant::now().saturating_duration_since(due).as_millis()
                    / TICK.as_millis()) as u64;
                if behind > MAX_BURST {
                    let run = (next, next + behind - MAX_BURST - 1);
                    for l in live.iter_mut().filter(|l| l.active) {
                        l.log.skipped.push(run);
                    }
                    debug!(ticks = behind - MAX_BURST, "simulated bridge fell behind; frames skipped");
                    skipped += behind - MAX_BURST;
                    next += behind - MAX_BURST;
                }
                send_tick(&mut live, next, &wire).await;
                next += 1;
            }
        }
    }
    log(&live, skipped, wall_epoch)
}

async fn send_tick(live: &mut [Live], k: u64, wire: &Wire) {
    for speaker in live.iter_mut().filter(|l| l.active) {
        let Some(packet) = speaker.packet(k, wire) else {
            continue;
        };
        let seq = packet.header.sequence_number;
        let at = SystemTime::now();
        match speaker.track.write_rtp(packet).await {
            Ok(()) => speaker.record(seq, k, at),
            Err(e) => {
                trace!(error = %e, "bridge could not send");
                if k.is_multiple_of(250) {
                    warn!(endpoint = speaker.endpoint(), error = %e, "bridge sending fails");
                }
            }
        }
    }
}

fn log(live: &[Live], skipped_ticks: u64, epoch: SystemTime) -> SentLog {
    SentLog {
        epoch: Some(epoch),
        speakers: live.iter().map(|l| l.log.clone()).collect(),
        skipped_ticks,
        facts: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
