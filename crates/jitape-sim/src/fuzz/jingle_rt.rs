//! The `jingle` target: any XML through `jingle::parse_header` and `jingle::parse`, and where
//! a parse succeeds, the round trip through the builders jitape (and its simulated focus)
//! sends with: building the parsed value again and parsing the result gives the same value
//! (directly, and through serialised XML text).
//!
//! In: fuzz bytes (UTF-8 XML; a `<jingle>` root, or an IQ carrying one). Out: nothing;
//! panics on a panic or a broken round trip.

use jitape::jingle::model::{BridgeSession, Reason, Setup, Source};
use jitape::jingle::{Action, Jingle, parse, parse_header};
use minidom::Element;

use super::room::xml_bytes;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(root) = text.parse::<Element>() else {
        return;
    };
    let el = root
        .get_child("jingle", jitape::jingle::ns::JINGLE)
        .unwrap_or(&root);
    let header = parse_header(el);
    let Ok(j) = parse(el) else {
        return;
    };
    let h = header.expect("parse succeeded where parse_header failed");
    assert_eq!((h.action, h.sid.as_str()), (j.action, j.sid.as_str()));
    assert_eq!(Action::from_attr(j.action.as_str()), Some(j.action));
    assert!(!j.sid.is_empty());
    assert!(
        j.sources
            .iter()
            .all(|s| s.ssrc.0 != 0 && !s.owner.is_empty())
    );
    round_trip(&j);
}

/// Sorted by SSRC: the JSON form groups sources by owner, which may reorder them.
fn sorted(sources: &[Source]) -> Vec<Source> {
    let mut v = sources.to_vec();
    v.sort_by_key(|s| s.ssrc);
    v
}

/// Parses `built` directly and through its text; both must agree.
fn reparse(built: &Element) -> Jingle {
    let direct = parse(built).unwrap_or_else(|e| panic!("built element refused: {e}"));
    let text = xml_bytes(built);
    let again: Element = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("built element does not reparse: {text:?}"));
    assert_eq!(
        parse(&again).as_ref(),
        Ok(&direct),
        "text round trip differs"
    );
    direct
}

fn round_trip(j: &Jingle) {
    let initiator = j.initiator.as_deref().unwrap_or("focus@auth.example/focus");
    let bs = j.bridge_session.clone().unwrap_or(BridgeSession {
        id: "bs".into(),
        ..BridgeSession::default()
    });
    match j.action {
        Action::SessionInitiate | Action::TransportReplace => {
            let Some(offer) = &j.audio else {
                panic!("offer parsed without audio");
            };
            let build = if j.action == Action::SessionInitiate {
                jitape::jingle::session_initiate
            } else {
                jitape::jingle::transport_replace
            };
            for json in [false, true] {
                let back = reparse(&build(&j.sid, initiator, offer, &j.sources, &bs, json));
                assert_eq!(back.audio.as_ref(), Some(offer), "offer (json {json})");
                assert_eq!(sorted(&back.sources), sorted(&j.sources), "sources");
                if !json {
                    assert_eq!(back.sources, j.sources, "source order");
                }
                if j.bridge_session.is_some() {
                    assert_eq!(back.bridge_session, j.bridge_session);
                }
            }
        }
        Action::SourceAdd | Action::SourceRemove => {
            for json in [false, true] {
                let built = if j.action == Action::SourceAdd {
                    jitape::jingle::source_add(&j.sid, &j.sources, json)
                } else {
                    jitape::jingle::source_remove(&j.sid, &j.sources, json)
                };
                let back = reparse(&built);
                assert_eq!(sorted(&back.sources), sorted(&j.sources), "json {json}");
            }
        }
        Action::SessionAccept | Action::TransportAccept => answer_round_trip(j, initiator),
        Action::TransportInfo => {
            let Some(t) = &j.transport else {
                panic!("transport-info parsed without transport");
            };
            let back = reparse(&jitape::jingle::transport_info(
                &j.sid,
                j.initiator.as_deref(),
                t,
            ));
            assert_eq!(back.transport.as_ref(), Some(t));
            assert_eq!(back.initiator, j.initiator);
        }
        Action::SessionTerminate => {
            let reason = j.reason.clone().unwrap_or(Reason {
                condition: "success".into(),
                text: None,
            });
            let back = reparse(&jitape::jingle::session_terminate(
                &j.sid,
                j.initiator.as_deref(),
                &reason,
                j.bridge_session.as_ref(),
            ));
            assert_eq!(back.reason, Some(reason));
            assert_eq!(back.bridge_session, j.bridge_session);
            assert_eq!(back.restart_requested(), j.restart_requested());
        }
        _ => {}
    }
}

/// session-accept/transport-accept: jitape's answer forces DTLS `setup='active'`.
fn answer_round_trip(j: &Jingle, initiator: &str) {
    let Some(a) = &j.audio else {
        panic!("answer parsed without audio");
    };
    let mut expect = a.transport.clone();
    for f in &mut expect.fingerprints {
        f.setup = Setup::Active;
    }
    let built = if j.action == Action::SessionAccept {
        jitape::jingle::session_accept(&j.sid, initiator, "rec@rec/x", &a.description, &a.transport)
    } else {
        jitape::jingle::transport_accept(&j.sid, initiator, &a.transport)
    };
    let back = reparse(&built);
    let b = back.audio.expect("rebuilt answer has audio");
    assert_eq!(b.transport, expect);
    if j.action == Action::SessionAccept {
        assert_eq!(b.description, a.description);
    }
}
