//! The loopback conference: everything jitape talks to, simulated, for `jitape demo`, the
//! benchmarks and the tests. A minimal XMPP server with a Prosody-like MUC (`router`, `muc`),
//! a simulated videobridge on webrtc-rs (`bridge`, with network impairments in `netem`) or an
//! external bridge process on another WebRTC stack (`external`; `any_bridge` picks one),
//! speaker voices (`voice`), and the simulated Jitsi side — focus and participants — that
//! drives a conference from a script (`world`, `script`).

pub mod analyze;
mod any_bridge;
pub mod bridge;
pub mod conference;
pub mod external;
mod focus;
pub mod fuzz;
pub mod harness;
pub mod loopback;
pub mod muc;
pub mod netem;
pub mod offer;
mod people;
pub mod plan;
pub mod router;
pub mod voice;
pub mod world;
