//! The bridge behind one simulated Jingle session: the webrtc-rs [`SimBridge`] or an
//! [`ExternalBridge`] process on another WebRTC stack, chosen by
//! [`BridgeConfig::external`]. The focus drives both the same way: allocate (offer and sources
//! for session-initiate), accept jitape's transport, start sending from the conference epoch,
//! add and remove speakers, fail, close (what was sent).

use std::time::Instant;

use tracing::warn;

use super::bridge::{BridgeConfig, BridgeError, SentLog, SimBridge, SpeakerScript};
use super::external::ExternalBridge;
use super::netem::NetemConfig;
use jitape::jingle::model::{AudioOffer, IceTransport, Source};

/// One session's bridge.
pub enum Bridge {
    Sim(SimBridge),
    /// Boxed: the process handle is several times the size of the webrtc-rs bridge's.
    External(Box<ExternalBridge>),
}

impl Bridge {
    /// Allocates a bridge for the session: the offer and sources for the session-initiate.
    pub async fn allocate(
        cfg: BridgeConfig,
        speakers: Vec<SpeakerScript>,
    ) -> Result<(Bridge, AudioOffer, Vec<Source>), BridgeError> {
        match &cfg.external {
            Some(spec) => {
                let (b, offer, sources) =
                    ExternalBridge::allocate(spec, cfg.max_speakers, cfg.seed, speakers).await?;
                Ok((Bridge::External(Box::new(b)), offer, sources))
            }
            None => {
                let (b, offer, sources) = SimBridge::allocate(cfg, speakers).await?;
                Ok((Bridge::Sim(b), offer, sources))
            }
        }
    }

    /// Completes the bridge side with jitape's transport (from session-accept).
    pub async fn accept(&mut self, answer: &IceTransport) -> Result<(), BridgeError> {
        match self {
            Bridge::Sim(b) => b.accept(answer).await,
            Bridge::External(b) => b.accept(answer),
        }
    }

    /// Starts sending; talk windows are relative to `epoch`.
    pub fn start(&mut self, epoch: Instant) -> Result<(), BridgeError> {
        match self {
            Bridge::Sim(b) => b.start(epoch),
            Bridge::External(b) => b.start(epoch),
        }
    }

    /// Announces a speaker (a source-add): returns the source to signal.
    pub fn add_speaker(&mut self, script: SpeakerScript) -> Result<Source, BridgeError> {
        match self {
            Bridge::Sim(b) => b.add_speaker(script),
            Bridge::External(b) => b.add_speaker(script),
        }
    }

    /// A speaker leaves: their stream stops.
    pub fn remove_speaker(&mut self, endpoint: &str) -> Result<(), BridgeError> {
        match self {
            Bridge::Sim(b) => b.remove_speaker(endpoint).map(|_| ()),
            Bridge::External(b) => {
                b.remove_speaker(endpoint);
                Ok(())
            }
        }
    }

    /// Replaces the network impairments (the simulated bridge only).
    pub fn set_netem(&self, cfg: NetemConfig) {
        match self {
            Bridge::Sim(b) => b.set_netem(cfg),
            Bridge::External(_) => warn!("an external bridge has no network emulator"),
        }
    }

    /// The bridge drops dead: nothing more reaches jitape.
    pub async fn fail(&mut self) {
        match self {
            Bridge::Sim(b) => b.fail().await,
            Bridge::External(b) => b.fail().await,
        }
    }

    /// Stops sending, closes the connection and returns what was sent.
    pub async fn close(self) -> SentLog {
        match self {
            Bridge::Sim(b) => b.close().await,
            Bridge::External(b) => b.close().await,
        }
    }
}
