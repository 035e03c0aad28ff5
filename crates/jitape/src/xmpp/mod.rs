//! The XMPP side: the component link to Prosody (`link`, over the stanza framing in `wire`),
//! stanza helpers (`stanza`), MUC presence and self-description (`muc`), the two spellings of
//! tenant rooms (`tenant`), and the router that hands stanzas to conferences (`router`).

pub mod classify;
pub mod gate;
pub mod link;
pub mod muc;
pub mod rooms;
pub mod router;
pub mod stanza;
pub mod tenant;
pub mod wire;
