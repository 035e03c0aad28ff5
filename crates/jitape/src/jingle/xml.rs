//! Small helpers over `minidom` shared by the parser and the builders: strict attribute
//! reading (required/optional, strict decimal numbers) and attribute writing.
//!
//! In: elements and attribute names. Out: values or [`JingleError`]s naming the element and
//! attribute. Nothing here panics on any input.

use std::str::FromStr;

use minidom::Element;

use super::error::JingleError;

/// A required attribute: absent or empty is [`JingleError::MissingAttribute`].
pub(crate) fn required<'a>(
    el: &'a Element,
    element: &'static str,
    attr: &'static str,
) -> Result<&'a str, JingleError> {
    match el.attr(attr) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(JingleError::MissingAttribute { element, attr }),
    }
}

/// An optional attribute, with an empty value treated as absent.
pub(crate) fn optional<'a>(el: &'a Element, attr: &'a str) -> Option<&'a str> {
    el.attr(attr).filter(|v| !v.is_empty())
}

/// Parses a strictly decimal unsigned number (ASCII digits only: no sign, no spaces).
pub(crate) fn decimal<T: FromStr>(value: &str) -> Option<T> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// An optional numeric attribute; present but not a number in range is an error.
pub(crate) fn number<T: FromStr>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<Option<T>, JingleError> {
    match optional(el, attr) {
        None => Ok(None),
        Some(v) => decimal(v)
            .map(Some)
            .ok_or_else(|| JingleError::invalid(element, attr, v)),
    }
}

/// A required numeric attribute.
pub(crate) fn required_number<T: FromStr>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<T, JingleError> {
    let v = required(el, element, attr)?;
    decimal(v).ok_or_else(|| JingleError::invalid(element, attr, v))
}

/// `true`/`1` are true, anything else (or absent) is false (XML Schema boolean, lenient).
pub(crate) fn boolean(el: &Element, attr: &str) -> bool {
    matches!(el.attr(attr), Some("true") | Some("1"))
}

/// Element children with this local name and namespace.
pub(crate) fn children_named<'a>(
    el: &'a Element,
    name: &'a str,
    ns: &'a str,
) -> impl Iterator<Item = &'a Element> + 'a {
    el.children().filter(move |c| c.is(name, ns))
}

pub(crate) use crate::xml::BuilderExt;
