//! One conference: the room lifecycle state machine (`machine`, with its Jingle half in
//! `session` and its roster in `roster`), the task that drives it (`task`), and the note of
//! stretches it could not hear (`deaf`).

pub mod deaf;
pub mod inbox;
pub mod machine;
pub mod recording;
pub mod roster;
pub mod session;
pub mod snapshot;
pub mod task;
