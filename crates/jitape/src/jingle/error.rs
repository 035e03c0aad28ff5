//! Everything that can be wrong with an inbound `<jingle>` element.
//!
//! In: produced by [`super::parse`] and [`super::json_sources`]. Out: a [`JingleError`] that
//! names the offending element/attribute, says whose fault it is ([`Fault`]) and which XMPP
//! stanza error condition to answer the IQ with ([`JingleError::condition`]). Values copied from
//! the stanza into an error are truncated so that an error message stays short.

use thiserror::Error;

/// Whose fault an error is, which decides how it is answered and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The peer sent something that is not valid Jingle (answer `bad-request`).
    Malformed,
    /// Valid, but jitape cannot do it (answer `feature-not-implemented`).
    Unsupported,
    /// Valid, but over one of our bounds (answer `policy-violation`).
    Limit,
}

/// Longest stanza value quoted in an error.
const MAX_QUOTED: usize = 64;

/// A failure to turn a `<jingle>` element into a [`super::Jingle`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JingleError {
    // ---- malformed input (the sender's fault) ----
    /// The element handed to the parser is not `<jingle xmlns='urn:xmpp:jingle:1'>`.
    #[error("not a Jingle element: <{name} xmlns='{ns}'>")]
    NotJingle { name: String, ns: String },
    #[error("jingle element without sid")]
    MissingSid,
    #[error("jingle element without action")]
    MissingAction,
    /// A required attribute is absent (or empty).
    #[error("<{element}> without the required attribute '{attr}'")]
    MissingAttribute {
        element: &'static str,
        attr: &'static str,
    },
    /// A required child element is absent.
    #[error("<{parent}> without the required <{element}>")]
    MissingElement {
        parent: &'static str,
        element: &'static str,
    },
    /// An attribute (or text) has a value of the wrong form: not a number, out of range, a
    /// hostname instead of a literal IP, an unknown enumeration value.
    #[error("invalid {attr} on <{element}>: {value:?}")]
    InvalidAttribute {
        element: &'static str,
        attr: &'static str,
        value: String,
    },
    /// An SSRC that is not a decimal u32 in `1..=4294967295`.
    #[error("invalid SSRC {0:?}")]
    InvalidSsrc(String),
    /// A source without `ssrc-info owner` (or with an empty owner).
    #[error("source {ssrc} has no owner")]
    MissingOwner { ssrc: crate::types::Ssrc },
    /// An offer (session-initiate, transport-replace) or answer without an audio content that
    /// carries an ICE-UDP transport.
    #[error("no audio content with an ICE-UDP transport")]
    MissingTransport,
    /// The `json-message` body is not JSON.
    #[error("json-message is not valid JSON: {0}")]
    InvalidJson(String),
    /// The `json-message` body is JSON, but not shaped like Jicofo's source encoding.
    #[error("json-message sources have the wrong shape: {0}")]
    BadJsonSources(String),

    // ---- unsupported (valid, but not something jitape does) ----
    #[error("unknown Jingle action {0:?}")]
    UnknownAction(String),
    /// E.g. an audio description that offers no Opus.
    #[error("unsupported: {0}")]
    Unsupported(String),

    // ---- over our bounds ----
    #[error("more than {limit} sources in one stanza")]
    TooManySources { limit: usize },
    #[error("more than {limit} candidates in one transport")]
    TooManyCandidates { limit: usize },
    #[error("json-message of {len} bytes exceeds the limit of {limit}")]
    JsonTooLarge { len: usize, limit: usize },
}

impl JingleError {
    /// Whose fault this is.
    pub fn fault(&self) -> Fault {
        use JingleError::*;
        match self {
            NotJingle { .. }
            | MissingSid
            | MissingAction
            | MissingAttribute { .. }
            | MissingElement { .. }
            | InvalidAttribute { .. }
            | InvalidSsrc(_)
            | MissingOwner { .. }
            | MissingTransport
            | InvalidJson(_)
            | BadJsonSources(_) => Fault::Malformed,
            UnknownAction(_) | Unsupported(_) => Fault::Unsupported,
            TooManySources { .. } | TooManyCandidates { .. } | JsonTooLarge { .. } => Fault::Limit,
        }
    }

    /// The XMPP stanza error condition (RFC 6120 §8.3.3) to answer the IQ with.
    pub fn condition(&self) -> &'static str {
        match self.fault() {
            Fault::Malformed => "bad-request",
            Fault::Unsupported => "feature-not-implemented",
            Fault::Limit => "policy-violation",
        }
    }

    /// The XMPP error type that goes with [`Self::condition`].
    pub fn error_type(&self) -> &'static str {
        match self.fault() {
            Fault::Malformed | Fault::Unsupported => "cancel",
            Fault::Limit => "modify",
        }
    }

    pub(crate) fn invalid(element: &'static str, attr: &'static str, value: &str) -> JingleError {
        JingleError::InvalidAttribute {
            element,
            attr,
            value: quote(value),
        }
    }

    pub(crate) fn invalid_ssrc(value: &str) -> JingleError {
        JingleError::InvalidSsrc(quote(value))
    }
}

/// A stanza value shortened for an error message (at most [`MAX_QUOTED`] characters).
pub(crate) fn quote(value: &str) -> String {
    shorten(value, MAX_QUOTED)
}

/// `value` cut to at most `max` characters, with `…` marking the cut.
pub(crate) fn shorten(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", value.get(..end).unwrap_or_default()),
        None => value.to_owned(),
    }
}
