//! Jingle ⇄ session model: pure translation between `<jingle xmlns='urn:xmpp:jingle:1'>`
//! elements and the types of [`model`].
//!
//! In: the `<jingle>` child of an IQ as a [`minidom::Element`] (the outer stanza namespace never
//! matters here). Out: a [`Jingle`] value (action, sid, the action's payload) or a precise
//! [`JingleError`] that says which stanza error condition to answer with. The other way,
//! [`build`] turns the model into the `<jingle>` elements jitape sends (session-accept,
//! transport-accept, transport-info, session-info, session-terminate) and the ones the simulated
//! focus sends (session-initiate, transport-replace, source-add, source-remove), shaped like the
//! reference stanzas in `fixtures/`.
//!
//! Nothing here does I/O or keeps state; malformed input never panics. xmpp-parsers' Jingle types
//! are not used on purpose: they drop Jitsi's `ssrc-info`, reject `source-add` and hide ICE fields.

pub mod build;
pub mod error;
pub mod json_sources;
pub mod model;
pub mod parse;
pub mod transport;
mod xml;

#[cfg(test)]
mod tests;

use std::fmt;

pub use build::{
    answer_description, decline, session_accept, session_info_ice_failed, session_info_ice_restart,
    session_initiate, session_terminate, source_add, source_remove, transport_accept,
    transport_info, transport_replace,
};
pub use error::{Fault, JingleError};
pub use parse::{Header, Limits, parse, parse_header, parse_with_limits};

use model::{AudioOffer, BridgeSession, IceTransport, Ignored, Reason, Source};

/// XML namespaces used by Jicofo's Jingle dialect.
pub mod ns {
    /// XEP-0166 Jingle.
    pub const JINGLE: &str = "urn:xmpp:jingle:1";
    /// XEP-0167 RTP description (payload types, `rtcp-mux`, `parameter`).
    pub const RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
    /// XEP-0294 header extensions (`rtp-hdrext`, `extmap-allow-mixed`).
    pub const RTP_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
    /// XEP-0339 source-specific media attributes (`source`, `ssrc-group`).
    pub const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
    /// XEP-0176 ICE-UDP transport.
    pub const ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
    /// XEP-0320 DTLS fingerprint.
    pub const DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
    /// XEP-0338 grouping (BUNDLE).
    pub const GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
    /// Jitsi: `ssrc-info` and `json-message`.
    pub const JITMEET: &str = "http://jitsi.org/jitmeet";
    /// Jitsi focus: `bridge-session` and `ice-state`.
    pub const FOCUS: &str = "http://jitsi.org/protocol/focus";
    /// Jitsi colibri: `web-socket` inside a transport.
    pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";
}

/// A Jingle action: every XEP-0166 action plus Jitsi's `source-add`/`source-remove`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ContentAccept,
    ContentAdd,
    ContentModify,
    ContentReject,
    ContentRemove,
    DescriptionInfo,
    SecurityInfo,
    SessionAccept,
    SessionInfo,
    SessionInitiate,
    SessionTerminate,
    TransportAccept,
    TransportInfo,
    TransportReject,
    TransportReplace,
    /// Jitsi `source-add` (legacy spelling `addsource` maps here too).
    SourceAdd,
    /// Jitsi `source-remove` (legacy spelling `removesource` maps here too).
    SourceRemove,
}

impl Action {
    const ALL: [(Action, &'static str); 17] = [
        (Action::ContentAccept, "content-accept"),
        (Action::ContentAdd, "content-add"),
        (Action::ContentModify, "content-modify"),
        (Action::ContentReject, "content-reject"),
        (Action::ContentRemove, "content-remove"),
        (Action::DescriptionInfo, "description-info"),
        (Action::SecurityInfo, "security-info"),
        (Action::SessionAccept, "session-accept"),
        (Action::SessionInfo, "session-info"),
        (Action::SessionInitiate, "session-initiate"),
        (Action::SessionTerminate, "session-terminate"),
        (Action::TransportAccept, "transport-accept"),
        (Action::TransportInfo, "transport-info"),
        (Action::TransportReject, "transport-reject"),
        (Action::TransportReplace, "transport-replace"),
        (Action::SourceAdd, "source-add"),
        (Action::SourceRemove, "source-remove"),
    ];

    /// The attribute value, e.g. `session-initiate` (canonical spelling for source actions).
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("", |(_, s)| s)
    }

    /// Parses an `action` attribute value; `addsource`/`removesource` are accepted.
    pub fn from_attr(value: &str) -> Option<Action> {
        match value {
            "addsource" => Some(Action::SourceAdd),
            "removesource" => Some(Action::SourceRemove),
            _ => Self::ALL.iter().find(|(_, s)| *s == value).map(|(a, _)| *a),
        }
    }

    /// Actions that carry a full audio offer (description + transport + sources).
    pub fn is_offer(self) -> bool {
        matches!(self, Action::SessionInitiate | Action::TransportReplace)
    }

    /// Actions that answer an offer (session-accept, transport-accept).
    pub fn is_answer(self) -> bool {
        matches!(self, Action::SessionAccept | Action::TransportAccept)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed `<jingle>` element: the envelope and the payload relevant to its action.
///
/// Fields an action does not use stay empty (`None` / empty `Vec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jingle {
    pub action: Action,
    pub sid: String,
    /// Absent on Jicofo's source-add/source-remove and on its plain transport-info.
    pub initiator: Option<String>,
    pub responder: Option<String>,
    /// session-initiate, transport-replace, session-accept, transport-accept: the audio content.
    pub audio: Option<AudioOffer>,
    /// Names of the contents that were not taken as the audio content (`video`, `data`, ...),
    /// reported rather than silently dropped.
    pub other_contents: Vec<String>,
    /// transport-info: the transport of its (single, `audio`) content.
    pub transport: Option<IceTransport>,
    /// session-initiate, transport-replace, source-add, source-remove: the audio sources from
    /// `<source>` elements and the JSON form, merged and deduplicated by SSRC, in document order
    /// (XML first).
    pub sources: Vec<Source>,
    /// The second SSRC of every audio `FID` `ssrc-group` (XML) or `["f", a, b]` group (JSON).
    pub repair_ssrcs: Vec<model::Ssrc>,
    pub bridge_session: Option<BridgeSession>,
    /// session-terminate: the `<reason>`.
    pub reason: Option<Reason>,
    /// Legacy `<ice-state xmlns='http://jitsi.org/protocol/focus'>` text (e.g. `failed`).
    pub ice_state: Option<String>,
    /// Content names of the BUNDLE `<group>`, if any.
    pub group: Vec<String>,
}

impl Jingle {
    /// An empty value for `action`/`sid`: the starting point of parsing and of hand-built tests.
    pub fn new(action: Action, sid: impl Into<String>) -> Jingle {
        Jingle {
            action,
            sid: sid.into(),
            initiator: None,
            responder: None,
            audio: None,
            other_contents: Vec::new(),
            transport: None,
            sources: Vec::new(),
            repair_ssrcs: Vec::new(),
            bridge_session: None,
            reason: None,
            ice_state: None,
            group: Vec::new(),
        }
    }

    /// The participants' media sources only: every source for which [`Self::ignored`] says
    /// nothing (the bridge's own, synthetic translations and repair SSRCs left out).
    pub fn media_sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.iter().filter(|s| self.ignored(s).is_none())
    }

    /// Why `s` (one of [`Self::sources`]) is not recorded, if it is not.
    pub fn ignored(&self, s: &Source) -> Option<Ignored> {
        if s.is_bridge() {
            Some(Ignored::Bridge)
        } else if s.is_synthetic() {
            Some(Ignored::Synthetic)
        } else if self.repair_ssrcs.contains(&s.ssrc) {
            Some(Ignored::Repair)
        } else {
            None
        }
    }

    /// Whether this session-terminate asks for a new session (`bridge-session restart='true'`).
    pub fn restart_requested(&self) -> bool {
        self.bridge_session.as_ref().is_some_and(|b| b.restart)
    }

    /// Whether this session-info asks for an in-place ICE restart.
    pub fn ice_restart_requested(&self) -> bool {
        self.bridge_session.as_ref().is_some_and(|b| b.ice_restart)
    }
}
