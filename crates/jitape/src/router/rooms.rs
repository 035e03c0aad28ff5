//! What jitape knows about rooms it is not (yet) in: the Prosody module's events and its
//! catch-up answers (`config/prosody/mod_jitape.lua`, namespace [`NS_JITAPE`]), reduced to
//! decisions — start recording this room, this room is (not) alive with N humans, this room
//! was destroyed.
//!
//! In: parsed module messages and IQ results. Out: [`Decision`]s for the router. Pure; the
//! same occupant classification as the conference roster, so "human" means the same thing
//! before and after jitape joins.

use std::collections::{BTreeMap, HashMap};

use minidom::Element;

use crate::conference::machine::Occupancy;
use crate::conference::roster::{Classifier, OccupantKind};
use crate::xmpp::stanza::Jid;

/// Namespace of the module's protocol.
pub const NS_JITAPE: &str = "urn:jitape:prosody:1";

/// Bounds on what we keep from module messages (a misbehaving server).
const MAX_OCCUPANTS: usize = 10_000;
const MAX_ROOMS: usize = 100_000;
/// Instances read from one catch-up answer.
const MAX_INSTANCES: usize = 256;

/// One occupant as the module reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantInfo {
    pub nick: String,
    pub jid: Option<Jid>,
    pub features: Vec<String>,
}

/// One event from the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleEvent {
    RoomCreated {
        room: String,
        meeting_id: Option<String>,
    },
    RoomDestroyed {
        room: String,
        /// Who (but jitape) was still in the room when its destruction began.
        occupants: Vec<OccupantInfo>,
    },
    OccupantJoined {
        room: String,
        occupant: OccupantInfo,
    },
    OccupantLeft {
        room: String,
        occupant: OccupantInfo,
    },
}

/// The domain of a bare room JID (`room@muc.example` → `muc.example`).
pub fn domain_of(room: &str) -> &str {
    room.rsplit_once('@').map_or(room, |(_, d)| d)
}

impl ModuleEvent {
    /// The room the event is about.
    pub fn room(&self) -> &str {
        match self {
            Self::RoomCreated { room, .. }
            | Self::RoomDestroyed { room, .. }
            | Self::OccupantJoined { room, .. }
            | Self::OccupantLeft { room, .. } => room,
        }
    }
}

/// One room in a catch-up answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomReport {
    pub room: String,
    pub meeting_id: Option<String>,
    pub occupants: Vec<OccupantInfo>,
}

fn occupant(el: &Element) -> Option<OccupantInfo> {
    let nick = el
        .attr("nick")
        .filter(|n| !n.is_empty() && n.len() <= 1023)?;
    Some(OccupantInfo {
        nick: nick.to_string(),
        jid: el.attr("jid").and_then(Jid::parse),
        features: el
            .children()
            .filter(|c| c.name() == "feature")
            .filter_map(|c| c.attr("var"))
            .take(64)
            .map(str::to_string)
            .collect(),
    })
}

/// Jitsi's meeting id (`room._data.meetingId`), when the module reports one.
fn meeting_id(el: &Element) -> Option<String> {
    el.attr("meeting-id")
        .filter(|m| !m.is_empty() && m.len() <= 256)
        .map(str::to_string)
}

fn room_jid(el: &Element) -> Option<String> {
    let j = Jid::parse(el.attr("room").or_else(|| el.attr("jid"))?)?;
    (j.node().is_some() && j.resource.is_none()).then_some(j.bare)
}

/// Parse a module event out of a message stanza.
pub fn parse_event(message: &Element) -> Option<ModuleEvent> {
    let ev = message.get_child("event", NS_JITAPE)?;
    let room = room_jid(ev)?;
    let occ = || {
        ev.children()
            .find(|c| c.name() == "occupant")
            .and_then(occupant)
    };
    Some(match ev.attr("type")? {
        "room-created" => ModuleEvent::RoomCreated {
            room,
            meeting_id: meeting_id(ev),
        },
        "room-destroyed" => ModuleEvent::RoomDestroyed {
            room,
            occupants: ev
                .children()
                .filter(|c| c.name() == "occupant")
                .take(MAX_OCCUPANTS)
                .filter_map(occupant)
                .collect(),
        },
        "occupant-joined" => ModuleEvent::OccupantJoined {
            room,
            occupant: occ()?,
        },
        "occupant-left" => ModuleEvent::OccupantLeft {
            room,
            occupant: occ()?,
        },
        _ => return None,
    })
}

/// Parse a catch-up answer (the IQ result).
pub fn parse_catchup(iq: &Element) -> Option<Vec<RoomReport>> {
    let rooms = iq.get_child("rooms", NS_JITAPE)?;
    Some(
        rooms
            .children()
            .filter(|c| c.name() == "room")
            .take(MAX_ROOMS)
            .filter_map(|r| {
                Some(RoomReport {
                    room: room_jid(r)?,
                    meeting_id: meeting_id(r),
                    occupants: r
                        .children()
                        .filter(|c| c.name() == "occupant")
                        .take(MAX_OCCUPANTS)
                        .filter_map(occupant)
                        .collect(),
                })
            })
            .collect(),
    )
}

/// A jitape instance as the Prosody module sees it (listed in every catch-up answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceReport {
    /// Its component domain (`jitape_components`).
    pub component: String,
    /// `live` (connected), `away` (disconnected, its lease still running: its rooms wait for
    /// it) or `down`.
    pub state: String,
    /// Rooms of this MUC service it owns.
    pub rooms: u64,
}

/// The instances a catch-up answer lists (none from a module older than the list).
pub fn parse_instances(iq: &Element) -> Vec<InstanceReport> {
    let Some(rooms) = iq.get_child("rooms", NS_JITAPE) else {
        return Vec::new();
    };
    rooms
        .children()
        .filter(|c| c.name() == "instance")
        .take(MAX_INSTANCES)
        .filter_map(|i| {
            Some(InstanceReport {
                component: Jid::parse(i.attr("component")?)?.bare,
                state: match i.attr("state")? {
                    s @ ("live" | "away" | "down") => s.to_string(),
                    _ => return None,
                },
                rooms: i.attr("rooms")?.parse().ok()?,
            })
        })
        .collect()
}

/// What a catch-up answer says when several instances share the rooms.
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    /// `jitape_lease`: how long the module keeps a disconnected instance's rooms.
    pub lease: std::time::Duration,
    /// Rooms another instance owns (`<elsewhere jid=/>`).
    pub elsewhere: Vec<String>,
}

/// The lease and the rooms owned elsewhere, from a catch-up answer of a module configured
/// with several instances (`<rooms lease='10'>`); `None` with one instance.
pub fn parse_shared(iq: &Element) -> Option<Shared> {
    let rooms = iq.get_child("rooms", NS_JITAPE)?;
    let lease: f64 = rooms.attr("lease")?.parse().ok()?;
    // A lease of 0 moves rooms at once: no writer could stop in time, so no fencing either.
    let lease = std::time::Duration::try_from_secs_f64(lease)
        .ok()
        .filter(|l| !l.is_zero())?;
    let elsewhere = rooms
        .children()
        .filter(|c| c.name() == "elsewhere")
        .take(MAX_ROOMS)
        .filter_map(room_jid)
        .collect();
    Some(Shared { lease, elsewhere })
}

/// The catch-up query for one MUC domain.
pub fn catchup_query() -> Element {
    Element::builder("rooms", NS_JITAPE).build()
}

/// What the router should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Humans are in this room with enough company that Jicofo runs it on the bridge:
    /// record it (if not already).
    Record { room: String },
    /// News about a room: whether it exists, and who is in it.
    Status {
        room: String,
        exists: bool,
        occupancy: Occupancy,
        meeting_id: Option<String>,
    },
    /// The room is gone. `occupied`: people (not just the focus) were still in it, so a
    /// meeting was ended for them, rather than a room closing because it emptied.
    Destroyed { room: String, occupied: bool },
}

/// The known rooms of every MUC domain with the module.
#[derive(Debug)]
pub struct Rooms {
    classifier: Classifier,
    /// Jicofo's `min-participants`: a room is recorded once it has at least this many
    /// members besides the focus and jitape, one of them human.
    min_participants: usize,
    known: HashMap<String, BTreeMap<String, OccupantInfo>>,
    meeting_ids: HashMap<String, String>,
}

impl Rooms {
    pub fn new(classifier: Classifier, min_participants: usize) -> Self {
        Rooms {
            classifier,
            min_participants: min_participants.max(1),
            known: HashMap::new(),
            meeting_ids: HashMap::new(),
        }
    }

    /// Who is in a room as far as the module told us.
    pub fn occupancy(&self, room: &str) -> Occupancy {
        let mut o = Occupancy::default();
        for occ in self.known.get(room).into_iter().flat_map(|m| m.values()) {
            match self
                .classifier
                .classify(&occ.nick, occ.jid.as_ref(), &occ.features)
            {
                OccupantKind::Human => o.humans += 1,
                OccupantKind::Service => {}
                OccupantKind::Focus | OccupantKind::Us => continue,
            }
            o.others += 1;
            o.nicks.push(occ.nick.clone());
        }
        o
    }

    /// Humans in a room as far as the module told us.
    pub fn humans(&self, room: &str) -> usize {
        self.occupancy(room).humans
    }

    pub fn meeting_id(&self, room: &str) -> Option<String> {
        self.meeting_ids.get(room).cloned()
    }

    fn recordable(&self, o: &Occupancy) -> bool {
        o.humans > 0 && o.others >= self.min_participants
    }

    /// Every known room that should be recorded now.
    pub fn recordable_rooms(&self) -> Vec<String> {
        self.known
            .keys()
            .filter(|r| self.recordable(&self.occupancy(r)))
            .cloned()
            .collect()
    }

    pub fn exists(&self, room: &str) -> bool {
        self.known.contains_key(room)
    }

    fn status(&self, room: &str, out: &mut Vec<Decision>) {
        let occupancy = self.occupancy(room);
        let record = self.recordable(&occupancy);
        out.push(Decision::Status {
            room: room.to_string(),
            exists: self.exists(room),
            occupancy,
            meeting_id: self.meeting_id(room),
        });
        if record {
            out.push(Decision::Record {
                room: room.to_string(),
            });
        }
    }

    pub fn on_event(&mut self, ev: ModuleEvent) -> Vec<Decision> {
        let mut out = Vec::new();
        match ev {
            ModuleEvent::RoomCreated { room, meeting_id } => {
                if self.known.len() < MAX_ROOMS {
                    self.known.entry(room.clone()).or_default();
                    if let Some(m) = meeting_id {
                        self.meeting_ids.insert(room.clone(), m);
                    }
                }
                self.status(&room, &mut out);
            }
            ModuleEvent::RoomDestroyed { room, occupants } => {
                self.known.remove(&room);
                self.meeting_ids.remove(&room);
                let occupied = occupants.iter().any(|o| {
                    matches!(
                        self.classifier
                            .classify(&o.nick, o.jid.as_ref(), &o.features),
                        OccupantKind::Human | OccupantKind::Service
                    )
                });
                out.push(Decision::Destroyed { room, occupied });
            }
            ModuleEvent::OccupantJoined { room, occupant } => {
                if self.known.len() < MAX_ROOMS || self.known.contains_key(&room) {
                    let occupants = self.known.entry(room.clone()).or_default();
                    if occupants.len() < MAX_OCCUPANTS {
                        occupants.insert(occupant.nick.clone(), occupant);
                    }
                }
                self.status(&room, &mut out);
            }
            ModuleEvent::OccupantLeft { room, occupant } => {
                if let Some(occupants) = self.known.get_mut(&room) {
                    occupants.remove(&occupant.nick);
                }
                self.status(&room, &mut out);
            }
        }
        out
    }

    /// A complete catch-up answer for `muc_domain`: replaces what we knew of its rooms.
    pub fn on_catchup(&mut self, muc_domain: &str, reports: Vec<RoomReport>) -> Vec<Decision> {
        let mut out = Vec::new();
        let suffix = format!("@{muc_domain}");
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|r| r.ends_with(&suffix))
            .filter(|r| !reports.iter().any(|rep| &rep.room == *r))
            .cloned()
            .collect();
        for room in gone {
            self.known.remove(&room);
            self.meeting_ids.remove(&room);
            out.push(Decision::Status {
                room,
                exists: false,
                occupancy: Occupancy::default(),
                meeting_id: None,
            });
        }
        for rep in reports.into_iter().filter(|r| r.room.ends_with(&suffix)) {
            let occupants = rep
                .occupants
                .into_iter()
                .map(|o| (o.nick.clone(), o))
                .collect();
            self.known.insert(rep.room.clone(), occupants);
            if let Some(m) = rep.meeting_id {
                self.meeting_ids.insert(rep.room.clone(), m);
            }
            self.status(&rep.room, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests;
