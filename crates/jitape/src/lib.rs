//! jitape: records every Jitsi Meet conference as one continuous FLAC per conference.
//!
//! The data flow (see `docs/architecture.md`): Prosody ─XEP-0114─▶ [`xmpp`] link ─▶ router ─▶
//! one [`conference`] task per room (MUC occupancy, roster, [`jingle`] session) ─▶ [`media`]
//! (webrtc-rs: ICE/DTLS/SRTP from the videobridge) ─▶ [`audio`] (jitter buffer, Opus,
//! timeline, mixer) ─▶ [`sink`] (FLAC, sidecar, finalize hook). The loopback conference the
//! demo, the benchmark and the tests run against is the `jitape-sim` crate; the command line is
//! the `jitape-cli` package.

pub mod app;
pub mod audio;
pub mod conference;
pub mod config;
pub mod guard;
pub mod http;
pub mod jingle;
pub mod load;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod room;
pub mod router;
pub mod sink;
pub mod types;
pub mod util;
pub mod xml;
pub mod xmpp;
