//! The XMPP side: the component link to Prosody (`link`), stanza helpers (`stanza`), MUC
//! presence and self-description (`muc`), and the router that hands stanzas to conferences
//! (`router`).

pub mod classify;
pub mod link;
pub mod muc;
pub mod rooms;
pub mod router;
pub mod stanza;
