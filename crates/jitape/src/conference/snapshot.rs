//! A conference's state as the admin API shows it (`GET /conferences`).
//!
//! Built by the conference task on request (it alone owns the state), serialised by the HTTP
//! server. Personal data (display names) appears here only because the admin API is an
//! operator's tool behind a token or on loopback.

use crate::types::Ssrc;
use serde::Serialize;

/// One active recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConferenceSnapshot {
    /// The room JID (internal form for a tenant room: `[tenant]room@muc`).
    pub room: String,
    /// The tenant and the room as in the room's URL (see `room::RoomName`).
    pub tenant: Option<String>,
    pub room_name: String,
    pub meeting_id: Option<String>,
    /// Whether jitape is in the room right now.
    pub joined: bool,
    /// RFC 3339 UTC of sample 0, once recording.
    pub start: Option<String>,
    pub file: Option<String>,
    pub file_bytes: u64,
    pub seconds_recorded: f64,
    pub humans: Option<usize>,
    pub participants: Vec<ParticipantSnapshot>,
    /// The current Jingle session's sid and state.
    pub session: Option<String>,
    pub media_state: Option<String>,
    /// Out of the room on purpose (fewer than `rooms.min_participants` others in it).
    pub away: bool,
    /// Recording without a working media session: since how many ms, and why.
    pub deaf_ms: Option<u64>,
    pub deaf_why: Option<String>,
    /// The last media problem (`offer-refused`, `ice-dtls-failed`, `accept-refused`) and
    /// its detail.
    pub media_problem: Option<String>,
    /// Writes of this recording the disk refused (the audio became silence, a gap).
    pub write_failures: u64,
    /// Audio waiting for the disk, in milliseconds.
    pub write_backlog_ms: u64,
    pub sources: Vec<SourceSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParticipantSnapshot {
    /// The participant's key in the sidecar.
    pub key: String,
    pub nick: String,
    pub display_name: Option<String>,
    pub present: bool,
    /// Speaking right now (an open speaking segment).
    pub speaking: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceSnapshot {
    pub ssrc: Ssrc,
    pub owner: String,
    /// Milliseconds since its last packet (`None`: none yet).
    pub last_packet_ms: Option<u64>,
}
