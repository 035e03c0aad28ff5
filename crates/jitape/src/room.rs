//! A room's identity: its JID ([`RoomJid`], the name of a conference from the router through
//! the conference task to its recording), and its names as users see them in the meeting's
//! URL ([`RoomName`]: the tenant and the room), from the JID in the internal form
//! (`[tenant]room@muc.<base>`, see `xmpp::tenant`).
//!
//! In: a room JID. Out: a [`RoomJid`], a [`RoomName`]. Pure; no I/O, no configuration.

use std::fmt;

/// A room's bare JID in the internal form, lowercased (`weekly@muc.meet.jitsi`,
/// `[acme]weekly@muc.meet.jitsi`): how jitape names a conference everywhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoomJid(String);

impl RoomJid {
    /// A room JID from `jid` (bare or with a resource, which is dropped): a non-empty node
    /// and domain; `None` for anything else.
    pub fn parse(jid: &str) -> Option<RoomJid> {
        let bare = jid.split('/').next()?;
        let (node, domain) = bare.split_once('@')?;
        let well_formed = !node.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !bare.chars().any(char::is_whitespace);
        well_formed.then(|| RoomJid(bare.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tenant and the room as users see them.
    pub fn name(&self) -> RoomName {
        RoomName::of(&self.0)
    }
}

impl fmt::Display for RoomJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RoomJid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A room as users name it: the tenant (the URL's first path segment, as the deployment
/// spelled it in the MUC domain) and the room (the last segment, percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName {
    pub tenant: Option<String>,
    pub room: String,
}

impl RoomName {
    /// The names of a room JID in the internal form (`[tenant]room@muc` or `room@muc`).
    /// Jitsi's web client lowercases and percent-encodes room names, so a node is decoded;
    /// bytes that are not UTF-8 after decoding leave the node as it is.
    pub fn of(room_jid: &str) -> RoomName {
        let bare = room_jid.split('/').next().unwrap_or(room_jid);
        let node = bare.rsplit_once('@').map_or(bare, |(n, _)| n);
        let tenant_room = node
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .filter(|(t, r)| !t.is_empty() && !r.is_empty());
        match tenant_room {
            Some((tenant, room)) => RoomName {
                tenant: Some(tenant.to_string()),
                room: percent_decode(room),
            },
            None => RoomName {
                tenant: None,
                room: percent_decode(node),
            },
        }
    }
}

impl std::fmt::Display for RoomName {
    /// `tenant/room` (upstream's own spelling), or `room`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tenant {
            Some(t) => write!(f, "{t}/{}", self.room),
            None => f.write_str(&self.room),
        }
    }
}

/// Decode `%XX` escapes; a `%` not followed by two hex digits stays as it is, and a result
/// that is not UTF-8 gives back the input.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests;
