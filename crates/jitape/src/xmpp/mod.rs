//! The XMPP link layer: the component connection to Prosody (`link`, over the stanza framing
//! in `wire`), stanza helpers (`stanza`), MUC presence and self-description (`muc`) and the two
//! spellings of tenant rooms (`tenant`). It knows nothing of conferences: the router
//! (`crate::router`) decides where a stanza goes.

pub mod link;
pub mod muc;
pub mod stanza;
pub mod tenant;
pub mod wire;
