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
use super::offer::OfferVariants;
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

/// One stay of a participant in the room, under one endpoint id (a page refresh starts a
/// new stint with a new endpoint id).
#[derive(Debug, Clone, PartialEq)]
pub struct Stint {
    /// MUC nick = JVB endpoint id = source owner.
    pub endpoint: String,
    pub join_at: Duration,
    pub leave_at: Option<Duration>,
    /// Knock first: a join attempt 2 s before `join_at` (refused if the room is
    /// members-only), then the focus admits them (member affiliation) just before `join_at`.
    pub knock: bool,
}

/// One simulated human.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerPlan {
    pub display_name: String,
    pub voice: VoiceSpec,
    /// `<stats-id>` in presence: stays the same across stints (as in a browser).
    pub stats_id: String,
    pub stints: Vec<Stint>,
    /// When they talk; only what falls inside a stint is sent.
    pub talk: Vec<TalkWindow>,
    /// JWT context user fields their presence carries (`<identity><user>`): id and email.
    pub identity: Option<(String, String)>,
    /// `<hidden-from-recorder>true</hidden-from-recorder>` in their identity: jitape must not
    /// record them at all.
    pub hidden_from_recorder: bool,
}

impl SpeakerPlan {
    /// One stint from `join` to `leave`.
    pub fn simple(
        endpoint: &str,
        name: &str,
        voice: VoiceSpec,
        join: Duration,
        leave: Option<Duration>,
        talk: Vec<TalkWindow>,
    ) -> Self {
        SpeakerPlan {
            display_name: name.into(),
            voice,
            stats_id: format!("stats-{name}"),
            stints: vec![Stint {
                endpoint: endpoint.into(),
                join_at: join,
                leave_at: leave,
                knock: false,
            }],
            talk,
            identity: None,
            hidden_from_recorder: false,
        }
    }
}

/// Something that happens to the conference at a scheduled time.
#[derive(Debug, Clone, PartialEq)]
pub enum Disruption {
    /// Jicofo ends jitape's session (`<success/>` "moving") and re-invites with a new sid.
    MoveBridge,
    /// Jicofo re-invites with `transport-replace` (same sid, a new bridge allocation).
    ReplaceTransport,
    /// The bridge drops dead (no packets, no terminate): jitape must notice and ask for a
    /// new session.
    FailBridge,
    /// The bridge keeps the connection up (ICE consent, DTLS) but forwards nothing, no RTP
    /// and no RTCP: jitape must notice the silence of a connected session.
    QuietBridge,
    /// The focus sends jitape malformed Jingle (no transport, an unknown action, a bad
    /// SSRC); the replies are recorded in the outcome.
    MalformedJingle,
    /// The room becomes members-only (Jitsi's lobby): present humans are made members
    /// first, as the lobby module does; jitape must not be kicked.
    MembersOnly(bool),
    /// The room gets (or loses) a password; humans know it, jitape does not.
    Password(Option<String>),
    /// The focus kicks jitape (role none): it must rejoin and keep the one recording.
    KickRecorder,
    /// A participant's browser offers jitape P2P (speaker index).
    P2pOffer(usize),
    /// The current bridge session's network impairments change from now on (a later
    /// `Netem` ends them): see [`ConferencePlan::with_loss_burst`].
    Netem(NetemConfig),
    /// The focus stops answering jitape for good: no IQ result or error, no disco, no
    /// (re-)invitation, no idle timeout, no source-add. The room and its people go on.
    /// Together with [`Disruption::FailBridge`] at the same time: a focus that never answers.
    FocusSilent,
}

/// A whole scripted conference.
#[derive(Debug, Clone)]
pub struct ConferencePlan {
    /// Room JID (`node@muc-domain`).
    pub room: String,
    pub speakers: Vec<SpeakerPlan>,
    /// When to send jitape a direct invitation (`None`: never; the Prosody module tells it).
    pub invite_at: Option<Duration>,
    /// When the focus destroys the room.
    pub end_at: Duration,
    pub disruptions: Vec<(Duration, Disruption)>,
    /// Signal sources in Jicofo's JSON form when jitape advertises it.
    pub json_sources: bool,
    /// Keep forwarding a leaver's audio after their `unavailable` (a stale bridge): jitape
    /// must stop mixing it on the presence alone.
    pub bridge_keeps_leavers: bool,
    /// Jicofo's `single-participant-timeout`: jitape alone with a session this long gets
    /// `<expired/>` (and is re-invited when a human returns).
    pub idle_timeout: Duration,
    pub bridge: BridgeConfig,
    /// The focus's first this many offers carry no codec jitape can record (PCMU only, a
    /// misconfigured deployment): jitape must refuse each, say so, and ask for another. Like
    /// Jicofo, the focus then drops jitape as a participant and invites it again only when
    /// it rejoins.
    pub unusable_offers: u32,
    /// What Jicofo puts in its offers beyond the defaults (RED, translations, extras).
    pub offer: OfferVariants,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A talk window from `a` to `b` seconds.
pub fn window(a: f64, b: f64) -> TalkWindow {
    TalkWindow {
        start: secs(a),
        end: secs(b),
    }
}

impl ConferencePlan {
    /// A plan with no speakers yet, invited at once, ending at `end` seconds.
    pub fn empty(room: &str, end: f64) -> ConferencePlan {
        ConferencePlan {
            room: room.into(),
            speakers: Vec::new(),
            invite_at: Some(secs(0.2)),
            end_at: secs(end),
            disruptions: Vec::new(),
            json_sources: true,
            bridge_keeps_leavers: false,
            idle_timeout: Duration::from_secs(20),
            bridge: BridgeConfig::default(),
            unusable_offers: 0,
            offer: OfferVariants::default(),
        }
    }

    /// The default demo: about 20 s, three speakers with distinct tones, one who joins late,
    /// one who leaves early, an overlap, and a silent stretch.
    pub fn demo(room: &str) -> ConferencePlan {
        let speaker =
            |i: usize, name: &str, join: f64, leave: Option<f64>, talk: Vec<TalkWindow>| {
                let endpoint = format!(
                    "{:08x}",
                    0xa1b2_c3d4u32.wrapping_add(i as u32 * 0x1111_1111)
                );
                let voice = VoiceSpec::Tone(default_tone_hz(i));
                SpeakerPlan::simple(&endpoint, name, voice, secs(join), leave.map(secs), talk)
            };
        ConferencePlan {
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
            ..ConferencePlan::empty(room, 20.0)
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

    /// A burst of 100 % RTP loss on the bridge's path to jitape from `at` for `len` seconds
    /// (both scheduled as [`Disruption::Netem`]); STUN, DTLS and RTCP still pass, so the
    /// connection stays up. The plan's own impairments apply before and after.
    pub fn with_loss_burst(self, at: f64, len: f64) -> Self {
        let during = self.bridge.netem.blackout();
        self.with_netem_for(at, len, during)
    }

    /// Every RTP packet on the bridge's path to jitape `delay` late from `at` for `len`
    /// seconds (both scheduled as [`Disruption::Netem`]), in order: a path or a sender that
    /// falls behind and stays behind. The plan's own impairments apply before and after.
    pub fn with_delay_step(self, at: f64, len: f64, delay: Duration) -> Self {
        let normal = &self.bridge.netem;
        let during = NetemConfig {
            delay: normal.delay + delay,
            ..normal.clone()
        };
        self.with_netem_for(at, len, during)
    }

    /// `during` on the bridge's path from `at` for `len` seconds, the plan's own netem
    /// before and after.
    fn with_netem_for(mut self, at: f64, len: f64, during: NetemConfig) -> Self {
        let normal = self.bridge.netem.clone();
        self.disruptions.push((secs(at), Disruption::Netem(during)));
        self.disruptions
            .push((secs(at + len), Disruption::Netem(normal)));
        self
    }

    /// The talk windows that fall inside each speaker's stints (and before the end): what
    /// a correct recording contains, per speaker.
    pub fn audible(&self) -> Vec<(&SpeakerPlan, Vec<TalkWindow>)> {
        self.speakers
            .iter()
            .map(|s| {
                let mut out = Vec::new();
                if s.hidden_from_recorder {
                    return (s, out);
                }
                for w in &s.talk {
                    for st in &s.stints {
                        let leave = st.leave_at.unwrap_or(self.end_at).min(self.end_at);
                        let (a, b) = (w.start.max(st.join_at), w.end.min(leave));
                        if a < b {
                            out.push(TalkWindow { start: a, end: b });
                        }
                    }
                }
                out.sort_by_key(|w| w.start);
                (s, out)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
