//! Unit tests of `inbox`.

use super::*;
use crate::conference::machine::EndReason;
use std::time::Duration;

fn stanza() -> Input {
    Input::Stanza(
        "<presence xmlns='jabber:component:accept'/>"
            .parse()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_stop_reaches_a_conference_whose_inbox_is_full_and_comes_first() {
    let (tx, mut rx) = inbox(4);
    let t0 = Instant::now();
    let at = |k: u64| t0 + Duration::from_millis(k);
    for k in 0..4 {
        assert_eq!(tx.deliver(stanza(), at(k)), Delivery::Delivered);
    }
    assert_eq!(
        tx.deliver(stanza(), at(4)),
        Delivery::Full,
        "a flood is cut"
    );
    assert_eq!(
        tx.deliver(Input::Stop(EndReason::Stopped), at(5)),
        Delivery::Delivered
    );
    assert_eq!(tx.deliver(Input::LinkDown, at(6)), Delivery::Delivered);
    assert!(matches!(
        rx.recv().await,
        Some(Mail::Input(Input::Stop(EndReason::Stopped), t)) if t == at(5)
    ));
    assert!(matches!(
        rx.recv().await,
        Some(Mail::Input(Input::LinkDown, t)) if t == at(6)
    ));
    // each stanza keeps when it reached jitape, not when it was taken out
    for k in 0..4 {
        assert!(matches!(
            rx.recv().await,
            Some(Mail::Input(Input::Stanza(_), t)) if t == at(k)
        ));
    }
    drop(tx);
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn a_snapshot_request_is_control_and_never_reaches_the_machine() {
    let (tx, mut rx) = inbox(1);
    let now = Instant::now();
    assert_eq!(tx.deliver(stanza(), now), Delivery::Delivered);
    assert_eq!(tx.deliver(stanza(), now), Delivery::Full);
    let (reply, _answer) = tokio::sync::oneshot::channel();
    assert_eq!(tx.snapshot(reply), Delivery::Delivered);
    assert!(matches!(rx.recv().await, Some(Mail::Snapshot(_))));
    assert!(matches!(
        rx.recv().await,
        Some(Mail::Input(Input::Stanza(_), _))
    ));
    drop(rx);
    let (reply, _answer) = tokio::sync::oneshot::channel();
    assert_eq!(tx.snapshot(reply), Delivery::Closed);
}
