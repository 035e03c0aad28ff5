//! Hostile and broken input: a table where each case gives its precise error and stanza error
//! condition, never a panic; and the configurable bounds.

use minidom::Element;

use super::super::error::{Fault, JingleError as E};
use super::super::{Limits, ns, parse, parse_with_limits};
use super::element;

const SOURCE: &str = r#"<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="SSRC" name="a-a0"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="OWNER"/></source>"#;
const CANDIDATE: &str = r#"<candidate component="1" foundation="1" generation="0" id="c1" ip="192.0.2.1" network="0" port="10000" priority="2130706431" protocol="udp" type="host"/>"#;
const FINGERPRINT: &str = r#"<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">AA:BB</fingerprint>"#;
const ATTRS: &str = r#"action="session-initiate" sid="s1" initiator="focus@auth/focus""#;
const OPUS: &str = r#"<payload-type id="111" name="opus" clockrate="48000" channels="2"/>"#;
const PCMU: &str = r#"<payload-type id="0" name="PCMU" clockrate="8000"/>"#;
const HDREXT: &str = r#"<rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" "#;

/// A minimal session-initiate with the given pieces spliced in.
fn offer(jingle_attrs: &str, payload: &str, sources: &str, transport: &str) -> String {
    format!(
        r#"<jingle xmlns="urn:xmpp:jingle:1" {jingle_attrs}><content creator="initiator" name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">{payload}{sources}</description>{transport}</content><bridge-session xmlns="http://jitsi.org/protocol/focus" id="b1"/></jingle>"#
    )
}

fn transport(attrs: &str, inner: &str) -> String {
    format!(
        r#"<transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" {attrs}>{inner}</transport>"#
    )
}

fn good_transport() -> String {
    transport(r#"ufrag="u" pwd="p""#, &format!("{FINGERPRINT}{CANDIDATE}"))
}

fn source(ssrc: &str, owner: &str) -> String {
    SOURCE.replace("SSRC", ssrc).replace("OWNER", owner)
}

/// The valid minimal offer with one source, as text (other tests splice into it).
pub(super) fn with_source_xml(ssrc: &str, owner: &str) -> String {
    offer(ATTRS, OPUS, &source(ssrc, owner), &good_transport())
}

fn with_source(ssrc: &str, owner: &str) -> Element {
    element(&with_source_xml(ssrc, owner))
}

/// The minimal offer with `from` replaced by `to` (anywhere in it).
fn edited(from: &str, to: &str) -> Element {
    element(&with_source_xml("5", "a").replace(from, to))
}

fn with_payload(payload: &str) -> Element {
    element(&offer(ATTRS, payload, "", &good_transport()))
}

fn with_transport(attrs: &str, inner: &str) -> Element {
    element(&offer(ATTRS, OPUS, "", &transport(attrs, inner)))
}

/// A source-add carrying only a json-message with this body.
pub(super) fn with_json(body: &str) -> Element {
    Element::builder("jingle", ns::JINGLE)
        .attr("action".try_into().expect("name"), "source-add")
        .attr("sid".try_into().expect("name"), "s1")
        .append(
            Element::builder("json-message", ns::JITMEET)
                .append(body)
                .build(),
        )
        .build()
}

fn json_sources(n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("{{\"s\":{i}}}")).collect();
    format!("{{\"sources\":{{\"a\":[[],[],[{}]]}}}}", list.join(","))
}

fn json_ssrc(s: &str) -> Element {
    with_json(&format!(
        "{{\"sources\":{{\"a\":[[],[],[{{\"s\":{s}}}]]}}}}"
    ))
}

/// What a case must produce.
enum Want {
    Is(E),
    /// `InvalidAttribute` on this element and attribute.
    Invalid(&'static str, &'static str),
    Missing(&'static str, &'static str),
    Ssrc(&'static str),
    Matches(fn(&E) -> bool),
}

impl Want {
    fn check(&self, e: &E) -> bool {
        match self {
            Want::Is(w) => e == w,
            Want::Invalid(el, at) => {
                matches!(e, E::InvalidAttribute { element, attr, .. } if element == el && attr == at)
            }
            Want::Missing(el, at) => {
                *e == E::MissingAttribute {
                    element: el,
                    attr: at,
                }
            }
            Want::Ssrc(v) => *e == E::InvalidSsrc((*v).to_owned()),
            Want::Matches(f) => f(e),
        }
    }
}

type Case = (&'static str, Element, Want, &'static str);

fn bad(name: &'static str, input: Element, want: Want) -> Case {
    (name, input, want, "bad-request")
}

fn unsupported(name: &'static str, input: Element, want: Want) -> Case {
    (name, input, want, "feature-not-implemented")
}

fn over(name: &'static str, input: Element, want: Want) -> Case {
    (name, input, want, "policy-violation")
}

// A table: one case per line reads better than rustfmt's six.
#[rustfmt::skip]
fn envelope_and_source_cases() -> Vec<Case> {
    use Want::*;
    let el = element;
    vec![
        bad("missing sid", edited(r#"sid="s1""#, ""), Is(E::MissingSid)),
        bad("empty sid", edited(r#"sid="s1""#, r#"sid="""#), Is(E::MissingSid)),
        bad("missing action", edited(r#"action="session-initiate""#, ""), Is(E::MissingAction)),
        unsupported("unknown action", edited("session-initiate", "session-dance"), Is(E::UnknownAction("session-dance".into()))),
        bad("not jingle", edited("urn:xmpp:jingle:1", "urn:xmpp:jingle:0"), Matches(|e| matches!(e, E::NotJingle { .. }))),
        bad("ssrc abc", with_source("abc", "a"), Ssrc("abc")),
        bad("ssrc 0", with_source("0", "a"), Ssrc("0")),
        bad("ssrc 2^32", with_source("4294967296", "a"), Ssrc("4294967296")),
        bad("ssrc -1", with_source("-1", "a"), Ssrc("-1")),
        bad("ssrc +5", with_source("+5", "a"), Ssrc("+5")),
        bad("ssrc hex", with_source("0x10", "a"), Ssrc("0x10")),
        bad("ssrc missing", with_source("", "a"), Missing("source", "ssrc")),
        bad("ssrc huge", with_source(&"9".repeat(500), "a"), Matches(|e| matches!(e, E::InvalidSsrc(v) if v.chars().count() == 65))),
        bad("no owner", edited(r#"<ssrc-info xmlns="http://jitsi.org/jitmeet" owner="a"/>"#, ""), Is(E::MissingOwner { ssrc: crate::types::Ssrc(5) })),
        bad("empty owner", with_source("5", ""), Is(E::MissingOwner { ssrc: crate::types::Ssrc(5) })),
        bad("owner JID without resource", with_source("5", "room@muc/"), Is(E::MissingOwner { ssrc: crate::types::Ssrc(5) })),
        bad("content without name", edited(r#"name="audio""#, ""), Missing("content", "name")),
        bad("bridge-session without id", edited(r#"id="b1""#, ""), Missing("bridge-session", "id")),
        bad("reason without condition", el(r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-terminate" sid="s"><reason><text>x</text></reason></jingle>"#), Matches(|e| matches!(e, E::MissingElement { parent: "reason", .. }))),
        bad("no contents", el(r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s"/>"#), Is(E::MissingTransport)),
        bad("video only", edited(r#"media="audio""#, r#"media="video""#), Is(E::MissingTransport)),
        bad("offer without transport", el(&offer(ATTRS, OPUS, "", "")), Is(E::MissingTransport)),
        bad("transport-replace without transport", el(&offer(r#"action="transport-replace" sid="s""#, OPUS, "", "")), Is(E::MissingTransport)),
        bad("transport-info without transport", el(r#"<jingle xmlns="urn:xmpp:jingle:1" action="transport-info" sid="s"><content name="audio"/></jingle>"#), Is(E::MissingTransport)),
        bad("session-accept without transport", el(r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-accept" sid="s"><content name="audio"/></jingle>"#), Is(E::MissingTransport)),
    ]
}

// A table: one case per line reads better than rustfmt's six.
#[rustfmt::skip]
fn media_cases() -> Vec<Case> {
    use Want::*;
    vec![
        bad("port 70000", edited(r#"port="10000""#, r#"port="70000""#), Invalid("candidate", "port")),
        bad("port -1", edited(r#"port="10000""#, r#"port="-1""#), Invalid("candidate", "port")),
        bad("component x", edited(r#"component="1""#, r#"component="x""#), Invalid("candidate", "component")),
        bad("priority 1.5", edited("2130706431", "1.5"), Invalid("candidate", "priority")),
        bad("generation g", edited(r#"generation="0""#, r#"generation="g""#), Invalid("candidate", "generation")),
        bad("candidate without ip", edited(r#"ip="192.0.2.1""#, ""), Missing("candidate", "ip")),
        bad("candidate without protocol", edited(r#"protocol="udp""#, ""), Missing("candidate", "protocol")),
        bad("candidate without type", edited(r#"type="host""#, ""), Missing("candidate", "type")),
        bad("rel-port x", edited(r#"type="host""#, r#"type="srflx" rel-addr="192.0.2.9" rel-port="x""#), Invalid("candidate", "rel-port")),
        over("100 candidates", with_transport(r#"ufrag="u" pwd="p""#, &CANDIDATE.repeat(100)), Is(E::TooManyCandidates { limit: 64 })),
        bad("transport without pwd", with_transport(r#"ufrag="u""#, ""), Missing("transport", "pwd")),
        bad("transport without ufrag", with_transport(r#"pwd="p""#, ""), Missing("transport", "ufrag")),
        bad("ice-generation x", with_transport(r#"ufrag="u" pwd="p" ice-generation="x""#, ""), Invalid("transport", "ice-generation")),
        bad("setup sideways", edited("actpass", "sideways"), Invalid("fingerprint", "setup")),
        bad("fingerprint without value", edited("AA:BB", "  "), Matches(|e| matches!(e, E::MissingElement { parent: "fingerprint", .. }))),
        bad("fingerprint without hash", edited(r#"hash="sha-256""#, ""), Missing("fingerprint", "hash")),
        unsupported("no opus", with_payload(PCMU), Matches(|e| matches!(e, E::Unsupported(_)))),
        unsupported("opus at 16 kHz", with_payload(&OPUS.replace("48000", "16000")), Matches(|e| matches!(e, E::Unsupported(_)))),
        bad("payload-type id 200", with_payload(&OPUS.replace("111", "200")), Invalid("payload-type", "id")),
        bad("payload-type without id", with_payload(&OPUS.replace(r#"id="111""#, "")), Missing("payload-type", "id")),
        bad("rtp-hdrext id 0", with_payload(&format!(r#"{OPUS}{HDREXT}id="0" uri="u"/>"#)), Invalid("rtp-hdrext", "id")),
        bad("rtp-hdrext id 256", with_payload(&format!(r#"{OPUS}{HDREXT}id="256" uri="u"/>"#)), Invalid("rtp-hdrext", "id")),
        bad("rtp-hdrext without uri", with_payload(&format!(r#"{OPUS}{HDREXT}id="1"/>"#)), Missing("rtp-hdrext", "uri")),
        bad("maxptime x", edited(r#"media="audio""#, r#"media="audio" maxptime="x""#), Invalid("description", "maxptime")),
    ]
}

// A table: one case per line reads better than rustfmt's six.
#[rustfmt::skip]
fn json_and_limit_cases() -> Vec<Case> {
    use Want::*;
    let many_xml: String = (1..=10_000).map(|i| source(&i.to_string(), "a")).collect();
    let mixed_xml: String = (1..=1_500).map(|i| source(&i.to_string(), "a")).collect();
    let mut mixed = element(&offer(ATTRS, OPUS, &mixed_xml, &good_transport()));
    let mixed_json = json_sources(1_000).replace("\"s\":", "\"s\":100000");
    mixed.append_child(Element::builder("json-message", ns::JITMEET).append(mixed_json).build());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    let too_many = Is(E::TooManySources { limit: 2_000 });
    let shape = || Matches(|e| matches!(e, E::BadJsonSources(_)));
    vec![
        over("10,000 xml sources", element(&offer(ATTRS, OPUS, &many_xml, &good_transport())), Is(E::TooManySources { limit: 2_000 })),
        over("xml + json sources over the bound", mixed, Is(E::TooManySources { limit: 2_000 })),
        over("10,000 json sources", with_json(&json_sources(10_000)), too_many),
        over("json over 1 MiB", with_json(&huge), Matches(|e| matches!(e, E::JsonTooLarge { limit: 1_048_576, .. }))),
        bad("broken json", with_json(r#"{"sources":{"a":[[],[],[{"s":1}"#), Matches(|e| matches!(e, E::InvalidJson(_)))),
        bad("json not json", with_json("<sources/>"), Matches(|e| matches!(e, E::InvalidJson(_)))),
        bad("deeply nested json", json_ssrc(&deep), Matches(|e| matches!(e, E::InvalidJson(m) if m.contains("recursion")))),
        bad("json top level array", with_json("[1,2]"), shape()),
        bad("json sources is array", with_json(r#"{"sources":[1]}"#), shape()),
        bad("json owner is object", with_json(r#"{"sources":{"a":{"s":1}}}"#), shape()),
        bad("json audio list is object", with_json(r#"{"sources":{"a":[[],[],{"s":1}]}}"#), shape()),
        bad("json source without s", with_json(r#"{"sources":{"a":[[],[],[{"n":"x"}]]}}"#), shape()),
        bad("json n is number", with_json(r#"{"sources":{"a":[[],[],[{"s":1,"n":5}]]}}"#), shape()),
        bad("json s is bool", json_ssrc("true"), shape()),
        bad("json s is 0", json_ssrc("0"), Ssrc("0")),
        bad("json s is -1", json_ssrc("-1"), Ssrc("-1")),
        bad("json s is 2^32", json_ssrc("4294967296"), Ssrc("4294967296")),
        bad("json s is 1.5", json_ssrc("1.5"), Ssrc("1.5")),
        bad("json s is text", json_ssrc(r#""abc""#), Ssrc("abc")),
        bad("json empty owner", with_json(r#"{"sources":{"":[[],[],[{"s":1}]]}}"#), Is(E::MissingOwner { ssrc: crate::types::Ssrc(1) })),
    ]
}

#[test]
fn the_minimal_offer_used_by_the_table_is_valid() {
    let j = parse(&with_source("5", "a")).expect("valid");
    assert_eq!(j.sources.len(), 1);
    assert!(j.audio.is_some());
    assert_eq!(parse(&json_ssrc("5")).map(|j| j.sources.len()), Ok(1));
}

#[test]
fn every_malformed_case_gives_its_error_and_condition() {
    let mut cases = envelope_and_source_cases();
    cases.extend(media_cases());
    cases.extend(json_and_limit_cases());
    assert!(cases.len() >= 67, "{} cases", cases.len());
    for (name, input, want, condition) in cases {
        let err = parse(&input).expect_err(name);
        assert!(want.check(&err), "{name}: unexpected error {err:?}");
        assert_eq!(err.condition(), condition, "{name}: {err}");
        assert!(
            err.to_string().chars().count() < 300,
            "{name}: message stays short"
        );
    }
}

/// What is optional and unusable is skipped, never a reason to refuse the session: a candidate
/// jitape cannot use (unknown protocol or type, not a literal IP), a `rel-addr` that is not an
/// IP (dropped with its port), a parameter without a name (Jicofo's RED fmtp).
#[test]
fn unusable_optional_parts_are_skipped_not_refused() {
    // The usable candidate "1" next to a second one with (ip, protocol, type, extra).
    let two = |ip: &str, protocol: &str, ty: &str, extra: &str| {
        let second = format!(
            r#"<candidate component="1" foundation="2" generation="0" ip="{ip}" port="443" priority="1" protocol="{protocol}" type="{ty}" {extra}/>"#
        );
        let t = transport(
            r#"ufrag="u" pwd="p""#,
            &format!("{FINGERPRINT}{CANDIDATE}{second}"),
        );
        element(&offer(ATTRS, OPUS, "", &t))
    };
    #[rustfmt::skip]
    let skipped = [
        ("hostname", two("jvb.example.com", "udp", "host", "")),
        ("mdns", two("4f2a.local", "udp", "host", "")),
        ("scoped link-local", two("fe80::1%eth0", "udp", "host", "")),
        ("ssltcp", two("192.0.2.2", "ssltcp", "host", r#"tcptype="passive""#)),
        ("sctp", two("192.0.2.2", "sctp", "host", "")),
        ("unknown type", two("192.0.2.2", "udp", "bogus", "")),
    ];
    for (name, input) in skipped {
        let j = parse(&input).unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        let t = j.audio.expect("audio").transport;
        let kept: Vec<&str> = t.candidates.iter().map(|c| c.foundation.as_str()).collect();
        assert_eq!(kept, ["1"], "{name}: only the usable candidate is kept");
    }
    let srflx = parse(&two(
        "192.0.2.2",
        "udp",
        "srflx",
        r#"rel-addr="nat.example" rel-port="9""#,
    ))
    .expect("parses");
    let c = &srflx.audio.expect("audio").transport.candidates[1];
    assert_eq!(
        (c.rel_addr, c.rel_port),
        (None, None),
        "unusable rel-addr dropped"
    );
    let red = with_payload(&format!(
        r#"<payload-type id="112" name="red" clockrate="48000" channels="2"><parameter value="111/111"/></payload-type>{OPUS}"#
    ));
    let d = parse(&red)
        .expect("parses")
        .audio
        .expect("audio")
        .description;
    assert_eq!(
        d.red().map(|r| (r.id, r.parameters.clone())),
        Some((112, vec![(String::new(), "111/111".to_owned())]))
    );
}

#[test]
fn faults_map_to_conditions() {
    assert_eq!(E::MissingSid.fault(), Fault::Malformed);
    assert_eq!(E::UnknownAction("x".into()).fault(), Fault::Unsupported);
    assert_eq!(E::TooManySources { limit: 1 }.fault(), Fault::Limit);
    let e = E::MissingTransport;
    assert_eq!((e.condition(), e.error_type()), ("bad-request", "cancel"));
}

#[test]
fn limits_are_configurable() {
    let second = format!("{}</description>", source("6", "b"));
    let two = element(&with_source_xml("5", "a").replace("</description>", &second));
    let tight = Limits {
        max_sources: 1,
        ..Limits::default()
    };
    assert_eq!(
        parse_with_limits(&two, &tight),
        Err(E::TooManySources { limit: 1 })
    );
    assert_eq!(parse(&two).map(|j| j.sources.len()), Ok(2));
    let tiny_json = Limits {
        max_json_bytes: 10,
        ..Limits::default()
    };
    let json = with_json(&json_sources(1));
    let result = parse_with_limits(&json, &tiny_json);
    assert!(
        matches!(result, Err(E::JsonTooLarge { limit: 10, .. })),
        "{result:?}"
    );
    assert_eq!(parse(&json).map(|j| j.sources.len()), Ok(1));
}
