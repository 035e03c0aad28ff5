//! The router loop with a spawner that only counts: how many recordings start, and when.

use std::sync::{Arc, Mutex};

use super::*;
use crate::conference::inbox::{Inbox, inbox};

const MUC: &str = "muc.meet.jitsi";

/// Starts nothing; remembers the rooms and keeps their inboxes open.
#[derive(Clone, Default)]
struct Counting {
    started: Arc<Mutex<Vec<String>>>,
    generations: Arc<Mutex<Vec<u64>>>,
    inboxes: Arc<Mutex<Vec<Inbox>>>,
}

impl Spawn for Counting {
    fn spawn(&mut self, start: StartInfo) -> InboxSender {
        let (tx, rx) = inbox(16);
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(start.room.to_string());
        self.generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(start.generation);
        self.inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rx);
        tx
    }

    fn finalize(&mut self, _u: Unfinished, _reason: &'static str) {}
}

impl Counting {
    fn count(&self) -> usize {
        self.started.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The count once the router has taken in everything sent (it no longer changes).
    async fn settled(&self) -> usize {
        let mut last = self.count();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.count();
            if now == last {
                return now;
            }
            last = now;
        }
    }
}

struct Harness {
    spawner: Counting,
    link: mpsc::Sender<LinkEvent>,
    control: mpsc::Sender<Control>,
    load: tokio::sync::watch::Sender<bool>,
    metrics: Arc<crate::metrics::Metrics>,
    _disk: tokio::sync::watch::Sender<bool>,
    _outbound: mpsc::Receiver<Element>,
}

fn router() -> Harness {
    let cfg = crate::config::load(
        &format!(
            "[xmpp]\ndomain = \"jitape.meet.jitsi\"\nsecret = \"s\"\nmuc_domains = [\"{MUC}\"]\n"
        ),
        Vec::new(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let opts = RouterSettings::new(&cfg, "jitape.meet.jitsi");
    let (disk, disk_ok) = tokio::sync::watch::channel(true);
    let (load, load_ok) = tokio::sync::watch::channel(true);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let inputs = RouterInputs {
        unfinished: Vec::new(),
        metrics: Arc::clone(&metrics),
        disk_ok,
        load_ok,
        lease: tokio::sync::watch::channel(None).0,
    };
    let (link, link_rx) = mpsc::channel(256);
    let (outbound, outbound_rx) = mpsc::channel(256);
    let (control, control_rx) = mpsc::channel(16);
    let spawner = Counting::default();
    tokio::spawn(run(
        opts,
        inputs,
        link_rx,
        outbound,
        control_rx,
        spawner.clone(),
    ));
    Harness {
        spawner,
        link,
        control,
        load,
        metrics,
        _disk: disk,
        _outbound: outbound_rx,
    }
}

/// Invites jitape to rooms `from..to` (XEP-0249 direct invitations).
async fn invite(h: &Harness, rooms: std::ops::Range<usize>) {
    for i in rooms {
        let el: Element = format!(
            r#"<message xmlns="jabber:component:accept" from="u@meet.jitsi/x" to="jitape.meet.jitsi"><x xmlns="jabber:x:conference" jid="room{i}@{MUC}"/></message>"#
        )
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
        h.link
            .send(LinkEvent::Stanza(el, std::time::Instant::now()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A burst of rooms starts [`ADMIT_AT_ONCE`] per look of the load guard, not all at once:
/// their cost shows seconds after they start, and the guard judges what it sees (at 300
/// conferences on two cores 119 rooms started within 5 s, and only files ended early by the
/// guard were exact). An admin's request is not held back.
#[tokio::test]
async fn a_burst_of_rooms_starts_a_few_per_second() {
    let h = router();
    invite(&h, 0..20).await;
    assert_eq!(h.spawner.settled().await, ADMIT_AT_ONCE, "the first second");
    h.load.send_replace(true);
    assert_eq!(h.spawner.settled().await, 2 * ADMIT_AT_ONCE, "the next");
    // Strained: nothing waiting starts, however many seconds pass.
    h.load.send_replace(false);
    h.load.send_replace(false);
    assert_eq!(h.spawner.settled().await, 2 * ADMIT_AT_ONCE, "strained");
    h.load.send_replace(true);
    assert_eq!(h.spawner.settled().await, 20, "the rest");
    // Four of this second's admissions are left: of nine more rooms, four start.
    invite(&h, 20..29).await;
    assert_eq!(h.spawner.settled().await, 24);
    let (reply, outcome) = oneshot::channel();
    h.control
        .send(Control::Record {
            room: format!("asked@{MUC}"),
            reply: Some(reply),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outcome.await.unwrap_or_else(|e| panic!("{e}")),
        RecordOutcome::Started
    );
    assert_eq!(
        h.spawner.settled().await,
        25,
        "an admin's request starts at once"
    );
    h.load.send_replace(true);
    assert_eq!(h.spawner.settled().await, 30, "the five left");
    let started = h.spawner.started.lock().unwrap_or_else(|p| p.into_inner());
    let mut rooms = started.clone();
    rooms.sort();
    rooms.dedup();
    assert_eq!(rooms.len(), 30, "each room once: {started:?}");
}

/// A room refused while jitape is overloaded is said and counted once while it waits, also
/// when conferences end meanwhile (each end retried the waiting rooms, and each was refused,
/// said and counted again: 141 times per room in one 300-conference run).
#[tokio::test]
async fn a_room_refused_for_load_is_counted_once_while_conferences_end() {
    let h = router();
    invite(&h, 0..2).await;
    assert_eq!(h.spawner.settled().await, 2);
    h.load.send_replace(false);
    invite(&h, 2..5).await;
    assert_eq!(h.spawner.settled().await, 2, "overloaded: none starts");
    assert_eq!(h.metrics.recordings_refused.get(), 3);
    let first = h
        .spawner
        .generations
        .lock()
        .unwrap_or_else(|p| p.into_inner())[0];
    h.control
        .send(Control::Ended {
            room: format!("room0@{MUC}"),
            generation: first,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        h.spawner.settled().await,
        2,
        "still overloaded: none starts"
    );
    assert_eq!(
        h.metrics.recordings_refused.get(),
        3,
        "each refusal counted once"
    );
    h.load.send_replace(true);
    assert_eq!(
        h.spawner.settled().await,
        5,
        "the load eased: the three start"
    );
    assert_eq!(h.metrics.recordings_refused.get(), 3);
}
