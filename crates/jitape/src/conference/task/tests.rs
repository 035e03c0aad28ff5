//! The conference task itself on paused time: fake stanzas through its inbox, its stanzas
//! read off the link's queue, and when (in virtual time) each lifecycle timer makes it act.
//! A recording opens in a temporary directory; no network.

use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use super::*;
use crate::audio::AudioSettings;
use crate::conference::inbox::{self, InboxSender};
use crate::sink::writer::WriterSettings;

const ROOM: &str = "weeklysync@muc.example";
const US: &str = "rec@rec.example/i1";
const HUMAN: &str = "a1b2c3d4";

/// How late a timer may be seen to act: tokio's timers tick in milliseconds.
const SLACK: Duration = Duration::from_millis(5);

fn settings() -> Settings {
    Settings {
        room: String::new(),
        our_jid: US.into(),
        nick: "jitape".into(),
        focus_nick: "focus".into(),
        display_name: "Recorder".into(),
        presence_features: vec![],
        service_domains: vec![],
        join_timeout: Duration::from_secs(10),
        max_join_attempts: 6,
        empty_grace: Duration::from_secs(3600),
        min_participants: 2,
        lone_hold: Duration::from_secs(20),
        max_duration: Duration::from_secs(6 * 3600),
        room_status_timeout: Duration::from_secs(15),
        max_sources: 100,
        opus_red: false,
        roster_limits: Default::default(),
    }
}

/// One conference task and the router's and the link's ends of it.
struct Conference {
    inbox: InboxSender,
    outbound: mpsc::Receiver<Element>,
    finished: broadcast::Receiver<FinalizedFiles>,
    /// Our nick, once the task sent its join.
    nick: String,
    _dir: tempfile::TempDir,
    /// When the test started, by the real clock.
    real_start: std::time::Instant,
}

impl Conference {
    fn start(template: Settings) -> Conference {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        let writers = WriterPool::start(WriterSettings::default(), Arc::clone(&metrics)).unwrap();
        let (outbound_tx, outbound) = mpsc::channel(256);
        let (finished_tx, finished) = broadcast::channel(4);
        let ctx = Arc::new(ConferenceContext {
            template,
            recording: RecordingSettings {
                dir: dir.path().to_path_buf(),
                audio: AudioSettings::default(),
            },
            media: MediaSettings::default(),
            outbound: outbound_tx,
            finished: finished_tx,
            hook: None,
            metrics,
            writers: Arc::new(writers),
            instance: "jitape-test".into(),
            lease: tokio::sync::watch::channel(None).1,
        });
        let (tx, rx) = inbox::inbox(64);
        tokio::spawn(run(ctx, RoomJid::parse(ROOM).expect("a room"), None, rx));
        Conference {
            inbox: tx,
            outbound,
            finished,
            nick: String::new(),
            _dir: dir,
            real_start: std::time::Instant::now(),
        }
    }

    /// `input` reaching jitape now (on the paused clock).
    fn send(&self, input: Input) {
        self.inbox
            .deliver(input, tokio::time::Instant::now().into_std());
    }

    fn stanza(&self, xml: &str) {
        self.send(Input::Stanza(xml.parse().unwrap()));
    }

    async fn next_stanza(&mut self) -> Element {
        self.outbound
            .recv()
            .await
            .expect("the conference sends more")
    }

    /// The next stanza, which must be our join presence (a leave may precede it); notes our
    /// nick and when it was sent.
    async fn join_sent(&mut self) -> Instant {
        loop {
            let p = self.next_stanza().await;
            assert_eq!(p.name(), "presence", "{p:?}");
            if p.attr("type") == Some("unavailable") {
                continue;
            }
            let to = p.attr("to").unwrap();
            self.nick = to.strip_prefix(&format!("{ROOM}/")).unwrap().to_string();
            return Instant::now();
        }
    }

    /// Link up, the room alive (no Prosody module), our join answered: we are in.
    async fn joined(&mut self) -> Instant {
        self.send(Input::LinkUp);
        self.send(Input::RoomStatus(RoomView {
            alive: true,
            occupancy: None,
            meeting_id: None,
        }));
        self.join_sent().await;
        self.self_presence();
        Instant::now()
    }

    fn self_presence(&self) {
        self.stanza(&format!(
            r#"<presence xmlns="jabber:component:accept" from="{ROOM}/{}" to="{US}"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant"/><status code="110"/></x></presence>"#,
            self.nick
        ));
    }

    fn join_refused(&self) {
        self.stanza(&format!(
            r#"<presence xmlns="jabber:component:accept" type="error" from="{ROOM}/{}" to="{US}"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>"#,
            self.nick
        ));
    }

    fn human_joins(&self) {
        self.stanza(&format!(
            r#"<presence xmlns="jabber:component:accept" from="{ROOM}/{HUMAN}" to="{US}"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant" jid="{HUMAN}@meet.example/r"/></x></presence>"#
        ));
    }

    /// Nothing is sent before `until`.
    async fn quiet_until(&mut self, until: Instant) {
        if let Ok(el) = timeout_at(until, self.outbound.recv()).await {
            panic!("sent before {until:?}: {el:?}");
        }
    }

    /// The next stanza must be our leave; when it was sent.
    async fn left(&mut self) -> Instant {
        let p = self.next_stanza().await;
        assert_eq!(
            (p.name(), p.attr("type")),
            ("presence", Some("unavailable")),
            "{p:?}"
        );
        Instant::now()
    }

    /// The conference kept to the paused clock: minutes of its time took seconds of ours.
    fn ran_on_virtual_time(&self) {
        let real = self.real_start.elapsed();
        assert!(
            real < Duration::from_secs(20),
            "{real:?}: the conference waited on the real clock"
        );
    }

    /// The finalized recording's `end_reason`.
    async fn end_reason(&mut self) -> String {
        let files = self.finished.recv().await.unwrap();
        let sidecar: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files.sidecar).unwrap()).unwrap();
        sidecar["end_reason"].as_str().unwrap().to_string()
    }
}

/// `at` is `due`, give or take the timer's granularity.
fn assert_at(at: Instant, due: Instant, what: &str) {
    assert_within(at, due, Duration::ZERO, what);
}

/// `at` is `due`, up to `early` before it or the timer's granularity after it.
fn assert_within(at: Instant, due: Instant, early: Duration, what: &str) {
    assert!(
        at + early >= due && at < due + SLACK,
        "{what}: at {:?} after it was due",
        at.checked_duration_since(due)
            .map_or_else(|| format!("-{:?}", due - at), |d| format!("{d:?}"))
    );
}

#[tokio::test(start_paused = true)]
async fn with_nobody_in_the_room_the_conference_ends_as_empty_exactly_when_the_grace_runs_out() {
    let grace = Duration::from_secs(90);
    let mut c = Conference::start(Settings {
        empty_grace: grace,
        ..settings()
    });
    let joined = c.joined().await;
    c.quiet_until(joined + grace - Duration::from_secs(1)).await;
    let left = c.left().await;
    assert_at(left, joined + grace, "leave");
    assert_eq!(c.end_reason().await, "empty");
    c.ran_on_virtual_time();
}

#[tokio::test(start_paused = true)]
async fn the_recording_ends_at_max_duration_with_people_still_in_the_room() {
    let max = Duration::from_secs(150);
    let mut c = Conference::start(Settings {
        max_duration: max,
        ..settings()
    });
    let joined = c.joined().await;
    c.human_joins();
    c.quiet_until(joined + max - Duration::from_secs(1)).await;
    let left = c.left().await;
    assert_at(left, joined + max, "leave");
    assert_eq!(c.end_reason().await, "max-duration");
    c.ran_on_virtual_time();
}

#[tokio::test(start_paused = true)]
async fn a_refused_join_is_tried_again_after_two_four_eight_and_sixteen_seconds() {
    let mut c = Conference::start(settings());
    c.send(Input::LinkUp);
    c.send(Input::RoomStatus(RoomView {
        alive: true,
        occupancy: None,
        meeting_id: None,
    }));
    let mut sent = c.join_sent().await;
    for backoff in [2, 4, 8, 16] {
        c.join_refused();
        let refused = Instant::now();
        let due = refused + Duration::from_secs(backoff);
        c.quiet_until(due - Duration::from_millis(500)).await;
        let next = c.join_sent().await;
        assert_at(next, due, &format!("join after {backoff} s"));
        assert!(next > sent);
        sent = next;
    }
    // Answered at last: in, and recording.
    c.self_presence();
    c.human_joins();
    c.quiet_until(sent + Duration::from_secs(600)).await;
    c.ran_on_virtual_time();
}

#[tokio::test(start_paused = true)]
async fn a_focus_that_never_sends_a_usable_session_is_asked_again_by_rejoins_ever_less_often() {
    let mut c = Conference::start(settings());
    let joined = c.joined().await;
    c.human_joins();
    // An offer we cannot take: refused, and a new session asked for by rejoining soon.
    c.stanza(&format!(
        r#"<iq xmlns="jabber:component:accept" type="set" id="offer1" from="{ROOM}/focus" to="{US}"><jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="x2"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><payload-type id="111" name="opus" clockrate="48000" channels="2"/></description></content></jingle></iq>"#
    ));
    let reply = c.next_stanza().await;
    assert_eq!(reply.attr("type"), Some("error"), "{reply:?}");
    assert_eq!(Instant::now(), joined);
    // Then the focus stays silent: 2 s, then 30 s, 1, 2, 4 minutes, and every 5 minutes.
    let mut last = joined;
    for wait in [2, 30, 60, 120, 240, 300, 300] {
        let due = last + Duration::from_secs(wait);
        c.quiet_until(due - Duration::from_millis(500)).await;
        let rejoined = c.join_sent().await;
        assert_at(rejoined, due, &format!("rejoin after {wait} s"));
        c.self_presence();
        c.human_joins();
        last = rejoined;
    }
    c.ran_on_virtual_time();
}
