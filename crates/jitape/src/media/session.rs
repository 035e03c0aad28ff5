//! [`MediaSession`]: the webrtc-rs peer connection of one Jingle session and the tasks that
//! read its tracks. The thin I/O driver around the pure `sdp`, `slots` and `rtp` parts.
//!
//! Tasks: the peer connection's own driver (a tokio task spawned by webrtc-rs, no dedicated
//! thread), one reader task per m-line (spawned when the stack announces the remote track,
//! ended by `close`), and one task forwarding state changes in order. Nothing here spawns OS
//! threads.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tracing::{Instrument, Span, debug, info, trace, warn};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSdpType, RTCSessionDescription, Registry,
    SettingEngineBuilder, configure_rtcp_reports,
};

use crate::jingle::model::{AUDIO_LEVEL_URI, AudioOffer, IceTransport, Source};

use super::rtp::{Counters, MediaCounters, SsrcGate, to_packet};
use super::sdp::{LocalTransport, OfferTemplate, slot_of_track};
use super::slots::SlotTable;
use super::stamp::{ArrivalBook, StampingRuntime};
use super::{MediaError, MediaEvent, MediaSettings, MediaState};

/// A receive-only audio session with the bridge. Owned by one conference task.
pub struct MediaSession {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    template: OfferTemplate,
    slots: SlotTable,
    version: u64,
    /// The last renegotiation failed: the stack may not match `slots`.
    stale: bool,
    closed: bool,
}

/// What the session shares with the stack's callbacks and the reader tasks.
struct Shared {
    events: mpsc::Sender<MediaEvent>,
    states: mpsc::UnboundedSender<MediaState>,
    gathered: watch::Sender<bool>,
    counters: Counters,
    gates: Mutex<Vec<Arc<SsrcGate>>>,
    readers: Mutex<Vec<AbortHandle>>,
    /// When each packet reached the machine (filled by the session's socket).
    book: Arc<ArrivalBook>,
    audio_level_id: Option<u8>,
    span: Span,
}

impl MediaSession {
    /// Brings up a peer connection for a bridge offer and negotiates it locally. Returns the
    /// session and our transport for session-accept (ufrag, pwd, sha-256 fingerprint with
    /// `setup` active, UDP host candidates for `cfg.bind` and `cfg.advertise`).
    pub async fn start(
        cfg: &MediaSettings,
        offer: &AudioOffer,
        sources: &[Source],
        events: mpsc::Sender<MediaEvent>,
    ) -> Result<(MediaSession, IceTransport), MediaError> {
        let template = OfferTemplate::new(offer)?;
        if template.usable_candidates == 0 {
            debug!("offer has no usable candidate; relying on the bridge's checks");
        }
        let mut slots = SlotTable::default();
        slots.assign(&media_ssrcs(sources));

        let (states, state_rx) = mpsc::unbounded_channel();
        let (gathered, mut gathered_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            events: events.clone(),
            states,
            gathered,
            counters: Counters::default(),
            gates: Mutex::new(Vec::new()),
            readers: Mutex::new(Vec::new()),
            book: Arc::new(ArrivalBook::default()),
            audio_level_id: template.audio_level_id,
            span: Span::current(),
        });
        shared.sync_gates(slots.lines(), Instant::now());
        let forwarder = tokio::spawn(forward_states(state_rx, events).instrument(Span::current()));

        let pc = build_peer_connection(cfg, &template, Arc::clone(&shared)).await?;
        let mut session = MediaSession {
            pc,
            shared,
            template,
            slots,
            version: 0,
            stale: false,
            closed: false,
        };
        match session.first_negotiation(cfg, &mut gathered_rx).await {
            Ok(local) => {
                info!(m_lines = session.slots.len(), "media session started");
                Ok((session, local.into_ice_transport(&cfg.advertise)))
            }
            Err(e) => {
                // Never started for the caller: no state events either.
                forwarder.abort();
                session.shutdown(false).await;
                Err(e)
            }
        }
    }

    /// The remote source set changed (source-add, source-remove, an owner left the MUC), taken
    /// in at `cut`: rebuilds the remote offer and renegotiates locally. A removed source's
    /// packets that reached the machine before `cut` still pass. Sources owned by the bridge
    /// are ignored. Returns how long it took.
    pub async fn set_sources(
        &mut self,
        sources: &[Source],
        cut: Instant,
    ) -> Result<Duration, MediaError> {
        let started = Instant::now();
        let change = self.slots.assign(&media_ssrcs(sources));
        if change.is_empty() && !self.stale {
            return Ok(started.elapsed());
        }
        // Gates first: a removed source stops with what reached the machine before `cut`, an
        // added one passes as soon as the stack routes it.
        self.shared.sync_gates(self.slots.lines(), cut);
        self.stale = true;
        self.negotiate().await?;
        self.stale = false;
        Counters::bump(&self.shared.counters.renegotiations, 1);
        let took = started.elapsed();
        debug!(
            added = change.added.len(),
            removed = change.removed.len(),
            m_lines = self.slots.len(),
            took_us = took.as_micros(),
            "sources renegotiated"
        );
        Ok(took)
    }

    /// RTP and RTCP datagrams received on the session's socket so far (any SSRC).
    pub fn datagrams(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.shared.book.rtp.load(Relaxed) + self.shared.book.rtcp.load(Relaxed)
    }

    /// A snapshot of the receive counters.
    pub fn counters(&self) -> MediaCounters {
        self.shared.counters.snapshot()
    }

    /// How many m-lines the local offer has (the peak number of concurrent sources).
    pub fn m_lines(&self) -> usize {
        self.slots.len().max(1)
    }

    /// How many transceivers the stack holds (should equal [`Self::m_lines`]).
    pub async fn stack_transceivers(&self) -> usize {
        self.pc.get_transceivers().await.len()
    }

    /// Closes the peer connection and ends every task of this session.
    pub async fn close(mut self) {
        self.shutdown(true).await;
        info!("media session closed");
    }

    async fn shutdown(&mut self, announce: bool) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Err(e) = self.pc.close().await {
            debug!(error = %e, "closing the peer connection");
        }
        self.shared.abort_readers();
        if announce {
            let _ = self.shared.states.send(MediaState::Closed);
        }
    }

    async fn first_negotiation(
        &mut self,
        cfg: &MediaSettings,
        gathered: &mut watch::Receiver<bool>,
    ) -> Result<LocalTransport, MediaError> {
        self.negotiate().await?;
        tokio::time::timeout(cfg.gather_timeout, gathered.wait_for(|done| *done))
            .await
            .map_err(|_| MediaError::Timeout("local ICE candidate gathering"))?
            .map_err(|_| MediaError::Internal("gathering watch closed".into()))?;
        let answer = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| MediaError::Internal("no local description after answer".into()))?;
        LocalTransport::from_answer(&answer.sdp)
    }

    async fn negotiate(&mut self) -> Result<(), MediaError> {
        self.version += 1;
        // Built field by field: `RTCSessionDescription::offer` would parse the SDP once more
        // than `set_remote_description` already does.
        let mut offer = RTCSessionDescription::default();
        offer.sdp_type = RTCSdpType::Offer;
        offer.sdp = self.template.render(self.slots.lines(), self.version);
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(MediaError::stack("apply the remote offer"))?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(MediaError::stack("create the answer"))?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(MediaError::stack("apply the local answer"))
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // webrtc-rs keeps a dropped, unclosed connection's driver (and socket) running on the
        // tokio runtime forever, so a session dropped without `close` must still close it.
        self.shared.abort_readers();
        let pc = Arc::clone(&self.pc);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = pc.close().await;
            });
        } else {
            warn!("media session dropped outside a runtime; its connection leaks");
        }
    }
}

impl Shared {
    /// Points each m-line's gate at the SSRC it carries from `at` on, creating gates for new
    /// lines.
    fn sync_gates(&self, lines: &[Option<u32>], at: Instant) {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        while gates.len() < lines.len() {
            gates.push(Arc::new(SsrcGate::default()));
        }
        for (gate, ssrc) in gates.iter().zip(lines) {
            gate.set(*ssrc, at);
        }
    }

    fn gate(&self, slot: usize) -> Option<Arc<SsrcGate>> {
        let gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.get(slot).cloned()
    }

    fn abort_readers(&self) {
        let readers = std::mem::take(&mut *self.readers.lock().unwrap_or_else(|p| p.into_inner()));
        for reader in readers {
            reader.abort();
        }
    }
}

/// The SSRCs that get an m-line: every source except the bridge's own.
fn media_ssrcs(sources: &[Source]) -> Vec<u32> {
    sources
        .iter()
        .filter(|s| !s.is_bridge())
        .map(|s| s.ssrc.0)
        .collect()
}

async fn build_peer_connection(
    cfg: &MediaSettings,
    template: &OfferTemplate,
    shared: Arc<Shared>,
) -> Result<Arc<dyn PeerConnection>, MediaError> {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![],
                },
                payload_type: template.opus_pt,
            },
            RtpCodecKind::Audio,
        )
        .map_err(MediaError::stack("register opus"))?;
    if let Some(red) = template.red_pt {
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: "audio/red".to_owned(),
                        clock_rate: 48_000,
                        channels: 2,
                        sdp_fmtp_line: format!("{0}/{0}", template.opus_pt),
                        rtcp_feedback: vec![],
                    },
                    payload_type: red,
                },
                RtpCodecKind::Audio,
            )
            .map_err(MediaError::stack("register red"))?;
    }
    engine
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .map_err(MediaError::stack("register the audio-level extension"))?;
    let settings = SettingEngineBuilder::new()
        // mDNS would bind a multicast socket per connection.
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_ice_timeouts(
            Some(cfg.ice_disconnected_timeout),
            Some(cfg.ice_failed_timeout),
            Some(cfg.ice_keepalive_interval),
        )
        .build();
    let runtime = StampingRuntime::new(Arc::clone(&shared.book), cfg.recv_buffer);
    let granted = Arc::clone(&runtime.granted);
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(configure_rtcp_reports(Registry::new()))
        .with_handler(Arc::new(Handler { shared }))
        .with_runtime(Arc::new(runtime))
        .with_udp_addrs(vec![SocketAddr::new(cfg.bind, 0)])
        .build()
        .await
        .map_err(MediaError::stack("create the peer connection"))?;
    // The kernel reports twice the size it was asked for (the doubling covers its own
    // bookkeeping), so a full grant reads as 2 × recv_buffer.
    let granted = granted.load(std::sync::atomic::Ordering::Relaxed) as usize / 2;
    if granted < cfg.recv_buffer {
        crate::util::log_limited(
            "recv-buffer",
            format_args!(
                "the kernel granted a {granted}-byte UDP receive buffer of the {} asked for: a stall of jitape may overflow it; raise net.core.rmem_max (sysctl) or give jitape CAP_NET_ADMIN (README, \"UDP receive buffer\")",
                cfg.recv_buffer
            ),
        );
    }
    Ok(Arc::new(pc))
}

/// The stack's callbacks. They run on the connection's driver task: never block here.
struct Handler {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.shared.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let mapped = match state {
            RTCPeerConnectionState::Connecting => MediaState::Connecting,
            RTCPeerConnectionState::Connected => MediaState::Connected,
            RTCPeerConnectionState::Disconnected => MediaState::Disconnected,
            RTCPeerConnectionState::Failed => MediaState::Failed,
            RTCPeerConnectionState::Closed => MediaState::Closed,
            _ => return,
        };
        let _ = self.shared.states.send(mapped);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let track_id = track.track_id().await;
        let Some(gate) = slot_of_track(&track_id).and_then(|slot| self.shared.gate(slot)) else {
            warn!(track_id, "remote track with no m-line of ours; ignored");
            return;
        };
        let shared = Arc::clone(&self.shared);
        let span = shared.span.clone();
        let reader = tokio::spawn(read_track(track, gate, Arc::clone(&shared)).instrument(span));
        shared
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reader.abort_handle());
    }
}

/// Reads one m-line's packets until the connection closes.
async fn read_track(track: Arc<dyn TrackRemote>, gate: Arc<SsrcGate>, shared: Arc<Shared>) {
    let counters = &shared.counters;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        // When the kernel received it; `now` only if the socket gave no timestamp.
        let arrival = shared
            .book
            .take(packet.header.ssrc, packet.header.sequence_number)
            .unwrap_or_else(|| {
                Counters::bump(&counters.unstamped, 1);
                Instant::now()
            });
        Counters::bump(&counters.received, 1);
        if !gate.admits(packet.header.ssrc, arrival) {
            Counters::bump(&counters.filtered, 1);
            trace!(
                ssrc = packet.header.ssrc,
                "packet for an unsignalled ssrc dropped"
            );
            continue;
        }
        Counters::bump(&counters.bytes, packet.payload.len() as u64);
        let out = to_packet(&packet, shared.audio_level_id, arrival);
        match shared.events.try_send(MediaEvent::Rtp(out)) {
            Ok(()) => Counters::bump(&counters.delivered, 1),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::bump(&counters.dropped_full, 1);
                trace!("events channel full; packet dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
}

/// Forwards state changes in order, without blocking the stack, skipping repeats.
async fn forward_states(
    mut states: mpsc::UnboundedReceiver<MediaState>,
    events: mpsc::Sender<MediaEvent>,
) {
    let mut last = None;
    while let Some(state) = states.recv().await {
        if last == Some(state) {
            continue;
        }
        last = Some(state);
        info!(?state, "media state");
        if events.send(MediaEvent::State(state)).await.is_err() || state == MediaState::Closed {
            break;
        }
    }
}
