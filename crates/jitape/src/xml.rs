//! minidom helpers shared by every module that builds XML: attribute writing from plain
//! `&str` names (minidom 0.19 wants `NcName`s).

use minidom::ElementBuilder;
use minidom::rxml::NcName;

/// Attribute writing on [`ElementBuilder`] from plain `&str` names.
pub trait BuilderExt: Sized {
    /// Sets `name=value`.
    fn set(self, name: &str, value: impl Into<String>) -> Self;

    /// Sets `name=value` when `value` is `Some`.
    fn set_opt<V: Into<String>>(self, name: &str, value: Option<V>) -> Self {
        match value {
            Some(v) => self.set(name, v),
            None => self,
        }
    }
}

impl BuilderExt for ElementBuilder {
    fn set(self, name: &str, value: impl Into<String>) -> Self {
        match NcName::try_from(name) {
            Ok(n) => self.attr(n, value.into()),
            Err(_) => {
                // Attribute names are literals at every call site; a bad one is our bug, and
                // the tests build every element.
                tracing::error!(name, "xml builder: invalid attribute name skipped");
                self
            }
        }
    }
}
