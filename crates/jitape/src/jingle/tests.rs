//! Tests of the Jingle module: every reference stanza parsed field by field (`fixtures`), the
//! builders reproducing the reference stanzas exactly (`shape`), parse ∘ build round trips
//! (`roundtrip`), a table of hostile input (`malformed`), systematic mutation of the
//! reference stanzas (`mutation`) and every variant Jicofo can send (`variants`).

mod fixtures;
mod malformed;
mod mutation;
mod roundtrip;
mod shape;
mod variants;

use minidom::{Element, Node};

use super::ns;

pub(super) const F02: &str = include_str!("fixtures/02-session-initiate.xml");
pub(super) const F03: &str = include_str!("fixtures/03-session-accept.xml");
pub(super) const F04: &str = include_str!("fixtures/04-source-add-remove.xml");
pub(super) const F05: &str = include_str!("fixtures/05-ice-restart-and-transport-info.xml");
pub(super) const F06: &str = include_str!("fixtures/06-terminate-restart-replace-p2p.xml");

/// Every `<jingle>` element of a reference file, in document order (the `<stanzas>` wrapper
/// holds IQs and presences; only IQs carry Jingle).
pub(super) fn jingles(xml: &str) -> Vec<Element> {
    // The wrapper has no namespace, which minidom refuses on a root element.
    let root: Element = strip_comments(xml)
        .replacen("<stanzas>", "<stanzas xmlns='urn:jitape:test'>", 1)
        .parse()
        .expect("fixture is well-formed XML");
    root.children()
        .filter_map(|stanza| stanza.get_child("jingle", ns::JINGLE))
        .cloned()
        .collect()
}

/// The `n`th `<jingle>` of a reference file.
pub(super) fn nth(xml: &str, n: usize) -> Element {
    jingles(xml).swap_remove(n)
}

/// minidom (rxml) refuses XML comments, as XMPP's restricted XML does; the fixtures keep
/// theirs as documentation, so they are cut out before parsing.
pub(super) fn strip_comments(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("-->").expect("comment is closed");
        rest = &rest[start + end + 3..];
    }
    out.push_str(rest);
    out
}

/// Serialised XML of an element.
pub(super) fn xml_string(el: &Element) -> String {
    let mut out = Vec::new();
    el.write_to(&mut out).expect("serialises");
    String::from_utf8(out).expect("utf-8")
}

/// The element without whitespace-only text nodes (the fixtures' indentation), serialised:
/// two elements with the same names, namespaces, attributes (any order), children (in order)
/// and texts give the same string.
pub(super) fn canonical(el: &Element) -> String {
    xml_string(&strip_whitespace(el))
}

fn strip_whitespace(el: &Element) -> Element {
    let mut b = Element::builder(el.name(), el.ns());
    for ((ns, name), value) in el.attrs().iter() {
        b = b.attr_ns(ns.clone(), name.clone(), value.clone());
    }
    for node in el.nodes() {
        match node {
            Node::Element(child) => b = b.append(strip_whitespace(child)),
            Node::Text(t) if !t.trim().is_empty() => b = b.append(t.as_str()),
            Node::Text(_) => {}
        }
    }
    b.build()
}

/// Parses XML text (with the namespace declarations it carries) into an element.
pub(super) fn element(xml: &str) -> Element {
    xml.parse().expect("test XML is well-formed")
}

#[test]
fn every_reference_file_yields_its_jingle_stanzas() {
    // 02: (a) XML sources, (b) JSON sources; 03: accept; 04: add, add (JSON), remove (JSON);
    // 05: ice-restart request, Jicofo's transport-info, our answer, a trickle candidate;
    // 06: two terminates, restart request, ice-state, transport-replace, transport-accept,
    //     a browser's P2P offer, our decline.
    let counts: Vec<usize> = [F02, F03, F04, F05, F06]
        .iter()
        .map(|f| jingles(f).len())
        .collect();
    assert_eq!(counts, [2, 1, 3, 4, 8]);
}
