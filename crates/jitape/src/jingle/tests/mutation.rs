//! Systematic robustness: unknown extras and deep junk are ignored, and removing any element
//! or rewriting any attribute of any reference stanza gives a result or an error, never a
//! panic.

use minidom::Element;
use minidom::rxml::Namespace;

use super::super::parse;
use super::malformed::{with_json, with_source_xml};
use super::{F02, F03, F04, F05, F06, element, jingles};

#[test]
fn unknown_extras_and_deeply_nested_junk_are_ignored() {
    let junk = format!(
        "{}{}",
        "<junk xmlns='urn:example:junk' a='1'>".repeat(1_000),
        "</junk>".repeat(1_000)
    );
    let xml = with_source_xml("5", "a")
        .replace("<bridge-session", &format!("{junk}<bridge-session"))
        .replace(r#"sid="s1""#, r#"sid="s1" unknown-attr="x""#)
        .replace("</source>", "<unknown/></source>")
        .replace("</transport>", "<mystery xmlns='urn:example'/></transport>");
    let j = parse(&element(&xml)).expect("extras ignored");
    assert_eq!((j.sid.as_str(), j.sources.len()), ("s1", 1));
    assert_eq!(j.bridge_session.map(|b| b.id).as_deref(), Some("b1"));

    // Deep nesting where Jicofo puts video sources is skipped without recursion.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let json = with_json(&format!(
        "{{\"sources\":{{\"a\":[{nested},[],[{{\"s\":5}}]]}}}}"
    ));
    assert_eq!(parse(&json).map(|j| j.sources.len()), Ok(1));
}

/// Every element of `el` addressed by its path of child indices.
fn paths(el: &Element, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, child) in el.children().enumerate() {
        prefix.push(i);
        out.push(prefix.clone());
        paths(child, prefix, out);
        prefix.pop();
    }
}

fn at<'a>(el: &'a mut Element, path: &[usize]) -> &'a mut Element {
    path.iter()
        .fold(el, |e, &i| e.children_mut().nth(i).expect("path exists"))
}

#[test]
fn mutating_any_element_or_attribute_of_the_reference_stanzas_never_panics() {
    let values = [
        "",
        "x",
        "-1",
        "0",
        "99999999999999999999",
        "a.b.c",
        "\u{fffd}",
    ];
    let mut outcomes = [0usize; 2];
    for reference in [F02, F03, F04, F05, F06].iter().flat_map(|f| jingles(f)) {
        let mut all = Vec::new();
        paths(&reference, &mut Vec::new(), &mut all);
        all.push(Vec::new());
        for path in &all {
            if let Some((last, parent)) = path.split_last() {
                let mut removed = reference.clone();
                let p = at(&mut removed, parent);
                let mut kept: Vec<Element> = p
                    .take_nodes()
                    .into_iter()
                    .filter_map(|n| n.as_element().cloned())
                    .collect();
                kept.remove(*last);
                kept.into_iter().for_each(|c| {
                    p.append_child(c);
                });
                outcomes[usize::from(parse(&removed).is_ok())] += 1;
            }
            let names: Vec<_> = at(&mut reference.clone(), path)
                .attrs()
                .iter()
                .map(|((_, n), _)| n.clone())
                .collect();
            for name in names {
                for v in values {
                    let mut changed = reference.clone();
                    at(&mut changed, path).set_attr(Namespace::NONE, name.clone(), v);
                    match parse(&changed) {
                        Ok(_) => outcomes[1] += 1,
                        Err(e) => {
                            assert!(
                                ["bad-request", "feature-not-implemented", "policy-violation"]
                                    .contains(&e.condition())
                            );
                            outcomes[0] += 1;
                        }
                    }
                }
            }
        }
    }
    // Both outcomes occur many times: mutations are really applied and really checked.
    assert!(outcomes[0] > 300 && outcomes[1] > 300, "{outcomes:?}");
}
