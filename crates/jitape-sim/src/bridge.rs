//! A simulated Jitsi Videobridge on webrtc-rs, for tests, `demo` and `bench`.
//!
//! It plays JVB's part towards jitape: full ICE and **controlling** (it is the offerer), DTLS
//! server (it offers `actpass`, jitape answers `active`). [`SimBridge::allocate`] returns what
//! Jicofo would put in a session-initiate: one audio [`AudioOffer`] with one ICE transport,
//! and one [`Source`] per speaker plus the bridge's own `jvb` source. [`SimBridge::accept`]
//! takes jitape's transport (what Jicofo forwards from session-accept) and completes the
//! bridge side by building the SDP answer it needs from it.
//!
//! On its own webrtc-rs side the bridge uses one sendonly m-line per speaker, all allocated
//! up front (`max_speakers`), each with the fixed SSRC that is announced and used on the wire.
//! A speaker announced later ([`SimBridge::add_speaker`], a source-add) just takes the next
//! unused m-line, so the bridge never renegotiates. A speaker that leaves stops sending.
//!
//! Sending: one task per bridge paces all speakers on an absolute 20 ms schedule from a common
//! epoch (no drift). During a talk window a speaker sends one pre-encoded Opus frame per tick
//! (RTP timestamp +960 per tick, so silences jump the timestamp, like JVB dropping silence or
//! DTX) with the RFC 6464 audio-level extension (id 1, one-byte or two-byte form). What was
//! handed to the stack, and when (wall clock), is recorded in a [`SentLog`]. Network
//! impairments, "vanish" and "fail" come from [`super::netem`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::{Rng, SeedableRng, rngs::StdRng};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSdpType, RTCSessionDescription, Registry,
    SettingEngineBuilder, configure_rtcp_reports,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use jitape::jingle::model::{AUDIO_LEVEL_URI, AudioOffer, BRIDGE_OWNER, IceTransport, Source};

use super::netem::{NetemConfig, NetemCounters, NetemLink, NetemRuntime};
use super::voice::Voice;

mod sender;
mod signal;

use sender::{Control, Live, run_sender};
pub use sender::{SentLog, SentSpeaker, SentWindow, WireFrames};
pub use signal::jicofo_description;
use signal::{answer_sdp, transport_from_offer};

/// The command that runs an external bridge process (see [`super::external`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalBridgeSpec {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Opus payload type, as Jicofo configures it.
pub const OPUS_PT: u8 = 111;
/// The audio-level extension id, as Jicofo configures it.
pub const AUDIO_LEVEL_ID: u8 = 1;
pub(crate) const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";

/// How to set up a simulated bridge.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The bridge's host candidate address.
    pub bind: IpAddr,
    /// m-lines allocated up front: the most speakers this bridge can ever announce.
    pub max_speakers: usize,
    pub netem: NetemConfig,
    /// Payload types, audio-level id and RED: Jicofo's codec configuration, in the offer and
    /// on the wire.
    pub wire: Wire,
    /// Seeds the SSRCs.
    pub seed: u64,
    /// Run this program as the bridge instead of the webrtc-rs one (see
    /// [`super::external`]); `netem`, `bind` and `two_byte_extensions` then do not apply.
    pub external: Option<ExternalBridgeSpec>,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            max_speakers: 8,
            netem: NetemConfig::default(),
            wire: Wire::default(),
            seed: 1,
            external: None,
        }
    }
}

/// What the offer says and the bridge sends with: Jicofo's `jicofo.codec` settings (Opus
/// payload type, audio-level id) and whether this receiver's offer has RED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    pub opus_pt: u8,
    pub audio_level_id: u8,
    /// Send the audio level in the two-byte header extension form (always for ids above 14).
    pub two_byte_extensions: bool,
    /// The offer has RED and the speakers send it: JVB then forwards RED as it comes
    /// (docs/protocol.md, "Opus RED").
    pub red: Option<RedSend>,
}

impl Default for Wire {
    fn default() -> Self {
        Self {
            opus_pt: OPUS_PT,
            audio_level_id: AUDIO_LEVEL_ID,
            two_byte_extensions: false,
            red: None,
        }
    }
}

/// RED as browsers send it: each packet repeats the `distance` packets before it (within
/// the talk spurt), as RFC 2198 blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedSend {
    pub pt: u8,
    pub distance: u8,
}

/// Jicofo's default RED payload type (`jicofo.codec.audio.opus.red.pt`).
pub const RED_PT: u8 = 112;

/// One talk window, relative to the bridge's epoch: `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkWindow {
    pub start: Duration,
    pub end: Duration,
}

/// A speaker: their endpoint id (MUC nick), voice and when they talk.
#[derive(Debug, Clone)]
pub struct SpeakerScript {
    pub endpoint: String,
    pub voice: Arc<Voice>,
    pub windows: Vec<TalkWindow>,
}

/// Why the simulated bridge could not do something.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// webrtc-rs refused (our bug or a library limit).
    #[error("webrtc-rs failed to {op}: {source}")]
    Stack {
        op: &'static str,
        #[source]
        source: webrtc::error::Error,
    },
    /// Malformed input: jitape's transport cannot be turned into an answer.
    #[error("unusable answer transport: {0}")]
    InvalidAnswer(String),
    /// Every pre-allocated m-line is taken.
    #[error("all {0} speaker slots are in use")]
    NoFreeSlot(usize),
    #[error("no speaker {0:?}")]
    UnknownSpeaker(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The call does not fit the bridge's state (e.g. `start` before `accept`).
    #[error("bridge is not {0}")]
    State(&'static str),
    /// An external bridge process could not be started or broke its protocol.
    #[error("external bridge: {0}")]
    External(String),
}

fn stack(op: &'static str) -> impl FnOnce(webrtc::error::Error) -> BridgeError {
    move |source| BridgeError::Stack { op, source }
}

/// One m-line of the bridge.
struct Slot {
    ssrc: u32,
    track: Arc<TrackLocalStaticRTP>,
    speaker: Option<String>,
}

/// A simulated JVB conference session.
pub struct SimBridge {
    pc: Arc<dyn PeerConnection>,
    link: Arc<NetemLink>,
    slots: Vec<Slot>,
    mids: Vec<String>,
    sources: HashMap<String, Source>,
    pending: Vec<Live>,
    control: Option<mpsc::UnboundedSender<Control>>,
    sender: Option<tokio::task::JoinHandle<SentLog>>,
    state: watch::Receiver<RTCPeerConnectionState>,
    wire: Wire,
    accepted: bool,
}

impl SimBridge {
    /// Allocates the bridge side and returns the offer and sources for the session-initiate.
    pub async fn allocate(
        cfg: BridgeConfig,
        speakers: Vec<SpeakerScript>,
    ) -> Result<(SimBridge, AudioOffer, Vec<Source>), BridgeError> {
        let link = NetemLink::new(cfg.netem.clone());
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, mut gathered) = watch::channel(false);
        let pc = build_peer_connection(&cfg, Arc::clone(&link), state_tx, gathered_tx).await?;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut used = std::collections::HashSet::new();
        let mut fresh_ssrc = move || loop {
            let ssrc = rng.random_range(1..u32::MAX);
            if used.insert(ssrc) {
                return ssrc;
            }
        };
        let mut slots = Vec::with_capacity(cfg.max_speakers);
        for i in 0..cfg.max_speakers.max(1) {
            let ssrc = fresh_ssrc();
            let track = Arc::new(TrackLocalStaticRTP::new(audio_track(i, ssrc)));
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            };
            pc.add_transceiver_from_track(Arc::clone(&track) as _, Some(init))
                .await
                .map_err(stack("add a speaker transceiver"))?;
            slots.push(Slot {
                ssrc,
                track,
                speaker: None,
            });
        }
        let offer = pc
            .create_offer(None)
            .await
            .map_err(stack("create the offer"))?;
        pc.set_local_description(offer)
            .await
            .map_err(stack("apply the offer"))?;
        tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g))
            .await
            .map_err(|_| BridgeError::Timeout("bridge candidate gathering"))?
            .map_err(|_| BridgeError::State("gathering"))?;
        let local = pc
            .local_description()
            .await
            .ok_or(BridgeError::State("offering"))?;
        let (transport, mids) = transport_from_offer(&local.sdp)?;

        let mut bridge = SimBridge {
            pc,
            link,
            slots,
            mids,
            sources: HashMap::new(),
            pending: Vec::new(),
            control: None,
            sender: None,
            state,
            wire: cfg.wire.clone(),
            accepted: false,
        };
        // Jicofo gives the bridge's feedback source this msid (docs/protocol.md).
        let mut sources = vec![Source {
            ssrc: jitape::types::Ssrc(fresh_ssrc()),
            name: Some("jvb-a0".into()),
            owner: BRIDGE_OWNER.into(),
            msid: Some("mixedmslabel mixedlabelaudio0".into()),
        }];
        for script in speakers {
            sources.push(bridge.add_speaker(script)?);
        }
        let offer = AudioOffer {
            content_name: "audio".into(),
            description: jicofo_description(&cfg.wire),
            transport,
        };
        info!(speakers = sources.len() - 1, "simulated bridge allocated");
        Ok((bridge, offer, sources))
    }

    /// Completes the bridge side with jitape's transport (from session-accept).
    pub async fn accept(&mut self, answer: &IceTransport) -> Result<(), BridgeError> {
        let sdp = answer_sdp(answer, &self.mids, &self.wire)?;
        let mut desc = RTCSessionDescription::default();
        desc.sdp_type = RTCSdpType::Answer;
        desc.sdp = sdp;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(stack("apply jitape's answer"))?;
        self.accepted = true;
        Ok(())
    }

    /// Waits until ICE and DTLS are up.
    pub async fn connected(&mut self, timeout: Duration) -> Result<(), BridgeError> {
        tokio::time::timeout(
            timeout,
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .map_err(|_| BridgeError::Timeout("the bridge connection"))?
        .map_err(|_| BridgeError::State("connected"))?;
        Ok(())
    }

    /// Whether ICE and DTLS are up right now.
    pub fn is_connected(&self) -> bool {
        *self.state.borrow() == RTCPeerConnectionState::Connected
    }

    /// Starts the sender task; talk windows are relative to `epoch`.
    pub fn start(&mut self, epoch: Instant) -> Result<(), BridgeError> {
        if !self.accepted {
            return Err(BridgeError::State("accepted"));
        }
        if self.control.is_some() {
            return Err(BridgeError::State("idle"));
        }
        let now = Instant::now();
        let wall_now = SystemTime::now();
        let wall_epoch = if epoch >= now {
            wall_now + (epoch - now)
        } else {
            wall_now - (now - epoch)
        };
        let (control, rx) = mpsc::unbounded_channel();
        let live = std::mem::take(&mut self.pending);
        self.sender = Some(tokio::spawn(run_sender(
            epoch,
            wall_epoch,
            rx,
            live,
            self.wire.clone(),
        )));
        self.control = Some(control);
        Ok(())
    }

    /// Announces a speaker (a source-add): returns the source to signal.
    pub fn add_speaker(&mut self, script: SpeakerScript) -> Result<Source, BridgeError> {
        if self.sources.contains_key(&script.endpoint) {
            return Err(BridgeError::State("free of that endpoint"));
        }
        let max = self.slots.len();
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.speaker.is_none())
            .ok_or(BridgeError::NoFreeSlot(max))?;
        slot.speaker = Some(script.endpoint.clone());
        let source = Source {
            ssrc: jitape::types::Ssrc(slot.ssrc),
            name: Some(format!("{}-a0", script.endpoint)),
            owner: script.endpoint.clone(),
            msid: Some(format!("{0}-audio-0-1 {0}-track", script.endpoint)),
        };
        let live = Live::new(script, slot.ssrc, Arc::clone(&slot.track));
        match &self.control {
            Some(control) => {
                let _ = control.send(Control::Add(Box::new(live)));
            }
            None => self.pending.push(live),
        }
        self.sources.insert(source.owner.clone(), source.clone());
        debug!(ssrc = %source.ssrc, "speaker announced");
        Ok(source)
    }

    /// A speaker leaves: their stream stops. Returns their (now removed) source.
    pub fn remove_speaker(&mut self, endpoint: &str) -> Result<Source, BridgeError> {
        let source = self
            .sources
            .remove(endpoint)
            .ok_or_else(|| BridgeError::UnknownSpeaker(endpoint.into()))?;
        match &self.control {
            Some(control) => {
                let _ = control.send(Control::Remove(endpoint.into()));
            }
            None => self.pending.retain(|l| l.endpoint() != endpoint),
        }
        Ok(source)
    }

    /// Replaces the network impairments.
    pub fn set_netem(&self, cfg: NetemConfig) {
        self.link.configure(cfg);
    }

    pub fn netem_counters(&self) -> NetemCounters {
        self.link.counters()
    }

    /// Stops (or resumes) every packet in both directions; the connection stays up.
    pub fn vanish(&self, vanished: bool) {
        self.link.set_vanished(vanished);
    }

    /// Closes the bridge's connection abruptly: nothing more (not even a DTLS alert) reaches
    /// jitape, whose ICE must time out.
    pub async fn fail(&mut self) {
        self.link.set_vanished(true);
        let _ = self.pc.close().await;
    }

    /// Keeps the connection (consent, DTLS) but forwards no RTP or RTCP any more.
    pub fn go_quiet(&mut self) {
        self.link.set_media_stopped(true);
    }

    /// What was sent so far (with what reached the wire).
    pub async fn sent(&self) -> SentLog {
        let Some(control) = &self.control else {
            return SentLog::default();
        };
        let (tx, rx) = oneshot::channel();
        if control.send(Control::Log(tx)).is_err() {
            return SentLog::default();
        }
        let mut log = rx.await.unwrap_or_default();
        log.attach_wire(&self.link.wire_log());
        log
    }

    /// Stops sending, closes the connection and returns what was sent (with what reached
    /// the wire).
    pub async fn close(mut self) -> SentLog {
        self.control = None;
        let mut log = match self.sender.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => SentLog::default(),
        };
        let _ = self.pc.close().await;
        log.attach_wire(&self.link.wire_log());
        log
    }
}

impl Drop for SimBridge {
    fn drop(&mut self) {
        if let Some(task) = &self.sender {
            task.abort();
        }
        let pc = Arc::clone(&self.pc);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

fn audio_track(i: usize, ssrc: u32) -> MediaStreamTrack {
    MediaStreamTrack::new(
        format!("bridge-{i}"),
        format!("speaker-{i}"),
        format!("speaker-{i}"),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus_codec(),
            ..Default::default()
        }],
    )
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: OPUS_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

fn red_codec(opus_pt: u8) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/red".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: format!("{opus_pt}/{opus_pt}"),
        rtcp_feedback: vec![],
    }
}

async fn build_peer_connection(
    cfg: &BridgeConfig,
    link: Arc<NetemLink>,
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
) -> Result<Arc<dyn PeerConnection>, BridgeError> {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus_codec(),
                payload_type: cfg.wire.opus_pt,
            },
            RtpCodecKind::Audio,
        )
        .map_err(stack("register opus"))?;
    if let Some(red) = &cfg.wire.red {
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: red_codec(cfg.wire.opus_pt),
                    payload_type: red.pt,
                },
                RtpCodecKind::Audio,
            )
            .map_err(stack("register red"))?;
    }
    // The id in the bridge's own offer is 1; the answer (Jicofo's id) decides the wire.
    engine
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .map_err(stack("register the audio-level extension"))?;
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(configure_rtcp_reports(Registry::new()))
        .with_runtime(Arc::new(NetemRuntime::new(link)))
        .with_handler(Arc::new(BridgeHandler { state, gathered }))
        .with_udp_addrs(vec![SocketAddr::new(cfg.bind, 0)])
        .build()
        .await
        .map_err(stack("create the bridge connection"))?;
    Ok(Arc::new(pc))
}

struct BridgeHandler {
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for BridgeHandler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        debug!(%state, "bridge connection state");
        self.state.send_replace(state);
    }
}
