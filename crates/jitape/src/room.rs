//! A room's names: the tenant and the room as users see them in the meeting's URL, from the
//! room's JID in the internal form (`[tenant]room@muc.<base>`, see `xmpp::tenant`).
//!
//! In: a room JID. Out: a [`RoomName`]. Pure; no I/O, no configuration.

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
