//! Unit tests of `inbox`.

use super::*;
use crate::conference::machine::EndReason;

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
    for _ in 0..4 {
        assert_eq!(tx.deliver(stanza()), Delivery::Delivered);
    }
    assert_eq!(tx.deliver(stanza()), Delivery::Full, "a flood is cut");
    assert_eq!(
        tx.deliver(Input::Stop(EndReason::Stopped)),
        Delivery::Delivered
    );
    assert_eq!(tx.deliver(Input::LinkDown), Delivery::Delivered);
    assert!(matches!(
        rx.recv().await,
        Some(Mail::Input(Input::Stop(EndReason::Stopped)))
    ));
    assert!(matches!(
        rx.recv().await,
        Some(Mail::Input(Input::LinkDown))
    ));
    for _ in 0..4 {
        assert!(matches!(
            rx.recv().await,
            Some(Mail::Input(Input::Stanza(_)))
        ));
    }
    drop(tx);
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn a_snapshot_request_is_control_and_never_reaches_the_machine() {
    let (tx, mut rx) = inbox(1);
    assert_eq!(tx.deliver(stanza()), Delivery::Delivered);
    assert_eq!(tx.deliver(stanza()), Delivery::Full);
    let (reply, _answer) = tokio::sync::oneshot::channel();
    assert_eq!(tx.snapshot(reply), Delivery::Delivered);
    assert!(matches!(rx.recv().await, Some(Mail::Snapshot(_))));
    assert!(matches!(
        rx.recv().await,
        Some(Mail::Input(Input::Stanza(_)))
    ));
    drop(rx);
    let (reply, _answer) = tokio::sync::oneshot::channel();
    assert_eq!(tx.snapshot(reply), Delivery::Closed);
}
