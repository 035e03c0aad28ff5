//! The router: hands each inbound stanza to the conference it belongs to, learns which
//! conferences exist (Prosody module events, catch-up queries after every connect,
//! invitations, the admin API), starts a conference task for every room that has a human in
//! it (within the room filters), and tells running conferences what it knows of their room.
//! It owns only each conference's inbox sender, never its state.
//!
//! In: link events, control messages. Out: conference inputs, replies and queries on the
//! link. Every inbound stanza is first put in the internal form of tenant rooms
//! ([`tenant::normalize_inbound`], pure); the per-stanza decision is
//! [`classify`](classify::classify) (pure); room knowledge is
//! [`Rooms`](rooms::Rooms) (pure); this file is the loop around them.

pub mod classify;
pub mod gate;
pub mod rooms;
mod shed;
mod supervisor;

pub use supervisor::Supervisor;

use std::collections::HashMap;
use std::time::Duration;

use minidom::Element;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use self::classify::{CATCHUP_ID, ClassifySettings, Route, classify};
use self::gate::IqGate;
use self::rooms::{Decision, Rooms, domain_of};
use crate::conference::inbox::{Delivery, InboxSender};
use crate::conference::machine::{EndReason, Input, RoomView};
use crate::conference::roster::Classifier;
use crate::conference::snapshot::ConferenceSnapshot;
use crate::config::{Config, RoomsConfig};
use crate::room::RoomJid;
use crate::sink::Unfinished;
use crate::util::task_now;
use crate::xmpp::link::{DropReason, Dropped, LinkEvent};
use crate::xmpp::stanza::{self, Header, Jid};
use crate::xmpp::tenant;

/// Messages to the router from the rest of jitape.
#[derive(Debug)]
pub enum Control {
    /// Record this room (admin API, tests).
    Record {
        room: String,
        reply: Option<oneshot::Sender<RecordOutcome>>,
    },
    /// Stop recording this room and finalize. The reply says whether it was recording.
    Stop {
        room: String,
        reply: Option<oneshot::Sender<bool>>,
    },
    /// Describe every active recording (admin API).
    List {
        reply: oneshot::Sender<Vec<ConferenceSnapshot>>,
    },
    /// A conference task ended (sent by the task itself).
    Ended { room: String, generation: u64 },
    /// Finalize everything and return. The reply is sent when all conferences ended.
    Shutdown { done: oneshot::Sender<()> },
    /// jitape cannot carry every conference: end this share of them, newest first (reason
    /// `overload`; see [`crate::load`]).
    Shed { percent: u32 },
}

/// Whether a start counts against this second's admissions ([`ADMIT_AT_ONCE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// A room jitape found or was invited to: starts in a later second if this one's are used.
    Paced,
    /// An admin's request: starts now (and counts).
    AtOnce,
}

/// The answer to [`Control::Record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Started,
    AlreadyRecording,
    /// Not started now (disk below its floor, too many conferences, shutting down); the
    /// text says why. A room refused for space or the conference limit is recorded when
    /// that clears, if it still has people in it.
    Refused(String),
}

/// What a new conference task gets.
#[derive(Debug)]
pub struct StartInfo {
    pub room: RoomJid,
    pub generation: u64,
    /// An unfinished recording of this room left by a previous jitape: continue it.
    pub resume: Option<Unfinished>,
}

/// Starts conference tasks and finalizes recordings nobody continues.
pub trait Spawn: Send {
    fn spawn(&mut self, start: StartInfo) -> InboxSender;
    /// Finalize an unfinished recording whose conference is over (without blocking).
    fn finalize(&mut self, u: Unfinished, reason: &'static str);
}

/// What the router is configured with.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    pub classify: ClassifySettings,
    pub filter: RoomsConfig,
    pub classifier: Classifier,
    /// How long to wait for the module's catch-up answer before assuming it is absent.
    pub catchup_timeout: Duration,
    /// At most this many conferences at once (`limits.max_conferences`).
    pub max_conferences: usize,
    /// IQ requests per second (and burst) one sender may send (`limits.iq_rate`/`iq_burst`).
    pub iq_rate: u32,
    pub iq_burst: u32,
    /// Jicofo's `min-participants` (see [`crate::conference::machine::Settings`]).
    pub min_participants: usize,
}

impl RouterSettings {
    /// The router's settings from the configuration; `our_jid` is this process's full JID.
    pub fn new(cfg: &Config, our_jid: &str) -> Self {
        RouterSettings {
            classify: ClassifySettings {
                domain: cfg.xmpp.domain.clone(),
                our_jid: our_jid.to_string(),
                muc_domains: cfg.xmpp.muc_domains.clone(),
                opus_red: cfg.media.opus_red,
            },
            filter: cfg.rooms.clone(),
            classifier: Classifier {
                our_nick: String::new(),
                our_domain: cfg.xmpp.domain.clone(),
                focus_nick: cfg.xmpp.focus_nick.clone(),
                service_domains: cfg.xmpp.service_domains.clone(),
            },
            catchup_timeout: Duration::from_secs(10),
            max_conferences: cfg.limits.max_conferences,
            iq_rate: cfg.limits.iq_rate,
            iq_burst: cfg.limits.iq_burst,
            min_participants: cfg.rooms.min_participants,
        }
    }
}

/// What the router watches and starts with, besides its settings.
pub struct RouterInputs {
    /// Unfinished recordings found at start, by room.
    pub unfinished: Vec<(String, Unfinished)>,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// False while the recording filesystem is below its floor (or not writable): no new
    /// recording starts; when it turns true again, rooms with humans are recorded.
    pub disk_ok: tokio::sync::watch::Receiver<bool>,
    /// False while jitape is strained or overloaded (`crate::load`): no new recording
    /// starts; when it turns true again, waiting rooms are recorded.
    pub load_ok: tokio::sync::watch::Receiver<bool>,
    /// Set from the module's catch-up answers when several instances share the rooms: the
    /// lease recordings are fenced by (the longest any MUC service announces).
    pub lease: tokio::sync::watch::Sender<Option<crate::sink::owner::Lease>>,
}

/// Whether the Prosody module answers on a MUC domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Module {
    Unknown,
    Present,
    Absent,
}

struct Entry {
    inbox: InboxSender,
    generation: u64,
    /// Ended for overload; still finalizing.
    shed: bool,
}

/// At most this many recordings start on their own per look of the load guard (each second):
/// a conference costs its CPU only once its session is up and its speakers talk, seconds after
/// it started, so the guard sees a burst of starts only after the fact (at 300 conferences
/// on two cores, 119 rooms started within 5 s, packets waited 9 s a few seconds later, and
/// only files ended early by the guard were exact). The rest wait for the next second, neither
/// refused nor counted; an admin's request (`POST /conferences/{room}`) starts at once.
const ADMIT_AT_ONCE: usize = 8;

struct Router<S: Spawn> {
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    disk_ok: tokio::sync::watch::Receiver<bool>,
    load_ok: tokio::sync::watch::Receiver<bool>,
    /// Rooms refused while the disk was below its floor or at the conference limit:
    /// recorded when that clears.
    refused: std::collections::HashSet<String>,
    /// Rooms waiting for the next second's admissions ([`ADMIT_AT_ONCE`]).
    paced: std::collections::HashSet<String>,
    /// Recordings started since the load guard's last look.
    admitted: usize,
    /// Rooms whose recording was ended for overload: not recorded again on their own while
    /// the room lives (that would bring the load straight back); an admin request may.
    shed: std::collections::HashSet<String>,
    max_conferences: usize,
    iq_gate: IqGate,
    s: ClassifySettings,
    filter: RoomsConfig,
    spawner: S,
    outbound: mpsc::Sender<Element>,
    conferences: HashMap<String, Entry>,
    rooms: Rooms,
    module: HashMap<String, Module>,
    catchup: HashMap<String, String>,
    catchup_deadline: Option<Instant>,
    catchup_timeout: Duration,
    next_query: u64,
    unfinished: HashMap<String, Unfinished>,
    /// The lease the modules announce (several instances), shared with the conferences.
    lease: tokio::sync::watch::Sender<Option<crate::sink::owner::Lease>>,
    /// Rooms another instance owns, by MUC domain, from the last catch-up answers.
    elsewhere: HashMap<String, std::collections::HashSet<String>>,
    link_up: bool,
    generation: u64,
    shutting_down: Option<oneshot::Sender<()>>,
}

/// The router loop.
pub async fn run(
    opts: RouterSettings,
    inputs: RouterInputs,
    mut link: mpsc::Receiver<LinkEvent>,
    outbound: mpsc::Sender<Element>,
    mut control: mpsc::Receiver<Control>,
    spawner: impl Spawn,
) {
    let mut r = Router {
        metrics: inputs.metrics,
        disk_ok: inputs.disk_ok,
        load_ok: inputs.load_ok,
        refused: std::collections::HashSet::new(),
        paced: std::collections::HashSet::new(),
        admitted: 0,
        shed: std::collections::HashSet::new(),
        max_conferences: opts.max_conferences,
        iq_gate: IqGate::new(
            opts.iq_rate,
            opts.iq_burst,
            &opts.classifier.focus_nick,
            &opts.classify.muc_domains,
        ),
        module: opts
            .classify
            .muc_domains
            .iter()
            .map(|d| (d.clone(), Module::Unknown))
            .collect(),
        s: opts.classify,
        filter: opts.filter,
        spawner,
        outbound,
        conferences: HashMap::new(),
        rooms: Rooms::new(opts.classifier, opts.min_participants),
        catchup: HashMap::new(),
        catchup_deadline: None,
        catchup_timeout: opts.catchup_timeout,
        next_query: 0,
        unfinished: inputs.unfinished.into_iter().collect(),
        lease: inputs.lease,
        elsewhere: HashMap::new(),
        link_up: false,
        generation: 0,
        shutting_down: None,
    };
    loop {
        if r.shutting_down.is_some() && r.conferences.is_empty() {
            r.finalize_leftovers("shutdown");
            if let Some(done) = r.shutting_down.take() {
                let _ = done.send(());
            }
            return;
        }
        let deadline = r.catchup_deadline;
        tokio::select! {
            changed = r.disk_ok.changed() => {
                if changed.is_err() {
                    return;
                }
                if *r.disk_ok.borrow_and_update() {
                    r.record_waiting_rooms();
                }
            }
            changed = r.load_ok.changed() => {
                if changed.is_err() {
                    return;
                }
                // The guard looked again (each second, whatever it says): a new second's
                // admissions.
                r.admitted = 0;
                if *r.load_ok.borrow_and_update() {
                    r.record_waiting_rooms();
                }
            }
            ev = link.recv() => match ev {
                Some(ev) => r.on_link(ev).await,
                None => return,
            },
            c = control.recv() => match c {
                Some(c) => r.on_control(c),
                None => return,
            },
            _ = sleep_or_forever(deadline) => r.catchup_timed_out(),
        }
    }
}

async fn sleep_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl<S: Spawn> Router<S> {
    async fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Up { generation } => {
                self.link_up = true;
                self.metrics.xmpp_connected.set(1);
                if generation > 1 {
                    self.metrics.xmpp_reconnects.inc();
                }
                self.broadcast(|| Input::LinkUp);
                self.send_catchup().await;
            }
            LinkEvent::Down { .. } => {
                self.link_up = false;
                self.metrics.xmpp_connected.set(0);
                self.catchup.clear();
                self.catchup_deadline = None;
                self.broadcast(|| Input::LinkDown);
            }
            LinkEvent::Stanza(el, at) => self.on_stanza(el, at).await,
            LinkEvent::Dropped(d) => self.on_dropped(d).await,
        }
    }

    /// A stanza the link could not take: count it, say so (rate-limited), and answer it
    /// if it was an IQ request, so the sender does not wait for a timeout.
    async fn on_dropped(&mut self, d: Dropped) {
        self.metrics.stanzas_dropped.inc();
        if matches!(d.why, DropReason::TooLarge) {
            self.metrics.limit_stanza_size.inc();
        }
        let from = d.head.as_ref().and_then(|h| h.attr("from")).unwrap_or("?");
        let name = d.head.as_ref().map_or("?", |h| h.name());
        crate::util::log_limited(
            "stanza-dropped",
            format_args!(
                "dropped a <{name}> from {from} ({} bytes): {}",
                d.size, d.why
            ),
        );
        let Some(head) = d.head else { return };
        let head = tenant::normalize_inbound(&self.s.muc_domains, head);
        if Header::of(&head).is_some_and(|h| h.is_iq_request()) {
            let (condition, text) = match d.why {
                DropReason::Malformed(_) => ("bad-request", "not well-formed"),
                DropReason::TooLarge => ("policy-violation", "stanza too large"),
                DropReason::TooDeep => ("policy-violation", "stanza nested too deep"),
            };
            self.metrics.stanzas_rejected.inc();
            let _ = self
                .outbound
                .send(stanza::iq_error(&head, condition, Some(text)))
                .await;
        }
    }

    /// A stanza that reached jitape `at`.
    async fn on_stanza(&mut self, el: Element, at: std::time::Instant) {
        // Tenant rooms arrive in their virtual form (mod_muc_domain_mapper); from here on
        // every room JID, and every reply to one, is in the internal form Prosody routes.
        let el = tenant::normalize_inbound(&self.s.muc_domains, el);
        if let Some(h) = Header::of(&el)
            && !self.iq_gate.admit(&h, std::time::Instant::now())
        {
            self.metrics.limit_iq_rate.inc();
            self.metrics.stanzas_rejected.inc();
            crate::util::log_limited(
                "iq-rate",
                format_args!(
                    "{} sends IQs faster than limits.iq_rate; refusing",
                    h.from.as_ref().map(Jid::full).unwrap_or_default()
                ),
            );
            let reply = stanza::iq_error(&el, "resource-constraint", Some("too many requests"));
            let _ = self.outbound.send(reply).await;
            return;
        }
        match classify(&self.s, &el) {
            Route::Conference(room) => match self.conferences.get(&room) {
                Some(e) => deliver(&room, &e.inbox, Input::Stanza(el), at),
                None => self.stale(&el).await,
            },
            Route::Reply(reply) => {
                let _ = self.outbound.send(reply).await;
            }
            Route::Invitation { room, via } => {
                if !self.conferences.contains_key(&room)
                    && !self.shed.contains(&room)
                    && self.shutting_down.is_none()
                {
                    info!(%room, via, "invited; recording");
                    self.start(&room, Pace::Paced);
                }
            }
            Route::Module(ev) => {
                self.module
                    .insert(domain_of(ev.room()).to_string(), Module::Present);
                let decisions = self.rooms.on_event(ev);
                self.apply(decisions, at);
            }
            Route::CatchUp { id, rooms, shared } => self.on_catchup(&id, rooms, shared),
            Route::Drop(why) => debug!(why, "stanza dropped"),
        }
    }

    /// Ask every MUC service for its rooms (answered by the Prosody module, if loaded).
    async fn send_catchup(&mut self) {
        for domain in self.s.muc_domains.clone() {
            self.next_query += 1;
            let id = format!("{CATCHUP_ID}{}", self.next_query);
            let iq = stanza::iq("get", &self.s.domain, &domain, &id, rooms::catchup_query());
            if self.outbound.send(iq).await.is_ok() {
                self.catchup.insert(id, domain);
            }
        }
        self.catchup_deadline = Some(Instant::now() + self.catchup_timeout);
    }

    fn on_catchup(
        &mut self,
        id: &str,
        answer: Result<Vec<rooms::RoomReport>, String>,
        shared: Option<rooms::Shared>,
    ) {
        let Some(domain) = self.catchup.remove(id) else {
            return;
        };
        match answer {
            Ok(reports) => {
                self.module.insert(domain.clone(), Module::Present);
                info!(%domain, rooms = reports.len(), "catch-up: rooms reported by the Prosody module");
                let elsewhere: std::collections::HashSet<String> = shared
                    .as_ref()
                    .map(|sh| sh.elsewhere.iter().cloned().collect())
                    .unwrap_or_default();
                if let Some(sh) = &shared {
                    let lease = crate::sink::owner::Lease(sh.lease);
                    self.lease.send_if_modified(|l| {
                        let longer = l.is_none_or(|l| l.0 < lease.0);
                        if longer {
                            info!(%domain, lease = ?lease.0, "several jitape instances share the rooms: recordings carry an owner record, fenced by the lease");
                            *l = Some(lease);
                        }
                        longer
                    });
                }
                let reported: Vec<String> = reports.iter().map(|r| r.room.clone()).collect();
                // A shed room that is gone: its next meeting is recorded again.
                self.shed
                    .retain(|r| domain_of(r) != domain || reported.contains(r));
                let decisions = self.rooms.on_catchup(&domain, reports);
                // Conferences whose room the module does not list for us: another instance
                // owns it now (we were away longer than the lease), or it is gone (Prosody
                // restart).
                let gone: Vec<String> = self
                    .conferences
                    .keys()
                    .filter(|r| domain_of(r) == domain && !reported.contains(r))
                    .cloned()
                    .collect();
                let now = task_now();
                for room in gone {
                    if elsewhere.contains(&room) {
                        if let Some(e) = self.conferences.get(&room) {
                            info!(%room, "another instance owns this room now; its files are left to it");
                            deliver(&room, &e.inbox, Input::Stop(EndReason::Moved), now);
                        }
                        continue;
                    }
                    self.status(
                        &room,
                        RoomView {
                            alive: false,
                            occupancy: Some(Default::default()),
                            meeting_id: None,
                        },
                        now,
                    );
                }
                self.apply(decisions, now);
                self.elsewhere.insert(domain.clone(), elsewhere);
            }
            Err(why) => self.module_absent(&domain, &why),
        }
        self.maybe_round_done();
    }

    fn catchup_timed_out(&mut self) {
        self.catchup_deadline = None;
        let pending: Vec<String> = self.catchup.drain().map(|(_, d)| d).collect();
        for domain in pending {
            self.module_absent(&domain, "no answer");
        }
        self.maybe_round_done();
    }

    fn module_absent(&mut self, domain: &str, why: &str) {
        if self.module.get(domain) != Some(&Module::Absent) {
            warn!(%domain, why, "the jitape Prosody module does not answer on this MUC domain: only rooms jitape is invited to are recorded there (see config/prosody/README.md)");
        }
        self.module.insert(domain.to_string(), Module::Absent);
        let rooms: Vec<String> = self
            .conferences
            .keys()
            .filter(|r| domain_of(r) == domain)
            .cloned()
            .collect();
        for room in rooms {
            self.status(
                &room,
                RoomView {
                    alive: true,
                    occupancy: None,
                    meeting_id: None,
                },
                task_now(),
            );
        }
    }

    /// After the first complete catch-up round, recordings left by a previous jitape whose
    /// conference is not running any more are finalized.
    fn maybe_round_done(&mut self) {
        if self.catchup.is_empty() {
            self.catchup_deadline = None;
            self.finalize_leftovers("ended-while-jitape-was-down");
        }
    }

    fn finalize_leftovers(&mut self, reason: &'static str) {
        for (room, u) in self.unfinished.drain() {
            if self
                .elsewhere
                .get(domain_of(&room))
                .is_some_and(|rooms| rooms.contains(&room))
            {
                // Another instance owns the room now and continues these files (a takeover).
                info!(%room, "an unfinished recording of a room another instance owns now; left to it");
                continue;
            }
            info!(%room, "finalizing a recording left unfinished by a previous jitape");
            self.spawner.finalize(u, reason);
        }
    }

    /// Carries out what the room book decided on news that reached jitape `at`.
    fn apply(&mut self, decisions: Vec<Decision>, at: std::time::Instant) {
        for d in decisions {
            match d {
                Decision::Record { room } => {
                    if self.shutting_down.is_none()
                        && !self.conferences.contains_key(&room)
                        && !self.shed.contains(&room)
                        && self.filter.records(&room)
                    {
                        info!(%room, "people are in the room; recording");
                        self.start(&room, Pace::Paced);
                    }
                }
                Decision::Status {
                    room,
                    exists,
                    occupancy,
                    meeting_id,
                } => self.status(
                    &room,
                    RoomView {
                        alive: exists,
                        occupancy: Some(occupancy),
                        meeting_id,
                    },
                    at,
                ),
                Decision::Destroyed { room, occupied } => {
                    self.refused.remove(&room);
                    self.paced.remove(&room);
                    self.shed.remove(&room);
                    if let Some(e) = self.conferences.get(&room) {
                        deliver(&room, &e.inbox, Input::RoomDestroyed { occupied }, at);
                    }
                    if let Some(u) = self.unfinished.remove(&room) {
                        self.spawner.finalize(u, "room-destroyed");
                    }
                }
            }
        }
    }

    fn status(&self, room: &str, view: RoomView, at: std::time::Instant) {
        if let Some(e) = self.conferences.get(room) {
            deliver(room, &e.inbox, Input::RoomStatus(view), at);
        }
    }

    /// Rooms refused while the disk was full or at the conference limit, rooms waiting for
    /// their second, and rooms with humans not recorded: now (as far as the limit and this
    /// second's admissions allow).
    fn record_waiting_rooms(&mut self) {
        // Refused again they would be said and counted again (a conference that ends while
        // jitape is overloaded frees a slot, not the load).
        if self.shutting_down.is_some() || !*self.disk_ok.borrow() || !*self.load_ok.borrow() {
            return;
        }
        let mut waiting: Vec<String> = self.refused.drain().collect();
        waiting.extend(self.paced.drain());
        waiting.extend(self.rooms.recordable_rooms());
        waiting.sort();
        waiting.dedup();
        waiting.retain(|r| {
            !self.conferences.contains_key(r) && !self.shed.contains(r) && self.filter.records(r)
        });
        let free = self
            .max_conferences
            .saturating_sub(self.conferences.len())
            .min(ADMIT_AT_ONCE.saturating_sub(self.admitted));
        if waiting.len() > free {
            // The rest keep waiting for the next free slot or the next round (not counted
            // again as refusals).
            self.refused.extend(waiting.drain(free..));
        }
        for room in waiting {
            info!(%room, "recording a room that was waiting");
            self.start(&room, Pace::Paced);
        }
    }

    /// Start recording `room`, unless the disk or the conference limit says no (then it is
    /// remembered and recorded when that clears), or, `Paced`, this second's admissions are
    /// used up (then it starts in a later second).
    fn start(&mut self, room: &str, pace: Pace) -> RecordOutcome {
        let refusal = if !*self.disk_ok.borrow() {
            Some("the recording filesystem is below its floor or not writable".to_string())
        } else if !*self.load_ok.borrow() {
            Some("jitape is overloaded (see jitape_load_level)".to_string())
        } else if self.conferences.len() >= self.max_conferences {
            self.metrics.limit_conferences.inc();
            Some(format!(
                "{} conferences are being recorded (limits.max_conferences)",
                self.conferences.len()
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            // Said and counted once per room while it waits (each join asks again).
            if self.refused.insert(room.to_string()) {
                self.metrics.recordings_refused.inc();
                warn!(%room, reason = %why, "not recording this room for now");
            }
            return RecordOutcome::Refused(why);
        }
        if pace == Pace::Paced && self.admitted >= ADMIT_AT_ONCE {
            if self.paced.insert(room.to_string()) {
                debug!(%room, "{ADMIT_AT_ONCE} recordings started this second; this one starts in a later one");
            }
            return RecordOutcome::Refused(format!(
                "{ADMIT_AT_ONCE} recordings started this second; starting in a later one"
            ));
        }
        let Some(jid) = RoomJid::parse(room) else {
            warn!(%room, "not a room JID; not recorded");
            return RecordOutcome::Refused(format!("{room} is not a room JID"));
        };
        self.generation += 1;
        let resume = self.unfinished.remove(room);
        let inbox = self.spawner.spawn(StartInfo {
            room: jid,
            generation: self.generation,
            resume,
        });
        // An admin request or an invitation records a room whatever the module says; where
        // the module sees the room, jitape still enters it only with enough people in it.
        let occupancy = match self.module.get(domain_of(room)) {
            Some(Module::Present) => Some(self.rooms.occupancy(room)),
            _ => None,
        };
        let view = RoomView {
            alive: true,
            occupancy,
            meeting_id: self.rooms.meeting_id(room),
        };
        let now = task_now();
        deliver(room, &inbox, Input::RoomStatus(view), now);
        if self.link_up {
            deliver(room, &inbox, Input::LinkUp, now);
        }
        self.conferences.insert(
            room.to_string(),
            Entry {
                inbox,
                generation: self.generation,
                shed: false,
            },
        );
        self.refused.remove(room);
        self.paced.remove(room);
        self.shed.remove(room);
        self.admitted += 1;
        RecordOutcome::Started
    }

    fn on_control(&mut self, c: Control) {
        match c {
            Control::Record { room, reply } => {
                let outcome = if self.shutting_down.is_some() {
                    RecordOutcome::Refused("shutting down".into())
                } else if self.conferences.contains_key(&room) {
                    RecordOutcome::AlreadyRecording
                } else {
                    info!(%room, "recording on request");
                    self.start(&room, Pace::AtOnce)
                };
                if let Some(r) = reply {
                    let _ = r.send(outcome);
                }
            }
            Control::Stop { room, reply } => {
                let running = self.conferences.get(&room);
                if let Some(e) = running {
                    deliver(&room, &e.inbox, Input::Stop(EndReason::Stopped), task_now());
                }
                if let Some(r) = reply {
                    let _ = r.send(running.is_some());
                }
            }
            Control::List { reply } => {
                let inboxes: Vec<(String, InboxSender)> = self
                    .conferences
                    .iter()
                    .map(|(room, e)| (room.clone(), e.inbox.clone()))
                    .collect();
                // Collected in a task of its own: the router never waits on a conference.
                tokio::spawn(collect_snapshots(inboxes, reply));
            }
            Control::Ended { room, generation } => {
                if self
                    .conferences
                    .get(&room)
                    .is_some_and(|e| e.generation == generation)
                {
                    self.conferences.remove(&room);
                    if !self.refused.is_empty() && self.shutting_down.is_none() {
                        self.record_waiting_rooms();
                    }
                }
            }
            Control::Shed { percent } => {
                let rooms = shed::choose(
                    self.conferences
                        .iter()
                        .map(|(room, e)| (room.as_str(), e.generation, e.shed)),
                    percent,
                );
                warn!(
                    conferences = rooms.len(),
                    percent, "overloaded: ending the newest recordings to save the others"
                );
                for room in rooms {
                    if let Some(e) = self.conferences.get_mut(&room) {
                        e.shed = true;
                        self.metrics.conferences_shed.inc();
                        info!(%room, "ending this conference's recording for overload");
                        deliver(
                            &room,
                            &e.inbox,
                            Input::Stop(EndReason::Overload),
                            task_now(),
                        );
                    }
                    self.shed.insert(room);
                }
            }
            Control::Shutdown { done } => {
                info!(
                    conferences = self.conferences.len(),
                    "shutting down: finalizing every recording"
                );
                self.broadcast(|| Input::Stop(EndReason::Shutdown));
                self.shutting_down = Some(done);
            }
        }
    }

    fn broadcast(&self, input: impl Fn() -> Input) {
        let now = task_now();
        for (room, e) in &self.conferences {
            deliver(room, &e.inbox, input(), now);
        }
    }

    /// Traffic for a room we do not record (any more): IQ requests get an error so the
    /// sender (Jicofo) gives up on that session; presences and messages are never answered
    /// with errors (Prosody kicks occupants that do).
    async fn stale(&self, el: &Element) {
        let Some(h) = Header::of(el) else { return };
        if h.is_iq_request() {
            let reply = stanza::iq_error(el, "item-not-found", Some("no such conference here"));
            let _ = self.outbound.send(reply).await;
        } else {
            debug!(kind = ?h.kind, from = ?h.from.as_ref().map(Jid::full), "stanza for a room we are not recording");
        }
    }
}

async fn collect_snapshots(
    inboxes: Vec<(String, InboxSender)>,
    reply: oneshot::Sender<Vec<ConferenceSnapshot>>,
) {
    let mut out = Vec::with_capacity(inboxes.len());
    for (room, inbox) in inboxes {
        let (tx, rx) = oneshot::channel();
        if inbox.snapshot(tx) != Delivery::Delivered {
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(s)) => out.push(s),
            _ => debug!(%room, "no snapshot"),
        }
    }
    out.sort_by(|a, b| a.room.cmp(&b.room));
    let _ = reply.send(out);
}

/// Hand an input to a conference without ever blocking the router on a slow one. Room
/// traffic for a conference that does not keep up is dropped (and said); control inputs
/// always get through.
/// Hands `input`, which reached jitape `at`, to a conference.
fn deliver(room: &str, inbox: &InboxSender, input: Input, at: std::time::Instant) {
    match inbox.deliver(input, at) {
        Delivery::Delivered => {}
        Delivery::Full => crate::util::log_limited(
            "conference-inbox-full",
            format_args!("conference {room} is not keeping up; a stanza was dropped"),
        ),
        Delivery::Closed => debug!(%room, "conference already ended"),
    }
}

#[cfg(test)]
mod tests;
