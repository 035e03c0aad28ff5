//! Conference scripts for the simulated Jitsi side: who joins when, who talks when, what
//! goes wrong when. Pure data; [`super::world`] plays them.
//!
//! All times are offsets from the conference's epoch (the moment the simulated focus has
//! created the room).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::bridge::{BridgeConfig, TalkWindow};
use super::netem::NetemConfig;
use super::voice::{Voice, VoiceError, default_tone_hz};

/// What a simulated participant sounds like.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceSpec {
    /// A sine tone (frequency in Hz).
    Tone(f32),
    /// A WAV file, looped to fill each talk window.
    Wav(PathBuf),
}

impl VoiceSpec {
    pub fn load(&self) -> Result<Arc<Voice>, VoiceError> {
        Ok(Arc::new(match self {
            VoiceSpec::Tone(hz) => Voice::tone(*hz, TONE_AMPLITUDE)?,
            VoiceSpec::Wav(path) => Voice::from_wav(path)?,
        }))
    }
}

/// Amplitude of test tones (fraction of full scale): loud enough to detect, with headroom
/// for three at once.
pub const TONE_AMPLITUDE: f32 = 0.3;

/// One simulated human.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerPlan {
    /// MUC nick = JVB endpoint id = source owner.
    pub endpoint: String,
    pub display_name: String,
    pub voice: VoiceSpec,
    pub join_at: Duration,
    pub leave_at: Option<Duration>,
    /// When they talk (must lie inside their presence).
    pub talk: Vec<TalkWindow>,
    /// `<stats-id>` in presence: stays the same when they refresh.
    pub stats_id: String,
}

/// Something that happens to the conference at a scheduled time.
#[derive(Debug, Clone, PartialEq)]
pub enum Disruption {
    /// Jicofo ends jitape's session (`<success/>` "moving") and re-invites with a new sid.
    MoveBridge,
    /// The bridge drops dead (no packets, no terminate): jitape must notice and ask for a
    /// new session.
    FailBridge,
    /// The focus sends jitape malformed Jingle (no transport, an unknown action, a bad
    /// SSRC); the replies are recorded in the outcome.
    MalformedJingle,
}

/// A whole scripted conference.
#[derive(Debug, Clone)]
pub struct ConferencePlan {
    /// Room JID (`node@muc-domain`).
    pub room: String,
    pub speakers: Vec<SpeakerPlan>,
    /// When to send jitape a direct invitation (`None`: never; something else tells it).
    pub invite_at: Option<Duration>,
    /// When the focus destroys the room.
    pub end_at: Duration,
    pub disruptions: Vec<(Duration, Disruption)>,
    /// Signal sources in Jicofo's JSON form when jitape advertises it.
    pub json_sources: bool,
    /// Keep forwarding a leaver's audio after their `unavailable` (a stale bridge): jitape
    /// must stop mixing it on the presence alone.
    pub bridge_keeps_leavers: bool,
    pub bridge: BridgeConfig,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn window(a: f64, b: f64) -> TalkWindow {
    TalkWindow {
        start: secs(a),
        end: secs(b),
    }
}

impl ConferencePlan {
    /// The default demo: about 20 s, three speakers with distinct tones, one who joins late,
    /// one who leaves early, an overlap, and a silent stretch.
    pub fn demo(room: &str) -> ConferencePlan {
        let speaker =
            |i: usize, name: &str, join: f64, leave: Option<f64>, talk: Vec<TalkWindow>| {
                SpeakerPlan {
                    endpoint: format!(
                        "{:08x}",
                        0xa1b2_c3d4u32.wrapping_add(i as u32 * 0x1111_1111)
                    ),
                    display_name: name.into(),
                    voice: VoiceSpec::Tone(default_tone_hz(i)),
                    join_at: secs(join),
                    leave_at: leave.map(secs),
                    talk,
                    stats_id: format!("stats-{name}"),
                }
            };
        ConferencePlan {
            room: room.into(),
            speakers: vec![
                speaker(
                    0,
                    "Alice",
                    0.0,
                    None,
                    vec![window(2.0, 5.0), window(11.0, 13.5)],
                ),
                speaker(1, "Bob", 0.0, Some(10.0), vec![window(6.0, 8.5)]),
                speaker(
                    2,
                    "Carol",
                    7.0,
                    None,
                    vec![window(8.0, 10.5), window(14.0, 16.0)],
                ),
            ],
            invite_at: Some(secs(0.2)),
            end_at: secs(20.0),
            disruptions: Vec::new(),
            json_sources: true,
            bridge_keeps_leavers: false,
            bridge: BridgeConfig::default(),
        }
    }

    /// Replace every voice with WAV files (cycled over the speakers).
    pub fn with_wavs(mut self, wavs: &[PathBuf]) -> Self {
        if !wavs.is_empty() {
            for (i, s) in self.speakers.iter_mut().enumerate() {
                s.voice = VoiceSpec::Wav(wavs[i % wavs.len()].clone());
            }
        }
        self
    }

    /// Apply network impairments to the simulated bridge.
    pub fn with_netem(mut self, netem: NetemConfig) -> Self {
        self.bridge.netem = netem;
        self
    }

    /// The talk windows that fall inside each speaker's presence: what a correct recording
    /// contains, per speaker.
    pub fn audible(&self) -> Vec<(&SpeakerPlan, Vec<TalkWindow>)> {
        self.speakers
            .iter()
            .map(|s| {
                let leave = s.leave_at.unwrap_or(self.end_at).min(self.end_at);
                let w = s
                    .talk
                    .iter()
                    .filter(|w| w.start >= s.join_at && w.start < leave)
                    .map(|w| TalkWindow {
                        start: w.start,
                        end: w.end.min(leave),
                    })
                    .collect();
                (s, w)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_plan_is_consistent() {
        let p = ConferencePlan::demo("demo@conference.localhost");
        assert_eq!(p.speakers.len(), 3);
        let endpoints: std::collections::HashSet<_> =
            p.speakers.iter().map(|s| &s.endpoint).collect();
        assert_eq!(endpoints.len(), 3);
        for s in &p.speakers {
            assert!(s.endpoint.chars().all(|c| c.is_ascii_hexdigit()));
            let leave = s.leave_at.unwrap_or(p.end_at);
            for w in &s.talk {
                assert!(
                    w.start >= s.join_at && w.end <= leave && w.start < w.end,
                    "{s:?}"
                );
            }
        }
        // Somebody joins late, somebody leaves early, and the last seconds are silent.
        assert!(p.speakers.iter().any(|s| s.join_at > Duration::ZERO));
        assert!(p.speakers.iter().any(|s| s.leave_at.is_some()));
        let last_talk = p
            .speakers
            .iter()
            .flat_map(|s| &s.talk)
            .map(|w| w.end)
            .max()
            .unwrap();
        assert!(p.end_at - last_talk >= Duration::from_secs(3));
    }
}
