//! One conference: the room lifecycle state machine (`machine`, with its Jingle half in
//! `session` and its roster in `roster`), the task that drives it (`task`), and the note of
//! stretches it could not hear (`deaf`).

pub mod deaf;
pub mod inbox;
pub mod machine;
pub mod recording;
pub mod roster;
pub mod session;
pub mod snapshot;
pub mod task;

use crate::metrics::Metrics;
use machine::MediaProblem;

impl MediaProblem {
    /// Count this problem in its metric.
    pub fn count(self, metrics: &Metrics) {
        match self {
            MediaProblem::OfferRefused => metrics.media_offer_refused.inc(),
            MediaProblem::Failed => metrics.media_failed.inc(),
            MediaProblem::AcceptRefused => metrics.media_accept_refused.inc(),
            MediaProblem::NoPackets => metrics.media_no_packets.inc(),
        }
    }
}
