//! Who is in the room and who has ever been: the occupant roster and the participant
//! ledger that becomes the sidecar's participant list.
//!
//! In: parsed occupant presences with the instant they arrived. Out: the current occupants,
//! the participants with their presence intervals, and a stable [`TrackId`] per participant
//! (a participant who refreshes the page comes back under a new nick but the same identity
//! key, and so continues the same track and stem). Pure.
//!
//! Bounded ([`RosterLimits`]): at most `max_participants` ledger entries, then newcomers share
//! one `overflow` entry; at most `max_presences` stays (and nicks) per participant, then a
//! rejoin extends the last stay. A client cycling through nicknames thus grows neither the
//! ledger nor the sidecar rewritten from it; each refusal is counted in [`LimitHits`].

use std::collections::BTreeMap;
use std::time::Instant;

use crate::audio::TrackId;
use crate::xmpp::muc::{FEATURE_JIBRI, FEATURE_TRANSCRIBER, Identity, OccupantPresence};
use crate::xmpp::stanza::Jid;

/// A current occupant of the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occupant {
    pub nick: String,
    pub real_jid: Option<Jid>,
    pub role: Option<String>,
    /// Index into the ledger.
    pub participant: usize,
    pub kind: OccupantKind,
}

/// How an occupant counts for the room's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccupantKind {
    Human,
    /// Jicofo's occupant.
    Focus,
    /// jitape itself.
    Us,
    /// Jibri, transcribers and anything from a configured service domain: they do not keep
    /// a conference alive. (A SIP Jigasi, `jigasi` without `transcriber`, is a phone caller:
    /// a human.)
    Service,
}

/// Everything the ledger knows about one participant over the whole recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Stable key: `id:<jwt user id>`, `email:<…>`, `stats:<stats-id>` or `nick:<nick>`.
    pub key: String,
    pub track: TrackId,
    pub nicks: Vec<String>,
    pub display_name: Option<String>,
    pub identity: Identity,
    pub kind: OccupantKind,
    /// Presence intervals (join, leave); `leave` is `None` while present.
    pub intervals: Vec<(Instant, Option<Instant>)>,
}

impl Participant {
    pub fn present(&self) -> bool {
        self.intervals
            .last()
            .is_some_and(|(_, leave)| leave.is_none())
    }
}

/// What changed with a presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterChange {
    Joined { nick: String },
    Updated { nick: String },
    Left { nick: String },
    Unchanged,
}

/// Classification inputs that come from configuration.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    pub our_nick: String,
    /// jitape's component domain: any occupant from it is jitape (this process or another).
    pub our_domain: String,
    pub focus_nick: String,
    /// Domains whose occupants are services (Jibri, transcribers, the hidden domain).
    pub service_domains: Vec<String>,
}

/// Whether an occupant's presence features make it a service. Jigasi signals `jigasi` in
/// every role, `transcriber` only when it transcribes, and a SIP Jigasi adds DTMF instead:
/// a SIP Jigasi is one human on the phone (jigasi `JvbConference.addSupportedFeatures`).
fn service_by_features(features: &[String]) -> bool {
    features
        .iter()
        .any(|f| f == FEATURE_JIBRI || f == FEATURE_TRANSCRIBER)
}

impl Classifier {
    /// What an occupant is, from its nick, real JID (when the room shows it) and the
    /// `<features>` of its presence.
    pub fn classify(&self, nick: &str, real: Option<&Jid>, features: &[String]) -> OccupantKind {
        let ours = real.is_some_and(|j| j.domain().eq_ignore_ascii_case(&self.our_domain));
        if nick == self.our_nick || ours {
            return OccupantKind::Us;
        }
        if nick == self.focus_nick {
            return OccupantKind::Focus;
        }
        let service_domain = real.is_some_and(|j| {
            self.service_domains
                .iter()
                .any(|d| j.domain().eq_ignore_ascii_case(d))
        });
        if service_domain || service_by_features(features) {
            OccupantKind::Service
        } else {
            OccupantKind::Human
        }
    }
}

/// Bounds on what the ledger keeps for one conference (`[limits]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterLimits {
    /// Ledger entries with a track of their own; later newcomers share the `overflow` entry.
    pub max_participants: usize,
    /// Stays (and nicks) kept per participant; later rejoins extend the last stay.
    pub max_presences: usize,
}

impl Default for RosterLimits {
    fn default() -> Self {
        RosterLimits {
            max_participants: 1000,
            max_presences: 100,
        }
    }
}

/// How often the ledger refused to grow, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitHits {
    /// Newcomers put in the `overflow` entry.
    pub participants: u64,
    /// Stays merged into the last one (or nicks not kept).
    pub presences: u64,
}

/// The key of the entry newcomers beyond `max_participants` share.
pub const OVERFLOW_KEY: &str = "overflow";

/// The roster and the ledger together.
#[derive(Debug, Default, Clone)]
pub struct Roster {
    classifier: Classifier,
    limits: RosterLimits,
    hits: LimitHits,
    occupants: BTreeMap<String, Occupant>,
    participants: Vec<Participant>,
    /// The shared entry for newcomers beyond the limit, once made.
    overflow: Option<usize>,
    /// Occupants we last saw in the room before we stepped out of it (we are not an
    /// occupant, the room goes on): their presence stays open until we learn they left.
    outside: BTreeMap<String, Occupant>,
}

/// Longest key we keep (hostile presences).
const MAX_KEY: usize = 256;

fn identity_key(p: &OccupantPresence) -> String {
    let key = if let Some(id) = &p.identity.id {
        format!("id:{id}")
    } else if let Some(email) = &p.identity.email {
        format!("email:{email}")
    } else if let Some(stats) = &p.stats_id {
        format!("stats:{stats}")
    } else {
        format!("nick:{}", p.nick)
    };
    key.chars().take(MAX_KEY).collect()
}

impl Roster {
    pub fn new(classifier: Classifier) -> Self {
        Self::with_limits(classifier, RosterLimits::default())
    }

    pub fn with_limits(classifier: Classifier, limits: RosterLimits) -> Self {
        Roster {
            classifier,
            limits,
            ..Default::default()
        }
    }

    /// How often the limits refused something so far.
    pub fn hits(&self) -> LimitHits {
        self.hits
    }

    pub fn set_our_nick(&mut self, nick: &str) {
        self.classifier.our_nick = nick.to_string();
    }

    pub fn occupants(&self) -> impl Iterator<Item = &Occupant> {
        self.occupants.values()
    }

    pub fn occupant(&self, nick: &str) -> Option<&Occupant> {
        self.occupants.get(nick)
    }

    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }

    pub fn participant_of(&self, nick: &str) -> Option<&Participant> {
        self.occupants
            .get(nick)
            .and_then(|o| self.participants.get(o.participant))
    }

    /// The participant who last used `nick`, present or not.
    pub fn participant_of_any(&self, nick: &str) -> Option<&Participant> {
        self.participants
            .iter()
            .rev()
            .find(|p| p.nicks.iter().any(|n| n == nick))
    }

    /// Number of humans present now.
    pub fn humans(&self) -> usize {
        self.occupants
            .values()
            .filter(|o| o.kind == OccupantKind::Human)
            .count()
    }

    /// Occupants other than the focus and jitape: what Jicofo counts as members besides
    /// jitape (humans and services alike).
    pub fn others(&self) -> usize {
        self.occupants
            .values()
            .filter(|o| matches!(o.kind, OccupantKind::Human | OccupantKind::Service))
            .count()
    }

    /// Apply an occupant presence (not an error presence) received at `now`.
    pub fn apply(&mut self, p: &OccupantPresence, now: Instant) -> RosterChange {
        if p.unavailable {
            return self.leave(&p.nick, now);
        }
        let kind = self
            .classifier
            .classify(&p.nick, p.item.jid.as_ref(), &p.features);
        if let Some(o) = self.occupants.get_mut(&p.nick) {
            o.role = p.item.role.clone();
            let part = &mut self.participants[o.participant];
            if p.display_name.is_some() {
                part.display_name = p.display_name.clone();
            }
            if p.identity != Identity::default() {
                part.identity = p.identity.clone();
            }
            return RosterChange::Updated {
                nick: p.nick.clone(),
            };
        }
        if let Some(mut o) = self.outside.remove(&p.nick) {
            // Still there since before we stepped out: the same stay continues.
            o.role = p.item.role.clone();
            o.kind = kind;
            let part = &mut self.participants[o.participant];
            if p.display_name.is_some() {
                part.display_name = p.display_name.clone();
            }
            self.occupants.insert(p.nick.clone(), o);
            return RosterChange::Joined {
                nick: p.nick.clone(),
            };
        }
        let key = identity_key(p);
        // A placeholder made for this nick's sources (no presence yet) is adopted; otherwise
        // a returning participant (same identity, not present) continues its track.
        let own = |i: &usize| Some(*i) != self.overflow;
        let placeholder = self
            .participants
            .iter()
            .position(|x| x.intervals.is_empty() && x.nicks.contains(&p.nick))
            .filter(own);
        let returning = self
            .participants
            .iter()
            .position(|x| x.key == key && !x.present())
            .filter(own);
        let index = match placeholder.or(returning) {
            Some(i) => {
                self.participants[i].key = key;
                self.participants[i].kind = kind;
                i
            }
            None => self.new_participant(key, kind, Vec::new()),
        };
        self.add_nick(index, &p.nick);
        if Some(index) != self.overflow {
            // The overflow entry stands for many people: it names none of them.
            let part = &mut self.participants[index];
            if p.display_name.is_some() {
                part.display_name = p.display_name.clone();
            }
            if p.identity != Identity::default() {
                part.identity = p.identity.clone();
            }
        }
        self.open_stay(index, now);
        self.occupants.insert(
            p.nick.clone(),
            Occupant {
                nick: p.nick.clone(),
                real_jid: p.item.jid.clone(),
                role: p.item.role.clone(),
                participant: index,
                kind,
            },
        );
        RosterChange::Joined {
            nick: p.nick.clone(),
        }
    }

    fn leave(&mut self, nick: &str, now: Instant) -> RosterChange {
        let Some(o) = self.occupants.remove(nick) else {
            return RosterChange::Unchanged;
        };
        self.close_stay(o.participant, now);
        RosterChange::Left {
            nick: nick.to_string(),
        }
    }

    /// A new ledger entry, or the shared overflow entry once `max_participants` are kept.
    fn new_participant(&mut self, key: String, kind: OccupantKind, nicks: Vec<String>) -> usize {
        let full = self.participants.len() - usize::from(self.overflow.is_some())
            >= self.limits.max_participants;
        if full {
            self.hits.participants += 1;
            if let Some(i) = self.overflow {
                return i;
            }
        }
        let (key, nicks) = if full {
            (OVERFLOW_KEY.to_string(), Vec::new())
        } else {
            (key, nicks)
        };
        self.participants.push(Participant {
            key,
            track: TrackId(self.participants.len() as u32),
            nicks,
            display_name: None,
            identity: Identity::default(),
            kind,
            intervals: Vec::new(),
        });
        let i = self.participants.len() - 1;
        if full {
            self.overflow = Some(i);
        }
        i
    }

    /// Notes `nick` for a participant (up to `max_presences` nicks).
    fn add_nick(&mut self, index: usize, nick: &str) {
        let max = self.limits.max_presences;
        let part = &mut self.participants[index];
        if part.nicks.iter().any(|n| n == nick) {
            return;
        }
        if part.nicks.len() < max {
            part.nicks.push(nick.to_string());
        } else {
            self.hits.presences += 1;
        }
    }

    /// A stay begins at `now`; beyond `max_presences` the last stay is extended instead.
    fn open_stay(&mut self, index: usize, now: Instant) {
        let max = self.limits.max_presences;
        let part = &mut self.participants[index];
        if part.present() {
            // The overflow entry, already open for someone else.
            return;
        }
        let full = part.intervals.len() >= max;
        match part.intervals.last_mut() {
            Some((_, leave)) if full => {
                *leave = None;
                self.hits.presences += 1;
            }
            _ => part.intervals.push((now, None)),
        }
    }

    /// A stay ends at `now`, unless someone else still holds the (overflow) entry.
    fn close_stay(&mut self, index: usize, now: Instant) {
        if Some(index) == self.overflow
            && self
                .occupants
                .values()
                .chain(self.outside.values())
                .any(|o| o.participant == index)
        {
            return;
        }
        if let Some((_, leave)) = self.participants[index].intervals.last_mut() {
            leave.get_or_insert(now);
        }
    }

    /// Everyone is gone at once (we were kicked, or the link dropped): close every open
    /// interval. Presence will be re-learnt on rejoin.
    pub fn clear(&mut self, now: Instant) {
        self.settle_outside(now);
        let nicks: Vec<String> = self.occupants.keys().cloned().collect();
        for nick in nicks {
            self.leave(&nick, now);
        }
    }

    /// We leave the room on purpose while others stay: they remain present (as far as the
    /// Prosody module tells us, see [`Self::outside_present`]) until they leave or we are back.
    pub fn step_out(&mut self) {
        self.outside.extend(std::mem::take(&mut self.occupants));
    }

    /// While we are out: the nicks the Prosody module reports in the room. Anyone we left
    /// behind who is not among them has left by `now`.
    pub fn outside_present(&mut self, nicks: &[String], now: Instant) {
        let gone: Vec<String> = self
            .outside
            .keys()
            .filter(|n| !nicks.contains(n))
            .cloned()
            .collect();
        for nick in gone {
            if let Some(o) = self.outside.remove(&nick) {
                self.close_stay(o.participant, now);
            }
        }
    }

    /// We are back in (our self-presence came, after every occupant's presence): whoever we
    /// left behind and did not see again has left by `now`.
    pub fn settle_outside(&mut self, now: Instant) {
        self.outside_present(&[], now);
    }

    /// Humans among those we left behind when stepping out (for the empty grace while out).
    pub fn humans_outside(&self) -> usize {
        self.outside
            .values()
            .filter(|o| o.kind == OccupantKind::Human)
            .count()
    }

    /// The participant (and its track) that owns sources announced for `owner` (an endpoint
    /// id = nick). Jicofo may announce sources before the owner's presence reaches us, or
    /// after the owner left; then a ledger entry keyed by the nick is made (or reused) so no
    /// audio is lost — but it is not an occupant and counts as nobody present.
    pub fn track_for_owner(&mut self, owner: &str) -> &Participant {
        if let Some(o) = self.occupants.get(owner) {
            return &self.participants[o.participant];
        }
        let index = match self
            .participants
            .iter()
            .rposition(|p| p.nicks.iter().any(|n| n == owner))
        {
            Some(i) => i,
            None => {
                let key = format!("nick:{owner}").chars().take(MAX_KEY).collect();
                let i = self.new_participant(key, OccupantKind::Human, vec![owner.to_string()]);
                self.add_nick(i, owner);
                i
            }
        };
        &self.participants[index]
    }
}

#[cfg(test)]
mod tests;
