//! A conference's inbox, in two lanes: room traffic (stanzas), which a flood may fill and
//! which is then dropped and counted, and control (link up/down, what the router knows of
//! the room, stop, shutdown, snapshot requests), which is never dropped: a conference that
//! cannot keep up with its room still hears that it must stop.
//!
//! In: [`Input`]s and snapshot requests from the router. Out: [`Mail`], control first, to
//! the conference task.

use std::time::Instant;

use minidom::Element;
use tokio::sync::{mpsc, oneshot};

use super::machine::Input;
use super::snapshot::ConferenceSnapshot;

/// What the conference task receives.
#[derive(Debug)]
pub enum Mail {
    /// For the machine, and when it reached jitape (a stanza: when it was read off the XMPP
    /// link; the machine takes it as the moment it happened, however long the queue was).
    Input(Input, Instant),
    /// The admin API asks what this conference is doing (the task answers; the machine
    /// never sees it).
    Snapshot(oneshot::Sender<ConferenceSnapshot>),
}

/// The router's end.
#[derive(Debug, Clone)]
pub struct InboxSender {
    stanzas: mpsc::Sender<(Element, Instant)>,
    control: mpsc::UnboundedSender<Mail>,
}

/// The conference task's end.
#[derive(Debug)]
pub struct Inbox {
    stanzas: mpsc::Receiver<(Element, Instant)>,
    control: mpsc::UnboundedReceiver<Mail>,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Room traffic dropped: the conference's stanza lane is full.
    Full,
    /// The conference has ended.
    Closed,
}

/// An inbox whose stanza lane holds `capacity` stanzas.
pub fn inbox(capacity: usize) -> (InboxSender, Inbox) {
    let (stanzas_tx, stanzas) = mpsc::channel(capacity.max(1));
    let (control_tx, control) = mpsc::unbounded_channel();
    (
        InboxSender {
            stanzas: stanzas_tx,
            control: control_tx,
        },
        Inbox { stanzas, control },
    )
}

impl InboxSender {
    /// Hands `input`, which reached jitape `at`, over without waiting: stanzas go to the
    /// bounded lane, everything else to the control lane, which always takes it.
    pub fn deliver(&self, input: Input, at: Instant) -> Delivery {
        match input {
            Input::Stanza(el) => match self.stanzas.try_send((el, at)) {
                Ok(()) => Delivery::Delivered,
                Err(mpsc::error::TrySendError::Full(_)) => Delivery::Full,
                Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
            },
            other => self.control(Mail::Input(other, at)),
        }
    }

    /// Asks for the conference's snapshot (on the control lane): answered on `reply`.
    pub fn snapshot(&self, reply: oneshot::Sender<ConferenceSnapshot>) -> Delivery {
        self.control(Mail::Snapshot(reply))
    }

    fn control(&self, mail: Mail) -> Delivery {
        match self.control.send(mail) {
            Ok(()) => Delivery::Delivered,
            Err(_) => Delivery::Closed,
        }
    }
}

impl Inbox {
    /// The next mail, control first. `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Mail> {
        tokio::select! {
            biased;
            Some(c) = self.control.recv() => Some(c),
            Some((s, at)) = self.stanzas.recv() => Some(Mail::Input(Input::Stanza(s), at)),
            else => None,
        }
    }
}

#[cfg(test)]
mod tests;
