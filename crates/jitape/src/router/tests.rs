//! The router loop with a spawner that only counts: how many recordings start, and when.

use std::sync::{Arc, Mutex};

use super::*;
use crate::conference::inbox::{Inbox, inbox};

const MUC: &str = "muc.meet.jitsi";

/// Starts nothing; remembers the rooms and keeps their inboxes open.
#[derive(Clone, Default)]
struct Counting {
    started: Arc<Mutex<Vec<String>>>,
    inboxes: Arc<Mutex<Vec<Inbox>>>,
}

impl Spawn for Counting {
    fn spawn(&mut self, start: StartInfo) -> InboxSender {
        let (tx, rx) = inbox(16);
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(start.room.to_string());
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
    let inputs = RouterInputs {
        unfinished: Vec::new(),
        metrics: Arc::new(crate::metrics::Metrics::default()),
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
/// conferences on two cores 119 rooms started within 5 s, and every file was damaged). An
/// admin's request is not held back.
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
