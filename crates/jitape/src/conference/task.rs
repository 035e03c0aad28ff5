//! The conference task: the only owner of a conference's state. It feeds the machine its
//! inputs (stanzas from the router, media events, timers), carries out the machine's actions
//! (send stanzas, start/update/stop the media session, open/feed/finalize the recording),
//! and tells the router when it is done.
//!
//! In: an inbox of [`Input`]s from the router; media events from its own media session.
//! Out: stanzas on the link's outbound queue, files on disk; the supervisor tells the router
//! when the task has ended.
//! Everything about the conference is freed when this task returns.

use std::collections::{HashMap, VecDeque};
use std::future::pending;
use std::sync::Arc;
use std::time::Instant;

use minidom::Element;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{MissedTickBehavior, interval, sleep_until};
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::deaf::{DeafStretch, Deafness};
use super::inbox::{Inbox, Mail};
use super::machine::{Action, EndReason, Input, Machine, RoomView, Settings};
use super::recording::{CHECKPOINT_EVERY, RENDER_EVERY, Recording, RecordingSettings, SYNC_EVERY};
use super::roster::{LimitHits, Roster};
use super::snapshot::{ConferenceSnapshot, ParticipantSnapshot, SourceSnapshot};
use crate::audio::TrackId;
use crate::media::{MediaEvent, MediaSession, MediaSettings, MediaState};
use crate::metrics::Metrics;
use crate::room::RoomJid;
use crate::sink::owner::{self, Claim, Lease, Ownership};
use crate::sink::{
    Continuation, Fault, FinalizedFiles, GapKind, HookSettings, HookStatus, Unfinished, WriterPool,
};
use crate::types::Ssrc;
use crate::util::task_now;

/// Everything a conference task needs from the process, shared read-only.
pub struct ConferenceContext {
    /// Machine settings except the room; `room` is filled per conference.
    pub template: Settings,
    pub recording: RecordingSettings,
    pub media: MediaSettings,
    pub outbound: mpsc::Sender<Element>,
    /// Every finalized recording is announced here (for the admin API, demo and tests).
    pub finished: broadcast::Sender<FinalizedFiles>,
    /// Run after each recording is final.
    pub hook: Option<HookSettings>,
    pub metrics: Arc<Metrics>,
    /// The writer threads every recording's files live on.
    pub writers: Arc<WriterPool>,
    /// This instance's name (`xmpp.instance`), written into owner records.
    pub instance: String,
    /// The lease mod_jitape announces when several instances share the rooms (none with one
    /// instance): recordings then carry an owner record and are fenced by it
    /// ([`crate::sink::owner`]).
    pub lease: watch::Receiver<Option<Lease>>,
}

impl ConferenceContext {
    /// This instance's claim on its recordings, when several instances share the rooms.
    fn ownership(&self) -> Option<Ownership> {
        let lease = (*self.lease.borrow())?;
        Some(Ownership {
            instance: self.instance.clone(),
            lease,
        })
    }
}

/// Bound of the per-session media event queue (packets in flight to this task).
const MEDIA_QUEUE: usize = 2048;
/// Packets already queued that one pass of the task's loop takes in together.
const MEDIA_BATCH: usize = 32;

struct Media {
    session: MediaSession,
    sid: String,
    /// Datagrams seen when last counted, and since when that count stands.
    quiet: (u64, Instant),
    events: mpsc::Receiver<MediaEvent>,
    /// The offer's Opus and RED payload types, for the recording's timeline.
    payload_types: Option<(u8, Option<u8>)>,
}

struct Task {
    room: RoomJid,
    ctx: Arc<ConferenceContext>,
    machine: Machine,
    recording: Option<Recording>,
    media: Option<Media>,
    tracks: Vec<(Ssrc, TrackId)>,
    /// Why the conference ended, and when it was decided (where the file ends).
    ended: Option<(EndReason, Instant)>,
    /// A recording a previous jitape left unfinished: continued instead of a new one.
    resume: Option<Unfinished>,
    /// Jitsi's meeting id, once known.
    meeting_id: Option<String>,
    /// Humans this conference has counted into the `participants` gauge.
    counted_humans: i64,
    /// When each SSRC's last packet arrived (for the admin API).
    last_packet: HashMap<Ssrc, Instant>,
    media_state: Option<MediaState>,
    /// Stretches with no working media session, for the sidecar.
    deaf: Deafness,
    /// This conference counts itself in the `conferences_deaf` gauge.
    counted_deaf: bool,
    /// The last media problem, for the admin API.
    media_problem: Option<String>,
    /// How long a connected session with sources may bring nothing before it counts as
    /// broken: `media.silence_timeout`, doubled each time a replacement was quiet too (a
    /// room whose senders are all gone is not hammered with restarts), back to it once
    /// packets flow.
    silence_limit: std::time::Duration,
    /// The worst delay between a packet's arrival and its intake here since the last render
    /// (published to the load guard then).
    intake_delay: std::time::Duration,
    /// The roster's limit hits already counted in the metrics.
    counted_limits: LimitHits,
    /// Whether the link to Prosody is up (the owner record is renewed only then).
    link_up: bool,
    /// When the owner record was last renewed (asked of the writer).
    renewed: Instant,
    /// Another instance's unfinished recording of this room may still be written by it:
    /// opening waits until then ([`owner::judge`]).
    open_at: Option<Instant>,
    /// When this conference began here (the room reached this instance): in a takeover, the
    /// previous owner was put out of the room about then.
    began: chrono::DateTime<chrono::Utc>,
}

/// Run one conference until it ends. If this task panics, its recording's writer finalizes
/// the files (see [`crate::sink::RecordingWriter`]).
pub async fn run(
    ctx: Arc<ConferenceContext>,
    room: RoomJid,
    resume: Option<Unfinished>,
    inbox: Inbox,
) {
    let span = info_span!("conference", %room);
    let mut settings = ctx.template.clone();
    settings.room = room.to_string();
    settings.nick = format!("{}{:08x}", ctx.template.nick, rand::random::<u32>());
    let silence_limit = ctx.media.silence_timeout;
    let task = Task {
        room,
        ctx,
        machine: Machine::new(settings),
        recording: None,
        media: None,
        tracks: Vec::new(),
        ended: None,
        resume,
        meeting_id: None,
        counted_humans: 0,
        last_packet: HashMap::new(),
        media_state: None,
        deaf: Deafness::default(),
        counted_deaf: false,
        media_problem: None,
        silence_limit,
        intake_delay: std::time::Duration::ZERO,
        counted_limits: LimitHits::default(),
        link_up: false,
        renewed: task_now(),
        open_at: None,
        began: chrono::Utc::now(),
    };
    task.run(inbox).instrument(span).await;
}

async fn next_media(media: &mut Option<Media>) -> Option<MediaEvent> {
    match media {
        Some(m) => m.events.recv().await,
        None => pending().await,
    }
}

impl Task {
    async fn run(mut self, mut inbox: Inbox) {
        let mut render = interval(RENDER_EVERY);
        render.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_checkpoint = task_now();
        let mut last_sync = task_now();
        while self.ended.is_none() {
            let deadline = self.machine.next_deadline().map(|(at, _)| at);
            let mail = tokio::select! {
                mail = inbox.recv() => {
                    Some(mail.unwrap_or(Mail::Input(Input::Stop(EndReason::Shutdown), task_now())))
                }
                ev = next_media(&mut self.media) => {
                    self.on_media_batch(ev).map(|input| Mail::Input(input, task_now()))
                }
                _ = render.tick() => {
                    self.on_render(&mut last_checkpoint, &mut last_sync).await;
                    None
                },
                _ = sleep_or_forever(deadline) => Some(Mail::Input(Input::Tick, task_now())),
                _ = sleep_or_forever(self.open_at) => {
                    self.open_at = None;
                    self.start_recording().await;
                    None
                }
            };
            self.count_humans();
            self.count_deaf();
            self.count_limits();
            let input = match mail {
                Some(Mail::Snapshot(reply)) => {
                    let _ = reply.send(self.snapshot());
                    None
                }
                Some(Mail::Input(input, at)) => Some((input, at)),
                None => None,
            };
            if let Some((input, at)) = input {
                match input {
                    Input::LinkUp => self.link_up = true,
                    Input::LinkDown => self.link_up = false,
                    _ => {}
                }
                if let Input::RoomStatus(RoomView {
                    meeting_id: Some(m),
                    ..
                }) = &input
                {
                    self.meeting_id = Some(m.clone());
                    if let Some(rec) = &mut self.recording {
                        rec.set_meeting_id(m);
                    }
                }
                // The machine takes the input as happening when it reached jitape: a room
                // that ends ends then, not when this task got round to it.
                let actions = self.machine.handle(at, input);
                self.execute(actions, at).await;
            }
        }
        self.finish().await;
    }

    /// The render tick: publish the intake delay, look for a silent session, render the
    /// timeline, and checkpoint and sync the recording when due.
    async fn on_render(&mut self, last_checkpoint: &mut Instant, last_sync: &mut Instant) {
        let now = task_now();
        let delay = std::mem::take(&mut self.intake_delay);
        if !delay.is_zero() {
            self.ctx
                .metrics
                .note_intake_delay_us(delay.as_micros() as u64);
        }
        if let Some(input) = self.check_silence(now) {
            let actions = self.machine.handle(now, input);
            self.execute(actions, now).await;
        }
        if self.recording.as_ref().is_some_and(Recording::fenced) {
            // Another instance may own these files now: out of the room, nothing more written.
            let actions = self.machine.handle(now, Input::Stop(EndReason::Fenced));
            self.execute(actions, now).await;
            return;
        }
        let lease = *self.ctx.lease.borrow();
        if let Some(rec) = &mut self.recording {
            rec.render(now);
            if let Some(lease) = lease
                && self.link_up
                && now.duration_since(self.renewed) >= lease.renew_every()
            {
                rec.renew();
                self.renewed = now;
            }
            if now.duration_since(*last_checkpoint) >= CHECKPOINT_EVERY {
                rec.checkpoint(self.machine.roster());
                rec.publish(&self.ctx.metrics);
                *last_checkpoint = now;
            }
            if now.duration_since(*last_sync) >= SYNC_EVERY {
                rec.sync();
                *last_sync = now;
            }
        }
    }

    /// A media event and, while they are packets, the ones already queued behind it (up to
    /// [`MEDIA_BATCH`]): one pass of the loop, its timers and counters, per batch.
    fn on_media_batch(&mut self, mut ev: Option<MediaEvent>) -> Option<Input> {
        for taken in 1..=MEDIA_BATCH {
            let packet = matches!(ev, Some(MediaEvent::Rtp(_)));
            let input = self.on_media(ev);
            // Never take an event from the queue that this pass will not handle.
            if !packet || input.is_some() || taken == MEDIA_BATCH {
                return input;
            }
            ev = Some(self.media.as_mut()?.events.try_recv().ok()?);
        }
        None
    }

    fn on_media(&mut self, ev: Option<MediaEvent>) -> Option<Input> {
        let Some(ev) = ev else {
            // The session's queue closed (the session is gone); stop polling it.
            if let Some(m) = self.media.take() {
                debug!(sid = %m.sid, "media events ended");
            }
            return None;
        };
        match ev {
            MediaEvent::Rtp(pkt) => {
                // Against the kernel's arrival time: the real delay, whatever the task's clock.
                let delay = Instant::now().saturating_duration_since(pkt.arrival);
                self.intake_delay = self.intake_delay.max(delay);
                self.last_packet.insert(pkt.ssrc, pkt.arrival);
                if let Some(rec) = &mut self.recording {
                    rec.push(&pkt);
                }
                None
            }
            MediaEvent::State(state) => {
                self.media_state = Some(state);
                // Traffic had stopped at least this long ago (ICE calls a session
                // disconnected after this much silence, failed later), and no earlier than
                // the last RTP packet.
                let now = task_now();
                let mut silent_for = self.ctx.media.ice_disconnected_timeout;
                if let Some(last) = self.last_packet.values().max() {
                    // Arrival times are the kernel's: measured on the real clock.
                    silent_for = silent_for.min(Instant::now().saturating_duration_since(*last));
                }
                if let Some(stretch) = self.deaf.on_state(state, now, silent_for) {
                    self.note_deaf(stretch);
                }
                let sid = self.media.as_ref().map(|m| m.sid.clone())?;
                info!(%sid, ?state, "media state");
                match state {
                    MediaState::Failed => Some(Input::MediaFailed {
                        sid,
                        reason: "ICE/DTLS failed".into(),
                        silent: false,
                    }),
                    _ => None,
                }
            }
        }
    }

    /// Carries out what the machine decided at `at`.
    async fn execute(&mut self, actions: Vec<Action>, at: Instant) {
        // The conference ends with these actions: its media session and sources stay as they
        // are until `finish` has taken in the packets still in flight.
        let ending = actions.iter().any(|a| matches!(a, Action::End(_)));
        let mut queue: VecDeque<(Action, Instant)> = actions.into_iter().map(|a| (a, at)).collect();
        // When this task took in a change of the source set (its `UpdateSources`): a removed
        // source's audio ends there for the media gate and the timeline alike (its `Tracks`).
        let mut sources_cut = None;
        while let Some((action, at)) = queue.pop_front() {
            if ending && matches!(action, Action::StopMedia | Action::Tracks { .. }) {
                continue;
            }
            match action {
                Action::Send(el) => {
                    if el.name() == "iq" && el.attr("type") == Some("error") {
                        self.ctx.metrics.stanzas_rejected.inc();
                    }
                    if self.ctx.outbound.send(el).await.is_err() {
                        debug!("link gone; stanza dropped");
                    }
                }
                Action::SourceLimitHit => self.ctx.metrics.limit_sources.inc(),
                Action::MediaProblem { kind, detail } => {
                    kind.count(&self.ctx.metrics);
                    self.media_problem = Some(format!("{}: {detail}", kind.label()));
                }
                Action::StartRecording => self.start_recording().await,
                Action::StartMedia {
                    sid,
                    offer,
                    sources,
                } => {
                    self.stop_media().await;
                    let (tx, rx) = mpsc::channel(MEDIA_QUEUE);
                    let input =
                        match MediaSession::start(&self.ctx.media, &offer, &sources, tx).await {
                            Ok((session, transport)) => {
                                info!(%sid, sources = sources.len(), "media session started");
                                let d = &offer.description;
                                let payload_types = d.opus().map(|o| (o.id, d.red().map(|r| r.id)));
                                if let (Some(rec), Some((opus, red))) =
                                    (&mut self.recording, payload_types)
                                {
                                    rec.set_payload_types(opus, red);
                                }
                                self.media = Some(Media {
                                    session,
                                    sid: sid.clone(),
                                    events: rx,
                                    payload_types,
                                    quiet: (0, task_now()),
                                });
                                Input::MediaReady { sid, transport }
                            }
                            Err(e) => {
                                warn!(%sid, error = %e, "media session could not start");
                                Input::MediaFailed {
                                    sid,
                                    reason: e.to_string(),
                                    silent: false,
                                }
                            }
                        };
                    let now = task_now();
                    queue.extend(
                        self.machine
                            .handle(now, input)
                            .into_iter()
                            .map(|a| (a, now)),
                    );
                }
                Action::UpdateSources(sources) => {
                    let cut = *sources_cut.insert(task_now());
                    if let Some(m) = &mut self.media {
                        match m.session.set_sources(&sources, cut).await {
                            Ok(took) => {
                                debug!(sources = sources.len(), ?took, "sources renegotiated")
                            }
                            Err(e) => warn!(error = %e, "source update failed"),
                        }
                    }
                }
                Action::StopMedia => self.stop_media().await,
                Action::Tracks { tracks, .. } => {
                    // A removed source is cut at the moment this task takes the removal in, not
                    // at the stanza's arrival: the media path is slower than the signalling
                    // path, and a leaver's last packet may reach the machine a few ms after
                    // the source-remove (tests/loopback.rs
                    // `source_add_is_heard_from_its_first_packet_and_a_leaver_is_dropped`).
                    // Judging each packet by where its audio belongs would be exact; not built.
                    let cut = sources_cut.take().unwrap_or_else(task_now);
                    if let Some(rec) = &mut self.recording {
                        rec.set_tracks(&tracks, cut, self.machine.roster());
                    }
                    self.tracks = tracks;
                }
                Action::Interruption {
                    start,
                    end,
                    kind,
                    detail,
                } => {
                    if kind == GapKind::Away {
                        self.deaf.on_back(end);
                    }
                    if let Some(rec) = &mut self.recording {
                        rec.add_gap(start, end, kind, detail);
                    }
                }
                Action::SteppedOut => {
                    if let Some(stretch) = self.deaf.on_away(task_now()) {
                        self.note_deaf(stretch);
                    }
                }
                Action::End(reason) => self.ended = Some((reason, at)),
            }
        }
    }

    async fn start_recording(&mut self) {
        if self.recording.is_some() {
            return;
        }
        let origin = task_now();
        let now = chrono::Utc::now();
        let room = self.room.clone();
        let settings = self.ctx.recording.clone();
        let pool = Arc::clone(&self.ctx.writers);
        let owner = self.ctx.ownership();
        let resume = match self.resume.take() {
            Some(u) => Some((u, Continuation::Restart)),
            // Several instances share the directory: another one may have left this room's
            // recording unfinished (it died or was cut off); continue it once it is free.
            None => match &owner {
                Some(own) => {
                    match takeover(&self.ctx.recording.dir, &self.room, own, self.began).await {
                        Ok(found) => found,
                        Err(until) => {
                            self.open_at = Some(until);
                            return;
                        }
                    }
                }
                None => None,
            },
        };
        let continued = resume.is_some();
        let took_over = matches!(resume, Some((_, Continuation::Takeover { .. })));
        // Opening creates and fsyncs files, and may read and decode a long unfinished
        // recording: on a blocking thread, not on the workers nor on the writer threads.
        let opened = tokio::task::spawn_blocking(move || {
            let owner = owner.as_ref();
            match resume {
                Some((u, how)) => {
                    Recording::resume(&settings, &pool, &room, &u, origin, now, owner, &how)
                        .or_else(|e| {
                            warn!(error = %e, "the unfinished recording cannot be continued; finalizing it and starting a new one");
                            if let Err(e) = crate::sink::finalize_unfinished(&u, "interrupted") {
                                error!(error = %e, "finalizing the unfinished recording failed");
                            }
                            Recording::start(&settings, &pool, &room, origin, now, owner)
                        })
                }
                None => Recording::start(&settings, &pool, &room, origin, now, owner),
            }
        })
        .await;
        if took_over && matches!(opened, Ok(Ok(_))) {
            self.ctx.metrics.recordings_taken_over.inc();
        }
        let opened = match opened {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("opening the recording panicked: {e}")),
        };
        match opened {
            Ok(mut rec) => {
                self.ctx.metrics.conferences_started.inc();
                self.ctx.metrics.conferences_active.add(1);
                rec.set_tracks(&self.tracks, task_now(), self.machine.roster());
                if let Some((opus, red)) = self.media.as_ref().and_then(|m| m.payload_types) {
                    rec.set_payload_types(opus, red);
                }
                if let Some(m) = &self.meeting_id {
                    rec.set_meeting_id(m);
                }
                // A continued recording started when a previous jitape started it (the wall
                // clock says how long ago); a new one when we began opening it (the task's
                // clock, the one the machine's timers run on).
                let elapsed = if continued {
                    rec.elapsed()
                } else {
                    task_now().saturating_duration_since(origin)
                };
                self.recording = Some(rec);
                self.deaf.on_started(task_now());
                let actions = self
                    .machine
                    .handle(task_now(), Input::RecordingStarted { elapsed });
                debug_assert!(actions.is_empty());
            }
            Err(e) => {
                error!(error = %e, "cannot record this conference");
                let actions = self
                    .machine
                    .handle(origin, Input::Stop(EndReason::CannotRecord(e)));
                for a in actions {
                    match a {
                        Action::End(r) => self.ended = Some((r, task_now())),
                        Action::Send(el) => {
                            let _ = self.ctx.outbound.send(el).await;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn snapshot(&self) -> ConferenceSnapshot {
        let now = task_now();
        // Packet arrivals are the kernel's: their age is measured on the real clock.
        let real_now = Instant::now();
        let roster = self.machine.roster();
        let rec = self.recording.as_ref();
        let speaking = rec.map(Recording::speaking_now).unwrap_or_default();
        let occupants: Vec<ParticipantSnapshot> = roster
            .participants()
            .iter()
            .filter(|p| p.kind == crate::conference::roster::OccupantKind::Human)
            .map(|p| ParticipantSnapshot {
                key: p.key.clone(),
                speaking: speaking.contains(&p.key),
                nick: p.nicks.last().cloned().unwrap_or_default(),
                display_name: p.display_name.clone(),
                present: p.present(),
            })
            .collect();
        let sources = self
            .machine
            .sources()
            .into_iter()
            .map(|s| SourceSnapshot {
                ssrc: s.ssrc,
                owner: s.owner,
                last_packet_ms: self
                    .last_packet
                    .get(&s.ssrc)
                    .map(|t| real_now.saturating_duration_since(*t).as_millis() as u64),
            })
            .collect();
        let name = crate::room::RoomName::of(self.machine.room());
        ConferenceSnapshot {
            room: self.machine.room().to_string(),
            tenant: name.tenant,
            room_name: name.room,
            meeting_id: self.meeting_id.clone(),
            joined: self.machine.is_joined(),
            start: rec.map(|r| {
                r.start_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }),
            file: rec.map(|r| r.paths().flac_partial.display().to_string()),
            file_bytes: rec.map_or(0, Recording::file_bytes),
            seconds_recorded: rec.map_or(0.0, |r| r.samples() as f64 / f64::from(r.sample_rate())),
            humans: self.machine.humans(),
            participants: occupants,
            session: self.machine.session_sid().map(str::to_string),
            media_state: self.media_state.map(|s| format!("{s:?}")),
            away: self.machine.is_away(),
            deaf_ms: self
                .deaf
                .current()
                .map(|(since, _)| now.saturating_duration_since(since).as_millis() as u64),
            deaf_why: self.deaf.current().map(|(_, why)| why.to_string()),
            media_problem: self.media_problem.clone(),
            write_failures: rec.map_or(0, Recording::write_failures),
            write_backlog_ms: rec.map_or(0, |r| r.write_backlog().as_millis() as u64),
            sources,
        }
    }

    /// A connected session with sources that brings nothing (no RTP, no RTCP: muted senders
    /// still send RTCP, which the bridge forwards) for the silence limit is broken.
    fn check_silence(&mut self, now: Instant) -> Option<Input> {
        let connected = self.media_state == Some(MediaState::Connected);
        let has_sources = self.machine.sources().iter().any(|s| !s.is_bridge());
        let m = self.media.as_mut()?;
        let count = m.session.datagrams();
        if count != m.quiet.0 || !connected || !has_sources {
            if count != m.quiet.0 && m.quiet.0 > 0 {
                self.silence_limit = self.ctx.media.silence_timeout;
            }
            m.quiet = (count, now);
            return None;
        }
        let quiet_for = now.saturating_duration_since(m.quiet.1);
        if quiet_for < self.silence_limit {
            return None;
        }
        let sid = m.sid.clone();
        m.quiet = (count, now);
        // Deaf since the last thing arrived.
        if let Some(stretch) = self.deaf.on_state(MediaState::Disconnected, now, quiet_for) {
            self.note_deaf(stretch);
        }
        let reason = format!("nothing from the bridge for {} s", quiet_for.as_secs());
        self.silence_limit = (self.silence_limit * 2).min(std::time::Duration::from_secs(600));
        Some(Input::MediaFailed {
            sid,
            reason,
            silent: true,
        })
    }

    /// Keep the process-wide `conferences_deaf` gauge in step with this conference (deaf
    /// for longer than a normal session setup).
    fn count_deaf(&mut self) {
        let deaf = self.deaf.current().is_some_and(|(since, _)| {
            task_now().saturating_duration_since(since) >= super::deaf::MIN_DEAF
        });
        if deaf != self.counted_deaf {
            self.ctx
                .metrics
                .conferences_deaf
                .add(if deaf { 1 } else { -1 });
            self.counted_deaf = deaf;
        }
    }

    /// Count (and say, rate-limited) what the roster's limits refused since the last look.
    fn count_limits(&mut self) {
        let (now, was) = (self.machine.roster().hits(), self.counted_limits);
        let (p, s) = (
            now.participants - was.participants,
            now.presences - was.presences,
        );
        if p + s > 0 {
            self.ctx.metrics.limit_participants.add(p);
            self.ctx.metrics.limit_presences.add(s);
            crate::util::log_limited(
                "roster-limits",
                format_args!(
                    "roster limits reached: {p} newcomer(s) put in the overflow entry (limits.max_participants), {s} stay(s) merged (limits.max_presences)"
                ),
            );
            self.counted_limits = now;
        }
    }

    /// Keep the process-wide `participants` gauge in step with this conference's humans.
    fn count_humans(&mut self) {
        let now = self
            .machine
            .humans()
            .map_or(self.counted_humans, |h| h as i64);
        if now != self.counted_humans {
            self.ctx.metrics.participants.add(now - self.counted_humans);
            self.counted_humans = now;
        }
    }

    async fn stop_media(&mut self) {
        if let Some(m) = self.media.take() {
            let counters = m.session.counters();
            let metrics = &self.ctx.metrics;
            metrics.packets_dropped.add(counters.dropped_full);
            metrics.packets_unstamped.add(counters.unstamped);
            self.deaf.on_closed(task_now());
            info!(
                sid = %m.sid,
                received = counters.received,
                dropped = counters.dropped_full,
                unstamped = counters.unstamped,
                "closing media session"
            );
            m.session.close().await;
        }
    }

    /// Lists a deaf stretch in the sidecar (the audio of it is already silence in place).
    fn note_deaf(&mut self, stretch: DeafStretch) {
        let secs = stretch.end.duration_since(stretch.start).as_secs_f64();
        info!(
            seconds = format!("{secs:.1}"),
            why = stretch.why,
            "media was lost for a while"
        );
        if let Some(rec) = &mut self.recording {
            rec.add_gap(
                stretch.start,
                stretch.end,
                GapKind::MediaSession,
                stretch.why.to_string(),
            );
        }
    }

    /// Takes in the packets still on their way when the room ended, until `until`: the
    /// media path is slower than the signalling one, and a spurt's last frame can reach
    /// jitape a few ms after the room's destruction (tests/faults.rs
    /// `a_disk_stalled_for_five_seconds_delays_no_packet_and_loses_nothing` lost the last
    /// 18 ms so). They are placed where their audio belongs; the file still ends where the
    /// end was decided, so nothing after it is kept.
    async fn take_in_flight(&mut self, until: Instant) {
        loop {
            tokio::select! {
                biased;
                ev = next_media(&mut self.media) => {
                    let closed = ev.is_none();
                    let _ = self.on_media(ev);
                    if closed {
                        break;
                    }
                }
                _ = sleep_until(until.into()) => break,
            }
        }
    }

    async fn finish(mut self) {
        // The file ends where the end was decided, not after the media session took its time
        // to close (tens of milliseconds on a busy machine).
        let (reason, at) = self
            .ended
            .take()
            .unwrap_or_else(|| (EndReason::Shutdown, task_now()));
        if self.recording.is_some() && !reason.leaves_files() {
            self.take_in_flight(at + END_GRACE).await;
        }
        self.stop_media().await;
        if let Some(stretch) = self.deaf.finish(at) {
            self.note_deaf(stretch);
        }
        let metrics = Arc::clone(&self.ctx.metrics);
        metrics.participants.add(-self.counted_humans);
        if self.counted_deaf {
            metrics.conferences_deaf.add(-1);
        }
        let Some(mut rec) = self.recording.take() else {
            return;
        };
        rec.publish(&metrics);
        metrics.conferences_active.add(-1);
        if rec.fenced() || reason.leaves_files() {
            // Dropped: its writer closes the files unfinished (a fenced one without writing
            // another byte), for the room's owner to continue.
            return warn!(file = %rec.paths().flac_partial.display(), %reason, "recording left unfinished; the instance that owns the room now continues these files");
        }
        let roster = self.machine.roster().clone();
        rec.end(at, &roster);
        let why = reason.to_string();
        let room = self.machine.room().to_string();
        let ctx = Arc::clone(&self.ctx);
        // The writer thread does the disk work; this waits (the conference is over) for its
        // backlog to drain and for the disk to take what finishing needs.
        match rec.ready_to_finish(&roster).await {
            Ok(()) => finalize(ctx, rec, why).await,
            Err(e) if e.fault() != Fault::Io => {
                error!(error = %e, "the recording cannot be finalized; what is on disk stays for repair");
            }
            Err(e) => {
                // The conference is over but the disk refuses (full, read-only): keep what is
                // buffered and finalize once it accepts writes, without holding up the room.
                warn!(error = %e, "the recording filesystem refuses writes; the recording is finalized once it accepts them");
                tokio::spawn(
                    finalize_when_writable(ctx, rec, why, roster)
                        .instrument(info_span!("finalize", %room)),
                );
            }
        }
    }
}

/// The unfinished recording of this room another instance left in the shared directory,
/// if any, and how it is continued; or the moment to look again, when its owner record
/// says that instance may still be writing it.
async fn takeover(
    dir: &std::path::Path,
    room: &RoomJid,
    own: &Ownership,
    began: chrono::DateTime<chrono::Utc>,
) -> Result<Option<(Unfinished, Continuation)>, Instant> {
    let (dir, room, me, lease) = (
        dir.to_path_buf(),
        room.to_string(),
        own.instance.clone(),
        own.lease,
    );
    let looked = tokio::task::spawn_blocking(move || {
        let found = crate::sink::paths::find_unfinished_of(&dir, &room)?;
        let Some(u) = found.into_iter().rfind(|u| u.has_flac) else {
            return Ok(None);
        };
        let (record, modified) = owner::read_for_judging(&u.paths)?;
        let claim = owner::judge(record.as_ref(), modified, &me, lease, chrono::Utc::now());
        Ok::<_, crate::sink::SinkError>(Some((u, record, claim)))
    })
    .await;
    let (u, record, claim) = match looked {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return Ok(None),
        Ok(Err(e)) => {
            // An owner record that cannot be read cannot be judged: wait a lease and look
            // again rather than risk two writers.
            warn!(error = %e, "cannot tell who writes this room's unfinished recording; looking again after the lease");
            return Err(task_now() + lease.0);
        }
        Err(e) => {
            warn!(error = %e, "looking for this room's unfinished recording failed");
            return Err(task_now() + lease.0);
        }
    };
    match claim {
        Claim::WaitUntil(free) => {
            let wait = (free - chrono::Utc::now()).to_std().unwrap_or_default();
            info!(
                file = %u.paths.flac_partial.display(),
                owner = record.as_ref().map_or("unknown", |r| r.instance.as_str()),
                wait = ?wait,
                "another instance may still write this room's recording; continuing it once its lease is over"
            );
            Err(task_now() + wait)
        }
        Claim::Now { previous } => {
            let how = match record {
                Some(r) if r.instance == own.instance => Continuation::Restart,
                _ => Continuation::Takeover {
                    previous,
                    next: own.instance.clone(),
                    since: Some(began),
                },
            };
            info!(file = %u.paths.flac_partial.display(), ?how, "continuing this room's unfinished recording");
            Ok(Some((u, how)))
        }
    }
}

/// How long after a conference's end the packets still in flight are taken in (the file
/// ends at the end all the same): a recorder has no listener waiting, a lost frame is lost.
const END_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// How often a recording waiting for the disk tries again.
const DISK_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Retries until the disk takes the recording, then finalizes it (a restart meanwhile leaves
/// the `.partial` files to startup recovery).
async fn finalize_when_writable(
    ctx: Arc<ConferenceContext>,
    mut rec: Recording,
    why: String,
    roster: Roster,
) {
    let waiting = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(DISK_RETRY).await;
        match rec.ready_to_finish(&roster).await {
            Ok(()) => {
                info!(waited = ?waiting.elapsed(), "the recording filesystem accepts writes again");
                return finalize(ctx, rec, why).await;
            }
            Err(e) if e.fault() != Fault::Io => {
                return error!(error = %e, "the recording cannot be finalized; what is on disk stays for repair");
            }
            Err(_) => {}
        }
    }
}

/// The finalize step proper: files final (on the writer thread), metrics, hook, and the
/// `finished` notice.
async fn finalize(ctx: Arc<ConferenceContext>, rec: Recording, why: String) {
    let metrics = Arc::clone(&ctx.metrics);
    match rec.finish(&why).await {
        Ok(files) => {
            info!(flac = %files.flac.display(), reason = %why, "recording finalized");
            metrics.conferences_finished.inc();
            if let Some(hook) = ctx.hook.clone() {
                tokio::spawn(run_hook(hook, files.clone(), metrics));
            }
            let _ = ctx.finished.send(files);
        }
        Err(e) => error!(error = %e, "finalizing failed; the .partial stays for repair"),
    }
}

/// The operator's finalize hook, in its own task: it never holds up any conference.
async fn run_hook(hook: HookSettings, files: FinalizedFiles, metrics: Arc<Metrics>) {
    metrics.hook_runs.inc();
    let outcome = crate::sink::run_hook(&hook, &files).await;
    let stdout = &outcome.stdout;
    let stderr = &outcome.stderr;
    match &outcome.status {
        HookStatus::Success => {
            info!(flac = %files.flac.display(), elapsed = ?outcome.elapsed, %stdout, %stderr, "finalize hook succeeded");
        }
        HookStatus::TimedOut => {
            metrics.hook_failures.inc();
            metrics.hook_timeouts.inc();
            warn!(flac = %files.flac.display(), timeout = ?hook.timeout, %stdout, %stderr, "finalize hook timed out and was killed");
        }
        other => {
            metrics.hook_failures.inc();
            warn!(flac = %files.flac.display(), status = ?other, %stdout, %stderr, "finalize hook failed");
        }
    }
}

async fn sleep_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at.into()).await,
        None => pending().await,
    }
}

#[cfg(test)]
mod tests;
