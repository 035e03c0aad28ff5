//! Who is in the room and who has ever been: the occupant roster and the participant
//! ledger that becomes the sidecar's participant list.
//!
//! In: parsed occupant presences with the instant they arrived. Out: the current occupants,
//! the participants with their presence intervals, and a stable [`TrackId`] per participant
//! (a participant who refreshes the page comes back under a new nick but the same identity
//! key, and so continues the same track and stem). Pure.

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

/// The roster and the ledger together.
#[derive(Debug, Default, Clone)]
pub struct Roster {
    classifier: Classifier,
    occupants: BTreeMap<String, Occupant>,
    participants: Vec<Participant>,
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
        Roster {
            classifier,
            ..Default::default()
        }
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
        let placeholder = self
            .participants
            .iter()
            .position(|x| x.intervals.is_empty() && x.nicks.contains(&p.nick));
        let returning = self
            .participants
            .iter()
            .position(|x| x.key == key && !x.present());
        let index = match placeholder.or(returning) {
            Some(i) => {
                self.participants[i].key = key;
                self.participants[i].kind = kind;
                i
            }
            None => {
                self.participants.push(Participant {
                    key,
                    track: TrackId(self.participants.len() as u32),
                    nicks: Vec::new(),
                    display_name: None,
                    identity: Identity::default(),
                    kind,
                    intervals: Vec::new(),
                });
                self.participants.len() - 1
            }
        };
        let part = &mut self.participants[index];
        if !part.nicks.contains(&p.nick) {
            part.nicks.push(p.nick.clone());
        }
        if p.display_name.is_some() {
            part.display_name = p.display_name.clone();
        }
        if p.identity != Identity::default() {
            part.identity = p.identity.clone();
        }
        part.intervals.push((now, None));
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
        if let Some((_, leave)) = self.participants[o.participant].intervals.last_mut() {
            leave.get_or_insert(now);
        }
        RosterChange::Left {
            nick: nick.to_string(),
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
            if let Some(o) = self.outside.remove(&nick)
                && let Some((_, leave)) = self.participants[o.participant].intervals.last_mut()
            {
                leave.get_or_insert(now);
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
                self.participants.push(Participant {
                    key: format!("nick:{owner}").chars().take(MAX_KEY).collect(),
                    track: TrackId(self.participants.len() as u32),
                    nicks: vec![owner.to_string()],
                    display_name: None,
                    identity: Identity::default(),
                    kind: OccupantKind::Human,
                    intervals: Vec::new(),
                });
                self.participants.len() - 1
            }
        };
        &self.participants[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn presence(nick: &str) -> OccupantPresence {
        OccupantPresence {
            nick: nick.into(),
            ..Default::default()
        }
    }

    fn roster() -> Roster {
        Roster::new(Classifier {
            our_nick: "jitape1".into(),
            our_domain: "rec.example".into(),
            focus_nick: "focus".into(),
            service_domains: vec!["hidden.example".into()],
        })
    }

    #[test]
    fn refresh_with_same_identity_continues_the_track() {
        let t0 = Instant::now();
        let mut r = roster();
        let mut alice = presence("a1");
        alice.stats_id = Some("st-alice".into());
        r.apply(&alice, t0);
        let track = r.participant_of("a1").unwrap().track;
        let mut gone = alice.clone();
        gone.unavailable = true;
        r.apply(&gone, t0 + Duration::from_secs(5));
        let mut again = alice.clone();
        again.nick = "b2".into();
        assert_eq!(
            r.apply(&again, t0 + Duration::from_secs(7)),
            RosterChange::Joined { nick: "b2".into() }
        );
        let p = r.participant_of("b2").unwrap();
        assert_eq!(p.track, track);
        assert_eq!(p.nicks, vec!["a1", "b2"]);
        assert_eq!(p.intervals.len(), 2);
        assert_eq!(r.participants().len(), 1);
    }

    #[test]
    fn classification_of_occupants() {
        let t0 = Instant::now();
        let mut r = roster();
        r.apply(&presence("focus"), t0);
        r.apply(&presence("jitape1"), t0);
        let mut jibri = presence("j1");
        jibri.features = vec![FEATURE_JIBRI.into()];
        r.apply(&jibri, t0);
        let mut svc = presence("s1");
        svc.item.jid = Jid::parse("x@hidden.example/1");
        r.apply(&svc, t0);
        assert_eq!(r.humans(), 0);
        r.apply(&presence("h1"), t0);
        assert_eq!(r.humans(), 1);
        assert_eq!(r.occupant("focus").unwrap().kind, OccupantKind::Focus);
        assert_eq!(r.occupant("jitape1").unwrap().kind, OccupantKind::Us);
        assert_eq!(r.occupant("j1").unwrap().kind, OccupantKind::Service);
        assert_eq!(r.occupant("s1").unwrap().kind, OccupantKind::Service);
    }

    #[test]
    fn two_guests_without_identity_are_distinct() {
        let t0 = Instant::now();
        let mut r = roster();
        r.apply(&presence("g1"), t0);
        r.apply(&presence("g2"), t0);
        assert_ne!(
            r.participant_of("g1").unwrap().track,
            r.participant_of("g2").unwrap().track
        );
    }

    #[test]
    fn sources_before_presence_get_a_placeholder_the_occupant_adopts() {
        let t0 = Instant::now();
        let mut r = roster();
        let track = r.track_for_owner("e5f6").track;
        assert_eq!(r.humans(), 0, "a placeholder is nobody present");
        let mut p = presence("e5f6");
        p.display_name = Some("Bob".into());
        p.stats_id = Some("st-bob".into());
        assert_eq!(
            r.apply(&p, t0),
            RosterChange::Joined {
                nick: "e5f6".into()
            }
        );
        let part = r.participant_of("e5f6").unwrap();
        assert_eq!(part.track, track);
        assert_eq!(part.key, "stats:st-bob");
        assert_eq!(part.display_name.as_deref(), Some("Bob"));
        assert_eq!(r.participants().len(), 1);
        assert_eq!(r.humans(), 1);
    }

    #[test]
    fn sources_of_someone_who_left_map_to_their_old_track() {
        let t0 = Instant::now();
        let mut r = roster();
        r.apply(&presence("a1"), t0);
        let track = r.participant_of("a1").unwrap().track;
        let mut gone = presence("a1");
        gone.unavailable = true;
        r.apply(&gone, t0);
        assert_eq!(r.track_for_owner("a1").track, track);
        assert_eq!(r.humans(), 0);
        assert_eq!(r.participants().len(), 1);
    }

    #[test]
    fn clear_closes_every_interval() {
        let t0 = Instant::now();
        let mut r = roster();
        r.apply(&presence("h1"), t0);
        r.clear(t0 + Duration::from_secs(1));
        assert_eq!(r.humans(), 0);
        assert!(!r.participants()[0].present());
    }
}
