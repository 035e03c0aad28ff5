//! Every variant of Jingle that Jicofo can send a receiver like jitape (the fixtures in
//! `fixtures/jicofo/`, each with a comment naming the upstream code that produces it; see
//! docs/protocol.md "Offer variants"), parsed, with what jitape keeps: the sources it records
//! and the ones it ignores (and why), the candidates it keeps, the Opus and RED payload types
//! and the audio-level id. No variant is refused.

use minidom::Element;

use super::super::model::{Ignored, Protocol};
use super::super::{Action, Jingle, ns, parse};
use super::strip_comments;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../fixtures/jicofo/", $name, ".xml")),
        )
    };
}

/// What a fixture must parse to.
struct Want {
    action: Action,
    /// Media sources (ssrc, owner), in document order.
    kept: &'static [(u32, &'static str)],
    /// Signalled sources jitape records nothing for (ssrc, owner, why).
    ignored: &'static [(u32, &'static str, Ignored)],
    /// Offers: the kept candidates as `proto ip:port`, and how many were skipped.
    candidates: &'static [&'static str],
    skipped: usize,
    opus: Option<u8>,
    red: Option<u8>,
    audio_level: Option<u8>,
    other_contents: &'static [&'static str],
}

const A: (u32, &str) = (4238875577, "a1b2c3d4");
const E: (u32, &str) = (2631363243, "e5f6a7b8");
const JVB: (u32, &str, Ignored) = (2876045113, "jvb", Ignored::Bridge);
const TWO: &[(u32, &str)] = &[A, E];
const UDP: &[&str] = &["udp 10.0.0.5:10000", "udp 198.51.100.7:10000"];

/// The default audio-only offer: two speakers, the bridge's source, two UDP candidates, Opus
/// 111, audio level 1.
const OFFER: Want = Want {
    action: Action::SessionInitiate,
    kept: TWO,
    ignored: &[JVB],
    candidates: UDP,
    skipped: 0,
    opus: Some(111),
    red: None,
    audio_level: Some(1),
    other_contents: &[],
};

const SYNTHETIC: &[(u32, &str, Ignored)] = &[
    JVB,
    (1730416201, "a1b2c3d4", Ignored::Synthetic),
    (3040718829, "a1b2c3d4", Ignored::Synthetic),
];

const fn source_change(action: Action, kept: &'static [(u32, &'static str)]) -> Want {
    Want {
        action,
        kept,
        ignored: &[],
        candidates: &[],
        skipped: 0,
        opus: None,
        red: None,
        audio_level: None,
        other_contents: &[],
    }
}

// A table: one row per fixture.
#[rustfmt::skip]
fn table() -> Vec<((&'static str, &'static str), Want)> {
    vec![
        (fixture!("01-offer-red-nameless-parameter"), Want { red: Some(112), ..OFFER }),
        (fixture!("02-offer-red-enabled-receiver-without-opus-red"), OFFER),
        (fixture!("03-offer-default-telephone-event"), OFFER),
        (fixture!("04-offer-nondefault-payload-types-and-ids"), Want { opus: Some(109), audio_level: Some(3), ..OFFER }),
        (fixture!("05-offer-tcc"), OFFER),
        (fixture!("06-offer-extmap-allow-mixed"), OFFER),
        (fixture!("07-offer-mid-hdrext-only"), Want { audio_level: None, ..OFFER }),
        (fixture!("08-offer-audio-video-data-json"), Want { other_contents: &["video", "data"], ..OFFER }),
        (fixture!("09-offer-disco-failed-audio-video-xml"), Want { other_contents: &["video"], ..OFFER }),
        (fixture!("10-source-add-json-video-groups-videotype"), Want {
            ignored: &[(905818812, "c0ffee42", Ignored::Repair)],
            ..source_change(Action::SourceAdd, &[(905818811, "c0ffee42"), (1234567891, "d00dfeed")])
        }),
        (fixture!("11-source-add-xml-ssrc-groups"), Want {
            ignored: &[(905818812, "c0ffee42", Ignored::Repair)],
            other_contents: &["video"],
            ..source_change(Action::SourceAdd, &[(905818811, "c0ffee42")])
        }),
        (fixture!("12-offer-jvb-feedback-sources-only"), Want { kept: &[], ..OFFER }),
        (fixture!("13-offer-synthetic-translation-sources-xml"), Want { ignored: SYNTHETIC, ..OFFER }),
        (fixture!("14-offer-synthetic-translation-sources-json"), Want { ignored: SYNTHETIC, ..OFFER }),
        (fixture!("15-transport-websockets-ipv6-srflx-cryptex"), Want {
            candidates: &["udp 10.0.0.5:10000", "udp [2001:db8::5]:10000", "udp 198.51.100.7:10000"],
            ..OFFER
        }),
        (fixture!("16-transport-no-private-candidates"), Want { candidates: &["udp 198.51.100.7:10000"], ..OFFER }),
        (fixture!("17-transport-legacy-ice-tcp"), Want {
            candidates: &["udp 10.0.0.5:10000", "udp 198.51.100.7:10000", "tcp 198.51.100.7:4443"],
            ..OFFER
        }),
        (fixture!("18-transport-legacy-ice-ssltcp"), Want { skipped: 1, ..OFFER }),
        (fixture!("19-transport-multiple-fingerprints-relay-hypothetical"), Want {
            candidates: &["udp 10.0.0.5:10000", "udp 198.51.100.7:10000", "udp 203.0.113.50:3478"],
            ..OFFER
        }),
        (fixture!("20-offer-startmuted-traceparent-unknown"), OFFER),
        (fixture!("21-source-add-json-new-owners"), source_change(Action::SourceAdd, &[(3009702669, "f0e1d2c3"), (1876543219, "9b8a7c6d")])),
        (fixture!("22-source-remove-xml-with-synthetic"), Want {
            ignored: &[(1730416201, "a1b2c3d4", Ignored::Synthetic), (3040718829, "a1b2c3d4", Ignored::Synthetic)],
            ..source_change(Action::SourceRemove, TWO)
        }),
        (fixture!("23-transport-replace"), Want {
            action: Action::TransportReplace,
            ignored: &[(3391856140, "jvb", Ignored::Bridge)],
            candidates: &["udp 10.0.1.9:10000", "udp 198.51.100.19:10000"],
            ..OFFER
        }),
        (fixture!("24-transport-ipv6-link-local-scope"), Want { skipped: 1, ..OFFER }),
    ]
}

/// The `<jingle>` of a fixture (one `<iq>` with a provenance comment).
fn jingle_of(xml: &str) -> Element {
    let iq: Element = strip_comments(xml)
        .parse()
        .expect("fixture is well-formed XML");
    iq.get_child("jingle", ns::JINGLE)
        .expect("the IQ carries Jingle")
        .clone()
}

/// `<candidate>` elements in the audio content's transport.
fn candidates_in(jingle: &Element) -> usize {
    jingle
        .children()
        .filter(|c| c.is("content", ns::JINGLE) && c.attr("name") == Some("audio"))
        .filter_map(|c| c.get_child("transport", ns::ICE_UDP))
        .map(|t| t.children().filter(|c| c.name() == "candidate").count())
        .sum()
}

fn check(name: &str, el: &Element, j: &Jingle, want: &Want) {
    assert_eq!(j.action, want.action, "{name}");
    let kept: Vec<(u32, &str)> = j
        .media_sources()
        .map(|s| (s.ssrc.0, s.owner.as_str()))
        .collect();
    assert_eq!(kept, want.kept, "{name}: recorded sources");
    let mut ignored: Vec<(u32, &str, Ignored)> = j
        .sources
        .iter()
        .filter_map(|s| j.ignored(s).map(|why| (s.ssrc.0, s.owner.as_str(), why)))
        .collect();
    ignored.sort_by_key(|(ssrc, ..)| *ssrc);
    let mut want_ignored = want.ignored.to_vec();
    want_ignored.sort_by_key(|(ssrc, ..)| *ssrc);
    assert_eq!(ignored, want_ignored, "{name}: ignored sources");
    assert_eq!(
        j.other_contents, want.other_contents,
        "{name}: other contents"
    );
    let Some(audio) = &j.audio else {
        assert!(!want.action.is_offer(), "{name}: an offer without audio");
        return;
    };
    let candidates: Vec<String> = audio
        .transport
        .candidates
        .iter()
        .map(|c| {
            let proto = if c.protocol == Protocol::Udp {
                "udp"
            } else {
                "tcp"
            };
            format!("{proto} {}", std::net::SocketAddr::new(c.ip, c.port))
        })
        .collect();
    assert_eq!(candidates, want.candidates, "{name}: kept candidates");
    assert_eq!(
        candidates_in(el) - candidates.len(),
        want.skipped,
        "{name}: skipped candidates"
    );
    let d = &audio.description;
    assert_eq!(d.opus().map(|p| p.id), want.opus, "{name}: opus");
    assert_eq!(d.red().map(|p| p.id), want.red, "{name}: red");
    assert_eq!(d.audio_level_id(), want.audio_level, "{name}: audio level");
}

#[test]
fn every_jicofo_variant_is_accepted_with_what_jitape_understands() {
    let table = table();
    assert_eq!(table.len(), 24);
    // Every row is checked, and every failing row named.
    let failed: Vec<String> = table
        .iter()
        .filter_map(|((name, xml), want)| {
            let row = std::panic::catch_unwind(|| {
                let el = jingle_of(xml);
                let j = parse(&el).unwrap_or_else(|e| panic!("{name}: refused with {e}"));
                check(name, &el, &j, want);
            });
            row.err().map(|_| (*name).to_owned())
        })
        .collect();
    assert!(failed.is_empty(), "rows failing: {failed:#?}");
}

#[test]
fn every_fixture_names_its_upstream_source() {
    for ((name, xml), _) in table() {
        let comment = xml
            .split_once("<!--")
            .and_then(|(_, rest)| rest.split_once("-->"))
            .map(|(c, _)| c)
            .unwrap_or_else(|| panic!("{name}: no provenance comment"));
        assert!(
            comment.contains("Upstream:") && comment.contains("jitsi/"),
            "{name}: the comment names no upstream file"
        );
    }
}
