//! The loopback conference: everything jitape talks to, simulated, for `jitape demo`, the
//! benchmarks and the tests. A minimal XMPP server with a Prosody-like MUC (`router`, `muc`),
//! a simulated videobridge on webrtc-rs (`bridge`, with network impairments in `netem`),
//! speaker voices (`voice`), and the simulated Jitsi side — focus and participants — that
//! drives a conference from a script (`world`, `script`).

pub mod analyze;
pub mod bridge;
pub mod conference;
mod focus;
pub mod loopback;
pub mod muc;
pub mod netem;
pub mod offer;
mod people;
pub mod plan;
pub mod router;
pub mod voice;
pub mod world;
